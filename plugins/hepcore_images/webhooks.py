"""Webhooks of the image service (images.md section 10): the outbox, the delivery
job and the key-authenticated ``/api/v1/webhooks`` API.

The images service builds one :class:`Webhooks` with itself, adds
:attr:`Webhooks.migrations` to its own, mounts :meth:`Webhooks.routes`, calls
:meth:`Webhooks.start` from its ``start()`` and :meth:`Webhooks.enqueue`
inside the transaction that inserts an upload.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hepcore.apidoc import JSON, Body, Doc, ref
from hepcore.clock import iso_ms
from hepcore.envelope import CodeEnvelope
from hepcore.http import Request, Response, is_text
from hepcore.service import Route

from .apidocs import (
    BAD_LENGTH_REPLY,
    KEY_AUTH,
    KEY_ERRORS,
    WEBHOOK_ID_PARAM,
    WEBHOOK_NOT_FOUND_REPLY,
    bad_request,
    ok,
)
from .errors import INVALID_JSON, WEBHOOK_NOT_FOUND, ImagesBadRequest, ImagesNotFound
from .jsonbody import read_json_object
from .webhook_delivery import JOB_NAME, Deliverer, DeliverySettings, event_body
from .webhook_store import Endpoint, WebhookStore, webhook_migrations

if TYPE_CHECKING:
    from hepcore.tokens import Actor

MAX_URL_LENGTH = 2048
BAD_URL = "url must be an absolute http(s) URL."
URL_WITH_CREDENTIALS = ("url must not contain a user name or password; authenticate"
                        " deliveries by their X-Fixitfy-Signature.")
BAD_ENABLED = "enabled must be a boolean."


def check_url(value: object) -> str:
    """``value`` if :func:`valid_url`, else :class:`ImagesBadRequest` with the
    message that says what is wrong."""
    if valid_url(value):
        return str(value)
    if isinstance(value, str) and valid_url(_without_userinfo(value)):
        raise ImagesBadRequest(URL_WITH_CREDENTIALS)
    raise ImagesBadRequest(BAD_URL)


def _without_userinfo(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}"


def valid_url(value: object) -> bool:
    """An absolute ``http``/``https`` URL with a host, at most 2048 characters, no
    whitespace or control characters, and no user name or password (the
    outbound fetcher refuses those); text, so that it can be stored (a command
    line argument that is not UTF-8 holds lone surrogates)."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL_LENGTH:
        return False
    if not is_text(value):
        return False
    if not value.isprintable() or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(host) and "@" not in parts.netloc


