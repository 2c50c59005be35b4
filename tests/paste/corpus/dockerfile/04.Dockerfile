FROM ubuntu:22.04
LABEL maintainer="ops@example.com"
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
VOLUME /data
HEALTHCHECK CMD curl -f http://localhost/ || exit 1
CMD ["bash"]
