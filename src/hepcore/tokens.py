"""Credentials: hashed API keys, the key formats of each service, and signed tokens.

Keys are stored only as SHA-256 hashes and looked up by hash (G2); the
plain key exists once, in the return value of :meth:`KeyStore.create`.
Signed temporary tokens use itsdangerous with a salt per purpose, a
mandatory ``max_age``, a small clock-skew allowance and secret rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import itsdangerous
from itsdangerous.encoding import base64_decode, base64_encode

from .accounts import Account, AccountStore
from .clock import ALNUM, LOWER_HEX, URLSAFE, Clock, random_string, system_clock
from .db import Database
from .errors import (
    BadSignature,
    ConfigError,
    CredentialDisabled,
    CredentialRevoked,
    NotFoundError,
    TokenExpired,
    UnknownCredential,
)

KEY_STATUSES = ("active", "disabled", "revoked")


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a key is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class KeyFormat:
    """How one service's keys look and how many an account may hold.

    ``max_active(account)`` returns the limit of active keys (``None`` for
    no limit); ``replace_on_create`` means issuing a key revokes the old one
    instead of counting against the limit (one token per account); a label
    longer than ``max_label`` characters (``None``: no limit) is refused with
    ``label_too_long``.
    """

    service: str
    prefix: str
    alphabet: str
    length: int
    max_active: Callable[[Account], int | None] = lambda account: None
    limit_message: str = "Key limit reached."
    replace_on_create: bool = False
    mask: Callable[[str], str] | None = None
    max_label: int | None = 255
    label_too_long: str = "Label is too long (maximum is 255 characters)."

    def generate(self) -> str:
        return self.prefix + random_string(self.length, self.alphabet)

    def owns(self, token: str) -> bool:
        return token.startswith(self.prefix)

    def display(self, token: str) -> str:
        if self.mask is not None:
            return self.mask(token)
        return token[: len(self.prefix) + 4] + "…"


def _cdn_mask(token: str) -> str:
    return token[:13] + "...." + token[-6:]


KEY_FORMATS: dict[str, KeyFormat] = {
    fmt.service: fmt
    for fmt in (
        KeyFormat("uploader", "hyd-up-", URLSAFE, 32, max_active=lambda a: 1,
                  replace_on_create=True),
        KeyFormat("paste", "hepgg_pst_", ALNUM, 32,
                  max_active=lambda a: 5 if a.plan == "prime" else 1,
                  limit_message="Active key limit reached for this plan."),
        KeyFormat("cdn", "sk_cdn_", LOWER_HEX, 64, mask=_cdn_mask, max_label=255,
                  label_too_long="Name is too long (maximum is 255 characters)"),
        KeyFormat("images", "fxf_", LOWER_HEX, 64, max_active=lambda a: 10,
                  limit_message="Key limit reached: an account can have at most 10 active"
                  " keys. Revoke one first.",
                  mask=lambda t: t[:8]),
    )
}


@dataclass(frozen=True)
class KeyRecord:
    id: str
    service: str
    account_id: str
    display: str
    label: str | None
    status: str
    created_at: float
    last_used_at: float | None
    request_count: int
    revoked_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> KeyRecord:
        return cls(
            id=row["id"], service=row["service"], account_id=row["account_id"],
            display=row["display"], label=row["label"], status=row["status"],
            created_at=row["created_at"], last_used_at=row["last_used_at"],
            request_count=row["request_count"], revoked_at=row["revoked_at"],
        )

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "service": self.service, "account_id": self.account_id,
            "display": self.display, "label": self.label, "status": self.status,
            "created_at": self.created_at, "last_used_at": self.last_used_at,
            "request_count": self.request_count, "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class Actor:
    """Who a request acts for: an account, and the key or token that proved it.

    ``via`` is ``"key"``, ``"token"`` or ``"session"``; ``claims`` holds what
    a signed token carried.
    """

    account: Account
    via: str
    key: KeyRecord | None = None
    claims: dict[str, Any] = field(default_factory=dict)


class TokenVerifier(Protocol):
    """Turns a credential into an :class:`Actor`.

    ``verify`` returns ``None`` for a credential it does not own (another
    verifier may), an :class:`Actor` for a good one, and raises a
    :class:`~hepcore.errors.CredentialError` subclass for one it owns that is
    unusable (unknown, disabled, revoked, expired, bad signature).
    """

    def verify(self, service: str, credential: str) -> Actor | None: ...


class KeyStore:
    """Issue, find, revoke and count API keys, stored as SHA-256 hashes."""

    def __init__(self, db: Database, accounts: AccountStore, clock: Clock = system_clock,
                 formats: dict[str, KeyFormat] | None = None) -> None:
        self.db = db
        self.accounts = accounts
        self.clock = clock
        self.formats = formats if formats is not None else dict(KEY_FORMATS)

    def format(self, service: str) -> KeyFormat:
        try:
            return self.formats[service]
        except KeyError:
            raise ConfigError(
                f"unknown key service {service!r}; known: {', '.join(sorted(self.formats))}"
            ) from None

    def create(self, service: str, account_id: str, *, label: str | None = None) -> tuple[str, KeyRecord]:
        """Issue a key and return ``(plain key, record)``; the plain key is never stored.

        Raises :class:`ConfigError` when the account is at its active-key limit
        or ``label`` is longer than the service allows.
        """
        fmt = self.format(service)
        if fmt.max_label is not None and label is not None and len(label) > fmt.max_label:
            raise ConfigError(fmt.label_too_long)
        account = self.accounts.get(account_id)
        with self.db.write() as conn:
            if fmt.replace_on_create:
                self._revoke_where(conn, "account_id = ? AND service = ? AND status = 'active'",
                                   (account_id, service))
            self._check_room(conn, fmt, account)
            token = fmt.generate()
            key_id = "key_" + random_string(16, ALNUM)
            conn.execute(
                "INSERT INTO api_keys (id, service, account_id, token_hash, display, label,"
                " status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'active', ?)",
                (key_id, service, account_id, hash_token(token), fmt.display(token), label,
                 self.clock()),
            )
            self._audit(conn, "api_key.created", account_id, key_id, fmt.display(token))
        return token, self.get(key_id)

    def rotate(self, key_id: str) -> tuple[str, KeyRecord]:
        """Revoke ``key_id`` and issue a replacement with the same label, atomically;
        :class:`CredentialRevoked` when the key is revoked already (rotated away by
        a concurrent caller, say), so that only one replacement is ever issued."""
        with self.db.write():
            old = self.get(key_id)
            if old.status == "revoked":
                raise CredentialRevoked(f"key {key_id} is revoked")
            self.revoke(key_id)
            return self.create(old.service, old.account_id, label=old.label)

    def get(self, key_id: str) -> KeyRecord:
        row = self.db.one("SELECT * FROM api_keys WHERE id = ?", (key_id,))
        if row is None:
            raise NotFoundError(f"no key with id {key_id!r}")
        return KeyRecord.from_row(row)

    def list(self, *, account_id: str | None = None, service: str | None = None) -> list[KeyRecord]:
        sql, params = "SELECT * FROM api_keys WHERE 1", []
        if account_id:
            sql += " AND account_id = ?"
            params.append(account_id)
        if service:
            sql += " AND service = ?"
            params.append(service)
        return [KeyRecord.from_row(r) for r in self.db.all(sql + " ORDER BY created_at", params)]

    def lookup(self, service: str, token: str) -> KeyRecord | None:
        """The key record whose hash matches ``token`` for ``service``, in any status."""
        digest = hash_token(token)
        row = self.db.one(
            "SELECT * FROM api_keys WHERE token_hash = ? AND service = ?", (digest, service))
        if row is None or not hmac.compare_digest(row["token_hash"], digest):
            return None
        return KeyRecord.from_row(row)

    def lookup_with_account(self, service: str,
                            token: str) -> tuple[KeyRecord, Account | None] | None:
        """:meth:`lookup`, and the key's account (``None`` if it does not exist),
        in one query: this is on every authenticated request's path."""
        digest = hash_token(token)
        row = self.db.one(
            "SELECT k.*, a.id AS a_id, a.name AS a_name, a.email AS a_email, a.plan AS a_plan,"
            " a.status AS a_status, a.created_at AS a_created_at, a.settings AS a_settings"
            " FROM api_keys k LEFT JOIN accounts a ON a.id = k.account_id"
            " WHERE k.token_hash = ? AND k.service = ?", (digest, service))
        if row is None or not hmac.compare_digest(row["token_hash"], digest):
            return None
        account = None
        if row["a_id"] is not None:
            account = Account(
                id=row["a_id"], name=row["a_name"], email=row["a_email"], plan=row["a_plan"],
                status=row["a_status"], created_at=row["a_created_at"],
                settings=json.loads(row["a_settings"] or "{}"))
        return KeyRecord.from_row(row), account

    def set_status(self, key_id: str, status: str) -> KeyRecord:
        if status not in KEY_STATUSES:
            raise ConfigError(f"key status must be one of {', '.join(KEY_STATUSES)}")
        if status == "revoked":
            return self.revoke(key_id)
        with self.db.write() as conn:
            key = self.get(key_id)
            if key.status == "revoked":
                raise ConfigError("a revoked key stays revoked: it cannot be enabled or disabled")
            if status == "active" and key.status != "active":
                self._check_room(conn, self.format(key.service),
                                 self.accounts.get(key.account_id))
            conn.execute("UPDATE api_keys SET status = ? WHERE id = ?", (status, key_id))
        return self.get(key_id)

    @staticmethod
    def _check_room(conn: sqlite3.Connection, fmt: KeyFormat, account: Account) -> None:
        """:class:`ConfigError` when ``account`` already has as many active keys of
        ``fmt``'s service as it may (call inside the write that adds one)."""
        limit = fmt.max_active(account)
        if limit is None:
            return
        (active,) = conn.execute(
            "SELECT count(*) FROM api_keys WHERE account_id = ? AND service = ?"
            " AND status = 'active'", (account.id, fmt.service)).fetchone()
        if active >= limit:
            raise ConfigError(fmt.limit_message)

    def revoke(self, key_id: str) -> KeyRecord:
        with self.db.write() as conn:
            self.get(key_id)
            self._revoke_where(conn, "id = ? AND status != 'revoked'", (key_id,))
        return self.get(key_id)

    def touch(self, key_id: str) -> None:
        """Count one authenticated request: ``last_used_at`` and ``request_count``
        (not durable: a power cut may lose the latest counts)."""
        with self.db.write(durable=False) as conn:
            conn.execute(
                "UPDATE api_keys SET last_used_at = ?, request_count = request_count + 1"
                " WHERE id = ?", (self.clock(), key_id))

    def _revoke_where(self, conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> None:
        rows = conn.execute(f"SELECT id, account_id, display FROM api_keys WHERE {where}",
                            params).fetchall()
        now = self.clock()
        for row in rows:
            conn.execute("UPDATE api_keys SET status = 'revoked', revoked_at = ? WHERE id = ?",
                         (now, row["id"]))
            self._audit(conn, "api_key.revoked", row["account_id"], row["id"], row["display"])

    def _audit(self, conn: sqlite3.Connection, action: str, account_id: str, key_id: str,
               display: str) -> None:
        import json

        conn.execute(
            "INSERT INTO audit_log (ts, action, account_id, detail) VALUES (?, ?, ?, ?)",
            (self.clock(), action, account_id, json.dumps({"key_id": key_id, "prefix": display})),
        )


class HashedKeyVerifier:
    """The default :class:`TokenVerifier`: API keys from the :class:`KeyStore`.

    It owns every credential that carries the service's key prefix.
    """

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def verify(self, service: str, credential: str) -> Actor | None:
        fmt = self.keys.formats.get(service)
        if fmt is None or not fmt.owns(credential):
            return None
        found = self.keys.lookup_with_account(service, credential)
        if found is None:
            raise UnknownCredential(service)
        key, account = found
        if key.status == "disabled":
            raise CredentialDisabled(service)
        if key.status != "active":
            raise CredentialRevoked(service)
        if account is None:
            account = self.keys.accounts.get(key.account_id)  # raises NotFoundError
        return Actor(account=account, via="key", key=key)


class TokenSigner:
    """Signed, expiring tokens for one host.

    ``secrets`` are oldest first: the newest signs, all verify. Every
    ``loads`` takes a ``max_age``; a token stamped up to ``skew`` seconds in
    the future (another host's clock) is accepted.
    """

    def __init__(self, secrets: Sequence[str], clock: Clock = system_clock, skew: int = 5) -> None:
        if not secrets:
            raise ConfigError("no signing secret: run `hepcore init` or set HEPCORE_SECRETS")
        self.secrets = list(secrets)
        self.clock = clock
        self.skew = skew

    def _serializer(self, purpose: str) -> itsdangerous.URLSafeTimedSerializer:
        clock = self.clock

        class _Signer(itsdangerous.TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        return itsdangerous.URLSafeTimedSerializer(
            self.secrets, salt=f"hepcore.{purpose}", signer=_Signer)

    def dumps(self, payload: Any, purpose: str) -> str:
        """Sign ``payload`` (JSON-serialisable) for ``purpose``."""
        return self._serializer(purpose).dumps(payload)

    def loads(self, token: str, purpose: str, max_age: int) -> Any:
        """Verify and return the payload; raises :class:`BadSignature` or :class:`TokenExpired`."""
        if not _canonical_signature(token):
            raise BadSignature(purpose)
        try:
            payload, stamped = self._serializer(purpose).loads(token, return_timestamp=True)
        except itsdangerous.BadData:
            raise BadSignature(purpose) from None
        age = self.clock() - stamped.timestamp()
        if age > max_age + self.skew or age < -self.skew:
            raise TokenExpired(purpose)
        return payload


def _canonical_signature(token: str) -> bool:
    """True when the signature is canonical base64. Its last character has unused
    low bits; without this check one token would verify under up to four spellings."""
    signature = token.rpartition(".")[2]
    try:
        return base64_encode(base64_decode(signature)).decode("ascii") == signature
    except (itsdangerous.BadData, ValueError):
        return False
