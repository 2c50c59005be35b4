"""``POST /upload`` (uploader spec sections 2-4) under WSGI and ASGI."""

from __future__ import annotations

import json
import re
from typing import Any

import falcon.testing
import pytest
from httpkit import call, jpeg_bytes, make_host, multipart, png_bytes

from hepcore import Account, Runtime

ID_RE = r"[A-Za-z0-9_-]{9}"
MISSING = {"ok": False, "error": "Missing bearer token"}
REVOKED = {"ok": False, "error": "Token revoked"}
FORBIDDEN = {"ok": False, "error": "Forbidden"}
ACCESS_REQUIRED = {"ok": False, "error": "ACCESS_REQUIRED", "code": "ACCESS_REQUIRED"}
TYPE_NOT_ALLOWED = {"ok": False,
                    "error": "Not allowed to upload files with the supplied Content-Type"}
NO_FILE = {"ok": False, "error": "No file or link in request"}
MIB = 1024 * 1024


def post_file(client: falcon.testing.TestClient, auth: str | None, data: bytes = b"hello",
              *, field: str = "file", filename: str | None = "hello.txt",
              content_type: str | None = "text/plain", path: str = "/upload",
              host: str | None = None) -> falcon.testing.Result:
    body, ctype = multipart([(field, filename, content_type, data)])
    headers = {"Content-Type": ctype}
    if auth is not None:
        headers["Authorization"] = auth
    kwargs: dict[str, Any] = {"host": host} if host else {}
    return client.simulate_post(path, body=body, headers=headers, **kwargs)


def post_link(client: falcon.testing.TestClient, auth: str, link: str) -> falcon.testing.Result:
    from urllib.parse import urlencode

    return client.simulate_post(
        "/upload", body=urlencode({"link": link}),
        headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})


def item_row(runtime: Runtime, item_id: str) -> Any:
    return runtime.db.one("SELECT * FROM uploader_items WHERE id = ?", (item_id,))


# --- the file part -----------------------------------------------------------


@pytest.mark.parametrize("field", ["file", "upload", "anything"])
def test_any_field_name_is_accepted(client, uploader_token, field):
    r = post_file(client, uploader_token, b"field test", field=field)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert set(r.json) == {"ID", "url"}
    assert re.fullmatch(ID_RE + r"\.txt", r.json["ID"])
    assert client.simulate_get("/" + r.json["ID"]).content == b"field test"


def test_first_file_part_wins_over_later_parts_and_link(client, uploader_token):
    body, ctype = multipart([
        ("note", None, None, b"a plain field first"),
        ("link", None, None, b"https://example.com/ignored"),
        ("first", "one.txt", "text/plain", b"first file"),
        ("second", "two.txt", "text/plain", b"second file"),
    ])
    r = client.simulate_post("/upload", body=body,
                             headers={"Content-Type": ctype, "Authorization": uploader_token})
    assert r.status_code == 200
    assert client.simulate_get("/" + r.json["ID"]).content == b"first file"


def test_a_file_part_without_a_body_does_not_swallow_the_next(client, runtime, uploader_token):
    """A part may end right after its headers (RFC 2046); the parser would read
    the next part into it, so an "empty" file would be stored holding another
    part's framing. Such a body is refused and nothing is stored."""
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\""
            f"\r\nContent-Type: text/plain\r\n\r\n--{boundary}\r\nContent-Disposition:"
            f" form-data; name=\"other\"; filename=\"b.txt\"\r\n\r\nsecond\r\n"
            f"--{boundary}--\r\n").encode()
    r = client.simulate_post("/upload", body=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Authorization": uploader_token})
    assert r.status_code == 400
    assert r.json["ok"] is False
    assert r.json["error"].startswith("Malformed request body")
    assert runtime.db.one("SELECT count(*) FROM uploader_items")[0] == 0
    assert list(runtime.storage.keys()) == []


def test_a_part_header_that_is_not_utf8_gets_a_plain_message(client, runtime, uploader_token):
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\xff.txt"'
            b"\r\n\r\nx\r\n--b--\r\n")
    r = client.simulate_post("/upload", body=body, headers={
        "Content-Type": "multipart/form-data; boundary=b", "Authorization": uploader_token})
    assert (r.status_code, r.json) == (400, {
        "ok": False, "error": "Malformed request body: part header is not UTF-8"})
    assert runtime.db.one("SELECT count(*) FROM uploader_items")[0] == 0


