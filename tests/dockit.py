"""The curl examples of a service's docs page: extract them, tell which route
each one calls, list the routes no example calls, and run them with the real
``curl`` binary against a running server.

A page's examples are the lines starting with ``curl`` in its fenced ```sh
blocks (``\\``-continued lines joined, ``#`` comments dropped). ```console
blocks show transcripts (a command and its output) and are not run; a curl
line in any other fence is an error, since it would silently go unrun.

Routes come from the services themselves (:func:`hepcore.service.all_routes`,
so ``GET /openapi.json`` too) and examples are matched to them with Falcon's
own router, as the web layer mounts them. A route ``<path>.json`` with the
handler and methods of ``<path>`` is an alias (the CDN's ``/api/v4/me.json``):
it counts as covered when ``<path>`` is and the page shows the suffix at
least once.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from falcon.routing import CompiledRouter

from hepcore import Config, ServiceConfig, build_runtime
from hepcore.service import Route, all_routes

ALL_PLUGINS = ("uploader", "paste", "cdn", "images", "login", "phash_blocklist")
_FENCE = re.compile(r"^[ \t]*```([A-Za-z0-9_-]*)[^\n]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)

# curl options that take a value (the ones our pages and tests use, and their kin).
_WITH_VALUE = {
    "-H", "--header", "-F", "--form", "--form-string", "-X", "--request", "-d", "--data",
    "--data-raw", "--data-ascii", "--data-binary", "--data-urlencode", "-o", "--output",
    "-r", "--range", "-A", "--user-agent", "--etag-save", "--etag-compare", "-c",
    "--cookie-jar", "-b", "--cookie", "-w", "--write-out", "-D", "--dump-header", "-e",
    "--referer", "-u", "--user", "-T", "--upload-file", "-m", "--max-time",
}
_FLAGS = {
    "-O", "--remote-name", "-I", "--head", "-i", "--include", "-G", "--get", "-s", "--silent",
    "-S", "--show-error", "-L", "--location", "-f", "--fail", "-J", "--remote-header-name",
    "-v", "--verbose", "--compressed",
}
_BODY = {"-d", "--data", "--data-raw", "--data-ascii", "--data-binary", "--data-urlencode",
         "-F", "--form", "--form-string"}


@dataclass(frozen=True)
class Example:
    """One curl command line of a page, as written there."""

    line: str
    method: str
    url: str
    options: tuple[tuple[str, str | None], ...]  # (option, value) in order

    def has(self, *names: str) -> bool:
        return any(option in names for option, _ in self.options)

    def value(self, *names: str) -> str | None:
        """The value of the last of ``names`` given, else ``None``."""
        found = None
        for option, value in self.options:
            if option in names:
                found = value
        return found

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.url).path) or "/"


def parse_curl(line: str) -> Example:
    """The method, URL and options of one curl command line."""
    argv = shlex.split(line, comments=True)
    assert argv and argv[0] == "curl", line
    options: list[tuple[str, str | None]] = []
    urls: list[str] = []
    args = iter(argv[1:])
    for arg in args:
        if arg.startswith("--"):
            name, eq, inline = arg.partition("=")
            if name in _WITH_VALUE:
                options.append((name, inline if eq else next(args)))
            else:
                assert name in _FLAGS, f"unknown curl option {arg} in: {line}"
                options.append((name, None))
        elif arg.startswith("-") and len(arg) > 1:
            for i, char in enumerate(arg[1:], 1):
                name = "-" + char
                if name in _WITH_VALUE:
                    rest = arg[i + 1:]
                    options.append((name, rest if rest else next(args)))
                    break
                assert name in _FLAGS, f"unknown curl option {name} in: {line}"
                options.append((name, None))
        else:
            urls.append(arg)
    assert len(urls) == 1, f"one URL expected in: {line}"
    given = dict(options)
    if "-X" in given or "--request" in given:
        method = str(given.get("-X") or given.get("--request")).upper()
    elif "-I" in given or "--head" in given:
        method = "HEAD"
    elif "-G" in given or "--get" in given:
        method = "GET"
    elif "-T" in given or "--upload-file" in given:
        method = "PUT"
    elif any(option in _BODY for option, _ in options):
        method = "POST"
    else:
        method = "GET"
    return Example(line, method, urls[0], tuple(options))


def curl_examples(doc: Path) -> list[Example]:
    """Every curl example of the page, in page order."""
    examples = []
    for lang, block in _FENCE.findall(doc.read_text(encoding="utf-8")):
        lines = [line.strip() for line in block.replace("\\\n", " ").splitlines()]
        curls = [line for line in lines if line.startswith("curl ")]
        if lang == "console":
            continue
        assert lang == "sh" or not curls, (
            f"{doc.name}: curl examples belong in ```sh blocks (```{lang} is not run): {curls}")
        examples.extend(parse_curl(line) for line in curls)
    return examples


# --- routes ----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One method of one route of a service mounted at ``prefix``."""

    service: str
    prefix: str
    method: str
    template: str
    name: str  # the route's name; an alias carries its base route's name
    alias: bool = False

    def __str__(self) -> str:
        return f"{self.method} {self.prefix}{self.template} ({self.service} {self.name})"


