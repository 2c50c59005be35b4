"""Rename (6.5), delete (6.6), batch delete (6.7) and the parameter rules of
section 3 (JSON, form or query; the body wins; malformed JSON is a 400)."""

from __future__ import annotations

from urllib.parse import urlencode

import falcon.testing
import pytest
from cdnkit import path_of, rows, stored_files, upload, usage
from httpkit import multipart

from hepcore import Account, Runtime

UNKNOWN = "0190e000-0000-7000-8000-000000000000"


def make(client: falcon.testing.TestClient, auth: dict[str, str], name: str = "before.png",
         data: bytes = b"data") -> dict:
    r = upload(client, auth, name, data)
    assert r.status_code == 201
    return r.json


# --- rename --------------------------------------------------------------------


def test_rename_keeps_the_old_extension(client: falcon.testing.TestClient,
                                        auth: dict[str, str]) -> None:
    item = make(client, auth)
    r = client.simulate_patch(f"/api/v4/uploads/{item['id']}/rename",
                              json={"filename": "after"}, headers=auth)
    assert r.status_code == 200
    assert r.json == {**item, "filename": "after.png",
                      "url": f"http://falconframework.org/{item['id']}/after.png"}


@pytest.mark.parametrize(("old", "new", "result"), [
    ("before.png", "after.jpg", "after.jpg"),
    ("before.png", "  my new?name  ", "my new-name.png"),
    ("before", "after", "after"),
    ("before.tar.gz", "after", "after.gz"),
    ("before.png", ".hidden", ".hidden.png"),
    ("before.png", "a/b", "a-b.png"),
])
def test_rename_sanitises(client: falcon.testing.TestClient, auth: dict[str, str], old: str,
                          new: str, result: str) -> None:
    item = make(client, auth, old)
    r = client.simulate_patch(f"/api/v4/uploads/{item['id']}/rename", json={"filename": new},
                              headers=auth)
    assert (r.status_code, r.json["filename"]) == (200, result)


def test_old_links_keep_working_after_a_rename(client: falcon.testing.TestClient,
                                               runtime: Runtime, auth: dict[str, str]) -> None:
    item = make(client, auth, "before.png", b"bytes!")
    key_before = rows(runtime)[0]["storage_key"]
    r = client.simulate_patch(f"/api/v4/uploads/{item['id']}/rename",
                              json={"filename": "after"}, headers=auth)
    assert rows(runtime)[0]["storage_key"] == key_before
    for url in (item["url"], r.json["url"]):
        assert client.simulate_get(path_of(url)).content == b"bytes!"
    got = client.simulate_get(path_of(item["url"]))
    assert got.headers["Content-Disposition"] == 'inline; filename="after.png"'


def test_rename_of_someone_elses_upload(client: falcon.testing.TestClient, runtime: Runtime,
                                        auth: dict[str, str], other_auth: dict[str, str]) -> None:
    item = make(client, auth)
    for upload_id in (item["id"], UNKNOWN, "not-a-uuid", item["id"].upper()):
        r = client.simulate_patch(f"/api/v4/uploads/{upload_id}/rename",
                                  json={"filename": "x"}, headers=other_auth)
        assert (r.status_code, r.json) == (404, {"error": "Upload not found"})
    assert rows(runtime)[0]["filename"] == "before.png"


@pytest.mark.parametrize("body", [{}, {"filename": ""}, {"filename": "  \t "},
                                  {"filename": None}])
def test_rename_to_a_blank_name(client: falcon.testing.TestClient, runtime: Runtime,
                                auth: dict[str, str], body: dict) -> None:
    item = make(client, auth)
    r = client.simulate_patch(f"/api/v4/uploads/{item['id']}/rename", json=body, headers=auth)
    assert (r.status_code, r.json) == (400, {"error": "Missing filename parameter"})
    assert rows(runtime)[0]["filename"] == "before.png"


def test_rename_parameter_sources(client: falcon.testing.TestClient,
                                  auth: dict[str, str]) -> None:
    item = make(client, auth)
    path = f"/api/v4/uploads/{item['id']}/rename"
    r = client.simulate_patch(path, query_string="filename=from-query", headers=auth)
    assert r.json["filename"] == "from-query.png"
    r = client.simulate_patch(path, body=urlencode({"filename": "from form"}),
                              headers={**auth,
                                       "Content-Type": "application/x-www-form-urlencoded"})
    assert r.json["filename"] == "from form.png"
    body, ctype = multipart([("filename", None, None, b"from multipart")])
    r = client.simulate_patch(path, body=body, headers={**auth, "Content-Type": ctype})
    assert r.json["filename"] == "from multipart.png"
    r = client.simulate_patch(path, query_string="filename=query", json={"filename": "body"},
                              headers=auth)
    assert r.json["filename"] == "body.png"  # the body wins