def test_response_url_is_request_base_when_nothing_configured(client, uploader_token):
    r = post_file(client, uploader_token, host="files.example.net")
    assert r.json["url"] == "http://files.example.net/" + r.json["ID"]


# --- authentication (section 2) ---------------------------------------------


@pytest.mark.parametrize("form", ["{t}", "Bearer {t}", "Token {t}", "bearer {t}", "TOKEN {t}",
                                  "  Bearer   {t}  ", "bEaReR\t{t}"])
def test_token_header_forms(client, uploader_token, form):
    r = post_file(client, form.format(t=uploader_token))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("auth", [None, "", "   ", "Bearer", "bearer   ", "Token"])
def test_missing_token(client, uploader_token, auth):
    r = post_file(client, auth)
    assert r.status_code == 401
    assert r.headers["Content-Type"] == "application/json"
    assert r.json == MISSING


@pytest.mark.parametrize("auth", ["hyd-up-" + "A" * 32, "not-a-token", "Basic xyz",
                                  "Bearer Bearer {t}", "Basic {t}"])
def test_unknown_token_is_revoked(client, uploader_token, auth):
    r = post_file(client, auth.format(t=uploader_token))
    assert r.status_code == 401
    assert r.json == REVOKED


def test_rotated_token_is_revoked(client, runtime, account, uploader_token):
    (key,) = runtime.keys.list(account_id=account.id, service="uploader")
    new_token, _ = runtime.keys.rotate(key.id)
    assert post_file(client, uploader_token).json == REVOKED
    assert post_file(client, new_token).status_code == 200


def test_new_key_revokes_the_old_one(client, runtime, account, uploader_token):
    new_token, _ = runtime.keys.create("uploader", account.id)
    assert post_file(client, uploader_token).json == REVOKED
    assert post_file(client, f"Bearer {new_token}").status_code == 200


def test_disabled_key_is_revoked(client, runtime, account, uploader_token):
    (key,) = runtime.keys.list(account_id=account.id, service="uploader")
    runtime.keys.set_status(key.id, "disabled")
    r = post_file(client, uploader_token)
    assert (r.status_code, r.json) == (401, REVOKED)
    runtime.keys.set_status(key.id, "active")
    assert post_file(client, uploader_token).status_code == 200


@pytest.mark.parametrize("change", [{"settings": {"disabled": True}}, {"status": "banned"},
                                    {"status": "suspended"}])
def test_disabled_account_is_forbidden(client, runtime, account, uploader_token, change):
    runtime.accounts.update(account.id, **change)
    r = post_file(client, uploader_token)
    assert (r.status_code, r.json) == (403, FORBIDDEN)


@pytest.mark.parametrize("access", ["suspended", "revoked"])
def test_uploader_access_required(client, runtime, account, uploader_token, access):
    runtime.accounts.update(account.id, settings={"uploader_access": access})
    r = post_file(client, uploader_token)
    assert (r.status_code, r.json) == (403, ACCESS_REQUIRED)
    runtime.accounts.update(account.id, settings={"uploader_access": "active"})
    assert post_file(client, uploader_token).status_code == 200


def test_disabled_account_wins_over_access(client, runtime, account, uploader_token):
    runtime.accounts.update(account.id, settings={"disabled": True, "uploader_access": "revoked"})
    assert post_file(client, uploader_token).json == FORBIDDEN


def test_authentication_comes_before_the_body(client, uploader_token):
    r = client.simulate_post("/upload", body=b"garbage",
                             headers={"Content-Type": "multipart/form-data; boundary=zz"})
    assert (r.status_code, r.json) == (401, MISSING)


# --- maintenance, rate limit, size before reading ----------------------------


def test_maintenance_mode(host):
    h = host(options={"maintenance": True})
    r = post_file(h.client(), h.token)
    assert r.status_code == 403
    assert r.json == {"ok": False, "error": "Uploads are paused for maintenance",
                      "code": "MAINTENANCE"}
    # authentication still comes first
    assert post_file(h.client(), "nope").json == REVOKED


