"""Sections 6-8: delete links, serving, the management API, unknown routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from conftest import PUBLIC_BASE, Upload, auth, image_bytes

from hepcore import Account, Runtime
from hepcore.testing import FakeClock

UPLOAD_NOT_FOUND = (404, {"ok": False, "code": "not_found", "error": "Upload not found."})
IMAGE_NOT_FOUND = {"ok": False, "code": "not_found", "error": "Image not found."}
LINK_INVALID = (404, {"ok": False, "code": "not_found",
                      "error": "Delete link is invalid or was already used."})


def err(result: falcon.testing.Result) -> tuple[int, dict[str, Any]]:
    assert result.headers["Content-Type"] == "application/json"
    return result.status_code, result.json


def files(runtime: Runtime) -> list[str]:
    root = Path(runtime.config.data_dir / "files")
    return sorted(p.name for p in root.rglob("*") if p.is_file())


def token_of(reply: dict[str, Any]) -> str:
    return str(reply["delete_url"]).rsplit("/", 1)[1]


# --- serving (section 7) ---------------------------------------------------------------


def test_serving_headers(client: falcon.testing.TestClient, upload: Upload) -> None:
    r = upload(image_bytes("PNG")).json
    got = client.simulate_get(f"/images/{r['filename']}")
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Content-Length"] == str(r["size"])
    assert got.headers["Cache-Control"] == "public, max-age=86400"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    etag = got.headers["ETag"]
    assert etag.startswith('"') and len(etag) == 66
    head = client.simulate_head(f"/images/{r['filename']}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(r["size"])
    cached = client.simulate_get(f"/images/{r['filename']}", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""


RANGE_NOT_SATISFIABLE = {"ok": False, "code": "range_not_satisfiable",
                         "error": "Requested range not satisfiable."}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("spec", ["bytes={size}-", "bytes=99999999-", "bytes=-0",
                                  "bytes=" + "9" * 5000 + "-"])
def test_unsatisfiable_range_is_an_error(client: falcon.testing.TestClient, upload: Upload,
                                         method: str, spec: str) -> None:
    r = upload(image_bytes("PNG")).json
    got = client.simulate_request(method, f"/images/{r['filename']}",
                                  headers={"Range": spec.format(size=r["size"])})
    assert got.status_code == 416
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Content-Range"] == f"bytes */{r['size']}"
    assert got.headers["Cache-Control"] == "no-store"
    assert "ETag" not in got.headers
    full = client.simulate_get(f"/images/{r['filename']}", headers={"Range": "bytes=99999999-"})
    assert full.json == RANGE_NOT_SATISFIABLE
    if method == "GET":
        assert got.json == RANGE_NOT_SATISFIABLE
    else:
        assert got.content == b""
        assert got.headers["Content-Length"] == str(len(full.content))


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_satisfiable_ranges(client: falcon.testing.TestClient, upload: Upload,
                            method: str) -> None:
    r = upload(image_bytes("PNG")).json
    path = f"/images/{r['filename']}"
    whole = client.simulate_get(path)
    size = r["size"]
    for spec, start, end in [("bytes=0-9", 0, 9), ("bytes=-10", size - 10, size - 1),
                             (f"bytes={size - 1}-", size - 1, size - 1),
                             ("bytes=5-99999999", 5, size - 1)]:
        got = client.simulate_request(method, path, headers={"Range": spec})
        assert got.status_code == 206, spec
        assert got.headers["Content-Type"] == "image/png"
        assert got.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
        assert got.headers["Content-Length"] == str(end - start + 1)
        assert got.headers["Cache-Control"] == "public, max-age=86400"
        assert got.headers["ETag"] == whole.headers["ETag"]
        assert got.content == (whole.content[start:end + 1] if method == "GET" else b"")
    # If-None-Match is answered before the range is looked at
    cached = client.simulate_request(method, path, headers={
        "If-None-Match": whole.headers["ETag"], "Range": "bytes=99999999-"})
    assert cached.status_code == 304 and cached.content == b""


@pytest.mark.parametrize("name", ["FIXITFY-aaaaaaaaaaaa.png", "nope", "..%2Fsecret"])
def test_unknown_image(client: falcon.testing.TestClient, name: str) -> None:
    got = client.simulate_get(f"/images/{name}")
    assert err(got) == (404, IMAGE_NOT_FOUND)
    assert got.headers["Cache-Control"] == "no-store"


# --- delete links (section 6) -----------------------------------------------------------


@pytest.mark.parametrize("method", ["DELETE", "POST"])
def test_delete_link_is_one_shot(client: falcon.testing.TestClient, runtime: Runtime,
                                 upload: Upload, method: str) -> None:
    r = upload(image_bytes()).json
    path = f"/api/delete/{token_of(r)}"
    done = client.simulate_request(method, path)
    assert done.status_code == 200
    assert done.json == {"ok": True, "deleted": r["filename"]}
    assert err(client.simulate_get(f"/images/{r['filename']}"))[0] == 404
    assert err(client.simulate_request(method, path)) == LINK_INVALID
    assert err(client.simulate_delete(path)) == LINK_INVALID
    assert files(runtime) == [r["filename"]]  # the purge removes the bytes later
    runtime.jobs.run("images.purge")
    assert files(runtime) == []


@pytest.mark.parametrize("token", ["0" * 64, "A" * 64, "abc", "0" * 65])
def test_unknown_delete_links(client: falcon.testing.TestClient, token: str) -> None:
    assert err(client.simulate_delete(f"/api/delete/{token}")) == LINK_INVALID


def test_delete_link_after_management_delete(client: falcon.testing.TestClient, key: str,
                                             upload: Upload) -> None:
    r = upload(image_bytes()).json
    client.simulate_delete(f"/api/v1/uploads/{r['filename']}", headers=auth(key))
    assert err(client.simulate_post(f"/api/delete/{token_of(r)}")) == LINK_INVALID


def test_delete_link_needs_no_key_and_is_not_rate_limited(
        client: falcon.testing.TestClient, upload: Upload) -> None:
    r = upload(image_bytes()).json
    for _ in range(200):
        assert client.simulate_post("/api/delete/" + "1" * 64).status_code == 404
    assert client.simulate_post(f"/api/delete/{token_of(r)}",
                                headers={"Authorization": "Bearer junk"}).status_code == 200


# --- section 8 ------------------------------------------------------------------------


def test_list_newest_first_with_cursor(client: falcon.testing.TestClient, key: str,
                                       clock: FakeClock, upload: Upload) -> None:
    names = []
    for i in range(5):
        names.append(upload(image_bytes(color=(i, 9, 9))).json["filename"])
        if i != 2:
            clock.advance(1.5)  # uploads 2 and 3 share a millisecond: 3 is stamped +1 ms
    page = client.simulate_get("/api/v1/uploads", params={"limit": "2"}, headers=auth(key))
    assert page.status_code == 200
    body = page.json
    assert list(body) == ["ok", "count", "next_before", "uploads"]
    assert body["count"] == 2
    assert [u["filename"] for u in body["uploads"]] == names[::-1][:2]
    assert body["next_before"] == body["uploads"][-1]["created_at"]
    item = body["uploads"][0]
    assert list(item) == ["filename", "url", "mime", "size", "width", "height", "tags",
                          "created_at"]
    assert item["url"] == f"{PUBLIC_BASE}/images/{item['filename']}"
    assert item["tags"] == []
    seen = [u["filename"] for u in body["uploads"]]
    before = body["next_before"]
    while before is not None:
        nxt = client.simulate_get("/api/v1/uploads", params={"limit": "2", "before": before},
                                  headers=auth(key)).json
        seen += [u["filename"] for u in nxt["uploads"]]
        before = nxt["next_before"]
    assert seen == names[::-1]
    stamps = [u["created_at"] for u in client.simulate_get(
        "/api/v1/uploads", headers=auth(key)).json["uploads"]]
    assert stamps[1] == "2026-05-28T20:26:43.001Z" and stamps[2] == "2026-05-28T20:26:43.000Z"


def test_list_keeps_upload_order_when_the_clock_steps_back(
        client: falcon.testing.TestClient, key: str, clock: FakeClock, upload: Upload) -> None:
    names = [upload(image_bytes(color=(1, 2, 3))).json["filename"]]
    clock.advance(-5)  # a host clock set back (NTP): still newest first, stamped after
    names += [upload(image_bytes(color=(i, 2, 3))).json["filename"] for i in (2, 3)]
    body = client.simulate_get("/api/v1/uploads", headers=auth(key)).json
    assert [u["filename"] for u in body["uploads"]] == names[::-1]
    assert [u["created_at"] for u in body["uploads"]] == [
        "2026-05-28T20:26:40.002Z", "2026-05-28T20:26:40.001Z", "2026-05-28T20:26:40.000Z"]


def test_list_default_limit_and_last_page(client: falcon.testing.TestClient, key: str,
                                          upload: Upload) -> None:
    for i in range(3):
        upload(image_bytes(color=(i, 0, 0)))
    body = client.simulate_get("/api/v1/uploads", headers=auth(key)).json
    assert body["count"] == 3 and body["next_before"] is None
    exact = client.simulate_get("/api/v1/uploads", params={"limit": "3"}, headers=auth(key)).json
    assert exact["next_before"] is None


@pytest.mark.parametrize("value", ["0", "101", "-1", "abc", "", "1.5", "²", "10 "])
def test_list_bad_limit(client: falcon.testing.TestClient, key: str, value: str) -> None:
    r = client.simulate_get("/api/v1/uploads", query_string=f"limit={value}", headers=auth(key))
    assert err(r) == (400, {"ok": False, "code": "bad_request",
                            "error": "limit must be an integer between 1 and 100."})


@pytest.mark.parametrize(("before", "listed"), [
    ("2026-05-28T20:26:40.8771Z", True),         # 0.1 ms after: was rounded down to .877
    ("2026-05-28T20:26:40.8770001Z", True),      # past the microseconds fromisoformat keeps
    ("2026-05-28T23:26:40.8771+03:00", True),
    ("2026-05-28T20:26:40.878Z", True),
    ("2026-05-28T20:26:40.877Z", False),         # created exactly then: not strictly earlier
    ("2026-05-28T20:26:40.877000000Z", False),
    ("2026-05-28T20:26:40.8769Z", False),
    ("2026-05-28T20:26:40.8765Z", False),        # was rounded up to .877... and still out
    ("2026-05-28T20:26:40.876999999Z", False),
])
def test_list_before_is_exact(client: falcon.testing.TestClient, key: str, clock: FakeClock,
                              upload: Upload, before: str, listed: bool) -> None:
    clock.advance(0.877)
    name = upload(image_bytes()).json["filename"]
    created = client.simulate_get("/api/v1/uploads", headers=auth(key)).json
    assert created["uploads"][0]["created_at"] == "2026-05-28T20:26:40.877Z"
    page = client.simulate_get("/api/v1/uploads", params={"before": before}, headers=auth(key))
    assert page.status_code == 200
    assert [u["filename"] for u in page.json["uploads"]] == ([name] if listed else [])


def test_list_before_next_to_a_cursor(client: falcon.testing.TestClient, key: str,
                                      clock: FakeClock, upload: Upload) -> None:
    """Uploads 1 ms apart: a before between two of them splits the list there."""
    clock.advance(0.877)  # the three share a millisecond: stamped .877, .878 and .879
    names = [upload(image_bytes(color=(i, 1, 1))).json["filename"] for i in range(3)]
    stamps = [u["created_at"] for u in client.simulate_get(
        "/api/v1/uploads", headers=auth(key)).json["uploads"]]
    assert stamps == ["2026-05-28T20:26:40.879Z", "2026-05-28T20:26:40.878Z",
                      "2026-05-28T20:26:40.877Z"]
    for before, expected in [("2026-05-28T20:26:40.8785Z", names[1::-1]),
                             ("2026-05-28T20:26:40.878Z", names[:1]),
                             ("2026-05-28T20:26:40.8779999Z", names[:1]),
                             ("2026-05-28T20:26:40.877Z", [])]:
        page = client.simulate_get("/api/v1/uploads", params={"before": before},
                                   headers=auth(key)).json
        assert [u["filename"] for u in page["uploads"]] == expected, before


@pytest.mark.parametrize("value", [
    "yesterday", "", "2026-13-01T00:00:00Z", "1e400",
    # Python's datetime.fromisoformat takes each of these.
    "2026-05-28T20:26:40.878Z\x00", "2026-05-28T20:26:40.878Z ", " 2026-05-28",
    "2026-05-28T20:26:40.878Z\u00a0", "2026-05-28T20:26:40.Z", "2026-05-28Z",
    "2026-05-28T20:26:40+00:00:00.5", "20260528T202640Z", "2026-W22-4"])
def test_list_bad_before(client: falcon.testing.TestClient, key: str, value: str) -> None:
    r = client.simulate_get("/api/v1/uploads", params={"before": value}, headers=auth(key))
    assert err(r) == (400, {"ok": False, "code": "bad_request",
                            "error": "before must be an ISO-8601 timestamp."})


def test_list_only_own_live_uploads(client: falcon.testing.TestClient, runtime: Runtime,
                                    key: str, upload: Upload) -> None:
    mine = upload(image_bytes()).json
    gone = upload(image_bytes(color=(1, 1, 1))).json
    bob = runtime.accounts.create("bob")
    bob_key, _ = runtime.keys.create("images", bob.id)
    upload(image_bytes(color=(2, 2, 2)), bob_key)
    client.simulate_delete(f"/api/v1/uploads/{gone['filename']}", headers=auth(key))
    body = client.simulate_get("/api/v1/uploads", headers=auth(key)).json
    assert [u["filename"] for u in body["uploads"]] == [mine["filename"]]


def test_get_one_upload(client: falcon.testing.TestClient, runtime: Runtime, key: str,
                        upload: Upload) -> None:
    r = upload(image_bytes("JPEG", (12, 8))).json
    runtime.services["images"].uploads.set_tags(r["filename"], ["redm", "logo"])
    got = client.simulate_get(f"/api/v1/uploads/{r['filename']}", headers=auth(key))
    assert got.status_code == 200
    assert list(got.json) == ["ok", "upload"]
    assert got.json["upload"] == {
        "filename": r["filename"], "url": r["url"], "mime": "image/jpeg", "size": r["size"],
        "width": 12, "height": 8, "hash_sha256": r["hash_sha256"], "tags": ["redm", "logo"],
        "created_at": "2026-05-28T20:26:40.000Z"}


def test_foreign_or_missing_upload_is_not_found(client: falcon.testing.TestClient,
                                                runtime: Runtime, key: str,
                                                upload: Upload) -> None:
    bob = runtime.accounts.create("bob")
    bob_key, _ = runtime.keys.create("images", bob.id)
    theirs = upload(image_bytes(), bob_key).json["filename"]
    for name in (theirs, "FIXITFY-aaaaaaaaaaaa.png"):
        assert err(client.simulate_get(f"/api/v1/uploads/{name}", headers=auth(key))) \
            == UPLOAD_NOT_FOUND
        assert err(client.simulate_delete(f"/api/v1/uploads/{name}", headers=auth(key))) \
            == UPLOAD_NOT_FOUND
    assert client.simulate_get(f"/images/{theirs}").status_code == 200


def test_soft_delete(client: falcon.testing.TestClient, runtime: Runtime, key: str,
                     upload: Upload) -> None:
    r = upload(image_bytes()).json
    done = client.simulate_delete(f"/api/v1/uploads/{r['filename']}", headers=auth(key))
    assert done.status_code == 200 and done.json == {"ok": True, "deleted": r["filename"]}
    assert err(client.simulate_get(f"/images/{r['filename']}")) == (404, IMAGE_NOT_FOUND)
    assert err(client.simulate_get(f"/api/v1/uploads/{r['filename']}", headers=auth(key))) \
        == UPLOAD_NOT_FOUND
    assert err(client.simulate_delete(f"/api/v1/uploads/{r['filename']}", headers=auth(key))) \
        == UPLOAD_NOT_FOUND
    assert runtime.db.one("SELECT deleted_at IS NOT NULL FROM images_uploads")[0] == 1
    runtime.jobs.run("images.purge")
    assert files(runtime) == []


def test_me(client: falcon.testing.TestClient, runtime: Runtime, account: Account, key: str,
            upload: Upload) -> None:
    sizes = [upload(image_bytes(color=(i, 0, 0))).json["size"] for i in range(2)]
    gone = upload(image_bytes(color=(7, 7, 7))).json
    client.simulate_delete(f"/api/v1/uploads/{gone['filename']}", headers=auth(key))
    r = client.simulate_get("/api/v1/me", headers=auth(key))
    assert r.status_code == 200
    assert r.json == {
        "ok": True,
        "account": {"email": "alice@example.org", "role": "user", "uploads_active": 2,
                    "storage_used_bytes": sum(sizes)},
        "key": {"prefix": key[:8], "label": "ci", "request_count": 5,
                "created_at": "2026-05-28T20:26:40.000Z"},
    }
    unlabeled, _ = runtime.keys.create("images", account.id)
    runtime.accounts.update(account.id, settings={"images_role": "admin"})
    me = client.simulate_get("/api/v1/me", headers=auth(unlabeled)).json
    assert me["key"]["label"] is None and me["key"]["request_count"] == 1
    assert me["account"]["role"] == "admin"


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/api/v1/nothing", 404, "not_found"),
    ("GET", "/", 404, "not_found"),
    ("PUT", "/api/v1/upload", 405, "method_not_allowed"),
    ("GET", "/api/v1/upload", 405, "method_not_allowed"),
    ("PATCH", "/api/v1/uploads/x.png", 405, "method_not_allowed"),
    ("GET", "/api/delete/" + "0" * 64, 405, "method_not_allowed"),
])
def test_unknown_routes_use_the_envelope(client: falcon.testing.TestClient, method: str,
                                         path: str, status: int, code: str) -> None:
    r = client.simulate_request(method, path)
    assert r.status_code == status
    assert r.headers["Content-Type"] == "application/json"
    assert r.json["ok"] is False and r.json["code"] == code and r.json["error"]
