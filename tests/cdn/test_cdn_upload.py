"""``POST /api/v4/upload`` (6.2): the upload object, filenames, types and quotas."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable

import falcon.testing
import pytest
from cdnkit import (
    MB,
    UUID7_RE,
    CdnHost,
    Origin,
    batch,
    path_of,
    post_files,
    rows,
    stored_files,
    upload,
    usage,
)
from httpkit import call, multipart, png_bytes

from hepcore import Account, Runtime, hookimpl
from hepcore.inspection import Rejection, UploadCandidate
from hepcore.testing import FakeClock
from hepcore.web import create_app

QUOTA_EMPTY = {"storage_used": 0, "storage_limit": 52428800, "quota_tier": "unverified",
               "percentage_used": 0.0}


def test_upload_returns_the_upload_object(client: falcon.testing.TestClient, runtime: Runtime,
                                          account: Account, auth: dict[str, str],
                                          clock: FakeClock) -> None:
    clock.now = 1_780_000_000.75
    data = png_bytes()
    r = upload(client, auth, "test.png", data, "image/png")
    assert r.status_code == 201
    assert r.headers["Content-Type"] == "application/json"
    body = r.json
    assert list(body) == ["id", "filename", "size", "content_type", "url", "created_at"]
    assert re.fullmatch(UUID7_RE, body["id"])
    assert int(body["id"].replace("-", "")[:12], 16) == 1_780_000_000_750  # UUIDv7 time
    assert body["filename"] == "test.png"
    assert body["size"] == len(data)
    assert body["content_type"] == "image/png"
    assert body["url"] == f"http://falconframework.org/{body['id']}/test.png"
    assert body["created_at"] == "2026-05-28T20:26:40Z"
    assert len(rows(runtime, account.id)) == 1
    assert usage(runtime, account.id) == (len(data), 1)
    got = client.simulate_get(path_of(body["url"]))
    assert got.content == data


def test_each_upload_is_one_more(client: falcon.testing.TestClient, runtime: Runtime,
                                 account: Account, auth: dict[str, str]) -> None:
    ids = {upload(client, auth, "test.png", png_bytes()).json["id"] for _ in range(3)}
    assert len(ids) == 3
    assert len(rows(runtime, account.id)) == 3


def test_no_key(client: falcon.testing.TestClient, runtime: Runtime) -> None:
    r = upload(client, {})
    assert (r.status_code, r.json) == (401, {"error": "invalid_auth"})
    assert stored_files(runtime) == []


@pytest.mark.parametrize("parts", [
    [],
    [("other", "test.png", None, b"abc")],
    [("file", None, None, b"just a field")],
    [("file", "", "image/png", b"abc")],
    [("files", "a.png", None, b"abc")],
    [("file", "   ", None, b"blank name")],
])
def test_missing_file(client: falcon.testing.TestClient, runtime: Runtime,
                      auth: dict[str, str], parts: list) -> None:
    r = post_files(client, "/api/v4/upload", parts, auth)
    assert (r.status_code, r.json) == (400, {"error": "Missing file parameter"})
    assert stored_files(runtime) == []


def test_non_multipart_bodies_have_no_file(client: falcon.testing.TestClient,
                                           auth: dict[str, str]) -> None:
    for headers, body in [({"Content-Type": "application/json"}, b'{"file":"x"}'),
                          ({}, b""), ({"Content-Type": "text/plain"}, b"hello")]:
        r = client.simulate_post("/api/v4/upload", body=body, headers={**auth, **headers})
        assert (r.status_code, r.json) == (400, {"error": "Missing file parameter"})


@pytest.mark.parametrize("path", ["/api/v4/upload", "/api/v4/upload.json"])
@pytest.mark.parametrize(("ctype", "body"), [
    ("application/json", b"{bad"),
    ("application/json; charset=utf-8", b'{"file": '),
    ("application/vnd.api+json", b"[1,]"),
    ("application/json", b'{"file": "\xff"}'),
])
def test_malformed_json_body(client: falcon.testing.TestClient, runtime: Runtime,
                             auth: dict[str, str], path: str, ctype: str, body: bytes) -> None:
    """Section 3: a malformed JSON body is 400 ``Invalid JSON body`` here too; a
    well-formed one has no file part (6.2 step 4)."""
    r = client.simulate_post(path, body=body, headers={**auth, "Content-Type": ctype})
    assert (r.status_code, r.json) == (400, {"error": "Invalid JSON body"})
    for good in (b'{"file": "x.txt"}', b"[]", b"", b"  "):
        r = client.simulate_post(path, body=good, headers={**auth, "Content-Type": ctype})
        assert (r.status_code, r.json) == (400, {"error": "Missing file parameter"})
    assert stored_files(runtime) == []


def test_json_body_too_large_to_check_has_no_file(client: falcon.testing.TestClient,
                                                 auth: dict[str, str]) -> None:
    """Only bodies of up to 1 MiB (the parameter limit) are parsed to tell
    malformed JSON apart; a larger one is still just not multipart."""
    r = client.simulate_post("/api/v4/upload", body=b"{" + b" " * MB,
                             headers={**auth, "Content-Type": "application/json"})
    assert (r.status_code, r.json) == (400, {"error": "Missing file parameter"})


def test_malformed_json_needs_a_key(client: falcon.testing.TestClient) -> None:
    r = client.simulate_post("/api/v4/upload", body=b"{bad",
                             headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json) == (401, {"error": "invalid_auth"})


def test_malformed_multipart(client: falcon.testing.TestClient, runtime: Runtime,
                             auth: dict[str, str]) -> None:
    r = client.simulate_post("/api/v4/upload", body=b"--b\r\nContent-Disposition: form-data;"
                             b' name="file"; filename="a.txt"\r\n\r\nunterminated',
                             headers={**auth, "Content-Type": "multipart/form-data; boundary=b"})
    assert (r.status_code, r.json) == (400, {"error": "Malformed multipart body"})
    r = client.simulate_post("/api/v4/upload", body=b"x",
                             headers={**auth, "Content-Type": "multipart/form-data"})
    assert (r.status_code, r.json) == (400, {"error": "Malformed multipart body"})
    assert stored_files(runtime) == []


def headers_only_part(name: str, filename: str | None = None) -> bytes:
    """A part that ends after its headers, with no blank line (RFC 2046
    ``MIME-part-headers [CRLF *OCTET]``), as werkzeug's test client writes an empty file."""
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"\r\n--b\r\nContent-Disposition: {disposition}\r\n".encode()


