"""A token verifier: short-lived signed upload tokens (``hut_...``) that a host
hands to a browser, accepted by the uploader next to its API keys."""

from __future__ import annotations

from typing import Any

from hepcore import Actor, Runtime, hookimpl
from hepcore.errors import NotFoundError, UnknownCredential

PREFIX = "hut_"
PURPOSE = "upload-token"
MAX_AGE = 15 * 60


def issue_upload_token(runtime: Runtime, account_id: str) -> str:
    """A token that uploads as ``account_id`` for the next 15 minutes."""
    return PREFIX + runtime.signer.dumps({"account": account_id}, PURPOSE)


class SignedUploadTokens:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def verify(self, service: str, credential: str) -> Actor | None:
        if service != "uploader" or not credential.startswith(PREFIX):
            return None  # not ours: the next verifier may own it
        # Ours from here on: a bad one raises (BadSignature, TokenExpired, ...).
        claims = self.runtime.signer.loads(credential[len(PREFIX):], PURPOSE, max_age=MAX_AGE)
        try:
            account = self.runtime.accounts.get(claims["account"])
        except NotFoundError:
            raise UnknownCredential(service) from None
        return Actor(account=account, via="token", claims=claims)


@hookimpl
def hepcore_token_verifiers(runtime: Runtime) -> list[Any]:
    return [SignedUploadTokens(runtime)]
