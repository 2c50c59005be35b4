"""JSON bodies the services cannot take: deep nesting and lone surrogates get
each service's own 400, never a 500."""

from __future__ import annotations

import json

import falcon.testing

from hepcore.http import dumps

DEEP = b"[" * 100_000
# As deep, within the 64 KiB limit of the uploader's management bodies.
DEEP_SMALL = b"[" * 60_000


def test_dumps_escapes_a_lone_surrogate_instead_of_failing() -> None:
    out = dumps({"id": "a\ud800b", "name": "café"})
    assert json.loads(out) == {"id": "a\ud800b", "name": "café"}
    assert dumps({"name": "café"}) == '{"name":"café"}'.encode()


def test_deeply_nested_json_link_is_the_uploaders_400(client: falcon.testing.TestClient,
                                                       uploader_token: str) -> None:
    r = client.simulate_post("/upload", body=DEEP, headers={
        "Authorization": uploader_token, "Content-Type": "application/json"})
    assert (r.status_code, r.json) == (400, {"ok": False, "error": "Invalid JSON body"})


def _uploader_json(client: falcon.testing.TestClient, token: str, method: str, path: str,
                   body: bytes) -> falcon.testing.Result:
    return client.simulate_request(method, path, body=body, headers={
        "Authorization": token, "Content-Type": "application/json"})


def test_nan_and_infinity_are_not_json_anywhere_in_the_uploader(
        client: falcon.testing.TestClient, uploader_token: str) -> None:
    invalid = (400, {"ok": False, "error": "Invalid JSON body"})
    item = _uploader_json(client, uploader_token, "POST", "/upload",
                          b'{"link": "https://example.com/"}').json["ID"]
    for method, path, body in (
            ("POST", "/upload", b'{"link": "https://example.com/", "n": NaN}'),
            ("POST", "/api/v1/shorten", b'{"url": "https://example.com/", "n": Infinity}'),
            ("PATCH", f"/api/v1/uploads/{item}", b'{"favourite": true, "x": -Infinity}'),
            ("PATCH", f"/api/v1/uploads/{item}", DEEP_SMALL)):
        r = _uploader_json(client, uploader_token, method, path, body)
        assert (r.status_code, r.json) == invalid, (method, path, body[:40])
    listed = client.simulate_get("/api/v1/uploads", headers={"Authorization": uploader_token})
    assert [u["favourite"] for u in listed.json["data"]["uploads"]] == [False]