def test_a_part_without_body_does_not_swallow_the_next(
        client: falcon.testing.TestClient, runtime: Runtime, account: Account,
        auth: dict[str, str]) -> None:
    """Found by the schema fuzzer: the parser read the delimiter and the next
    part into a headers-only part, so an empty ``file`` stored the framing and
    bytes of the part after it. Such a body is refused, and nothing is stored."""
    body = (headers_only_part("file", "empty.txt")
            + b'\r\n--b\r\nContent-Disposition: form-data; name="other"; filename="x.txt"'
            b"\r\n\r\nsecret\r\n--b--\r\n")
    r = client.simulate_post("/api/v4/upload", body=body,
                             headers={**auth, "Content-Type": "multipart/form-data; boundary=b"})
    assert (r.status_code, r.json) == (400, {"error": "Malformed multipart body"})
    # the same with the file after a headers-only field that would swallow it
    body = (headers_only_part("note")
            + b'\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"'
            b"\r\n\r\nhello\r\n--b--\r\n")
    r = client.simulate_post("/api/v4/upload", body=body,
                             headers={**auth, "Content-Type": "multipart/form-data; boundary=b"})
    assert (r.status_code, r.json) == (400, {"error": "Malformed multipart body"})
    assert stored_files(runtime) == []
    assert rows(runtime) == []
    assert usage(runtime, account.id) == (0, 0)


def test_zero_byte_file_is_accepted(client: falcon.testing.TestClient,
                                    auth: dict[str, str]) -> None:
    r = upload(client, auth, "empty.bin", b"")
    assert r.status_code == 201
    assert (r.json["size"], r.json["content_type"]) == (0, "application/octet-stream")
    got = client.simulate_get(path_of(r.json["url"]))
    assert (got.status_code, got.content) == (200, b"")


def test_other_parts_are_ignored(client: falcon.testing.TestClient,
                                 auth: dict[str, str]) -> None:
    r = post_files(client, "/api/v4/upload", [("note", None, None, b"hi"),
                                              ("file", "a.txt", None, b"first"),
                                              ("file", "b.txt", None, b"second")], auth)
    assert r.status_code == 201
    assert (r.json["filename"], r.json["size"]) == ("a.txt", 5)


