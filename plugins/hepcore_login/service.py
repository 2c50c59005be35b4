"""The sign-in routes and the session cookie.

Links: ``runtime.signer`` tokens of purpose ``login.link`` carrying the
account, a random link id and where to go next; valid for
:data:`LINK_MAX_AGE` seconds and once (the ids of used links are recorded).
Sessions: tokens of purpose ``login.session`` in the ``hepcore_login``
cookie, valid for :data:`SESSION_MAX_AGE` seconds and while their session id
is in ``login_sessions`` (logging out deletes it, so a copied cookie stops
working at once).

``POST /login/:token`` refuses cross-site requests (:func:`hepcore.crosssite.cross_site`):
another site must not sign a visitor in to an account of its choosing (login
CSRF). The confirmation page is served with ``Referrer-Policy: same-origin``:
its button's POST then carries the page's ``Origin`` (under ``no-referrer`` it
would be ``null``), while other origins get no referrer, so the one-time token
in the URL does not leak.
"""

from __future__ import annotations

import html
import secrets
import sqlite3
from typing import Any
from urllib.parse import quote

from sqlite_utils.migrations import Migrations

from hepcore.crosssite import cross_site
from hepcore.envelope import OkEnvelope
from hepcore.errors import CredentialError, NotFoundError
from hepcore.http import Request, Response
from hepcore.service import Route, Service
from hepcore.tokens import Actor

from . import apidocs as docs

COOKIE = docs.COOKIE_NAME
LINK_PURPOSE = "login.link"
SESSION_PURPOSE = "login.session"
LINK_MAX_AGE = 15 * 60
SESSION_MAX_AGE = 14 * 86400
PAGE_CSP = ("default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self';"
            " base-uri 'none'; frame-ancestors 'none'")

# Same-origin requests (the button's POST) keep the Origin; other origins get
# no referrer, so the token in the page's URL stays here.
REFERRER_POLICY = "same-origin"

login_migrations = Migrations("hepcore_login")


@login_migrations()
def m001_used_links(db: Any) -> None:
    db.executescript(
        """
        CREATE TABLE login_used_links (
            link_id TEXT PRIMARY KEY,
            used_at REAL NOT NULL
        );
        """
    )


@login_migrations()
def m002_sessions(db: Any) -> None:
    db.executescript(
        """
        CREATE TABLE login_sessions (
            session_id TEXT PRIMARY KEY,
            account_id TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX login_sessions_created ON login_sessions(created_at);
        """
    )


def issue_link_token(runtime: Any, account_id: str, next_path: str = "/") -> str:
    """A one-time sign-in token for ``account_id`` (raises NotFoundError for none)."""
    runtime.accounts.get(account_id)
    return str(runtime.signer.dumps(
        {"a": account_id, "j": secrets.token_urlsafe(12), "n": safe_next(next_path)},
        LINK_PURPOSE))


def safe_next(path: str | None) -> str:
    """A local path to go to after signing in, as a ``Location`` header can
    carry it (non-ASCII characters percent-encoded as UTF-8, as browsers do);
    anything else means ``/``."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path \
            or any(ord(c) < 0x21 or 0x7F <= ord(c) <= 0x9F for c in path):
        return "/"
    if path.isascii():
        return path
    try:
        return quote(path, safe=_PRINTABLE_ASCII)
    except UnicodeEncodeError:  # a lone surrogate
        return "/"


_PRINTABLE_ASCII = "".join(map(chr, range(0x21, 0x7F)))


def cookie_values(header: str | None, name: str) -> list[str]:
    """The values of every cookie called ``name`` in a ``Cookie`` header, in
    order. Parsed by hand: other cookies with unusual values (``x=a b``, JSON)
    must not hide ours, as they do from :class:`http.cookies.SimpleCookie`."""
    values = []
    for part in (header or "").split(";"):
        key, eq, value = part.partition("=")
        if eq and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            values.append(value)
    return values


def _session_claims(request: Request, runtime: Any) -> dict[str, Any] | None:
    """The claims of the first valid session token among the request's cookies."""
    for value in cookie_values(request.header("cookie"), COOKIE):
        try:
            claims = runtime.signer.loads(value, SESSION_PURPOSE, max_age=SESSION_MAX_AGE)
        except CredentialError:
            continue
        if isinstance(claims, dict) and isinstance(claims.get("a"), str) \
                and isinstance(claims.get("s"), str):
            return claims
    return None


def session_actor(request: Request, runtime: Any) -> Actor | None:
    """The account of a valid ``hepcore_login`` cookie whose session has not
    ended, whatever the account's status (services decide what a suspended
    account may do); else ``None``."""
    raw = request.header("cookie")
    if not raw or COOKIE not in raw:
        return None
    claims = _session_claims(request, runtime)
    if claims is None or runtime.db.one(
            "SELECT 1 FROM login_sessions WHERE session_id = ? AND account_id = ?",
            (claims["s"], claims["a"])) is None:
        return None
    try:
        account = runtime.accounts.get(claims["a"])
    except NotFoundError:
        return None
    return Actor(account=account, via="session", claims=claims)


