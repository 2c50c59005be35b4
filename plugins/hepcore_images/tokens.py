"""Temporary upload tokens (images.md section 4): ``ut_`` + payload + ``.`` + signature.

The payload is compact JSON ``{"u": account, "k": key id, "exp": unix seconds}``
in base64url without padding; the signature is HMAC-SHA256 over the payload
part, made by itsdangerous with a key derived from the host's signing secrets
for the purpose ``hepcore.images.upload-token`` (newest secret signs, every
secret verifies). Tokens are stateless: they die when they expire, when the
parent key is revoked or when the owner is banned (checked by the service).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import itsdangerous

from hepcore.http import parse_json

PREFIX = "ut_"
PURPOSE = "hepcore.images.upload-token"


class BadUploadToken(Exception):
    """The token's signature or payload is wrong."""


class ExpiredUploadToken(Exception):
    """The token is genuine but its ``exp`` has passed."""


@dataclass(frozen=True)
class UploadClaims:
    account_id: str
    key_id: str
    exp: int


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _canonical_b64(text: str) -> bytes | None:
    """Decode unpadded base64url; ``None`` unless ``text`` is its one canonical spelling."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _b64encode(raw) == text else None


class UploadTokenCodec:
    """Mint and check ``ut_`` tokens with the host's signing secrets."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._signer = itsdangerous.Signer(
            list(secrets), salt=PURPOSE, sep=".", key_derivation="hmac",
            digest_method=hashlib.sha256)

    def mint(self, account_id: str, key_id: str, exp: int) -> str:
        payload = json.dumps({"u": account_id, "k": key_id, "exp": exp},
                             separators=(",", ":")).encode("utf-8")
        return PREFIX + self._signer.sign(_b64encode(payload)).decode("ascii")

    def check(self, token: str, now: float) -> UploadClaims:
        """The claims of a genuine, unexpired token; raises :class:`BadUploadToken`
        or :class:`ExpiredUploadToken`."""
        if not token.startswith(PREFIX) or not token.isascii():
            raise BadUploadToken()
        body = token[len(PREFIX):]
        payload_part, sep, signature = body.rpartition(".")
        if not sep or _canonical_b64(signature) is None:
            raise BadUploadToken()
        try:
            self._signer.unsign(body)
        except itsdangerous.BadSignature:
            raise BadUploadToken() from None
        raw = _canonical_b64(payload_part)
        try:
            data = parse_json(raw.decode("utf-8")) if raw is not None else None
        except ValueError:  # UnicodeDecodeError is one
            data = None
        if not isinstance(data, dict):
            raise BadUploadToken()
        account_id, key_id, exp = data.get("u"), data.get("k"), data.get("exp")
        if not (isinstance(account_id, str) and isinstance(key_id, str)
                and isinstance(exp, int) and not isinstance(exp, bool)):
            raise BadUploadToken()
        if now >= exp:
            raise ExpiredUploadToken()
        return UploadClaims(account_id, key_id, exp)