@pytest.mark.parametrize(("sent", "kept"), [
    ("my file?.png", "my file-.png"),
    ("a/b.txt", "a-b.txt"),
    ("  padded.txt \t", "padded.txt"),
    ('x%$|:;<>*"\\y.txt', "x----------y.txt"),
    ("evil\u202egnp.exe", "evil-gnp.exe"),
    ("naïve 🙂.txt", "naïve 🙂.txt"),
    # Windows paths are sanitised as sent, not cut to their last part
    ("C:\\x\\y.txt", "C--x-y.txt"),
    ("\\\\server\\share\\f.txt", "--server-share-f.txt"),
    ("x\\y\\z.txt", "x-y-z.txt"),
    ("c:\\100%.txt", "c--100-.txt"),
])
def test_filenames_are_sanitised(client: falcon.testing.TestClient, auth: dict[str, str],
                                 sent: str, kept: str) -> None:
    body, ctype = multipart([("file", "PLACEHOLDER", None, b"data")])
    body = body.replace(b"PLACEHOLDER", sent.encode("utf-8").replace(b'"', b"%22"))
    r = client.simulate_post("/api/v4/upload", body=body, headers={**auth, "Content-Type": ctype})
    assert r.status_code == 201, r.text
    assert r.json["filename"] == kept
    assert path_of(r.json["url"]).endswith("/" + _segment(kept))


