"""Signing and delivering webhook events (images.md section 10.1).

:class:`Deliverer` is the body of the ``images-webhooks`` job: it claims due
outbox rows, POSTs each through the host's safe outbound fetcher (private
addresses refused unless the operator allows them, redirects not followed,
one time limit for the whole exchange) and records the outcome: a ``2xx``
deletes the row; anything else counts a failure on the endpoint and
schedules the next attempt with exponential backoff and jitter, until the
attempts are used up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from hepcore.config import ServiceConfig
from hepcore.errors import ConfigError

from .webhook_store import Delivery, WebhookStore

log = logging.getLogger("hepcore.images.webhooks")

JOB_NAME = "images-webhooks"
EVENT_HEADER = "X-Fixitfy-Event"
SIGNATURE_HEADER = "X-Fixitfy-Signature"
UPLOAD_FIELDS = ("filename", "url", "size", "mime", "width", "height", "hash_sha256")


def event_body(event: str, upload: Mapping[str, Any], timestamp: str) -> bytes:
    """The exact bytes of an event: compact JSON, members in the spec's order."""
    payload = {"event": event, "upload": {k: upload[k] for k in UPLOAD_FIELDS},
               "timestamp": timestamp}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``body`` keyed with the signing secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_headers(event: str, secret: str, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", EVENT_HEADER: event,
            SIGNATURE_HEADER: signature(secret, body)}