def test_invalid_json_and_wrong_types(client: falcon.testing.TestClient,
                                      auth: dict[str, str]) -> None:
    item = make(client, auth)
    path = f"/api/v4/uploads/{item['id']}/rename"
    for raw in (b"{nope", b'{"filename": "x"', b"\xff\xfe", b'{"a": 1}}',
                b'{"filename": "x", "n": NaN}'):
        r = client.simulate_patch(path, body=raw,
                                  headers={**auth, "Content-Type": "application/json"})
        assert (r.status_code, r.json) == (400, {"error": "Invalid JSON body"}), raw
    r = client.simulate_patch(path, json={"filename": 42}, headers=auth)
    assert (r.status_code, r.json) == (400, {"error": "filename must be a string"})
    r = client.simulate_patch(path, json=["filename", "x"], headers=auth)
    assert (r.status_code, r.json) == (400, {"error": "Missing filename parameter"})


def test_rename_looks_up_the_id_before_the_body(client: falcon.testing.TestClient,
                                                runtime: Runtime, auth: dict[str, str],
                                                other_auth: dict[str, str]) -> None:
    """6.5 step 2 before step 3: an id that is not the caller's is 404 whatever
    the body, and a body too large to read is not read for it."""
    item = make(client, auth)
    json_auth = {**other_auth, "Content-Type": "application/json"}
    for body in (b"{bad", b"{" * (2 * 1024 * 1024)):
        for upload_id in ("not-a-uuid", UNKNOWN, item["id"]):
            r = client.simulate_patch(f"/api/v4/uploads/{upload_id}/rename", body=body,
                                      headers=json_auth)
            assert (r.status_code, r.json) == (404, {"error": "Upload not found"}), upload_id
    r = client.simulate_patch(f"/api/v4/uploads/{item['id']}/rename", body=b"{bad",
                              headers={**auth, "Content-Type": "application/json"})
    assert (r.status_code, r.json) == (400, {"error": "Invalid JSON body"})
    assert rows(runtime)[0]["filename"] == "before.png"


# --- delete ----------------------------------------------------------------------


def test_delete(client: falcon.testing.TestClient, runtime: Runtime, account: Account,
                auth: dict[str, str]) -> None:
    item = make(client, auth, "a.txt", b"12345")
    keep = make(client, auth, "b.txt", b"67")
    assert usage(runtime, account.id) == (7, 2)
    r = client.simulate_delete(f"/api/v4/upload/{item['id']}", headers=auth)
    assert (r.status_code, r.json) == (200, {"id": item["id"], "deleted": True})
    assert [row["id"] for row in rows(runtime)] == [keep["id"]]
    assert usage(runtime, account.id) == (2, 1)
    assert len(stored_files(runtime)) == 1
    assert client.simulate_get(path_of(item["url"])).status_code == 404
    r = client.simulate_delete(f"/api/v4/upload/{item['id']}", headers=auth)
    assert (r.status_code, r.json) == (404, {"error": "Not found"})


def test_delete_of_someone_elses_or_malformed(client: falcon.testing.TestClient,
                                              runtime: Runtime, auth: dict[str, str],
                                              other_auth: dict[str, str]) -> None:
    item = make(client, auth)
    for upload_id in (item["id"], UNKNOWN, "nope", "' OR 1=1 --"):
        r = client.simulate_delete(f"/api/v4/upload/{upload_id}", headers=other_auth)
        assert (r.status_code, r.json) == (404, {"error": "Not found"})
    assert len(rows(runtime)) == 1


def test_delete_with_malformed_json_deletes_nothing(client: falcon.testing.TestClient,
                                                    runtime: Runtime, account: Account,
                                                    auth: dict[str, str],
                                                    other_auth: dict[str, str]) -> None:
    """Section 3 (C5), after the id lookup as in rename (6.5): a malformed JSON
    body is 400 for one's own upload, and another account's id stays a 404."""
    item = make(client, auth, "a.txt", b"12345")
    for raw in (b"{bad", b"\xff\xfe", b'{"a": 1}}', b"[" * 100_000):
        r = client.simulate_delete(f"/api/v4/upload/{item['id']}", body=raw,
                                   headers={**auth, "Content-Type": "application/json"})
        assert (r.status_code, r.json) == (400, {"error": "Invalid JSON body"}), raw
    r = client.simulate_delete(f"/api/v4/upload/{item['id']}", body=b"{bad",
                               headers={**other_auth, "Content-Type": "application/json"})
    assert (r.status_code, r.json) == (404, {"error": "Not found"})
    assert [row["id"] for row in rows(runtime)] == [item["id"]]
    assert usage(runtime, account.id) == (5, 1)
    assert client.simulate_get(path_of(item["url"])).content == b"12345"
    r = client.simulate_delete(f"/api/v4/upload/{item['id']}", body=b"{}",
                               headers={**auth, "Content-Type": "application/json"})
    assert (r.status_code, r.json) == (200, {"id": item["id"], "deleted": True})


# --- batch delete ------------------------------------------------------------------


