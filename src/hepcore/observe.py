"""What a host tells its operators: Prometheus metrics and the access log.

Metrics are ``prometheus_client`` objects. Under ``hepcore serve`` every
worker process writes them to ``$PROMETHEUS_MULTIPROC_DIR`` (the CLI points
it at ``<data>/metrics`` and empties it at start-up), so ``/metrics``
answers for the whole host whichever worker takes the scrape.

The access log is one JSON object per request on the ``hepcore.access``
logger: a request id (the client's ``X-Request-Id`` when it is sane, else a
fresh one), method, path, route, service, status, duration and client
address. It never holds query strings, headers or request bodies, and path
segments captured under a name containing ``token``, ``secret`` or ``key``
are replaced by ``[redacted]``, so credentials never reach the log. A path
that matches no route is cut where such a route's parameter would begin
(``/api/delete/[redacted]``), so a near miss (a trailing slash) keeps its
credential out of the log too.
"""

from __future__ import annotations

import logging
import os
import random
import re
import sys
import time
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring_ascii as _quoted
from typing import Any, TextIO

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from .errors import QuotaExceeded, RateLimited, ServiceError

access_log = logging.getLogger("hepcore.access")

REQUESTS = Counter("hepcore_requests_total", "Requests answered",
                   ["service", "route", "method", "status"])
