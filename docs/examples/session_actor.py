"""A session hook: the signed-in user of your own login, from a signed cookie."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from hepcore import Actor, Request, Runtime, hookimpl
from hepcore.errors import CredentialError, NotFoundError

COOKIE = "hepcore_session"
PURPOSE = "session"
MAX_AGE = 14 * 86400


def session_cookie(runtime: Runtime, account_id: str) -> str:
    """The ``Set-Cookie`` value your login page sends once the password checks out."""
    token = runtime.signer.dumps({"account": account_id}, PURPOSE)
    return f"{COOKIE}={token}; Path=/; Max-Age={MAX_AGE}; HttpOnly; Secure; SameSite=Lax"


@hookimpl
def hepcore_session_actor(request: Request, runtime: Runtime) -> Actor | None:
    cookie = SimpleCookie()
    try:
        cookie.load(request.header("cookie") or "")
    except CookieError:
        return None
    morsel = cookie.get(COOKIE)
    if morsel is None:
        return None
    try:
        claims = runtime.signer.loads(morsel.value, PURPOSE, max_age=MAX_AGE)
        account = runtime.accounts.get(claims["account"])
    except (CredentialError, NotFoundError):
        return None  # tampered, expired, or the account is gone: not signed in
    if not account.active:
        return None
    return Actor(account=account, via="session", claims=claims)