@dataclass(frozen=True)
class DeliverySettings:
    """The ``webhook_*`` options of ``[services.images]``.

    ``retry_delays`` are the waits after failed attempts 1, 2, ...; each is
    stretched by up to ``jitter`` (a fraction) at random. ``lease_seconds``
    is how long a claimed row stays with its worker; a worker that dies
    releases it only when the lease runs out, so it must exceed ``timeout``.
    """

    timeout: float = 8.0
    max_attempts: int = 5
    retry_delays: tuple[float, ...] = (30.0, 120.0, 480.0, 1920.0)
    jitter: float = 0.1
    lease_seconds: float = 60.0
    poll_seconds: float = 5.0
    concurrency: int = 8
    endpoint_limit: int = 10

    @classmethod
    def from_config(cls, config: ServiceConfig) -> DeliverySettings:
        """Read and check the ``webhook_*`` options of ``config`` (each recorded
        as read); a bad value is a :class:`ConfigError` naming it."""
        delays = config.raw("webhook_retry_delays", list(cls.retry_delays))
        if not isinstance(delays, list | tuple) or not delays or any(
                isinstance(d, bool) or not isinstance(d, int | float) or not d >= 0
                for d in delays):
            raise ConfigError(f"services.{config.name}.webhook_retry_delays must be a"
                              " non-empty list of seconds")
        settings = cls(
            timeout=config.number("webhook_timeout", cls.timeout, low=0.01),
            max_attempts=config.integer("webhook_max_attempts", cls.max_attempts, low=1),
            retry_delays=tuple(float(d) for d in delays),
            jitter=config.number("webhook_jitter", cls.jitter, low=0.0),
            lease_seconds=config.number("webhook_lease_seconds", cls.lease_seconds, low=0.01),
            poll_seconds=config.number("webhook_poll_seconds", cls.poll_seconds, low=0.01),
            concurrency=config.integer("webhook_concurrency", cls.concurrency, low=1),
            endpoint_limit=config.integer("webhook_limit", cls.endpoint_limit, low=1),
        )
        if settings.lease_seconds <= settings.timeout:
            raise ConfigError(f"services.{config.name}.webhook_lease_seconds must exceed"
                              " webhook_timeout")
        return settings

    def delay_after(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The wait after failed attempt ``attempt`` (1-based): the configured delay
        (the last one repeats) stretched by up to ``jitter``."""
        base = self.retry_delays[min(attempt, len(self.retry_delays)) - 1]
        return base * (1.0 + self.jitter * rand())


@dataclass(frozen=True)
class Outcome:
    """One attempt's result: ``ok``, or the status (``None`` without a response)
    and a short error text."""

    ok: bool
    status: int | None = None
    error: str = ""


class Deliverer:
    """Delivers due outbox rows; :meth:`run` is the job function."""

    def __init__(self, store: WebhookStore, fetcher_of: Callable[[], Any],
                 settings: DeliverySettings, clock: Callable[[], float],
                 time_budget: float = 60.0) -> None:
        self.store = store
        self._fetcher_of = fetcher_of
        self.settings = settings
        self.clock = clock
        self.time_budget = time_budget

    def run(self) -> int:
        """Deliver until nothing is due (or the time budget is spent); the number of
        attempts made. Up to ``concurrency`` deliveries are in flight at once, so a
        slow receiver does not hold up the others."""
        settings = self.settings
        deadline = time.monotonic() + self.time_budget
        attempts = 0
        with ThreadPoolExecutor(settings.concurrency,
                                thread_name_prefix="hepcore-webhook") as pool:
            inflight: dict[Future[Outcome], Delivery] = {}
            more = True
            while True:
                free = settings.concurrency - len(inflight)
                if more and free > 0 and time.monotonic() < deadline:
                    claimed = self.store.claim(free, settings.lease_seconds,
                                               settings.max_attempts)
                    more = len(claimed) == free
                    for delivery in claimed:
                        inflight[pool.submit(self.attempt, delivery)] = delivery
                if not inflight:
                    return attempts
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for future in done:
                    self.record(inflight.pop(future), future.result())
                    attempts += 1
                more = more or bool(done)

    def attempt(self, delivery: Delivery) -> Outcome:
        """POST one event; never raises. Runs on a pool thread: touches no database."""
        try:
            return self._post(delivery)
        except Exception as exc:  # a bug here must not stop the other deliveries
            log.exception("webhook delivery %s failed unexpectedly", delivery.id)
            return Outcome(False, None, f"internal error: {type(exc).__name__}")

    def _post(self, delivery: Delivery) -> Outcome:
        from hepcore import outbound

        secret = delivery.secret
        if secret is None:  # cannot happen: the first endpoint creates it
            return Outcome(False, None, "no signing secret")
        timeout = self.settings.timeout
        limits = outbound.OutboundPolicy(connect_timeout=timeout, read_timeout=timeout,
                                         total_timeout=timeout)
        try:
            with self._fetcher_of().open(
                    "POST", delivery.url, body=delivery.body, follow_redirects=False,
                    headers=delivery_headers(delivery.event, secret, delivery.body),
                    timeouts=limits) as response:
                status = int(response.status)
        except outbound.FetchError as exc:
            return Outcome(False, None, fetch_error_text(exc))
        if 200 <= status < 300:
            return Outcome(True, status)
        if 300 <= status < 400:
            return Outcome(False, status, "redirect not followed")
        return Outcome(False, status, f"HTTP {status}")

    def record(self, delivery: Delivery, outcome: Outcome) -> None:
        from hepcore.observe import count_webhook

        if outcome.ok:
            self.store.delivered(delivery)
            count_webhook("images", "delivered")
            return
        retry_at = None
        if delivery.attempt < self.settings.max_attempts:
            retry_at = self.clock() + self.settings.delay_after(delivery.attempt)
            count_webhook("images", "failed")
        else:
            count_webhook("images", "gave_up")
            log.warning("webhook event %s to %s dropped after %d attempts: %s", delivery.id,
                        delivery.endpoint_id, delivery.attempt, outcome.error)
        self.store.failed(delivery, outcome.status, outcome.error, retry_at)


def fetch_error_text(exc: Exception) -> str:
    """``last_error`` for a failed exchange: short, and free of the CDN's wording."""
    from hepcore import outbound

    for kind, text in ((outbound.FetchTimeout, "timeout"),
                       (outbound.DestinationBlocked, "destination not allowed"),
                       (outbound.ResolutionFailed, "could not resolve host"),
                       (outbound.InvalidURL, "invalid URL"),
                       (outbound.ConnectionFailed, "connection failed")):
        if isinstance(exc, kind):
            return text
    return "request failed"


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """The receiver's check (as in the docs): constant-time compare of the hex digest."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.split("=", 1)[1])

