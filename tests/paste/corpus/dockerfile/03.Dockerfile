FROM golang:1.22 AS builder
ARG VERSION=dev
ENV CGO_ENABLED=0
WORKDIR /go/src/app
COPY . .
RUN go build -ldflags "-X main.version=${VERSION}" -o /out/server ./cmd/server

FROM gcr.io/distroless/static
COPY --from=builder /out/server /server
USER nonroot
ENTRYPOINT ["/server"]