def test_rate_limit_per_account_and_recovery(host, clock):
    h = host(options={"upload_rate_per_minute": 3})
    client = h.client()
    for _ in range(2):
        assert post_file(client, h.token).status_code == 200
    # every authenticated request counts, whatever its outcome
    assert post_file(client, h.token, b"", filename="").status_code == 400
    clock.advance(10)
    r = post_file(client, h.token)
    assert r.status_code == 429
    assert r.json == {"ok": False, "error": "Too many requests", "code": "RATE_LIMITED"}
    retry = r.headers["Retry-After"]
    assert retry.isdigit() and 1 <= int(retry) <= 60
    assert int(retry) == 50
    # another account is not affected
    other = h.runtime.accounts.create("carol")
    other_token, _ = h.runtime.keys.create("uploader", other.id)
    assert post_file(client, other_token).status_code == 200
    clock.advance(int(retry))
    assert post_file(client, h.token).status_code == 200


def test_default_rate_limit_is_240_per_minute(client, uploader_token, clock):
    for i in range(240):
        r = post_link(client, uploader_token, f"https://example.com/{i}")
        assert r.status_code == 200, (i, r.text)
    r = post_link(client, uploader_token, "https://example.com/241")
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    clock.advance(60)
    assert post_link(client, uploader_token, "https://example.com/242").status_code == 200


def test_unauthenticated_requests_are_not_rate_limited(host):
    h = host(options={"upload_rate_per_minute": 1})
    client = h.client()
    for _ in range(3):
        assert post_file(client, None).json == MISSING
    assert post_file(client, h.token).status_code == 200


def test_content_length_over_limit_is_refused_before_reading(host):
    h = host(settings={"max_file_size": MIB})
    app = h.app()
    garbage = b"this is not a multipart body"
    headers = [("Authorization", h.token), ("Content-Type", "multipart/form-data; boundary=b")]
    # Read, this body is a malformed-multipart 400 ...
    r = call(app, "POST", "/upload", body=garbage, headers=headers)
    assert r.status == 400
    # ... but a declared length above the limit plus 64 KiB is refused unread.
    declared = MIB + 64 * 1024 + 1
    r = call(app, "POST", "/upload", body=garbage,
             headers=[*headers, ("Content-Length", str(declared))])
    assert r.status == 413
    assert json.loads(r.body) == {"ok": False, "code": "TOO_LARGE",
                                  "error": "File exceeds your upload size limit of 1 MB"}
    r = call(app, "POST", "/upload", body=garbage,
             headers=[*headers, ("Content-Length", str(declared - 1))])
    assert r.status == 400


def test_multipart_overhead_is_configurable(host):
    h = host(settings={"max_file_size": MIB}, multipart_overhead=0)
    body, ctype = multipart([("file", "a.bin", None, b"x" * 10)])
    r = call(h.app(), "POST", "/upload", body=body, headers=[
        ("Authorization", h.token), ("Content-Type", ctype), ("Content-Length", str(MIB + 1))])
    assert r.status == 413


@pytest.mark.parametrize(("limit", "shown"), [
    (100 * MIB, "100"), (MIB, "1"), (1179648, "1.125"), (2560, "0.00244140625")])
def test_limit_in_the_message_has_no_trailing_zeros_and_no_rounding(host, limit, shown):
    h = host(settings={"max_file_size": limit})
    body, ctype = multipart([("file", "a.bin", None, b"x" * 10)])
    r = call(h.app(), "POST", "/upload", body=body, headers=[
        ("Authorization", h.token), ("Content-Type", ctype),
        ("Content-Length", str(limit + 64 * 1024 + 1))])
    assert r.status == 413
    assert json.loads(r.body)["error"] == f"File exceeds your upload size limit of {shown} MB"


def test_file_over_limit_while_streaming(host):
    h = host(settings={"max_file_size": int(2.5 * MIB)})
    client = h.client()
    r = post_file(client, h.token, b"a" * (int(2.5 * MIB) + 1), content_type=None)
    assert r.status_code == 413
    assert r.json == {"ok": False, "error": "File exceeds your upload size limit of 2.5 MB",
                      "code": "TOO_LARGE"}
    r = post_file(client, h.token, b"a" * int(2.5 * MIB), content_type=None)
    assert r.status_code == 200