@pytest.mark.parametrize("disposition", [
    'form-data; name="file"; filename="C:\\x\\y.txt"; size=1',
    'form-data; filename="C:\\x\\y.txt"; name="file"',
    'form-data;  name=file; filename="C:\\x\\y.txt"',
])
def test_windows_paths_in_any_header_form(client: falcon.testing.TestClient,
                                         auth: dict[str, str], disposition: str) -> None:
    """The parser's fallback for headers that are not in the browsers' exact form
    keeps the path too."""
    body = (f"--b\r\nContent-Disposition: {disposition}\r\n\r\ndata\r\n--b--\r\n").encode()
    r = client.simulate_post("/api/v4/upload", body=body,
                             headers={**auth, "Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 201, r.text
    assert r.json["filename"] == "C--x-y.txt"


def _segment(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="!&'()*+,=@")


def test_invalid_utf8_filename_becomes_replacement_characters(
        client: falcon.testing.TestClient, auth: dict[str, str]) -> None:
    body, ctype = multipart([("file", "PLACEHOLDER", None, b"data")])
    body = body.replace(b"PLACEHOLDER", b"bad\xff\xfename.txt")
    r = client.simulate_post("/api/v4/upload", body=body, headers={**auth, "Content-Type": ctype})
    assert r.status_code == 201, r.text
    assert r.json["filename"] == "bad\ufffd\ufffdname.txt"
    assert r.json["url"].endswith("/bad%EF%BF%BD%EF%BF%BDname.txt")


def _docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
    return buf.getvalue()


@pytest.mark.parametrize(("name", "data", "declared", "expected"), [
    ("photo.jpg", png_bytes(), "image/jpeg", "image/png"),  # the bytes win
    ("report.docx", _docx(), None,
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("archive.zip", _docx(), None, "application/zip"),
    ("notes.txt", b"plain words", None, "text/plain; charset=utf-8"),
    ("notes.md", b"# title", None, "text/markdown; charset=utf-8"),
    ("page.html", b"<!doctype html><p>hi", None, "text/html; charset=utf-8"),
    ("noext", b"\x00\x01mystery", "application/x-custom", "application/x-custom"),
    ("noext", b"plain", "text/plain", "text/plain; charset=utf-8"),
    ("noext", b"plain", "text/csv; charset=latin1", "text/csv; charset=latin1"),
    ("noext", b"\x00\x01mystery", None, "application/octet-stream"),
    ("noext", b"\x00\x01mystery", "not a type", "application/octet-stream"),
    ("drawing", b'<svg xmlns="http://www.w3.org/2000/svg"/>', None, "image/svg+xml"),
])
def test_content_type_detection(client: falcon.testing.TestClient, auth: dict[str, str],
                                name: str, data: bytes, declared: str | None,
                                expected: str) -> None:
    r = upload(client, auth, name, data, declared)
    assert r.status_code == 201, r.text
    assert r.json["content_type"] == expected
    assert client.simulate_get(path_of(r.json["url"])).headers["Content-Type"] == expected


# --- quotas (section 5) -----------------------------------------------------


def test_per_file_limit_is_inclusive(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host(settings={"cdn_max_file_size": 1000, "cdn_storage_limit": 10_000})
    client = host.client()
    assert upload(client, host.auth, "ok.bin", b"x" * 1000).status_code == 201
    r = upload(client, host.auth, "big.bin", b"x" * 1001)
    assert r.status_code == 402
    assert r.json == {"error": "File size exceeds your limit of 1000 Bytes per file",
                      "quota": {"storage_used": 1000, "storage_limit": 10_000,
                                "quota_tier": "unverified", "percentage_used": 10.0}}
    assert usage(host.runtime, host.account.id) == (1000, 1)
    assert len(stored_files(host.runtime)) == 1


def test_per_file_limit_of_the_tier(client: falcon.testing.TestClient, runtime: Runtime,
                                    account: Account, auth: dict[str, str]) -> None:
    r = upload(client, auth, "big.bin", b"\0" * (10 * MB + 1))
    assert r.status_code == 402
    assert r.json == {"error": "File size exceeds your limit of 10 MB per file",
                      "quota": QUOTA_EMPTY}
    assert stored_files(runtime) == [] and rows(runtime) == []
    assert usage(runtime, account.id) == (0, 0)
    assert upload(client, auth, "exact.bin", b"\0" * (10 * MB)).status_code == 201


def test_content_length_above_the_limit_is_refused_before_reading(
        runtime: Runtime, app_kind: str, auth: dict[str, str]) -> None:
    app = create_app(runtime, asgi=app_kind == "asgi")
    body, ctype = multipart([("file", "a.bin", None, b"small")])
    r = call(app, "POST", "/api/v4/upload", body=body[:10],
             headers=[*auth.items(), ("Content-Type", ctype),
                      ("Content-Length", str(10 * MB + 64 * 1024 + 1))])
    assert r.status == 402
    assert r.body == (b'{"error":"File size exceeds your limit of 10 MB per file","quota":'
                      b'{"storage_used":0,"storage_limit":52428800,"quota_tier":"unverified",'
                      b'"percentage_used":0.0}}')
    assert stored_files(runtime) == []


def test_chunked_upload_over_the_limit_stops_streaming(runtime: Runtime, app_kind: str,
                                                       auth: dict[str, str]) -> None:
    app = create_app(runtime, asgi=app_kind == "asgi")
    body, ctype = multipart([("file", "a.bin", None, b"\0" * (11 * MB))])
    chunks = [body[i:i + MB] for i in range(0, len(body), MB)]
    r = call(app, "POST", "/api/v4/upload", body=chunks, chunked=True,
             headers=[*auth.items(), ("Content-Type", ctype)])
    assert r.status == 402
    assert b"File size exceeds your limit of 10 MB per file" in r.body
    assert stored_files(runtime) == []


def test_total_quota_is_inclusive(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host(settings={"cdn_max_file_size": 600, "cdn_storage_limit": 1000})
    client = host.client()
    assert upload(client, host.auth, "a.bin", b"a" * 600).status_code == 201
    r = upload(client, host.auth, "b.bin", b"b" * 401)
    assert r.status_code == 402
    assert r.json == {"error": "Storage quota exceeded",
                      "quota": {"storage_used": 600, "storage_limit": 1000,
                                "quota_tier": "unverified", "percentage_used": 60.0}}
    r = upload(client, host.auth, "c.bin", b"c" * 400)
    assert r.status_code == 201
    assert usage(host.runtime, host.account.id) == (1000, 2)
    r = upload(client, host.auth, "d.bin", b"")
    assert r.status_code == 201  # usage may reach exactly the total, and stay there
    r = upload(client, host.auth, "e.bin", b"e")
    assert r.status_code == 402
    assert r.json["quota"] == {"storage_used": 1000, "storage_limit": 1000,
                               "quota_tier": "unverified", "percentage_used": 100.0}
    assert len(rows(host.runtime)) == 3


class HashBlocklist:
    """A moderation plugin that refuses known content by its SHA-256."""

    def __init__(self, *blocked: bytes) -> None:
        self.blocked = {hashlib.sha256(data).hexdigest() for data in blocked}
        self.seen: list[str] = []

    @hookimpl
    def hepcore_inspect_upload(self, candidate: UploadCandidate) -> Rejection | None:
        self.seen.append(candidate.sha256)
        if candidate.sha256 in self.blocked:
            return Rejection("blocked", "Known content", status=415)
        return None


def test_moderation_plugins_get_the_sha256_of_every_upload(cdn_host: Callable[..., CdnHost],
                                                            origin: Origin) -> None:
    # The CDN does not hash while receiving; a plugin asking gets the digest of
    # the bytes read back (large parts are written behind the parser, in chunks).
    banned = bytes(range(256)) * 12_000  # about 3 MB
    allowed = banned[:-1] + b"!"
    plugin = HashBlocklist(banned, b"small banned")
    host = cdn_host(plugins=[plugin])
    client = host.client()
    assert upload(client, host.auth, "a.bin", banned).json == {"error": "Known content"}
    assert upload(client, host.auth, "b.bin", allowed).status_code == 201
    got = batch(client, host.auth, [("c.bin", b"small banned"), ("d.bin", b"fine")]).json
    assert [u["filename"] for u in got["uploads"]] == ["d.bin"]
    assert got["failed"] == [{"filename": "c.bin", "reason": "Known content"}]
    url = origin.reply("/e.bin", banned)
    r = client.simulate_post("/api/v4/upload_from_url", json={"url": url}, headers=host.auth)
    assert (r.status_code, r.json) == (415, {"error": "Known content"})
    assert plugin.seen == [hashlib.sha256(data).hexdigest()
                           for data in (banned, allowed, b"small banned", b"fine", banned)]
    assert len(rows(host.runtime)) == 2
    assert usage(host.runtime, host.account.id) == (len(allowed) + 4, 2)
    assert [key.startswith("cdn/") for key in stored_files(host.runtime)] == [True, True]


def test_quota_tiers(cdn_host: Callable[..., CdnHost]) -> None:
    for tier, per_file, total in [("unverified", "10 MB", 52428800),
                                  ("verified", "100 MB", 53687091200),
                                  ("functionally_unlimited", "500 MB", 322122547200),
                                  ("no-such-tier", "10 MB", 52428800)]:
        host = cdn_host(settings={"quota_tier": tier})
        me = host.client().simulate_get("/api/v4/me", headers=host.auth).json
        assert me["storage_limit"] == total
        assert me["quota_tier"] == (tier if tier != "no-such-tier" else "unverified")
        r = call(host.client().app, "POST", "/api/v4/upload", body=b"--x",
                 headers=[*host.auth.items(),
                          ("Content-Type", "multipart/form-data; boundary=x"),
                          ("Content-Length", str(600 * MB))])
        assert r.status == 402
        assert json.loads(r.body)["error"] == \
            f"File size exceeds your limit of {per_file} per file"


def test_percentage_is_rounded_to_two_decimals(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host(settings={"cdn_storage_limit": 3000})
    client = host.client()
    assert upload(client, host.auth, "a.bin", b"a" * 1000).status_code == 201
    r = upload(client, host.auth, "b.bin", b"b" * 2001)
    assert r.json["quota"]["percentage_used"] == 33.33
    host0 = cdn_host(settings={"cdn_storage_limit": 0})
    r = upload(host0.client(), host0.auth, "a.bin", b"a")
    assert r.status_code == 402
    assert r.json["quota"]["percentage_used"] == 0


def test_configured_tiers(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host(options={"tiers": {"tiny": [10, 20]}, "default_tier": "tiny"})
    client = host.client()
    assert client.simulate_get("/api/v4/me", headers=host.auth).json["quota_tier"] == "tiny"
    assert upload(client, host.auth, "a.bin", b"a" * 11).json["error"] == \
        "File size exceeds your limit of 10 Bytes per file"


@pytest.mark.parametrize("options", [{"tiers": {"bad": [1]}}, {"tiers": {"bad": "x"}},
                                     {"default_tier": "gold"}])
def test_bad_tier_options_are_refused(cdn_host: Callable[..., CdnHost], options: dict) -> None:
    from hepcore.errors import ConfigError

    with pytest.raises(ConfigError, match="services.cdn"):
        cdn_host(options=options)


def test_mounted_under_a_prefix_and_public_base(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host(prefix="/cdn")
    client = host.client()
    body, ctype = multipart([("file", "a b.txt", None, b"x")])
    r = client.simulate_post("/cdn/api/v4/upload", body=body,
                             headers={**host.auth, "Content-Type": ctype})
    assert r.status_code == 201
    assert r.json["url"] == f"http://falconframework.org/cdn/{r.json['id']}/a%20b.txt"
    assert client.simulate_get(path_of(r.json["url"])).content == b"x"
    public = cdn_host(public_base_url="https://cdn.example.org/")
    body, ctype = multipart([("file", "a.txt", None, b"x")])
    r = public.client().simulate_post("/api/v4/upload", body=body,
                                      headers={**public.auth, "Content-Type": ctype})
    assert r.json["url"] == f"https://cdn.example.org/{r.json['id']}/a.txt"


def test_both_app_kinds_answer_byte_for_byte(runtime: Runtime, auth: dict[str, str]) -> None:
    answers = []
    for asgi in (False, True):
        app = create_app(runtime, asgi=asgi)
        body, ctype = multipart([("file", "big.bin", None, b"\0" * (10 * MB + 1))])
        r = call(app, "POST", "/api/v4/upload", body=body,
                 headers=[*auth.items(), ("Content-Type", ctype)])
        answers.append((r.status, [h for h in r.headers if h[0].lower() != "x-request-id"],
                        r.body))
    assert answers[0] == answers[1]
