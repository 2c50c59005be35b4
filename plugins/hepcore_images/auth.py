"""Authentication and rate limits of the image service (images.md sections 2 and 9).

A mixin of :class:`~hepcore_images.service.ImagesService`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hepcore.accounts import Account
from hepcore.auth_headers import MalformedCredential, MissingCredential, bearer_header
from hepcore.errors import CredentialError, NotFoundError
from hepcore.http import Request
from hepcore.limits import Limit
from hepcore.tokens import Actor

from .errors import (
    INVALID_KEY,
    INVALID_TOKEN,
    MALFORMED_AUTH,
    MISSING_AUTH,
    TOKEN_EXPIRED,
    TOKEN_UPLOAD_ONLY,
    ImagesBanned,
    ImagesRateLimited,
    ImagesUnauthorized,
)
from .tokens import PREFIX as TOKEN_PREFIX
from .tokens import BadUploadToken, ExpiredUploadToken

if TYPE_CHECKING:
    from hepcore.runtime import Runtime

    from .tokens import UploadTokenCodec

KEY_PREFIX = "fxf_"
BANNED_STATUSES = ("banned", "suspended")


def is_banned(account: Account) -> bool:
    """The account's ``banned`` flag: core status ``banned`` (or ``suspended``)."""
    return account.status in BANNED_STATUSES


class Authentication:
    if TYPE_CHECKING:
        # Provided by ImagesService, which mixes this class in; mypy checks
        # that its definitions agree with these.
        name: str
        runtime: Runtime
        upload_limits: list[Limit]
        manage_limits: list[Limit]
        limit_messages: dict[str, str]

        @property
        def token_codec(self) -> UploadTokenCodec: ...

    def credential(self, request: Request) -> str:
        """The ``Bearer`` credential, or 401 with section 2's message."""
        try:
            return bearer_header(request.header("authorization"))
        except MissingCredential:
            raise ImagesUnauthorized(MISSING_AUTH) from None
        except MalformedCredential:
            raise ImagesUnauthorized(MALFORMED_AUTH) from None

    def key_actor(self, credential: str) -> Actor:
        """An active ``fxf_`` key's actor; 401 for anything else, 403 for a banned owner."""
        if credential.startswith(TOKEN_PREFIX):
            raise ImagesUnauthorized(TOKEN_UPLOAD_ONLY)
        if not credential.startswith(KEY_PREFIX):
            raise ImagesUnauthorized(INVALID_KEY)
        try:
            actor = self.runtime.verify(self.name, credential)
        except (CredentialError, NotFoundError):
            raise ImagesUnauthorized(INVALID_KEY) from None
        if actor.key is None or actor.key.service != self.name:
            raise ImagesUnauthorized(INVALID_KEY)
        if is_banned(actor.account):
            raise ImagesBanned()
        return actor

    def token_actor(self, credential: str) -> Actor:
        """A live ``ut_`` token's actor: its parent key must be active, its owner not banned."""
        try:
            claims = self.token_codec.check(credential, self.runtime.clock())
        except BadUploadToken:
            raise ImagesUnauthorized(INVALID_TOKEN) from None
        except ExpiredUploadToken:
            raise ImagesUnauthorized(TOKEN_EXPIRED) from None
        try:
            key = self.runtime.keys.get(claims.key_id)
            account = self.runtime.accounts.get(key.account_id)
        except NotFoundError:
            raise ImagesUnauthorized(INVALID_TOKEN) from None
        if key.service != self.name or key.status != "active" or key.account_id != claims.account_id:
            raise ImagesUnauthorized(INVALID_TOKEN)
        if is_banned(account):
            raise ImagesBanned()
        return Actor(account=account, via="token", key=key,
                     claims={"u": claims.account_id, "k": claims.key_id, "exp": claims.exp})

    def authenticate_management(self, request: Request) -> Actor:
        """Every ``/api/v1/*`` route except the upload: an ``fxf_`` key only.

        Raises 401 ``unauthorized`` / 403 ``banned`` (section 2), then counts the
        request on the key (``request_count``, ``last_used_at``) and in the
        management bucket (120/min per key) in one transaction; over the limit
        raises 429 ``rate_limit`` with ``Retry-After``.
        """
        actor = self.key_actor(self.credential(request))
        self.admit(actor, self.manage_limits, "manage")
        return actor

    def authenticate_upload(self, request: Request) -> Actor:
        """``POST /api/v1/upload``: an ``fxf_`` key or a ``ut_`` token, counted on the
        (parent) key and in the upload buckets (30/min, 2000/day per key)."""
        credential = self.credential(request)
        if credential.startswith(TOKEN_PREFIX):
            actor = self.token_actor(credential)
        else:
            actor = self.key_actor(credential)
        self.admit(actor, self.upload_limits, "upload")
        return actor

    def admit(self, actor: Actor, limits: list[Limit], bucket: str) -> None:
        assert actor.key is not None
        with self.runtime.db.write(durable=False):
            self.runtime.keys.touch(actor.key.id)
            decision = self.runtime.limiter.hit(f"images:{bucket}:{actor.key.id}", limits)
        if not decision.allowed:
            limit = decision.limit
            assert limit is not None
            raise ImagesRateLimited(self.limit_messages[limit.name],
                                    retry_after=decision.retry_after,
                                    code="rate_limit_day" if limit.name == "day" else None)