class _Resource:
    def __init__(self, template: str) -> None:
        self.template = template

    def on_get(self, req: Any, resp: Any) -> None:  # Falcon wants a responder
        raise NotImplementedError


@dataclass
class Mount:
    """A service's endpoints as the page's host mounts it, with Falcon's router."""

    service: str
    prefix: str
    endpoints: list[Endpoint]
    router: CompiledRouter = field(default_factory=CompiledRouter)

    def __post_init__(self) -> None:
        for template in dict.fromkeys(e.template for e in self.endpoints):
            self.router.add_route(template, _Resource(template))

    def find(self, method: str, path: str) -> Endpoint | None:
        """The endpoint ``method path`` reaches (HEAD falls back to GET, as served)."""
        if self.prefix:
            if not (path == self.prefix or path.startswith(self.prefix + "/")):
                return None
            path = path[len(self.prefix):] or "/"
        found = self.router.find(path)
        if found is None:
            return None
        template = found[0].template
        by_method = {e.method: e for e in self.endpoints if e.template == template}
        return by_method.get(method) or (by_method.get("GET") if method == "HEAD" else None)


def endpoints(service: str, routes: Sequence[Route], prefix: str = "") -> Mount:
    """The mount of ``service`` at ``prefix`` ("" for the root), one endpoint per
    method of each route."""
    declared = {(m, r.path): r for r in routes for m in r.methods}
    out = []
    for route in routes:
        for method in route.methods:
            base = declared.get((method, route.path.removesuffix(".json")))
            alias = (route.path.endswith(".json") and base is not None and base is not route
                     and base.handler == route.handler)
            out.append(Endpoint(service, prefix, method, route.path,
                                base.name if alias and base else route.name, alias))
    return Mount(service, prefix, out)


def service_mounts(data_dir: Path, prefixes: Mapping[str, str]) -> list[Mount]:
    """The endpoints of the named services (``{name: prefix}``), read from a
    fresh runtime under ``data_dir`` with only those plugins loaded."""
    config = Config(data_dir=data_dir, secrets=["docs-routes"],
                    services={name: ServiceConfig(name, prefix=prefix or "/")
                              for name, prefix in prefixes.items()},
                    blocked_plugins=[p for p in ALL_PLUGINS if p not in prefixes])
    runtime = build_runtime(config)
    try:
        return [endpoints(name, all_routes(runtime.services[name]), prefix.rstrip("/"))
                for name, prefix in prefixes.items()]
    finally:
        runtime.close()


def route_of(example: Example, mounts: Sequence[Mount]) -> Endpoint | None:
    """The endpoint an example calls: the longest matching mount prefix wins."""
    for mount in sorted(mounts, key=lambda m: -len(m.prefix)):
        if not mount.prefix or example.path == mount.prefix \
                or example.path.startswith(mount.prefix + "/"):
            return mount.find(example.method, example.path)
    return None