def test_batch_delete(client: falcon.testing.TestClient, runtime: Runtime, account: Account,
                      auth: dict[str, str]) -> None:
    a, b = make(client, auth, "a.png", b"aa"), make(client, auth, "b.png", b"bbb")
    keep = make(client, auth, "c.png", b"c")
    r = client.simulate_delete("/api/v4/uploads/batch", json={"ids": [a["id"], b["id"], UNKNOWN]},
                               headers=auth)
    assert r.status_code == 200
    assert r.json == {"deleted": [{"id": a["id"], "filename": "a.png"},
                                  {"id": b["id"], "filename": "b.png"}],
                      "not_found": [UNKNOWN]}
    assert [row["id"] for row in rows(runtime)] == [keep["id"]]
    assert usage(runtime, account.id) == (1, 1)
    assert len(stored_files(runtime)) == 1


def test_batch_delete_of_another_accounts_upload(client: falcon.testing.TestClient,
                                                 runtime: Runtime, auth: dict[str, str],
                                                 other_auth: dict[str, str]) -> None:
    item = make(client, auth)
    r = client.simulate_delete("/api/v4/uploads/batch", json={"ids": [item["id"]]},
                               headers=other_auth)
    assert (r.status_code, r.json) == (200, {"deleted": [], "not_found": [item["id"]]})
    assert len(rows(runtime)) == 1
    assert client.simulate_get(path_of(item["url"])).status_code == 200


@pytest.mark.parametrize("body", [{"ids": []}, {}, {"ids": ["", "  "]}, {"ids": ""}])
def test_batch_delete_without_ids(client: falcon.testing.TestClient,
                                  auth: dict[str, str], body: dict) -> None:
    r = client.simulate_delete("/api/v4/uploads/batch", json=body, headers=auth)
    assert (r.status_code, r.json) == (400, {"error": "Missing ids[] parameter"})


def test_batch_delete_parameter_forms(client: falcon.testing.TestClient,
                                      auth: dict[str, str]) -> None:
    a, b, c = (make(client, auth, f"{n}.txt") for n in "abc")
    r = client.simulate_delete("/api/v4/uploads/batch",
                               body=urlencode([("ids[]", a["id"]), ("ids[]", "nope")]),
                               headers={**auth,
                                        "Content-Type": "application/x-www-form-urlencoded"})
    assert r.json == {"deleted": [{"id": a["id"], "filename": "a.txt"}], "not_found": ["nope"]}
    r = client.simulate_delete("/api/v4/uploads/batch", json={"ids": b["id"]}, headers=auth)
    assert r.json == {"deleted": [{"id": b["id"], "filename": "b.txt"}]}
    r = client.simulate_delete("/api/v4/uploads/batch", query_string=f"ids[]={c['id']}",
                               headers=auth)
    assert r.json == {"deleted": [{"id": c["id"], "filename": "c.txt"}]}
    r = client.simulate_delete("/api/v4/uploads/batch", json={"ids": [1, 2]}, headers=auth)
    assert (r.status_code, r.json) == (400, {"error": "ids must be an array of strings"})


def test_batch_delete_repeated_ids(client: falcon.testing.TestClient,
                                   auth: dict[str, str]) -> None:
    a = make(client, auth, "a.txt")
    r = client.simulate_delete("/api/v4/uploads/batch",
                               json={"ids": [a["id"], a["id"], UNKNOWN, UNKNOWN]}, headers=auth)
    assert r.json == {"deleted": [{"id": a["id"], "filename": "a.txt"}],
                      "not_found": [UNKNOWN, UNKNOWN]}


# --- bodies that once gave a 500 -----------------------------------------------------


DEEP_JSON = b"[" * 100_000


def test_deeply_nested_json_is_invalid_json(client: falcon.testing.TestClient,
                                            runtime: Runtime, auth: dict[str, str]) -> None:
    item = make(client, auth)
    json_auth = {**auth, "Content-Type": "application/json"}
    for body in (DEEP_JSON, b'{"ids": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
        r = client.simulate_delete("/api/v4/uploads/batch", body=body, headers=json_auth)
        assert (r.status_code, r.json) == (400, {"error": "Invalid JSON body"})
        r = client.simulate_patch(f"/api/v4/uploads/{item['id']}/rename", body=body,
                                  headers=json_auth)
        assert (r.status_code, r.json) == (400, {"error": "Invalid JSON body"})
    assert [(row["id"], row["filename"]) for row in rows(runtime)] == [(item["id"],
                                                                         "before.png")]


def test_batch_delete_with_a_lone_surrogate(client: falcon.testing.TestClient,
                                            runtime: Runtime, auth: dict[str, str]) -> None:
    item = make(client, auth)
    body = b'{"ids": ["\\ud800", "' + item["id"].encode() + b'", "a\\udfffb"]}'
    r = client.simulate_delete("/api/v4/uploads/batch", body=body,
                               headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 200
    assert r.json == {"deleted": [{"id": item["id"], "filename": "before.png"}],
                      "not_found": ["\ufffd", "a\ufffdb"]}
    assert rows(runtime) == []


def test_rename_to_a_lone_surrogate(client: falcon.testing.TestClient,
                                    auth: dict[str, str]) -> None:
    item = make(client, auth)
    r = client.simulate_patch(f"/api/v4/uploads/{item['id']}/rename",
                              body=b'{"filename": "x\\ud800y"}',
                              headers={**auth, "Content-Type": "application/json"})
    assert (r.status_code, r.json["filename"]) == (200, "x\ufffdy.png")
