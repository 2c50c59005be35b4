"""JSON bodies the services cannot take: deep nesting and lone surrogates get
each service's own 400, never a 500."""

from __future__ import annotations

import json

import falcon.testing

from hepcore.http import dumps

DEEP = b"[" * 100_000


def test_dumps_escapes_a_lone_surrogate_instead_of_failing() -> None:
    out = dumps({"id": "a\ud800b", "name": "café"})
    assert json.loads(out) == {"id": "a\ud800b", "name": "café"}
    assert dumps({"name": "café"}) == '{"name":"café"}'.encode()


def test_deeply_nested_json_link_is_the_uploaders_400(client: falcon.testing.TestClient,
                                                       uploader_token: str) -> None:
    r = client.simulate_post("/upload", body=DEEP, headers={
        "Authorization": uploader_token, "Content-Type": "application/json"})
    assert (r.status_code, r.json) == (400, {"ok": False, "error": "Invalid JSON body"})