def test_content_length_with_transfer_encoding_is_a_400(client, uploader_token):
    # Chunked framing overrides Content-Length (RFC 9112 6.3): a request with both
    # is refused, not read to a length its framing does not have.
    body = b'5\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n'
    r = call(client.app, "POST", "/upload", body=body, headers=[
        ("Authorization", uploader_token), ("Content-Type", "application/json"),
        ("Content-Length", "3"), ("Transfer-Encoding", "chunked")])
    assert (r.status, json.loads(r.body)) == (
        400, {"ok": False, "error": "Content-Length and Transfer-Encoding must not both be sent"})


def test_bad_content_length_is_a_400_in_the_envelope(client, uploader_token):
    body, ctype = multipart([("file", "a.txt", "text/plain", b"abc")])
    for bad in ("abc", "-1", "1e3"):
        r = call(client.app, "POST", "/upload", body=body, headers=[
            ("Authorization", uploader_token), ("Content-Type", ctype), ("Content-Length", bad)])
        assert r.status == 400
        assert r.header("Content-Type") == "application/json"
        assert json.loads(r.body) == {"ok": False, "error": "Invalid Content-Length header"}


# --- types, IDs, allowed_types ----------------------------------------------


def test_allowed_types_refuses_a_declared_type(host):
    h = host(settings={"allowed_types": ["image/*"]})
    r = post_file(h.client(), h.token, b"just text", content_type="text/plain")
    assert (r.status_code, r.json) == (400, TYPE_NOT_ALLOWED)


def test_allowed_types_match_is_case_insensitive_and_ignores_parameters(host):
    h = host(settings={"allowed_types": ["Text/Plain"]})
    r = post_file(h.client(), h.token, b"ok", content_type="TEXT/plain; charset=utf-8")
    assert r.status_code == 200
    assert r.json["ID"].endswith(".txt")
    got = h.client().simulate_get("/" + r.json["ID"])
    assert got.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("declared", ["image/*", "*/*", "IMAGE/*; q=1"])
def test_a_declared_range_is_not_a_type_and_the_bytes_decide(host, declared):
    # U8 takes the declared type only when specific: "image/*" must not carry
    # any bytes past allowed_types = ["image/*"], nor be served as a type.
    h = host(settings={"allowed_types": ["image/*"]})
    client = h.client()
    page = b"<!doctype html><script>alert(1)</script>"
    r = post_file(client, h.token, page, filename="x.html", content_type=declared)
    assert (r.status_code, r.json) == (400, TYPE_NOT_ALLOWED)
    png = png_bytes(3, 2)
    r = post_file(client, h.token, png, filename="x", content_type=declared)
    assert r.status_code == 200, r.text
    assert r.json["ID"].endswith(".png")
    assert client.simulate_get("/" + r.json["ID"]).headers["Content-Type"] == "image/png"


def test_html_declared_as_any_type_is_served_as_html_in_the_sandbox(client, uploader_token):
    r = post_file(client, uploader_token, b"<!doctype html><p>hi", filename="x.html",
                  content_type="*/*")
    assert r.status_code == 200, r.text
    assert r.json["ID"].endswith(".html")
    got = client.simulate_get("/" + r.json["ID"])
    assert got.headers["Content-Type"].startswith("text/html")
    assert "sandbox" in got.headers["Content-Security-Policy"]


@pytest.mark.parametrize("declared", [None, "application/octet-stream"])
def test_undeclared_type_is_sniffed_from_bytes(host, declared):
    h = host(settings={"allowed_types": ["image/*"]})
    client = h.client()
    png = png_bytes(7, 5)
    r = post_file(client, h.token, png, filename="screenshot", content_type=declared)
    assert r.status_code == 200, r.text
    assert re.fullmatch(ID_RE + r"\.png", r.json["ID"])
    got = client.simulate_get("/" + r.json["ID"])
    assert got.headers["Content-Type"] == "image/png"
    assert got.content == png
    row = item_row(h.runtime, r.json["ID"])
    assert (row["width"], row["height"], row["name"]) == (7, 5, "screenshot")


def test_undeclared_type_falls_back_to_the_filename(host):
    h = host(settings={"allowed_types": ["image/*"]})
    client = h.client()
    r = post_file(client, h.token, b"\x00\x01\x02 not really webp", filename="cat.webp",
                  content_type=None)
    assert r.status_code == 200
    assert re.fullmatch(ID_RE + r"\.webp", r.json["ID"])
    assert client.simulate_get("/" + r.json["ID"]).headers["Content-Type"] == "image/webp"
    r = post_file(client, h.token, b"plain words", filename="notes.txt", content_type=None)
    assert (r.status_code, r.json) == (400, TYPE_NOT_ALLOWED)


