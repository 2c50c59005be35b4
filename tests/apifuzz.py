"""Schema fuzzing: schemathesis in-process against one service's own OpenAPI
document, under the app kind the test runs.

Every operation gets valid (positive) and invalid (negative) requests, a
bounded number of each (``HEPCORE_FUZZ_EXAMPLES``, default 25), sent with the
given real credentials (``Authorization`` as schemathesis auth, so that
negative cases may leave it out). The checks: no 5xx; every status, content type,
header and body matches the document; invalid input is refused (4xx); an
operation that requires auth refuses requests without it and with a wrong
credential. Failures of every operation are gathered and reported together.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("HEPCORE_FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


def validate_document(document: Mapping[str, Any]) -> list[str]:
    """Where ``document`` breaks the OpenAPI 3.1 schema (empty when valid)."""
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

    return [f"{'/'.join(map(str, e.instance_path))}: {e.message}"
            for e in OPENAPI_31_VALIDATOR.iter_errors(document)]


def load_schema(app: Any, asgi: bool, path: str = "/openapi.json") -> Any:
    """The service's document, fetched from the app itself."""
    loader = schemathesis.openapi.from_asgi if asgi else schemathesis.openapi.from_wsgi
    return loader(path, app)


def fuzz(app: Any, asgi: bool, *, path: str = "/openapi.json",
         headers: Mapping[str, str] | None = None, examples: int = EXAMPLES,
         skip: Iterable[str] = (), modes: Iterable[GenerationMode] = (
             GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
         server_errors: Iterable[int] = ()) -> list[str]:
    """Fuzz every operation (except labels in ``skip``, e.g. ``"POST /upload"``);
    return one report per failing (operation, mode), empty when all passed.

    ``server_errors`` are 5xx statuses that are the documented answer to some
    input (oEmbed's 501 for an unsupported format); the status-code check
    still refuses any that a route's document does not list."""
    schema = load_schema(app, asgi, path)
    headers = dict(headers or {})
    credential = headers.pop("Authorization", None)
    if credential is not None:
        # As schemathesis auth, not an explicit header: a negative case that
        # leaves the credential out is then really sent without it.
        @schema.auth(refresh_interval=None)
        class _Credential:
            def get(self, case: Any, context: Any) -> str:
                return credential

            def set(self, case: Any, data: str, context: Any) -> None:
                case.headers = {**(case.headers or {}), "Authorization": data}

    expected = [str(status) for status in server_errors]
    if expected:
        from schemathesis.config import NotAServerErrorConfig

        schema.config.checks.not_a_server_error = NotAServerErrorConfig(
            expected_statuses=["2xx", "3xx", "4xx", *expected])
    skipped = set(skip)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in skipped:
            continue
        operations += 1
        for mode in modes:
            failure = _run(operation, mode, headers, examples)
            if failure:
                failures.append(f"{operation.label} [{mode.value}]\n{failure}")
    assert operations, "the document has no operations"
    return failures


def _run(operation: Any, mode: GenerationMode, headers: dict[str, str],
         examples: int) -> str | None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:  # nothing to vary, e.g. no invalid form of a parameterless GET
        return None
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 (reported, not raised)
        report = str(exc)
        # Long reports keep their end: the curl line that reproduces the failure.
        return report if len(report) <= 3000 else report[:1500] + "\n[...]\n" + report[-1500:]
    return None
