"""``POST /api/paste`` and ``/api/v1/paste``: every field rule, status and
message of spec section 4, plans, expiry, key counters (both app kinds)."""

from __future__ import annotations

import json
import re

import pytest
from conftest import Captcha, bearer

from hepcore.clock import iso_ms

MIB = 1024 * 1024
DAY = 86400


def create(client, body, key=None, headers=None, path="/api/paste"):
    hdrs = dict(headers or {})
    if key is not None:
        hdrs.update(bearer(key))
    if isinstance(body, (dict, list)):
        body = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    hdrs.setdefault("Content-Type", "application/json")
    return client.simulate_post(path, body=body, headers=hdrs)


def error(result):
    return result.status_code, result.json


@pytest.mark.parametrize("path", ["/api/paste", "/api/v1/paste"])
def test_create_returns_the_envelope(client, runtime, key, clock, path) -> None:
    r = create(client, {"title": "deploy log", "content": "==> building\n==> done in 4.2s",
                        "language": "bash", "visibility": "unlisted"}, key, path=path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    data = r.json["data"]
    assert r.json["ok"] is True and set(data) == {"id", "url", "expiresAt", "anonymous"}
    assert re.fullmatch(r"[A-Za-z0-9]{8}", data["id"])
    assert data["url"] == f"http://falconframework.org/{data['id']}"
    assert data["expiresAt"] == iso_ms(clock() + 365 * DAY)
    assert data["anonymous"] is False
    raw = client.simulate_get(f"/{data['id']}/raw")
    assert raw.text == "==> building\n==> done in 4.2s"
    row = runtime.db.one("SELECT * FROM paste_pastes WHERE id = ?", (data["id"],))
    assert (row["title"], row["language"], row["visibility"]) == ("deploy log", "bash",
                                                                  "unlisted")


def test_key_usage_is_counted(client, runtime, key) -> None:
    record = runtime.keys.lookup("paste", key)
    assert record.request_count == 0 and record.last_used_at is None
    assert create(client, {"content": "x"}, key).status_code == 200
    assert create(client, {"content": "y"}, key).status_code == 200
    record = runtime.keys.lookup("paste", key)
    assert record.request_count == 2 and record.last_used_at == runtime.clock()


def test_field_normalising(client, runtime, key) -> None:
    r = create(client, {"content": "hello", "title": "  " + "t" * 250 + "  ",
                        "language": "  PyThOn" + "x" * 40}, key)
    row = runtime.db.one("SELECT title, language FROM paste_pastes WHERE id = ?",
                         (r.json["data"]["id"],))
    assert row["title"] == "t" * 200
    assert row["language"] == ("python" + "x" * 40)[:32]
    r = create(client, {"content": "hello", "title": "   ", "language": "  "}, key)
    row = runtime.db.one("SELECT title, language FROM paste_pastes WHERE id = ?",
                         (r.json["data"]["id"],))
    assert row["title"] is None and row["language"] == "plaintext"
    r = create(client, {"content": "hello", "title": None, "language": None,
                        "unknown": [1, 2]}, key)
    assert r.status_code == 200


def test_explicit_language_is_kept_and_detection_runs_otherwise(client, runtime, key) -> None:
    code = "def greet(name):\n    return f'hello {name}'\n\nprint(greet('you'))\n"

    def language(body):
        pid = create(client, body, key).json["data"]["id"]
        return runtime.db.one("SELECT language FROM paste_pastes WHERE id = ?", (pid,))[0]

    assert language({"content": code}) == "python"
    assert language({"content": code, "language": ""}) == "python"
    assert language({"content": code, "language": "ruby"}) == "ruby"
    assert language({"content": code, "language": "Brainfuck"}) == "brainfuck"
    assert language({"content": "print(1)"}) == "plaintext"  # under 20 non-blank characters
    assert language({"content": "The weather was lovely today, so we walked to the old"
                                " harbour and had lunch by the water."}) == "plaintext"


@pytest.mark.parametrize("body, message", [
    ("not json", "Invalid JSON body"),
    ("", "Invalid JSON body"),
    ("[1, 2]", "Invalid JSON body"),
    ('"content"', "Invalid JSON body"),
    (b"\xff\xfe{}", "Invalid JSON body"),
    ('{"content": "x", "extra": NaN}', "Invalid JSON body"),  # Python's json takes these
    ('{"content": "x", "title": -Infinity}', "Invalid JSON body"),
    ({"content": 5}, "content must be a string"),
    ({"content": "x", "title": 1}, "title must be a string"),
    ({"content": "x", "language": ["py"]}, "language must be a string"),
    ({"content": "x", "visibility": None}, "visibility must be a string"),
    ({"content": "x", "isPermanent": "yes"}, "isPermanent must be a boolean"),
    ({"content": "x", "turnstileToken": 7}, "turnstileToken must be a string"),
    ({}, "Paste content is required"),
    ({"content": None}, "content must be a string"),
    ({"content": ""}, "Paste content is required"),
    ({"content": " \n\t\u3000 "}, "Paste content is required"),
    ({"content": "x", "visibility": "secret"}, "Invalid visibility"),
    ({"content": "x", "visibility": "Public"}, "Invalid visibility"),
    ({"content": "x", "visibility": "private"}, "Sign in to create private pastes"),
    ('{"content": "\\ud800 lone surrogate"}', "Paste content must be valid UTF-8"),
    ('{"content": "x", "title": "\\udfff"}', "title must be valid UTF-8"),
    ('{"content": "x", "language": "py\\ud800"}', "language must be valid UTF-8"),
    # valid JSON whatever Python's int() takes: a field's own message, not "invalid"
    ('{"content": "x", "isPermanent": ' + "9" * 5000 + "}", "isPermanent must be a boolean"),
])
def test_bad_requests(client, runtime, key, body, message) -> None:
    r = create(client, body, key)
    assert error(r) == (400, {"ok": False, "error": message})
    assert runtime.db.one("SELECT count(*) FROM paste_pastes")[0] == 0


@pytest.mark.parametrize("path", ["/api/paste", "/api/v1/paste", "/api/v1/snippets"])
def test_null_content_is_a_wrong_type_not_a_missing_one(client, runtime, key, path) -> None:
    # Spec 4.1 types content as "string", not "string or null": null fails the
    # type checks of step 5, where content comes before the other fields.
    wrong_type = (400, {"ok": False, "error": "content must be a string"})
    assert error(create(client, {"content": None}, key, path=path)) == wrong_type
    assert error(create(client, {"content": None, "title": 5}, key, path=path)) == wrong_type
    assert error(create(client, {"title": 5}, key, path=path)) == (
        400, {"ok": False, "error": "title must be a string"})
    assert error(create(client, {"title": "x"}, key, path=path)) == (
        400, {"ok": False, "error": "Paste content is required"})
    assert runtime.db.one("SELECT count(*) FROM paste_pastes")[0] == 0


def test_null_content_fails_before_the_captcha(paste_host) -> None:
    # Step 5 (types) comes before step 6 (captcha), and a missing content (step 7) after it.
    _, client = paste_host(plugins=[Captcha()], anonymous=True)
    assert error(create(client, {"content": None})) == (
        400, {"ok": False, "error": "content must be a string"})
    assert error(create(client, {})) == (400, {"ok": False, "error": "Captcha failed. Try again."})


def test_unknown_members_are_ignored_even_huge_numbers(client, key) -> None:
    # 4.1: unknown members are ignored; a 5000-digit integer is still JSON.
    body = '{"content": "x", "n": -' + "9" * 5000 + ', "m": 1e999999}'
    r = create(client, body, key)
    assert r.status_code == 200, r.text


def test_processing_order(client, key) -> None:
    # Types (step 5) before content (7), content before visibility (8).
    assert create(client, {"content": "", "title": 3}, key).json["error"] == \
        "title must be a string"
    assert create(client, {"content": " ", "visibility": "nope"}, key).json["error"] == \
        "Paste content is required"
    # Visibility (8) before size (9).
    big = "x" * (MIB + 1)
    assert create(client, {"content": big, "visibility": "nope"}, key).json["error"] == \
        "Invalid visibility"


def test_auth_errors(client, runtime, account, key) -> None:
    body = {"content": "hello"}
    invalid = (401, {"ok": False, "error": "Invalid API key"})
    assert error(create(client, body)) == invalid
    assert error(create(client, body, "hepgg_pst_" + "A" * 32)) == invalid
    assert error(create(client, body, headers={"Authorization": ""})) == invalid
    assert error(create(client, body, headers={"Authorization": key})) == invalid  # no Bearer
    assert error(create(client, body, headers={"Authorization": f"Token {key}"})) == invalid
    assert create(client, body, headers={"Authorization": f"bEaReR {key}"}).status_code == 200
    record = runtime.keys.lookup("paste", key)
    runtime.keys.set_status(record.id, "disabled")
    assert error(create(client, body, key)) == (401, {"ok": False, "error": "API key disabled"})
    runtime.keys.set_status(record.id, "active")
    runtime.keys.revoke(record.id)
    assert error(create(client, body, key)) == invalid
    uploader_key, _ = runtime.keys.create("uploader", account.id)
    assert error(create(client, body, uploader_key)) == invalid


@pytest.mark.parametrize("status", ["suspended", "unapproved", "banned"])
def test_unapproved_account(client, runtime, account, key, status) -> None:
    runtime.accounts.update(account.id, status=status)
    assert error(create(client, {"content": "hello"}, key)) == (
        403, {"ok": False, "error": "Your account is not approved for paste creation"})


def test_unapproved_signed_in_account(client, runtime, account, signed_in) -> None:
    runtime.accounts.update(account.id, status="suspended")
    r = create(client, {"content": "hello"}, headers={"Cookie": signed_in})
    assert error(r) == (403, {"ok": False,
                              "error": "Your account is not approved for paste creation"})


def test_size_caps(client, runtime, key, prime_key) -> None:
    free_max = "é" * (MIB // 2)  # 1 MiB of UTF-8 in 512 Ki characters
    assert create(client, {"content": free_max}, key).status_code == 200
    over = free_max + "x"
    assert error(create(client, {"content": over}, key)) == (
        413, {"ok": False, "error": "Paste too large. Max 1 MB."})
    assert create(client, {"content": over}, prime_key).status_code == 200
    prime_over = "y" * (8 * MIB + 1)
    assert error(create(client, {"content": prime_over}, prime_key)) == (
        413, {"ok": False, "error": "Paste too large. Max 8 MB."})
    # Step 3: a body above 2 x cap + 64 KiB is refused before it is read.
    huge = json.dumps({"content": "z" * (2 * MIB + 64 * 1024)})
    assert error(create(client, huge, key)) == (
        413, {"ok": False, "error": "Paste too large. Max 1 MB."})
    # Nothing of the refused ones was kept.
    assert runtime.db.one("SELECT count(*) FROM paste_pastes")[0] == 2
    assert list(runtime.storage.tmp_dir.iterdir()) == []


def test_large_paste_goes_to_storage_and_reads_back(client, runtime, prime_key) -> None:
    content = "line of text\n" * 300_000  # about 3.7 MiB
    r = create(client, {"content": content}, prime_key)
    pid = r.json["data"]["id"]
    row = runtime.db.one("SELECT content, storage_key, size FROM paste_pastes WHERE id = ?",
                         (pid,))
    assert row["content"] is None and row["storage_key"] == f"paste/{pid}"
    assert row["size"] == len(content)
    assert client.simulate_get(f"/{pid}/raw").text == content


def test_plans_expiry_and_permanence(client, runtime, key, prime_key, clock) -> None:
    free = create(client, {"content": "a", "isPermanent": True}, key).json["data"]
    assert free["expiresAt"] == iso_ms(clock() + 365 * DAY)  # ignored on Free (P4)
    row = runtime.db.one("SELECT is_permanent FROM paste_pastes WHERE id = ?", (free["id"],))
    assert row[0] == 0
    prime = create(client, {"content": "b"}, prime_key).json["data"]
    assert prime["expiresAt"] is None
    flagged = create(client, {"content": "c", "isPermanent": True}, prime_key).json["data"]
    row = runtime.db.one("SELECT is_permanent FROM paste_pastes WHERE id = ?",
                         (flagged["id"],))
    assert flagged["expiresAt"] is None and row[0] == 1


def test_free_total_cap(paste_host, clock) -> None:
    runtime, client = paste_host(free_total_cap=3)
    account = runtime.accounts.create("carol")
    key, _ = runtime.keys.create("paste", account.id)
    ids = [create(client, {"content": f"n{i}"}, key).json["data"]["id"] for i in range(3)]
    capped = create(client, {"content": "one more"}, key)
    assert error(capped) == (429, {
        "ok": False,
        "error": "You've reached your snippet limit. Delete a few or upgrade to Prime.",
        "code": "PASTE_TOTAL_CAP"})
    # Deleted and expired pastes are not live: they free a slot each.
    assert client.simulate_delete(f"/api/v1/snippets/{ids[0]}",
                                  headers=bearer(key)).status_code == 200
    assert create(client, {"content": "after delete"}, key).status_code == 200
    assert create(client, {"content": "capped again"}, key).status_code == 429
    clock.advance(365 * DAY + 1)
    assert create(client, {"content": "after expiry"}, key).status_code == 200
    runtime.accounts.update(account.id, plan="prime")
    assert create(client, {"content": "prime has no cap"}, key).status_code == 200


def test_rate_limit(paste_host, clock) -> None:
    runtime, client = paste_host(create_rate_per_minute=2)
    account = runtime.accounts.create("dave")
    key, _ = runtime.keys.create("paste", account.id)
    assert [create(client, {"content": "x"}, key).status_code for _ in range(2)] == [200, 200]
    limited = create(client, {"content": "x"}, key)
    assert error(limited) == (429, {"ok": False, "error": "Too many requests",
                                    "code": "RATE_LIMITED"})
    assert limited.headers["retry-after"] == "60"
    clock.advance(30)
    assert create(client, {"content": "x"}, key).headers["retry-after"] == "30"
    # The limit comes before the body is looked at (step 2).
    assert create(client, "not json", key).status_code == 429
    clock.advance(31)
    assert create(client, {"content": "x"}, key).status_code == 200


def test_private_needs_a_sign_in(client, runtime, account, key, signed_in) -> None:
    body = {"content": "secret", "visibility": "private"}
    assert create(client, body, key).json["error"] == "Sign in to create private pastes"
    by_session = create(client, body, headers={"Cookie": signed_in})
    assert by_session.status_code == 200
    # A key request by the signed-in owner counts as signed in (P9).
    assert create(client, body, key, headers={"Cookie": signed_in}).status_code == 200
    other = runtime.accounts.create("eve")
    other_key, _ = runtime.keys.create("paste", other.id)
    refused = create(client, body, other_key, headers={"Cookie": signed_in})
    assert refused.json["error"] == "Sign in to create private pastes"


def test_signed_in_creation_is_rate_limited_per_account(paste_host) -> None:
    from conftest import session_cookie

    runtime, client = paste_host(create_rate_per_minute=1)
    account = runtime.accounts.create("fay")
    cookie = session_cookie(client, runtime, account)
    assert create(client, {"content": "x"}, headers={"Cookie": cookie}).status_code == 200
    assert create(client, {"content": "x"}, headers={"Cookie": cookie}).status_code == 429


def test_anonymous_creation(paste_host, clock) -> None:
    _, client = paste_host(plugins=[Captcha()], anonymous=True,
                                 create_rate_per_minute=3)
    r = create(client, {"content": "hello from nobody", "turnstileToken": "solved"})
    assert r.status_code == 200
    data = r.json["data"]
    assert data["anonymous"] is True
    assert data["expiresAt"] == iso_ms(clock() + 90 * DAY)
    captcha = (400, {"ok": False, "error": "Captcha failed. Try again."})
    assert error(create(client, {"content": "x", "turnstileToken": "guessed"})) == captcha
    assert error(create(client, {"content": "x"})) == captcha
    # Rate-limited per client IP: three requests so far.
    assert create(client, {"content": "x", "turnstileToken": "solved"}).status_code == 429
    # Private needs a sign-in, which an anonymous caller never has.
    _, client2 = paste_host(plugins=[Captcha()], anonymous=True)
    r = create(client2, {"content": "x", "turnstileToken": "solved", "visibility": "private"})
    assert r.json["error"] == "Sign in to create private pastes"


def test_anonymous_needs_option_and_verifier(paste_host) -> None:
    invalid = (401, {"ok": False, "error": "Invalid API key"})
    _, without_plugin = paste_host(anonymous=True)
    assert error(create(without_plugin, {"content": "x", "turnstileToken": "solved"})) == invalid
    _, without_option = paste_host(plugins=[Captcha()])
    assert error(create(without_option, {"content": "x", "turnstileToken": "solved"})) == invalid


def test_unknown_methods_and_routes_use_the_envelope(client) -> None:
    r = client.simulate_get("/api/paste")
    assert r.status_code == 405 and r.json == {"ok": False, "error": "Method not allowed"}
    assert r.headers["allow"] == "POST"
    r = client.simulate_get("/api/v2/whatever")
    assert r.status_code == 404 and r.json == {"ok": False, "error": "Not found"}


def test_chunked_and_large_bodies_take_the_same_rules(client, runtime, key) -> None:
    """Bodies without Content-Length (chunked) or above the in-row size go through
    the streaming path; answers are the same."""
    from httpkit import call

    app = client.app
    body = json.dumps({"content": "chunked body"}).encode()
    headers = [("Authorization", f"Bearer {key}"), ("Content-Type", "application/json")]
    done = call(app, "POST", "/api/paste", headers=headers, body=[body[:5], body[5:]],
                chunked=True)
    assert done.status == 200, done.body
    pid = json.loads(done.body)["data"]["id"]
    assert client.simulate_get(f"/{pid}/raw").text == "chunked body"
    bad = call(app, "POST", "/api/paste", headers=headers, body=[b"{nope"], chunked=True)
    assert (bad.status, json.loads(bad.body)) == (400, {"ok": False,
                                                        "error": "Invalid JSON body"})
    blank = call(app, "POST", "/api/paste", headers=headers,
                 body=[json.dumps({"content": " " * 100_000}).encode()])
    assert (blank.status, json.loads(blank.body)) == (
        400, {"ok": False, "error": "Paste content is required"})
    assert runtime.keys.lookup("paste", key).request_count == 3