@pytest.mark.parametrize("declared", [None, "application/octet-stream"])
@pytest.mark.parametrize(("limit", "size"), [(int(2.5 * MIB), 3 * MIB), (2048, 10_000)])
def test_a_guessed_type_is_checked_before_the_size(host, declared, limit, size):
    # 4.3: the type (step 2) decides before the size (step 3), also when the
    # type comes from the leading bytes, even with a limit below what is sniffed.
    # Chunked, so that no Content-Length is refused before the body is read.
    h = host(settings={"allowed_types": ["image/*"], "max_file_size": limit})
    app = h.app()

    def send(data: bytes, name: str) -> tuple[int, Any]:
        body, ctype = multipart([("file", name, declared, data)])
        chunks = [body[i:i + 64 * 1024] for i in range(0, len(body), 64 * 1024)]
        r = call(app, "POST", "/upload", body=chunks, chunked=True,
                 headers=[("Authorization", h.token), ("Content-Type", ctype)])
        return r.status, json.loads(r.body)

    for data, name in ((bytes(size), "zeros.bin"), (b"words " * (size // 6 + 1), "notes")):
        assert send(data, name) == (400, TYPE_NOT_ALLOWED), name
    status, reply = send(png_bytes() + bytes(size), "big")
    assert (status, reply["code"]) == (413, "TOO_LARGE")


@pytest.mark.parametrize("declared", ['text/plain; a="x\nSet-Cookie: a=b"',
                                      'text/plain; a="x\r\nX: y"', 'text/plain; a="\x00"'])
def test_a_declared_type_that_cannot_be_a_header_is_not_kept(client, uploader_token, declared):
    r = post_file(client, uploader_token, b"hello", filename="a.txt", content_type=declared)
    assert r.status_code == 200, r.text
    got = client.simulate_get("/" + r.json["ID"])
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "text/plain"  # guessed, as for no declared type
    assert "Set-Cookie" not in got.headers and "X" not in got.headers


def test_canonical_extensions(client, uploader_token):
    r = post_file(client, uploader_token, jpeg_bytes(), filename="photo.jpeg",
                  content_type="image/jpeg")
    assert re.fullmatch(ID_RE + r"\.jpg", r.json["ID"])
    # a declared type wins over the bytes
    r = post_file(client, uploader_token, png_bytes(), filename="x.png", content_type="image/gif")
    assert r.json["ID"].endswith(".gif")


def test_extension_from_filename_or_none(client, uploader_token):
    r = post_file(client, uploader_token, b"\x00data", filename="Archive.TAR.XyZ",
                  content_type="application/x-custom")
    assert re.fullmatch(ID_RE + r"\.xyz", r.json["ID"])
    r = post_file(client, uploader_token, b"\x00data", filename="noext",
                  content_type="application/x-custom")
    assert re.fullmatch(ID_RE, r.json["ID"])
    r = post_file(client, uploader_token, b"\x00data", filename="bad.ext-with-dash",
                  content_type="application/x-custom")
    assert re.fullmatch(ID_RE, r.json["ID"])
    assert client.simulate_get("/" + r.json["ID"]).content == b"\x00data"


def test_ids_are_unique(client, uploader_token):
    ids = {post_file(client, uploader_token, b"same").json["ID"] for _ in range(20)}
    assert len(ids) == 20


# --- absent files, malformed and chunked bodies -----------------------------


def test_untouched_file_input_counts_as_absent(client, uploader_token):
    r = post_file(client, uploader_token, b"", filename="", content_type="application/octet-stream")
    assert (r.status_code, r.json) == (400, NO_FILE)
    body, ctype = multipart([("file", "", "application/octet-stream", b""),
                             ("link", None, None, b"https://example.com/from-form")])
    r = client.simulate_post("/upload", body=body,
                             headers={"Content-Type": ctype, "Authorization": uploader_token})
    assert r.status_code == 200
    assert re.fullmatch(ID_RE, r.json["ID"])


def test_empty_file_with_a_name_is_stored(client, uploader_token):
    r = post_file(client, uploader_token, b"", filename="empty.txt")
    assert r.status_code == 200
    got = client.simulate_get("/" + r.json["ID"])
    assert (got.status_code, got.content, got.headers["Content-Length"]) == (200, b"", "0")


def test_multipart_without_file_or_link(client, uploader_token):
    body, ctype = multipart([("comment", None, None, b"hi"), ("link", None, None, b"")])
    r = client.simulate_post("/upload", body=body,
                             headers={"Content-Type": ctype, "Authorization": uploader_token})
    assert (r.status_code, r.json) == (400, NO_FILE)


def test_body_missing_link_property(client, uploader_token):
    for ctype, body in (("application/x-www-form-urlencoded", b"other=1"),
                        ("application/x-www-form-urlencoded", b"link="),
                        ("text/plain", b"link=https://example.com"),
                        ("application/json", b'{"url": "https://example.com"}')):
        r = client.simulate_post("/upload", body=body, headers={
            "Content-Type": ctype, "Authorization": uploader_token})
        assert (r.status_code, r.json) == (400, {"ok": False,
                                                 "error": "Body is missing link property"})


MALFORMED = [
    pytest.param(b"no boundary at all", "multipart/form-data; boundary=abc", id="garbage"),
    pytest.param(b"--abc\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n"
                 b"cut off", "multipart/form-data; boundary=abc", id="truncated"),
    pytest.param(b"--abc\r\nthis is not a header\r\n\r\nx\r\n--abc--\r\n",
                 "multipart/form-data; boundary=abc", id="bad-part-header"),
    pytest.param(b"--abc\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n"
                 + b"X-Long: " + b"h" * 20000 + b"\r\n\r\nx\r\n--abc--\r\n",
                 "multipart/form-data; boundary=abc", id="huge-header"),
    pytest.param(b"--abc--\r\n", "multipart/form-data", id="no-boundary-param"),
    pytest.param(b"", "multipart/form-data; boundary=abc", id="empty"),
]


@pytest.mark.parametrize(("body", "ctype"), MALFORMED)
def test_malformed_multipart_is_a_400(client, uploader_token, body, ctype):
    r = client.simulate_post("/upload", body=body,
                             headers={"Content-Type": ctype, "Authorization": uploader_token})
    assert r.status_code == 400
    assert r.headers["Content-Type"] == "application/json"
    assert r.json["ok"] is False and isinstance(r.json["error"], str)


def test_chunked_body_without_content_length(client, uploader_token):
    data = bytes(range(256)) * 4000  # ~1 MiB, split across many chunks
    body, ctype = multipart([("file", "blob.bin", None, data)])
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    r = call(client.app, "POST", "/upload", body=chunks, chunked=True,
             headers=[("Authorization", uploader_token), ("Content-Type", ctype)])
    assert r.status == 200, r.body
    item_id = json.loads(r.body)["ID"]
    assert item_id.endswith(".bin")
    assert client.simulate_get("/" + item_id).content == data


def test_chunked_body_over_limit(host):
    h = host(settings={"max_file_size": 100_000})
    body, ctype = multipart([("file", "big.bin", None, b"z" * 300_000)])
    chunks = [body[i:i + 10_000] for i in range(0, len(body), 10_000)]
    r = call(h.app(), "POST", "/upload", body=chunks, chunked=True,
             headers=[("Authorization", h.token), ("Content-Type", ctype)])
    assert r.status == 413
    assert json.loads(r.body)["code"] == "TOO_LARGE"
    assert h.runtime.db.one("SELECT count(*) FROM uploader_items")[0] == 0


# --- the public URL ---------------------------------------------------------


def test_url_from_public_base_url(host):
    h = host(public_base_url="https://hep.example/")
    r = post_file(h.client(), h.token)
    assert r.json["url"] == "https://hep.example/" + r.json["ID"]


def test_url_from_service_serve_base(host):
    h = host(public_base_url="https://hep.example",
             options={"serve_base_url": "https://i.hep.example/"})
    r = post_file(h.client(), h.token)
    assert r.json["url"] == "https://i.hep.example/" + r.json["ID"]


def test_url_from_account_serve_base(host):
    h = host(public_base_url="https://hep.example",
             options={"serve_base_url": "https://i.hep.example"},
             settings={"serve_base_url": "https://bob.hep.example/"})
    client = h.client()
    r = post_file(client, h.token)
    assert r.json["url"] == "https://bob.hep.example/" + r.json["ID"]


def test_url_uses_mount_prefix(tmp_path, clock, app_kind):
    h = make_host(tmp_path / "p", clock, asgi=app_kind == "asgi", prefix="/hep/")
    body, ctype = multipart([("file", "a.txt", "text/plain", b"hello")])
    try:
        r = call(h.app(), "POST", "/hep/upload", host="box.local:8080", body=body,
                 headers=[("Authorization", h.token), ("Content-Type", ctype)])
        assert json.loads(r.body)["url"] == "http://box.local:8080/hep/" + json.loads(r.body)["ID"]
        r = post_file(h.client(), h.token, path="/hep/upload")
        assert h.client().simulate_get("/hep/" + r.json["ID"]).content == b"hello"
    finally:
        h.runtime.close()


# --- links and text ---------------------------------------------------------


def test_link_upload_makes_a_shortlink(client, runtime, uploader_token):
    r = post_link(client, f"Bearer {uploader_token}", "  https://example.com/x  ")
    assert r.status_code == 200
    assert re.fullmatch(ID_RE, r.json["ID"])
    assert r.json["url"].endswith("/" + r.json["ID"])
    got = client.simulate_get("/" + r.json["ID"])
    assert got.status_code == 302
    assert got.headers["Location"] == "https://example.com/x"
    assert got.headers["Cache-Control"] == "private, max-age=0"
    assert got.content == b""
    row = item_row(runtime, r.json["ID"])
    assert (row["kind"], row["link"]) == ("link", "https://example.com/x")


def test_link_in_multipart_field(client, uploader_token):
    body, ctype = multipart([("link", None, None, b"http://example.org/a?b=c")])
    r = client.simulate_post("/upload", body=body,
                             headers={"Content-Type": ctype, "Authorization": uploader_token})
    assert r.status_code == 200
    got = client.simulate_get("/" + r.json["ID"])
    assert (got.status_code, got.headers["Location"]) == (302, "http://example.org/a?b=c")


@pytest.mark.parametrize("value", ["hello", "mailto:someone@example.com", "https://", "ftp://x.y/z",
                                   " spaced words \n", "https://example.com/" + "a" * 2048])
def test_link_that_is_not_a_url_is_stored_as_text(client, runtime, uploader_token, clock, value):
    r = post_link(client, uploader_token, value)
    assert r.status_code == 200
    assert re.fullmatch(ID_RE + r"\.txt", r.json["ID"])
    got = client.simulate_get("/" + r.json["ID"])
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert got.content == value.encode()  # exactly as received, not trimmed
    row = item_row(runtime, r.json["ID"])
    assert (row["kind"], row["name"]) == ("text", f"{int(clock() * 1000)}.txt")


def test_text_obeys_allowed_types(host):
    h = host(settings={"allowed_types": ["image/*"]})
    client = h.client()
    assert post_link(client, h.token, "hello").json == TYPE_NOT_ALLOWED
    assert post_link(client, h.token, "https://example.com/").status_code == 200


def test_account_object_is_fresh_per_request(client, runtime, account: Account, uploader_token):
    assert post_file(client, uploader_token).status_code == 200
    runtime.accounts.update(account.id, settings={"allowed_types": ["image/png"]})
    assert post_file(client, uploader_token).json == TYPE_NOT_ALLOWED


@pytest.mark.parametrize("stored", ['text/plain; a="x\nSet-Cookie: a=b"', "text/plain; a=\"\u00e9\""])
def test_a_stored_type_that_cannot_be_a_header_is_served_as_bytes(client, runtime,
                                                                  uploader_token, stored):
    """Rows kept before declared types were checked still serve, never a 500."""
    r = post_file(client, uploader_token, b"hello", filename="a.txt", content_type="text/plain")
    runtime.db.write_one("UPDATE uploader_items SET type = ? WHERE slug = ?",
                         (stored, r.json["ID"].split(".")[0]))
    got = client.simulate_get("/" + r.json["ID"])
    assert (got.status_code, got.content) == (200, b"hello")
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "Set-Cookie" not in got.headers
