"""API keys (KeyStore, HashedKeyVerifier) and signed tokens (TokenSigner)."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hepcore.accounts import Account, AccountStore
from hepcore.db import Database
from hepcore.errors import (
    BadSignature,
    ConfigError,
    CredentialDisabled,
    CredentialRevoked,
    NotFoundError,
    TokenExpired,
    UnknownCredential,
)
from hepcore.migrations import core
from hepcore.testing import FakeClock
from hepcore.testing.contracts import TokenVerifierContract
from hepcore.tokens import KEY_FORMATS, HashedKeyVerifier, KeyStore, TokenSigner, hash_token

SERVICES = ("uploader", "paste", "cdn", "images")
IMAGES_LIMIT_MESSAGE = (
    "Key limit reached: an account can have at most 10 active keys. Revoke one first."
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hepcore.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = Database(db_path)
    database.migrate([core])
    yield database
    database.close()


@pytest.fixture
def accounts(db: Database, clock: FakeClock) -> AccountStore:
    return AccountStore(db, clock)


@pytest.fixture
def keys(db: Database, accounts: AccountStore, clock: FakeClock) -> KeyStore:
    return KeyStore(db, accounts, clock)


@pytest.fixture
def alice(accounts: AccountStore) -> Account:
    return accounts.create("alice")


def audit(db: Database, action: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    rows = db.all("SELECT action, detail FROM audit_log ORDER BY id")
    return [(r["action"], json.loads(r["detail"])) for r in rows
            if action is None or r["action"] == action]


# --- storage of keys --------------------------------------------------------


def test_keys_are_stored_only_as_sha256_hashes(db: Database, db_path: Path, keys: KeyStore,
                                               alice: Account) -> None:
    issued = {service: keys.create(service, alice.id, label=f"{service} key")
              for service in SERVICES}
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*")
                   if not p.name.endswith(".lock"))
    for service, (token, record) in issued.items():
        row = db.one("SELECT * FROM api_keys WHERE id = ?", (record.id,))
        assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest() == hash_token(token)
        assert token not in json.dumps(dict(row))
        fmt = KEY_FORMATS[service]
        secret_part = token[len(fmt.prefix):]
        assert row["token_hash"].encode() in raw  # the bytes read hold the rows
        assert token.encode() not in raw, service
        assert secret_part.encode() not in raw, service
        assert record.public()["display"] == record.display != token


@pytest.mark.parametrize(
    ("service", "pattern", "length"),
    [
        ("uploader", r"hyd-up-[A-Za-z0-9_-]{32}", 39),
        ("paste", r"hepgg_pst_[A-Za-z0-9]{32}", 42),
        ("cdn", r"sk_cdn_[0-9a-f]{64}", 71),
        ("images", r"fxf_[0-9a-f]{64}", 68),
    ],
)
def test_key_formats(keys: KeyStore, accounts: AccountStore, service: str, pattern: str,
                     length: int) -> None:
    tokens = set()
    for i in range(8):
        account = accounts.create(f"user{i}", plan="prime")
        token, record = keys.create(service, account.id)
        assert re.fullmatch(pattern, token), token
        assert len(token) == length
        assert record.service == service and record.status == "active"
        tokens.add(token)
        if service == "cdn":
            assert record.display == token[:13] + "...." + token[-6:]
            assert len(record.display) == 23
        if service == "images":
            assert record.display == token[:8]
    assert len(tokens) == 8


def test_unknown_service_and_account(keys: KeyStore, alice: Account) -> None:
    with pytest.raises(ConfigError, match="unknown key service"):
        keys.create("ftp", alice.id)
    with pytest.raises(NotFoundError):
        keys.create("cdn", "acc_missing")
    assert keys.list() == []


# --- active-key limits ------------------------------------------------------


def test_paste_free_plan_holds_one_active_key(keys: KeyStore, alice: Account) -> None:
    _, first = keys.create("paste", alice.id)
    with pytest.raises(ConfigError) as info:
        keys.create("paste", alice.id)
    assert str(info.value) == KEY_FORMATS["paste"].limit_message
    keys.set_status(first.id, "disabled")  # a disabled key is not active
    keys.create("paste", alice.id)
    assert sorted(k.status for k in keys.list(account_id=alice.id)) == ["active", "disabled"]


def test_paste_prime_plan_holds_five_active_keys(keys: KeyStore, accounts: AccountStore) -> None:
    prime = accounts.create("prime", plan="prime")
    created = [keys.create("paste", prime.id)[1] for _ in range(5)]
    with pytest.raises(ConfigError):
        keys.create("paste", prime.id)
    keys.revoke(created[0].id)
    keys.create("paste", prime.id)


def test_paste_downgrade_keeps_keys_but_blocks_new_ones(keys: KeyStore,
                                                        accounts: AccountStore) -> None:
    account = accounts.create("downgraded", plan="prime")
    created = [keys.create("paste", account.id) for _ in range(3)]
    accounts.update(account.id, plan="free")
    verifier = HashedKeyVerifier(keys)
    for token, _ in created:
        assert verifier.verify("paste", token) is not None
    keys.revoke(created[0][1].id)
    keys.revoke(created[1][1].id)
    with pytest.raises(ConfigError):  # one active key is still the free limit
        keys.create("paste", account.id)
    keys.revoke(created[2][1].id)
    keys.create("paste", account.id)


def test_images_accounts_hold_ten_active_keys(keys: KeyStore, alice: Account) -> None:
    for _ in range(10):
        keys.create("images", alice.id)
    with pytest.raises(ConfigError) as info:
        keys.create("images", alice.id)
    assert str(info.value) == IMAGES_LIMIT_MESSAGE
    assert len(keys.list(account_id=alice.id, service="images")) == 10


def test_cdn_keys_have_no_active_limit(keys: KeyStore, alice: Account) -> None:
    for _ in range(12):
        keys.create("cdn", alice.id)
    assert len(keys.list(service="cdn")) == 12


def test_new_uploader_token_revokes_the_old_one(db: Database, keys: KeyStore, alice: Account,
                                                clock: FakeClock) -> None:
    verifier = HashedKeyVerifier(keys)
    old_token, old = keys.create("uploader", alice.id)
    clock.advance(10)
    new_token, new = keys.create("uploader", alice.id)
    assert keys.get(old.id).status == "revoked"
    assert keys.get(old.id).revoked_at == clock()
    with pytest.raises(CredentialRevoked):
        verifier.verify("uploader", old_token)
    actor = verifier.verify("uploader", new_token)
    assert actor is not None and actor.key is not None and actor.key.id == new.id
    assert [k.status for k in keys.list(account_id=alice.id)] == ["revoked", "active"]
    assert [(a, d["key_id"]) for a, d in audit(db)] == [
        ("api_key.created", old.id), ("api_key.revoked", old.id), ("api_key.created", new.id)]


# --- states, rotation, usage, audit ----------------------------------------


def test_disable_enable_and_revoke(keys: KeyStore, alice: Account) -> None:
    verifier = HashedKeyVerifier(keys)
    token, record = keys.create("cdn", alice.id)
    keys.set_status(record.id, "disabled")
    with pytest.raises(CredentialDisabled):
        verifier.verify("cdn", token)
    keys.set_status(record.id, "active")
    assert verifier.verify("cdn", token) is not None
    revoked = keys.set_status(record.id, "revoked")
    assert revoked.status == "revoked"
    with pytest.raises(CredentialRevoked):
        verifier.verify("cdn", token)
    with pytest.raises(ConfigError):
        keys.set_status(record.id, "active")
    with pytest.raises(ConfigError):
        keys.set_status(record.id, "paused")
    with pytest.raises(UnknownCredential):
        verifier.verify("cdn", KEY_FORMATS["cdn"].generate())


def test_rotate_replaces_the_key_atomically(db: Database, keys: KeyStore,
                                            alice: Account) -> None:
    verifier = HashedKeyVerifier(keys)
    old_token, old = keys.create("images", alice.id, label="ci")
    new_token, new = keys.rotate(old.id)
    assert new.id != old.id and new.label == "ci" and new_token != old_token
    with pytest.raises(CredentialRevoked):
        verifier.verify("images", old_token)
    actor = verifier.verify("images", new_token)
    assert actor is not None and actor.account.id == alice.id
    assert [a for a, _ in audit(db)] == ["api_key.created", "api_key.revoked", "api_key.created"]


def test_rotate_at_the_limit_succeeds(keys: KeyStore, alice: Account) -> None:
    records = [keys.create("images", alice.id)[1] for _ in range(10)]
    keys.rotate(records[3].id)
    statuses = [k.status for k in keys.list(account_id=alice.id)]
    assert statuses.count("active") == 10 and statuses.count("revoked") == 1


def test_touch_counts_usage(keys: KeyStore, alice: Account, clock: FakeClock) -> None:
    _, record = keys.create("paste", alice.id)
    assert (record.request_count, record.last_used_at) == (0, None)
    keys.touch(record.id)
    clock.advance(42)
    keys.touch(record.id)
    after = keys.get(record.id)
    assert (after.request_count, after.last_used_at) == (2, clock())


def test_audit_log_records_creation_and_revocation(db: Database, keys: KeyStore,
                                                   alice: Account, clock: FakeClock) -> None:
    token, record = keys.create("cdn", alice.id)
    keys.revoke(record.id)
    keys.revoke(record.id)  # revoking twice is logged once
    rows = db.all("SELECT ts, action, account_id, detail FROM audit_log ORDER BY id")
    assert [(r["action"], r["account_id"], r["ts"]) for r in rows] == [
        ("api_key.created", alice.id, clock()), ("api_key.revoked", alice.id, clock())]
    for row in rows:
        assert json.loads(row["detail"]) == {"key_id": record.id, "prefix": record.display}
        assert token not in row["detail"]


# --- the verifier contract ----------------------------------------------------

FOREIGN = {"uploader": "paste", "paste": "cdn", "cdn": "images", "images": "uploader"}


class TestHashedKeyVerifier(TokenVerifierContract):
    @pytest.fixture(params=SERVICES)
    def service(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def verifier(self, keys: KeyStore) -> HashedKeyVerifier:
        return HashedKeyVerifier(keys)

    @pytest.fixture
    def good_credential(self, keys: KeyStore, alice: Account, service: str) -> str:
        return keys.create(service, alice.id)[0]

    @pytest.fixture(params=["unknown", "disabled", "revoked", "rotated"])
    def bad_credential(self, request: pytest.FixtureRequest, keys: KeyStore,
                       accounts: AccountStore, service: str) -> str:
        # Another account, so that issuing it never touches the good credential.
        mallory = accounts.create("mallory", plan="prime")
        if request.param == "unknown":
            return KEY_FORMATS[service].generate()
        token, record = keys.create(service, mallory.id)
        if request.param == "disabled":
            keys.set_status(record.id, "disabled")
        elif request.param == "revoked":
            keys.revoke(record.id)
        else:
            keys.rotate(record.id)
        return token

    @pytest.fixture(params=["other-service", "no-prefix"])
    def foreign_credential(self, request: pytest.FixtureRequest, keys: KeyStore,
                           accounts: AccountStore, service: str) -> str:
        if request.param == "no-prefix":
            return "Basic dXNlcjpwYXNz"
        bob = accounts.create("bob", plan="prime")
        return keys.create(FOREIGN[service], bob.id)[0]


_names = itertools.count()


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(service=st.sampled_from(SERVICES), label=st.none() | st.text(max_size=40))
def test_create_then_lookup_round_trip(keys: KeyStore, accounts: AccountStore, service: str,
                                       label: str | None) -> None:
    account = accounts.create(f"prop{next(_names)}")
    token, record = keys.create(service, account.id, label=label)
    found = keys.lookup(service, token)
    assert found == record
    assert found.label == label and found.account_id == account.id
    assert keys.lookup(service, token + "x") is None
    assert keys.lookup(service, token[:-1]) is None
    assert keys.lookup(FOREIGN[service], token) is None
    actor = HashedKeyVerifier(keys).verify(service, token)
    assert actor is not None and actor.account.id == account.id and actor.via == "key"


# --- signed tokens ----------------------------------------------------------


@pytest.fixture
def signer(clock: FakeClock) -> TokenSigner:
    return TokenSigner(["secret-one", "secret-two"], clock)


def test_signer_round_trip(signer: TokenSigner) -> None:
    token = signer.dumps({"acc": "acc_1", "scope": ["upload"]}, "upload-token")
    assert signer.loads(token, "upload-token", max_age=60) == {"acc": "acc_1",
                                                               "scope": ["upload"]}


def test_signer_needs_a_secret() -> None:
    with pytest.raises(ConfigError, match="no signing secret"):
        TokenSigner([])


def test_wrong_purpose_fails(signer: TokenSigner) -> None:
    token = signer.dumps({"acc": "acc_1"}, "upload-token")
    with pytest.raises(BadSignature):
        signer.loads(token, "delete-link", max_age=60)


def test_tampering_fails(signer: TokenSigner) -> None:
    token = signer.dumps({"acc": "acc_1"}, "upload-token")
    other = signer.dumps({"acc": "acc_2"}, "upload-token")
    payload, stamp, signature = token.split(".")
    forged = ".".join([other.split(".")[0], stamp, signature])
    with pytest.raises(BadSignature):
        signer.loads(forged, "upload-token", max_age=60)
    mid = len(signature) // 2
    flipped = signature[:mid] + ("A" if signature[mid] != "A" else "B") + signature[mid + 1:]
    with pytest.raises(BadSignature):
        signer.loads(f"{payload}.{stamp}.{flipped}", "upload-token", max_age=60)
    with pytest.raises(BadSignature):
        signer.loads("not-a-token", "upload-token", max_age=60)


def test_expiry_with_skew_tolerance(signer: TokenSigner, clock: FakeClock) -> None:
    token = signer.dumps("payload", "upload-token")
    clock.advance(60 + signer.skew)
    assert signer.loads(token, "upload-token", max_age=60) == "payload"
    clock.advance(1)
    with pytest.raises(TokenExpired):
        signer.loads(token, "upload-token", max_age=60)


def test_token_from_a_host_with_a_fast_clock(clock: FakeClock) -> None:
    here = TokenSigner(["shared"], clock)
    ahead = FakeClock(clock() + 5)
    assert here.loads(TokenSigner(["shared"], ahead).dumps(1, "p"), "p", max_age=60) == 1
    ahead.advance(1)
    with pytest.raises(TokenExpired):
        here.loads(TokenSigner(["shared"], ahead).dumps(1, "p"), "p", max_age=60)


def test_secret_rotation(clock: FakeClock) -> None:
    before = TokenSigner(["old"], clock)
    after = TokenSigner(["old", "new"], clock)
    retired = TokenSigner(["new"], clock)
    old_token = before.dumps({"n": 1}, "p")
    assert after.loads(old_token, "p", max_age=60) == {"n": 1}
    new_token = after.dumps({"n": 2}, "p")
    # The newest secret signs: hosts that know only it accept the token.
    assert retired.loads(new_token, "p", max_age=60) == {"n": 2}
    with pytest.raises(BadSignature):
        before.loads(new_token, "p", max_age=60)
    with pytest.raises(BadSignature):
        retired.loads(old_token, "p", max_age=60)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=50, deadline=None)
@given(payload=json_values, purpose=st.text(min_size=1, max_size=20))
def test_signer_round_trips_json_payloads(payload: Any, purpose: str) -> None:
    signer = TokenSigner(["s1", "s2"], FakeClock())
    token = signer.dumps(payload, purpose)
    assert re.fullmatch(r"[A-Za-z0-9_\-.]+", token)
    assert signer.loads(token, purpose, max_age=1) == payload
    with pytest.raises(BadSignature):
        signer.loads(token, purpose + "!", max_age=1)


def test_plan_change_listeners_run_in_the_change_and_can_veto_it(
        accounts: AccountStore) -> None:
    account = accounts.create("listened", plan="prime")
    seen: list[tuple[str, str, str, str]] = []

    def record(account_id: str, old: str, new: str) -> None:
        # Inside the transaction: the new plan is already visible.
        (plan,) = accounts.db.one("SELECT plan FROM accounts WHERE id = ?", (account_id,))
        seen.append((account_id, old, new, plan))

    accounts.on_plan_change(record)
    accounts.update(account.id, status="suspended")  # no plan change: not announced
    accounts.update(account.id, plan="prime")
    accounts.update(account.id, plan="free")
    assert seen == [(account.id, "prime", "free", "free")]

    def veto(account_id: str, old: str, new: str) -> None:
        raise RuntimeError("no")

    accounts.on_plan_change(veto)
    with pytest.raises(RuntimeError):
        accounts.update(account.id, plan="prime", status="active")
    after = accounts.get(account.id)
    assert (after.plan, after.status) == ("free", "suspended")
