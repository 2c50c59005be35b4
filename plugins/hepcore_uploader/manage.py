"""The management API for self-hosters (U13): ``/api/v1/*`` with the uploader token.

A mixin of :class:`~hepcore_uploader.service.UploaderService`: these handlers
use its authentication, item store and URL rules.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hepcore.clock import iso_ms, parse_iso
from hepcore.envelope import OkEnvelope
from hepcore.errors import (
    BadRequest,
    BodyTooLarge,
    Conflict,
    CredentialRevoked,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from hepcore.http import NOSNIFF, Request, Response, is_text, parse_json
from hepcore.tokens import Actor

from .store import Item
from .urls import canonical_host

if TYPE_CHECKING:
    from hepcore.config import ServiceConfig
    from hepcore.limits import Limit
    from hepcore.runtime import Runtime
    from hepcore.storage import Storage

    from .service import Policy
    from .store import ItemStore

ALIAS_RE = re.compile(r"[A-Za-z0-9._-]+")
LIMIT_RE = re.compile(r"[0-9]{1,9}")
# Spec 8.1's list, then names GET /<alias> could never reach: another route
# owns /openapi.json, and "." and ".." are dot-segments that URLs drop.
RESERVED = ("api", "upload", "uploadcounter", "favicon.ico", "robots.txt", "openapi.json", ".",
            "..")
JSON_LIMIT = 64 * 1024
ALIAS_CHARSET = 'Alias may only contain letters, numbers, ".", "-" and "_"'
INVALID_URL = "Invalid URL"
MAX_ALIAS = 32


def read_object(request: Request) -> dict[str, Any]:
    """The JSON object body; an empty body is ``{}``; 413 above :data:`JSON_LIMIT`."""
    try:
        raw = request.read_body(JSON_LIMIT)
    except BodyTooLarge:
        raise PayloadTooLarge("JSON body exceeds 64 KiB", code="TOO_LARGE") from None
    if not raw.strip():
        return {}
    try:
        data = parse_json(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is one
        raise BadRequest("Invalid JSON body") from None
    if not isinstance(data, dict):
        raise BadRequest("Invalid JSON body")
    return data


def field(data: dict[str, Any], name: str, kind: type, label: str, *, nullable: bool = False,
          not_text: str | None = None) -> Any:
    """``data[name]`` checked against ``kind`` (400 ``<name> must be a <label>``);
    a string must be encodable as UTF-8 (else 400 ``not_text``, the message of
    the field's own rule, by default ``<name> is not UTF-8``)."""
    value = data.get(name)
    if value is None:
        if name in data and not nullable:
            raise BadRequest(f"{name} must be a {label}")
        return None
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise BadRequest(f"{name} must be a {label}")
    if kind is str and not is_text(value):  # a lone surrogate, which JSON can spell (\ud800)
        raise BadRequest(not_text or f"{name} is not UTF-8")
    return value


class ManagementRoutes:
    """``/api/v1/me``, token regeneration, uploads list/patch/delete, shorten."""

    if TYPE_CHECKING:
        # Provided by UploaderService, which mixes this class in; mypy checks
        # that its definitions agree with these.
        name: str
        config: ServiceConfig
        runtime: Runtime
        items: ItemStore
        storage: Storage
        maintenance: bool
        shorten_limit: Limit
        serve_base_url: str | None
        service_name: str
        reserved_aliases: frozenset[str]
        extra_own_hosts: frozenset[str]

        def authenticate(self, request: Request) -> Actor: ...
        def admit(self, request: Request, limit: Limit | None = None, scope: str = "", *,
                  paused: bool = False) -> Actor: ...
        def policy(self, actor: Actor) -> Policy: ...
        def public_base(self, request: Request) -> str: ...
        def serve_base(self, request: Request | None, policy: Policy) -> str: ...
        def account_serve_hosts(self) -> dict[str, str]: ...
        def _insert(self, actor: Actor, *, slug_ext: str, slug: str | None = None,
                    **fields: Any) -> Item: ...
        def insert_named(self, actor: Actor, name: str, **fields: Any) -> Item: ...

    def item_json(self, item: Item, base: str) -> dict[str, Any]:
        return {
            "ID": item.id, "url": f"{base}/{item.id}", "kind": item.kind, "alias": item.alias,
            "favourite": item.favourite, "link": item.link,
            "name": item.name if item.kind != "link" else None,
            "type": item.type if item.kind != "link" else None,
            "size": item.size if item.kind != "link" else None,
            "views": item.views, "createdAt": iso_ms(item.created_at),
        }

    def api_me(self, request: Request) -> Response:
        actor = self.admit(request)
        account = actor.account
        policy = self.policy(actor)
        row = self.runtime.db.one(
            "SELECT count(*) FROM uploader_items WHERE account_id = ? AND deleted_at IS NULL",
            (account.id,))
        assert row is not None  # an aggregate query always returns one row
        (count,) = row
        return OkEnvelope.success({
            "id": account.id, "name": account.name,
            "serveUrl": self.serve_base(request, policy),
            "maxFileSize": policy.max_file_size, "allowedTypes": policy.allowed_types,
            "uploadCount": count, "createdAt": iso_ms(account.created_at),
        })

    def api_regenerate(self, request: Request) -> Response:
        actor = self.admit(request)
        assert actor.key is not None
        try:
            token, _ = self.runtime.keys.rotate(actor.key.id)
        except CredentialRevoked:  # another request rotated it since admit()
            raise Unauthorized("Token revoked") from None
        return OkEnvelope.success({"token": token}).never_stored()

    def api_uploads(self, request: Request) -> Response:
        actor = self.admit(request)
        raw_limit = request.query_value("limit")
        limit = 50
        if raw_limit is not None:
            # ASCII digits only: str.isdigit() accepts "²", which int() refuses (a 500)
            if not LIMIT_RE.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= 100:
                raise BadRequest("Invalid limit")
            limit = int(raw_limit)
        items, next_before = self.list_items(actor.account.id, kind=request.query_value("type"),
                                             limit=limit, before=request.query_value("before"))
        base = self.serve_base(request, self.policy(actor))
        return OkEnvelope.success({"uploads": [self.item_json(i, base) for i in items],
                                   "nextBefore": next_before})

    def list_items(self, account_id: str, *, kind: str | None = None,
                   limit: int = 50, before: str | None = None) -> tuple[list[Item], str | None]:
        """Live items newest first, and the cursor for the next page (8.4)."""
        if kind not in (None, "links", "files"):
            raise BadRequest("Invalid type")
        sql = "SELECT * FROM uploader_items WHERE account_id = ? AND deleted_at IS NULL"
        params: list[Any] = [account_id]
        if kind == "links":
            sql += " AND kind = 'link'"
        elif kind == "files":
            sql += " AND kind != 'link'"
        if before is not None:
            try:
                params.append(round(parse_iso(before), 3))
            except ValueError:
                raise BadRequest("Invalid before") from None
            sql += " AND created_at < ?"
        rows = self.runtime.db.all(sql + " ORDER BY created_at DESC LIMIT ?", [*params, limit + 1])
        items = [Item.from_row(r) for r in rows[:limit]]
        more = len(rows) > limit
        return items, (iso_ms(items[-1].created_at) if more and items else None)

    def own_item(self, account_id: str, content_id: str) -> Item:
        """8.5: an ID with or without extension, or an alias, among the account's items."""
        item = self.items.resolve(content_id, account_id)
        if item is None:
            raise NotFound("Not found")
        return item

    def api_patch(self, request: Request) -> Response:
        actor = self.admit(request)
        item = self.own_item(actor.account.id, request.params["content_id"])
        updated = self.update_item(item, read_object(request), self.public_base(request))
        return OkEnvelope.success(
            self.item_json(updated, self.serve_base(request, self.policy(actor))))

    def update_item(self, item: Item, data: dict[str, Any],
                    api_base: str | None) -> Item:
        """Apply ``alias``, ``favourite`` and ``link`` (8.5); unknown fields are ignored."""
        alias = field(data, "alias", str, "string", nullable=True, not_text=ALIAS_CHARSET)
        favourite = field(data, "favourite", bool, "boolean")
        link = field(data, "link", str, "string", not_text=INVALID_URL)
        if "link" in data:
            if item.kind != "link":
                raise BadRequest("Only shortlinks have a link")
            self.check_target(api_base, link or "")
        if "alias" in data and alias:
            self.check_alias(alias, item)
        with self.runtime.db.write() as conn:
            if "alias" in data:
                if alias:
                    if self._alias_taken(alias, item):
                        raise Conflict("Alias is already taken")
                    conn.execute("INSERT OR IGNORE INTO uploader_names (name, item_id)"
                                 " VALUES (?, ?)", (alias, item.id))
                conn.execute("UPDATE uploader_items SET alias = ? WHERE id = ?",
                             (alias or None, item.id))
            if favourite is not None:
                conn.execute("UPDATE uploader_items SET favourite = ? WHERE id = ?",
                             (int(favourite), item.id))
            if link is not None:
                conn.execute("UPDATE uploader_items SET link = ? WHERE id = ?",
                             (link.strip(), item.id))
        updated = self.items.get(item.id)
        assert updated is not None
        return updated

    def api_delete(self, request: Request) -> Response:
        actor = self.admit(request)
        item = self.delete_item(self.own_item(actor.account.id, request.params["content_id"]))
        return OkEnvelope.success({"ID": item.id, "deleted": True})

    def delete_item(self, item: Item) -> Item:
        """8.6: stop resolving at once, remove the bytes; the names stay taken."""
        with self.runtime.db.write() as conn:
            conn.execute("UPDATE uploader_items SET deleted_at = ? WHERE id = ?",
                         (self.runtime.clock(), item.id))
            if item.storage_key:
                self.runtime.pending.condemn(item.storage_key)
        if item.storage_key:
            self.runtime.pending.discard(item.storage_key)
        self.runtime.emit("upload.deleted", self.name, item.account_id, {"ID": item.id})
        return item

    def api_shorten(self, request: Request) -> Response:
        actor = self.admit(request, self.shorten_limit, "shorten", paused=self.maintenance)
        data = read_object(request)
        url = field(data, "url", str, "string", not_text=INVALID_URL)
        # null is no alias, as "" is here and null is on PATCH.
        alias = field(data, "alias", str, "string", nullable=True, not_text=ALIAS_CHARSET)
        item = self.shorten(actor, url or "", alias, self.public_base(request))
        base = self.serve_base(request, self.policy(actor))
        return Response.json({"ID": item.id, "url": f"{base}/{item.id}"})

    def shorten(self, actor: Actor, url: str, alias: str | None,
                api_base: str | None) -> Item:
        """8.7 steps 5-8: the target rules, the alias rules, then store."""
        target = url.strip()
        if not target:
            raise BadRequest("Missing url parameter")
        self.check_target(api_base, target)
        if alias:
            self.check_alias(alias)
            item = self.insert_named(actor, alias, kind="link", link=target)
        else:
            item = self._insert(actor, slug_ext="", kind="link", link=target)
        self.runtime.emit("upload.created", self.name, actor.account.id,
                          {"ID": item.id, "kind": "link", "link": target})
        return item

    # --- rules ------------------------------------------------------------

    def _alias_taken(self, alias: str, item: Item | None) -> bool:
        """Taken by any ID, slug or alias ever issued. ``item`` (PATCH) may keep its
        current alias, or take back one it had before, but not its own ID or slug."""
        row = self.runtime.db.one("SELECT item_id FROM uploader_names WHERE name = ?", (alias,))
        if row is None:
            return False
        return item is None or row["item_id"] != item.id or alias in (item.id, item.slug)

    def check_alias(self, alias: str, item: Item | None = None) -> None:
        if len(alias) > MAX_ALIAS:
            raise Forbidden("Alias must be 32 characters or fewer")
        if not ALIAS_RE.fullmatch(alias):  # "$" would let a trailing newline through
            raise BadRequest(ALIAS_CHARSET)
        if alias.lower() in self.reserved_aliases:
            raise BadRequest("Alias is reserved")
        if self._alias_taken(alias, item):
            raise Conflict("Alias is already taken")

    def check_target(self, api_base: str | None, target: str) -> None:
        """8.1 target rules; ``api_base`` is the API base URL requests arrive at."""
        from .service import is_shortlink

        if not is_shortlink(target.strip()):
            raise BadRequest(INVALID_URL)
        host = canonical_host(urlsplit(target.strip()).hostname or "")
        if self.is_own_host(api_base, host):
            raise BadRequest("Cannot shorten links to this site")

    def is_own_host(self, api_base: str | None, host: str) -> bool:
        """Whether ``host`` (canonical: :func:`~.urls.canonical_host`) is one this
        host serves, however a configured URL spells it."""
        api_host = canonical_host(urlsplit(api_base or self.config.public_base_url or "")
                                  .hostname or "")
        if host == api_host or (api_host and host.endswith("." + api_host)):
            return True
        if self.serve_base_url and host == canonical_host(
                urlsplit(self.serve_base_url).hostname or ""):
            return True
        if host in {canonical_host(h) for h in self.account_serve_hosts()}:
            return True
        return host in {canonical_host(h) for h in self.extra_own_hosts}

    def api_sharex(self, request: Request) -> Response:
        """A ``.sxcu`` for the calling token (it must be sent in the header anyway)."""
        from hepcore.auth_headers import uploader_header

        from .sharex import sxcu_bytes

        self.authenticate(request)
        token = uploader_header(request.header("authorization"))
        body = sxcu_bytes(api_base=self.public_base(request), token=token,
                          name=f"{self.service_name} ({request.host})")
        return Response(200, [
            ("Content-Type", "application/json"), NOSNIFF,
            ("Content-Disposition", 'attachment; filename="hepcore.sxcu"'),
            ("Cache-Control", "no-store")], body)