def coverage_problems(examples: Iterable[Example], mounts: Sequence[Mount],
                      host: str) -> list[str]:
    """What keeps the page from showing every route: routes without an
    example, examples that call no route, an alias suffix never shown."""
    problems = []
    covered: set[tuple[str, str, str]] = set()
    alias_shown = False
    for example in examples:
        if not example.url.startswith(host + "/"):
            problems.append(f"example not on the page's host {host}: {example.line}")
            continue
        endpoint = route_of(example, mounts)
        if endpoint is None:
            problems.append(f"example calls no route: {example.method} {example.path}:"
                            f" {example.line}")
            continue
        if endpoint.method == example.method:  # a HEAD answered by GET covers neither
            covered.add((endpoint.service, endpoint.method, endpoint.template))
        alias_shown = alias_shown or endpoint.alias
    for mount in mounts:
        for e in mount.endpoints:
            if (e.service, e.method, e.template) in covered:
                continue
            if e.alias:
                base = e.template.removesuffix(".json")
                if (e.service, e.method, base) in covered and alias_shown:
                    continue
            problems.append(f"no example for {e}")
    return problems


# --- running ---------------------------------------------------------------


def curl_binary() -> str:
    path = shutil.which("curl")
    assert path is not None, "curl is required by these tests and is not on PATH"
    return path


@dataclass
class Answer:
    """What curl got for one example: the last response's status and headers
    (lower-case names; ``header_list`` keeps repeats) and the body it printed."""

    example: Example
    command: str  # with the placeholders replaced
    status: int
    header_list: list[tuple[str, str]]
    body: bytes
    cwd: Path

    @property
    def headers(self) -> dict[str, str]:
        return {name: value for name, value in self.header_list}

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def sent(self) -> Example:
        """The command as run (placeholders replaced)."""
        return parse_curl(self.command)

    def output_file(self) -> Path | None:
        """Where ``-o``/``-O`` made curl write the body, else ``None``."""
        sent = self.sent
        name = sent.value("-o", "--output")
        if name is None and sent.has("-O", "--remote-name"):
            name = urlsplit(sent.url).path.rsplit("/", 1)[-1]
        return None if name is None else self.cwd / name

    def output(self) -> bytes:
        """The body as the user gets it: the ``-o``/``-O`` file, else what curl printed."""
        path = self.output_file()
        return self.body if path is None else path.read_bytes()

    def __repr__(self) -> str:
        return f"<{self.status} for {self.command!r}: {self.body[:300]!r}>"


def _header_blocks(raw: bytes) -> list[list[tuple[str, str]]]:
    blocks: list[list[tuple[str, str]]] = []
    for line in raw.decode("latin-1").splitlines():
        if line.startswith("HTTP/"):
            blocks.append([])
        elif ":" in line and blocks:
            name, _, value = line.partition(":")
            blocks[-1].append((name.strip().lower(), value.strip()))
    return blocks


def run_example(example: Example, replacements: Mapping[str, str], cwd: Path) -> Answer:
    """Run the example with the real curl binary (no shell), each placeholder of
    ``replacements`` replaced first. curl must succeed; any HTTP status is
    returned for the caller to check."""
    command = example.line
    for placeholder, value in replacements.items():
        command = command.replace(placeholder, value)
    argv = shlex.split(command, comments=True)
    dump = cwd / ".curl-headers"
    proc = subprocess.run([curl_binary(), *argv[1:], "-sS", "-D", str(dump),
                           "-w", "\n%{http_code}"], cwd=cwd, capture_output=True, timeout=30,
                          check=False)
    assert proc.returncode == 0, (command, proc.stderr.decode(errors="replace"))
    body, _, status = proc.stdout.rpartition(b"\n")
    blocks = _header_blocks(dump.read_bytes())
    dump.unlink()
    if example.has("-i", "--include", "-I", "--head"):  # curl printed the headers first
        for _ in blocks:
            body = body.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in body else b""
    return Answer(example, command, int(status), blocks[-1] if blocks else [], body, cwd)


def check_openapi(answer: Answer, mount: Mount) -> None:
    """``GET <mount>/openapi.json``: an OpenAPI 3.1 document whose server is the
    mount and which lists every route of the service."""
    assert answer.status == 200, answer
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    document = json.loads(answer.output())
    assert document["openapi"].startswith("3.1."), document["openapi"]
    assert document["servers"] == [{"url": mount.prefix or "/"}], document["servers"]
    for endpoint in mount.endpoints:
        operations = document["paths"].get(endpoint.template, {})
        assert endpoint.method.lower() in operations, f"{endpoint} not in the document"
