"""The sign-in service's API description (docs/paste.md, "Sessions and
private pastes"): the ``Doc`` of each route and the session cookie scheme,
referenced by the route declarations in :mod:`.service`. Every answer is
HTML or a redirect, never JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hepcore.apidoc import Doc, Param, Reply

Schema = Mapping[str, Any]

HTML = "text/html"
COOKIE_NAME = "hepcore_login"

SESSION: Schema = {
    "type": "apiKey", "in": "cookie", "name": COOKIE_NAME,
    "description": "The session cookie this service sets (signed, 14 days, HttpOnly, "
                   "SameSite=Lax); it ends at logout.",
}
AUTH_SCHEMES: Mapping[str, Mapping[str, Schema]] = {"session": {"session": SESSION}}

TOKEN = Param("token", "path", {"type": "string"},
              description="The signed one-time token of a link from `hepcore login-link` "
                          "(15 minutes, usable once).")

_PAGE_HEADERS: dict[str, Schema] = {
    "Cache-Control": {"type": "string", "const": "no-store"},
    "Content-Security-Policy": {"type": "string"},
    "X-Content-Type-Options": {"type": "string", "const": "nosniff"},
    "Referrer-Policy": {"type": "string", "const": "same-origin"},
}
_EMPTY_HTML = {HTML: {"type": "string", "maxLength": 0}}


def _page(status: int, description: str) -> Reply:
    return Reply(status, description, {HTML: {"type": "string"}}, _PAGE_HEADERS)


def _redirect(description: str, cookie_pattern: str) -> Reply:
    return Reply(303, description, _EMPTY_HTML, {
        "Location": {"type": "string", "pattern": "^/"},
        "Set-Cookie": {"type": "string", "pattern": cookie_pattern},
        "Cache-Control": {"type": "string", "const": "no-store"},
    })


INVALID_LINK = _page(400, "An HTML page: the link has expired, was already used, or its "
                          "account is gone")

CONFIRM_PAGE = Doc(
    params=(TOKEN,),
    replies=(_page(200, "An HTML page asking to confirm the sign-in, with a button that "
                        "POSTs to the same URL"), INVALID_LINK),
    description="Opening the link does not use it, so mail scanners and link previews "
                "cannot burn it.")

SIGN_IN = Doc(
    params=(
        TOKEN,
        Param("Sec-Fetch-Site", "header",
              description="When present it decides: anything but `same-origin` or `none` "
                          "is refused (403), whatever the `Origin`."),
        Param("Origin", "header",
              description="Checked only without `Sec-Fetch-Site`: when present, must be "
                          "this host's own origin or its public base URL's (else 403; "
                          "`null` too)."),
    ),
    replies=(
        _redirect("Signed in: a new session cookie, and a redirect to the link's local "
                  "`next` path", f"^{COOKIE_NAME}=[^;]+; Path=/; Max-Age=[0-9]+; HttpOnly"),
        INVALID_LINK,
        _page(403, "An HTML page: the request came from another site (login CSRF)"),
    ),
    description="Uses the link once. Requests without `Sec-Fetch-Site` and `Origin` "
                "(curl, old browsers) are taken as same-site.")

LOGOUT = Doc(
    replies=(_redirect("Signed out: the cookie's session ends on the server and the cookie "
                       "is cleared; a redirect to `/`",
                       f"^{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly"),
             _page(403, "An HTML page: the request came from another site (checked as for "
                        "the sign-in button)")),
    auth_optional=True,
    description="Without a valid session cookie it only clears the cookie.")
