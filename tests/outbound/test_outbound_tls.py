"""HTTPS through a pinned address: the certificate and SNI are for the URL's hostname
while the socket goes to the IP that was checked. Certificates come from a test CA
made with the openssl command."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from outbound_servers import CountingResolver, Origin

from hepcore.outbound import ConnectionFailed, Fetcher, OutboundPolicy

FAST = {"connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 5.0}

if shutil.which("openssl") is None and os.environ.get("HEPCORE_REQUIRE_OPENSSL") == "1":
    raise RuntimeError("the openssl command is missing (make test installs it as root)")
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="needs the openssl command to make test certificates")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a server certificate for ``origin.test``."""
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=hepcore test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign")
    run("req", "-new", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=origin.test")
    (d / "ext.cnf").write_text("subjectAltName=DNS:origin.test\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    return d


@pytest.fixture
def sni_seen() -> list[str | None]:
    return []


@pytest.fixture
def tls_origin(certs: Path, sni_seen: list[str | None]) -> Iterator[Origin]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs / "srv.pem", certs / "srv.key")
    context.sni_callback = lambda sock, name, ctx: sni_seen.append(name)  # type: ignore[assignment]
    origin = Origin(tls=context).start()
    origin.routes["/secure"] = lambda h: h.reply(200, b"over tls")
    yield origin
    origin.close()


@pytest.fixture
def trusting(certs: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs / "ca.pem"))


def test_tls_is_verified_for_the_hostname_on_the_pinned_address(
        tls_origin: Origin, trusting: ssl.SSLContext, sni_seen: list[str | None]) -> None:
    resolver = CountingResolver({"origin.test": ["127.0.0.1"]})
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), **FAST), resolver=resolver,
                      ssl_context=trusting)
    with fetcher.open("GET", tls_origin.url("/secure", "origin.test")) as response:
        assert (response.status, response.address) == (200, "127.0.0.1")
        assert response.read(100) == b"over tls"
    assert sni_seen == ["origin.test"]
    assert tls_origin.seen[0].headers["host"] == f"origin.test:{tls_origin.port}"
    assert resolver.calls == [("origin.test", tls_origin.port)]


def test_certificate_for_another_name_is_refused(tls_origin: Origin,
                                                 trusting: ssl.SSLContext) -> None:
    resolver = CountingResolver({"impostor.test": ["127.0.0.1"]})
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), **FAST), resolver=resolver,
                      ssl_context=trusting)
    with pytest.raises(ConnectionFailed) as failed:
        fetcher.open("GET", tls_origin.url("/secure", "impostor.test"))
    assert failed.value.reason == "Failed to download: connection failed"
    assert "certificate" in (failed.value.detail or "").lower()
    with pytest.raises(ConnectionFailed):  # an IP literal is not the certificate's name either
        fetcher.open("GET", tls_origin.url("/secure"))
    assert tls_origin.seen == []


def test_untrusted_certificate_is_refused_by_default(tls_origin: Origin) -> None:
    resolver = CountingResolver({"origin.test": ["127.0.0.1"]})
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), **FAST), resolver=resolver)
    with pytest.raises(ConnectionFailed):
        fetcher.open("GET", tls_origin.url("/secure", "origin.test"))
    assert tls_origin.seen == []


def test_plain_http_to_a_tls_port_fails_cleanly(tls_origin: Origin) -> None:
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), **FAST))
    with pytest.raises(ConnectionFailed):
        fetcher.open("GET", f"http://127.0.0.1:{tls_origin.port}/secure").read(100)


def test_scheme_change_is_a_cross_origin_hop(tls_origin: Origin, origin: Origin,
                                             trusting: ssl.SSLContext) -> None:
    resolver = CountingResolver({"origin.test": ["127.0.0.1"]})
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), **FAST), resolver=resolver,
                      ssl_context=trusting)
    tls_origin.routes["/down"] = lambda h: h.redirect(302, origin.url("/plain", "origin.test"))
    origin.routes["/plain"] = lambda h: h.reply(200, b"plain")
    with fetcher.open("GET", tls_origin.url("/down", "origin.test"),
                      origin_headers={"Authorization": "Bearer t"}) as response:
        assert response.read(100) == b"plain"
    assert tls_origin.seen[0].headers["authorization"] == "Bearer t"
    assert "authorization" not in origin.seen[0].headers