LATENCY = Histogram("hepcore_request_duration_seconds",
                    "Time to produce the response (streamed bodies not included)",
                    ["service", "route"],
                    buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
UPLOADED = Counter("hepcore_uploaded_bytes_total", "Bytes of request bodies read",
                   ["service"])
SERVED = Counter("hepcore_served_bytes_total", "Bytes of file bodies served", ["service"])
REFUSALS = Counter("hepcore_refusals_total", "Requests refused by a rate limit or a quota",
                   ["service", "kind"])
WEBHOOKS = Counter("hepcore_webhook_deliveries_total", "Webhook delivery attempts by outcome",
                   ["service", "outcome"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_SECRET_PARAM = re.compile(r"token|secret|key", re.IGNORECASE)


def request_id(incoming: str | None) -> str:
    """The client's id when it is short and plain, else a new random one
    (16 hex digits)."""
    if incoming and _REQUEST_ID.fullmatch(incoming):
        return incoming
    # An id correlates log lines and guards nothing, so it need not come from
    # the OS (os.urandom is a system call on every request). The generator is
    # seeded from the OS and again in every forked worker.
    return f"{random.getrandbits(64):016x}"


def refusal_kind(err: ServiceError) -> str | None:
    """``rate_limit``, ``quota`` or ``None`` for an error a service answered with."""
    if isinstance(err, RateLimited):
        return "rate_limit"
    if isinstance(err, QuotaExceeded) or err.status == 402:
        return "quota"
    return None


def count_refusal(service: str, err: ServiceError) -> None:
    kind = refusal_kind(err)
    if kind is not None:
        REFUSALS.labels(service, kind).inc()


def count_webhook(service: str, outcome: str) -> None:
    """``outcome``: ``delivered``, ``failed`` (will retry) or ``gave_up``."""
    WEBHOOKS.labels(service, outcome).inc()


def redacted_path(path: str, params: Mapping[str, object]) -> str:
    """``path`` with the values of secret-looking route parameters replaced."""
    for name, value in params.items():
        if value and _SECRET_PARAM.search(name):
            path = path.replace(str(value), "[redacted]")
    return path


_PARAM = re.compile(r"\{([^}]*)\}")


def secret_prefixes(templates: Iterable[str]) -> tuple[str, ...]:
    """The literal beginnings, lower-case and shortest first, of the route
    ``templates`` (full paths) that capture a secret-looking parameter."""
    found = {template[:template.index("{")].lower() for template in templates
             if any(_SECRET_PARAM.search(name) for name in _PARAM.findall(template))}
    return tuple(sorted(found, key=len))


def unmatched_path(path: str, prefixes: tuple[str, ...]) -> str:
    """``path``, which matched no route, cut after the first of ``prefixes``
    (see :func:`secret_prefixes`) it begins with, whatever the case: what
    follows may be a credential sent to a near miss of its route."""
    for prefix in prefixes:
        if len(path) > len(prefix) and path[:len(prefix)].lower() == prefix:
            return path[:len(prefix)] + "[redacted]"
    return path


# The labelled children of REQUESTS and LATENCY by (service, route, method,
# status): ``labels()`` validates and locks on every call, and this runs on
# every request. A bounded set: routes and statuses are finite.
_children: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}


def record(*, service: str, route: str, method: str, status: int, seconds: float,
           uploaded: int, served: int | None, rid: str, path: str, client_ip: str,
           log: bool = True) -> None:
    """Count one answered request and write its access-log line."""
    key = (service, route, method, status)
    children = _children.get(key)
    if children is None:
        children = _children[key] = (REQUESTS.labels(service, route, method, str(status)),
                                     LATENCY.labels(service, route))
    children[0].inc()
    children[1].observe(seconds)
    if uploaded:
        UPLOADED.labels(service).inc(uploaded)
    if served:
        SERVED.labels(service).inc(served)
    if log and access_log.isEnabledFor(logging.INFO):
        # Compact JSON, as json.dumps(..., separators=(",", ":")) writes it, built
        # directly: the encoder's set-up per call cost more than the line.
        line = (f'{{"ts":{round(time.time(), 3)!r},"request_id":{_quoted(rid)},'
                f'"method":{_quoted(method)},"path":{_quoted(path)},'
                f'"route":{_quoted(route)},"service":{_quoted(service)},"status":{status:d},'
                f'"ms":{round(seconds * 1000, 2)!r},"client":{_quoted(client_ip)}}}')
        handlers = access_log.handlers
        if (len(handlers) == 1 and isinstance(handlers[0], _LineHandler)
                and handlers[0].takes_lines() and not access_log.filters
                and not access_log.propagate and not access_log.disabled):
            handlers[0].write_line(line)
        else:
            access_log.info(line)


class _LineHandler(logging.StreamHandler[TextIO]):
    """The access log's default handler: each message as one line of the stream.

    While it is the logger's only handler, with its own formatter, no filters
    on either and no propagation, :func:`record` hands it the line directly:
    a ``LogRecord`` (caller lookup, thread and process names) would cost more
    than everything else in the line, and this handler uses none of it. Any
    other logging set-up gets ordinary records.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.plain = logging.Formatter("%(message)s")
        self.setFormatter(self.plain)

    def takes_lines(self) -> bool:
        """Whether :meth:`write_line` writes what :meth:`emit` would."""
        return (self.formatter is self.plain and not self.filters
                and self.level <= logging.INFO)

    def write_line(self, line: str) -> None:
        """Write ``line`` and a newline, and flush, as :meth:`emit` would."""
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            try:
                self.stream.write(line + self.terminator)
                self.stream.flush()
            except Exception:  # noqa: BLE001 - as emit(): report, never fail the request
                self.handleError(logging.makeLogRecord({"msg": line}))


def prepare_worker(access_log_stream: bool = True) -> None:
    """Set up metrics and the access log in a serving process, before it serves.

    With ``$PROMETHEUS_MULTIPROC_DIR`` set, metric values go to files there
    (``prometheus_client`` picks its value class at import, which may have
    happened before the variable was set, in a server's master process).
    The access log goes to stdout, one JSON object per line, unless a
    handler is configured already.
    """
    from prometheus_client import values

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and values.ValueClass is values.MutexValue:
        values.ValueClass = values.get_value_class()
    if access_log_stream and not access_log.handlers:
        access_log.addHandler(_LineHandler(sys.stdout))
        access_log.setLevel(logging.INFO)
        access_log.propagate = False


def exposition() -> bytes:
    """The metrics in Prometheus' text format, for every worker of the host."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)