def webhook_json(endpoint: Endpoint) -> dict[str, Any]:
    """The webhook object of section 10.2."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "enabled": endpoint.enabled,
        "created_at": iso_ms(endpoint.created_at),
        "failure_count": endpoint.failure_count,
        "last_status": endpoint.last_status,
        "last_error": endpoint.last_error,
        "last_failure_at": (iso_ms(endpoint.last_failure_at)
                            if endpoint.last_failure_at is not None else None),
    }


class Webhooks:
    """Webhook endpoints, signing secrets, the outbox and its delivery job.

    ``service`` is the images service (``runtime``, ``config``,
    ``authenticate_management``). Options come from ``[services.images]``
    (``webhook_*``, see :class:`DeliverySettings`).
    """

    migrations = webhook_migrations

    def __init__(self, service: Any) -> None:
        self.service = service
        self.runtime = service.runtime
        self.settings = DeliverySettings.from_config(service.config)
        self.store = WebhookStore(self.runtime.db, self.runtime.clock)
        self.deliverer = Deliverer(self.store, lambda: self.runtime.fetcher, self.settings,
                                   self.runtime.clock)

    # --- the outbox ------------------------------------------------------------------

    def enqueue(self, conn: sqlite3.Connection, account_id: str, event: str,
                data: Mapping[str, Any]) -> None:
        """Write the event for every enabled endpoint of the account, on ``conn``
        inside the caller's open transaction (the upload's), and wake the job.

        ``data`` holds the upload's response fields (``filename``, ``url``,
        ``size``, ``mime``, ``width``, ``height``, ``hash_sha256``; others are
        ignored) and its creation time, as ``created_at`` (UNIX seconds) or
        ``timestamp`` (G1 string). The body bytes are fixed here, so every
        attempt sends the same bytes. The wake is safe before the commit: the
        job's first statement is a write transaction, which waits for this one.
        """
        if "timestamp" in data:
            timestamp = str(data["timestamp"])
        else:
            timestamp = iso_ms(float(data["created_at"]))
        body = event_body(event, data, timestamp)
        if self.store.enqueue(conn, account_id, event, body, self.runtime.clock()):
            self.runtime.jobs.wake(JOB_NAME)

    def start(self) -> None:
        """Register the delivery job (run every ``webhook_poll_seconds`` and on wake)."""
        self.runtime.jobs.every(JOB_NAME, self.settings.poll_seconds, self.deliver_due)

    def deliver_due(self) -> int:
        """Deliver every due event now (the job's body); the number of attempts made."""
        return self.deliverer.run()

    # --- operations shared by the API and the CLI -----------------------------------------

    def list(self, account_id: str) -> tuple[str | None, list[Endpoint]]:
        return self.store.secret(account_id), self.store.list(account_id)

    def create(self, account_id: str, url: object, enabled: object = True) -> tuple[Endpoint, str]:
        """Validate and add an endpoint; 400 ``bad_request`` with 10.2's messages."""
        url = check_url(url)
        if not isinstance(enabled, bool):
            raise ImagesBadRequest(BAD_ENABLED)
        limit = self.settings.endpoint_limit
        made = self.store.create(account_id, url, enabled, limit)
        if made is None:
            raise ImagesBadRequest(f"Webhook limit reached ({limit}).")
        return made

    def get(self, account_id: str, endpoint_id: str) -> Endpoint:
        """The account's endpoint; 404 ``not_found`` ``Webhook not found.`` otherwise."""
        endpoint = self.store.get(account_id, endpoint_id)
        if endpoint is None:
            raise ImagesNotFound(WEBHOOK_NOT_FOUND)
        return endpoint

    def update(self, endpoint: Endpoint, changes: Mapping[str, Any]) -> Endpoint:
        """Apply ``url`` and/or ``enabled`` (other members are ignored)."""
        url = changes.get("url")
        if "url" in changes:
            check_url(url)
        enabled = changes.get("enabled")
        if "enabled" in changes and not isinstance(enabled, bool):
            raise ImagesBadRequest(BAD_ENABLED)
        return self.store.update(endpoint, url=url, enabled=enabled)

    def delete(self, endpoint: Endpoint) -> None:
        if not self.store.delete(endpoint):
            raise ImagesNotFound(WEBHOOK_NOT_FOUND)

    def rotate_secret(self, account_id: str) -> str:
        return self.store.rotate_secret(account_id)

    # --- the API (section 10.2) -----------------------------------------------------------

    def routes(self) -> builtins.list[Route]:
        return [
            Route(("GET",), "/api/v1/webhooks", self.api_list, "images.webhooks.list",
                  "the account's webhooks and signing secret", KEY_AUTH, doc=Doc(
                      replies=(ok("The signing secret and every endpoint", "WebhookList"),
                               BAD_LENGTH_REPLY, *KEY_ERRORS))),
            Route(("POST",), "/api/v1/webhooks", self.api_create, "images.webhooks.create",
                  "add a webhook endpoint", KEY_AUTH, doc=Doc(
                      body=Body({JSON: ref("WebhookCreate")}),
                      description="At most 10 endpoints per account (configurable). "
                                  "Deliveries go out only to addresses the outbound policy "
                                  "allows (private ones are refused unless allowed).",
                      replies=(ok("The new endpoint and the account's signing secret "
                                  "(made with the first endpoint)", "WebhookCreated"),
                               bad_request(INVALID_JSON, BAD_URL, URL_WITH_CREDENTIALS,
                                           BAD_ENABLED,
                                           "Webhook limit reached (10)."),
                               *KEY_ERRORS))),
            Route(("POST",), "/api/v1/webhooks/rotate-secret", self.api_rotate,
                  "images.webhooks.rotate", "replace the signing secret", KEY_AUTH, doc=Doc(
                      replies=(ok("The new secret; the old one stops signing at once",
                                  "SecretRotated"), BAD_LENGTH_REPLY, *KEY_ERRORS))),
            Route(("PATCH",), "/api/v1/webhooks/{webhook_id}", self.api_update,
                  "images.webhooks.update", "change a webhook's url or enabled flag",
                  KEY_AUTH, doc=Doc(
                      params=(WEBHOOK_ID_PARAM,), body=Body({JSON: ref("WebhookChange")}),
                      replies=(ok("The changed endpoint", "WebhookReply"),
                               bad_request(INVALID_JSON, BAD_URL, URL_WITH_CREDENTIALS,
                                           BAD_ENABLED),
                               WEBHOOK_NOT_FOUND_REPLY, *KEY_ERRORS),
                      description="Disabling an endpoint cancels its pending deliveries.")),
            Route(("DELETE",), "/api/v1/webhooks/{webhook_id}", self.api_delete,
                  "images.webhooks.delete", "delete a webhook and its pending deliveries",
                  KEY_AUTH, doc=Doc(
                      params=(WEBHOOK_ID_PARAM,),
                      replies=(ok("Deleted", "WebhookDeleted"), WEBHOOK_NOT_FOUND_REPLY,
                               BAD_LENGTH_REPLY, *KEY_ERRORS))),
        ]

    def _actor(self, request: Request) -> Actor:
        actor: Actor = self.service.authenticate_management(request)
        return actor

    def api_list(self, request: Request) -> Response:
        actor = self._actor(request)
        secret, endpoints = self.list(actor.account.id)
        return CodeEnvelope.success(signing_secret=secret,
                                    webhooks=[webhook_json(e) for e in endpoints]).never_stored()

    def api_create(self, request: Request) -> Response:
        actor = self._actor(request)
        body = read_json_object(request)
        endpoint, secret = self.create(actor.account.id, body.get("url"),
                                       body.get("enabled", True))
        return CodeEnvelope.success(webhook=webhook_json(endpoint),
                                    signing_secret=secret).never_stored()

    def api_update(self, request: Request) -> Response:
        actor = self._actor(request)
        endpoint = self.get(actor.account.id, request.params["webhook_id"])
        endpoint = self.update(endpoint, read_json_object(request))
        return CodeEnvelope.success(webhook=webhook_json(endpoint))

    def api_delete(self, request: Request) -> Response:
        actor = self._actor(request)
        endpoint = self.get(actor.account.id, request.params["webhook_id"])
        self.delete(endpoint)
        return CodeEnvelope.success(deleted=endpoint.id)

    def api_rotate(self, request: Request) -> Response:
        actor = self._actor(request)
        return CodeEnvelope.success(
            signing_secret=self.rotate_secret(actor.account.id)).never_stored()