class LoginService(Service):
    """``GET /login/:token`` (a confirmation page), ``POST /login/:token`` (sign
    in), ``POST /login/logout``. It has no options of its own, so any key of
    ``[services.login]`` other than the mount's is refused (``strict_options``)."""

    name = "login"
    title = "hepcore sign-in"
    envelope = OkEnvelope()
    migrations = (login_migrations,)
    auth_schemes = docs.AUTH_SCHEMES
    strict_options = True

    def routes(self) -> list[Route]:
        return [
            Route(("POST",), "/logout", self.logout, "logout", "Sign out", auth="session",
                  doc=docs.LOGOUT),
            Route(("GET",), "/{token}", self.confirm_page, "login_page",
                  "Confirmation page of a sign-in link", doc=docs.CONFIRM_PAGE),
            Route(("POST",), "/{token}", self.sign_in, "login", "Use a sign-in link",
                  doc=docs.SIGN_IN),
        ]

    def _claims(self, token: str) -> dict[str, Any] | None:
        try:
            claims = self.runtime.signer.loads(token, LINK_PURPOSE, max_age=LINK_MAX_AGE)
        except CredentialError:
            return None
        return claims if isinstance(claims, dict) and "a" in claims and "j" in claims else None

    def confirm_page(self, request: Request) -> Response:
        """A GET does not use the link (mail scanners and link previews open
        links); the button on the page does."""
        claims = self._claims(request.params["token"])
        if claims is None or self._used(claims["j"]):
            return _page(400, "Sign-in link not valid",
                         "This link has expired or was already used. Ask for a new one.")
        try:
            account = self.runtime.accounts.get(claims["a"])
        except NotFoundError:
            return _page(400, "Sign-in link not valid", "The account no longer exists.")
        return _page(200, "Sign in", f"Sign in as <strong>{html.escape(account.name)}</strong>?",
                     form=True)

    def cross_site(self, request: Request) -> bool:
        """A request another site made the browser send (see
        :func:`hepcore.crosssite.cross_site`); its own origins are the request's and
        the public base URL's."""
        return cross_site(request, (request.base_url, self.public_base(request)))

    def sign_in(self, request: Request) -> Response:
        if self.cross_site(request):
            return _page(403, "Sign-in refused",
                         "This sign-in came from another site. Open the link yourself and"
                         " press the button on its page.")
        claims = self._claims(request.params["token"])
        if claims is None:
            return _page(400, "Sign-in link not valid",
                         "This link has expired or was already used. Ask for a new one.")
        location = safe_next(claims.get("n"))
        session_id = secrets.token_urlsafe(18)
        now = self.runtime.clock()
        try:
            self.runtime.accounts.get(claims["a"])
            with self.runtime.db.write() as conn:
                conn.execute("DELETE FROM login_used_links WHERE used_at < ?",
                             (now - LINK_MAX_AGE - 60,))
                conn.execute("INSERT INTO login_used_links (link_id, used_at) VALUES (?, ?)",
                             (claims["j"], now))
                conn.execute("DELETE FROM login_sessions WHERE created_at < ?",
                             (now - SESSION_MAX_AGE - 60,))
                conn.execute("INSERT INTO login_sessions (session_id, account_id, created_at)"
                             " VALUES (?, ?, ?)", (session_id, claims["a"], now))
        except (sqlite3.IntegrityError, NotFoundError):
            return _page(400, "Sign-in link not valid",
                         "This link has expired or was already used. Ask for a new one.")
        session = self.runtime.signer.dumps({"a": claims["a"], "s": session_id},
                                            SESSION_PURPOSE)
        cookie = (f"{COOKIE}={session}; Path=/; Max-Age={SESSION_MAX_AGE}; HttpOnly;"
                  " SameSite=Lax" + self._secure(request))
        return Response(303, [("Location", location), ("Set-Cookie", cookie),
                              ("Cache-Control", "no-store"),
                              ("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", "0")], b"")

    def logout(self, request: Request) -> Response:
        """Ends the cookie's session on the server too, then clears the cookie;
        refused (403 page) when another site made the browser send it, so no
        other site can sign a visitor out."""
        if self.cross_site(request):
            return _page(403, "Sign-out refused",
                         "This sign-out came from another site. Sign out from this site's"
                         " own pages.")
        claims = _session_claims(request, self.runtime)
        if claims is not None:
            self.runtime.db.write_one("DELETE FROM login_sessions WHERE session_id = ?",
                                      (claims["s"],))
        cookie = f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" + self._secure(request)
        return Response(303, [("Location", "/"), ("Set-Cookie", cookie),
                              ("Cache-Control", "no-store"),
                              ("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", "0")], b"")

    def _secure(self, request: Request) -> str:
        """``; Secure`` when the site is https: the request says so, or the public
        base URL does (TLS ends at a proxy that hepcore does not trust)."""
        https = request.scheme == "https" or \
            self.public_base(request).lower().startswith("https:")
        return "; Secure" if https else ""

    def _used(self, link_id: str) -> bool:
        return self.runtime.db.one("SELECT 1 FROM login_used_links WHERE link_id = ?",
                                   (link_id,)) is not None


def _page(status: int, title: str, body_html: str, *, form: bool = False) -> Response:
    nonce = secrets.token_urlsafe(18)
    button = ('<form method="post"><button type="submit">Sign in</button></form>'
              if form else "")
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="color-scheme" content="light dark"><title>{html.escape(title)}</title>'
        f'<style nonce="{nonce}">body{{font:16px/1.5 system-ui,sans-serif;margin:3rem auto;'
        f'max-width:32rem;padding:0 1rem}}button{{font:inherit;padding:.4rem 1.2rem}}</style>'
        f'</head><body><h1>{html.escape(title)}</h1><p>{body_html}</p>{button}</body></html>'
    )
    return Response(status, [("Content-Type", "text/html; charset=utf-8"),
                             ("Cache-Control", "no-store"),
                             ("X-Content-Type-Options", "nosniff"),
                             ("Referrer-Policy", REFERRER_POLICY),
                             ("Content-Security-Policy", PAGE_CSP.format(nonce=nonce))],
                    page.encode("utf-8"))
