"""The fetcher against live origins on 127.0.0.1: what it sends, what it refuses,
how it follows redirects and where it stops."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import zlib

import pytest
from outbound_servers import CountingResolver, Origin, OriginHandler

from hepcore.outbound import (
    BadRedirect,
    ConnectionFailed,
    DestinationBlocked,
    Fetcher,
    FetchError,
    FetchTimeout,
    InvalidURL,
    OutboundPolicy,
    ResolutionFailed,
    ResponseTooLarge,
    TooManyRedirects,
)

FAST = {"connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 5.0}


def ok(body: bytes, **headers: str):
    def handle(h: OriginHandler) -> None:
        h.reply(200, body, headers)
    return handle


def redirect(location: str, status: int = 302):
    def handle(h: OriginHandler) -> None:
        h.redirect(status, location)
    return handle


# --- refused by default -------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]",
                                  "0.0.0.0"])
def test_loopback_is_refused_by_default(origin: Origin, host: str) -> None:
    origin.routes["/"] = ok(b"secret")
    with pytest.raises(DestinationBlocked) as refused:
        Fetcher(OutboundPolicy(**FAST)).open("GET", origin.url("/", host))
    assert refused.value.reason == "IP address not allowed"
    assert origin.seen == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0x7f.1", "017700000001",
                                  "127.1", "127.0.1", "0177.0.0.1", "127.0.0.1.", "127.000.0.1"])
def test_odd_numeric_hosts_are_refused_even_when_loopback_is_allowed(
        origin: Origin, host: str) -> None:
    origin.routes["/"] = ok(b"secret")
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.0/8",), **FAST))
    with pytest.raises(DestinationBlocked):
        fetcher.open("GET", origin.url("/", host))
    assert origin.seen == []


# --- plain requests -----------------------------------------------------------------


def test_get_with_loopback_allowed(origin: Origin, loopback_fetcher: Fetcher) -> None:
    origin.routes["/file.txt"] = ok(b"hello there", **{"Content-Type": "text/plain",
                                                       "X-Extra": "1"})
    with loopback_fetcher.open("GET", origin.url("/file.txt?x=1")) as response:
        assert (response.status, response.reason) == (200, "OK")
        assert response.url == origin.url("/file.txt?x=1")
        assert response.address == "127.0.0.1"
        assert response.headers["content-type"] == "text/plain"
        assert response.headers.get("X-EXTRA") == "1"
        assert "Content-Length" in response.headers
        assert response.read(1024) == b"hello there"
    (seen,) = origin.seen
    assert (seen.method, seen.path) == ("GET", "/file.txt?x=1")
    assert seen.headers["host"] == f"127.0.0.1:{origin.port}"
    assert seen.headers["user-agent"] == "hepcore"
    assert seen.headers["accept-encoding"] == "identity"


def test_user_agent_from_policy_or_headers(origin: Origin) -> None:
    origin.routes["/"] = ok(b"")
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), user_agent="HackClubCDN/1.0", **FAST))
    fetcher.open("GET", origin.url()).close()
    fetcher.open("GET", origin.url(), headers={"user-agent": "mine"}).close()
    assert [s.headers["user-agent"] for s in origin.seen] == ["HackClubCDN/1.0", "mine"]


def test_non_2xx_is_returned_not_raised(origin: Origin, loopback_fetcher: Fetcher) -> None:
    with loopback_fetcher.open("GET", origin.url("/missing")) as response:
        assert response.status == 404
        assert response.read(100) == b"no such route"


def test_post_sends_the_body(origin: Origin, loopback_fetcher: Fetcher) -> None:
    origin.routes["/hook"] = ok(b"thanks")
    with loopback_fetcher.open("POST", origin.url("/hook"), body=b'{"a":1}',
                               headers={"Content-Type": "application/json"}) as response:
        assert response.status == 200
    (seen,) = origin.seen
    assert (seen.method, seen.body, seen.headers["content-type"]) == (
        "POST", b'{"a":1}', "application/json")


def test_headers_with_line_breaks_are_refused(origin: Origin, loopback_fetcher: Fetcher) -> None:
    with pytest.raises(FetchError) as refused:
        loopback_fetcher.open("GET", origin.url(),
                              origin_headers={"Authorization": "Bearer x\r\nX-Injected: 1"})
    assert refused.value.reason == "Invalid request header"
    assert origin.seen == []


@pytest.mark.parametrize(("url", "error", "reason"), [
    ("not a url", InvalidURL, "Invalid URL"),
    ("/relative/path", InvalidURL, "Invalid URL"),
    ("ftp://example.com/file", InvalidURL, "URL scheme must be http or https."),
    ("file:///etc/passwd", InvalidURL, "URL scheme must be http or https."),
    ("gopher://127.0.0.1:6379/_INFO", InvalidURL, "URL scheme must be http or https."),
    ("http:///no-host", InvalidURL, "Invalid host"),
    ("http://exa mple.com/", InvalidURL, "Invalid URL"),
    ("http://a..b/", InvalidURL, "Invalid URL"),
    ("http://[1.2.3.4]/", InvalidURL, "Invalid URL"),
    ("http://[not-v6]/", InvalidURL, "Invalid URL"),
    ("http://example.com:99999/", InvalidURL, "Invalid URL"),
    ("http://user:pass@example.com/", InvalidURL, "Invalid URL"),
    ("http://example.com@127.0.0.1/", InvalidURL, "Invalid URL"),
    ("http://example.com/\ud800", InvalidURL, "Invalid URL"),
    ("http://example.com/?q=\udfff", InvalidURL, "Invalid URL"),
])
def test_bad_urls(url: str, error: type[FetchError], reason: str) -> None:
    resolver = CountingResolver({})
    with pytest.raises(error) as refused:
        Fetcher(OutboundPolicy(**FAST), resolver=resolver).open("GET", url)
    assert refused.value.reason == reason
    assert resolver.calls == []


def test_scheme_is_case_insensitive(origin: Origin, loopback_fetcher: Fetcher) -> None:
    origin.routes["/"] = ok(b"hi")
    with loopback_fetcher.open("GET", f"HTTP://127.0.0.1:{origin.port}/") as response:
        assert response.read(10) == b"hi"


def test_non_ascii_path_is_percent_encoded(origin: Origin, loopback_fetcher: Fetcher) -> None:
    loopback_fetcher.open("GET", origin.url("/caf\u00e9 menu.png#frag")).close()
    assert origin.seen[0].path == "/caf%C3%A9%20menu.png"


# --- resolution: one lookup, every address checked, connection pinned ------------------


def test_name_resolved_once_and_connection_pinned(origin: Origin, resolver: CountingResolver,
                                                  loopback_fetcher: Fetcher) -> None:
    origin.routes["/a"] = ok(b"pinned")
    with loopback_fetcher.open("GET", origin.url("/a", "origin.test")) as response:
        assert response.address == "127.0.0.1"
        assert response.read(100) == b"pinned"
    assert resolver.calls == [("origin.test", origin.port)]
    assert origin.seen[0].headers["host"] == f"origin.test:{origin.port}"


def test_name_resolving_to_a_private_address_is_refused(origin: Origin) -> None:
    resolver = CountingResolver({"internal.test": ["10.1.2.3"],
                                 "loop.test": ["127.0.0.1"]})
    fetcher = Fetcher(OutboundPolicy(**FAST), resolver=resolver)
    for name in ("internal.test", "loop.test"):
        with pytest.raises(DestinationBlocked) as refused:
            fetcher.open("GET", origin.url("/", name))
        assert refused.value.reason == "IP address not allowed"
    assert resolver.calls == [("internal.test", origin.port), ("loop.test", origin.port)]
    assert origin.seen == []


@pytest.mark.parametrize("addresses", [["192.0.2.2"], ["::ffff:192.0.2.2"], ["2001:db8::2"],
                                       ["192.88.99.1"], ["100.64.0.1"], ["ff02::1"]])
def test_name_resolving_to_a_non_global_address_is_refused_before_connecting(
        addresses: list[str]) -> None:
    """A host whose own address is a TEST-NET one must not be reached through it."""
    resolver = CountingResolver({"testnet.test": addresses})
    fetcher = Fetcher(OutboundPolicy(**FAST), resolver=resolver)
    literal = f"[{addresses[0]}]" if ":" in addresses[0] else addresses[0]
    for url in ("http://testnet.test:8080/", f"http://{literal}/"):
        with pytest.raises(DestinationBlocked) as refused:
            fetcher.open("GET", url)
        assert refused.value.reason == "IP address not allowed"
    assert resolver.calls == [("testnet.test", 8080)]


@pytest.mark.parametrize("addresses", [
    ["93.184.215.14", "127.0.0.1"],
    ["127.0.0.1", "93.184.215.14"],
    ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "::ffff:10.0.0.1"],
    ["93.184.215.14", "fe80::1%eth0"],
    ["93.184.215.14", "not-an-address"],
    ["93.184.215.14", "192.0.2.1"],
    ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "::ffff:198.51.100.1"],
])
def test_one_bad_address_among_good_ones_refuses_the_name(addresses: list[str]) -> None:
    resolver = CountingResolver({"mixed.test": addresses})
    with pytest.raises(DestinationBlocked) as refused:
        Fetcher(OutboundPolicy(**FAST), resolver=resolver).open("GET", "http://mixed.test/")
    assert refused.value.reason == "IP address not allowed"
    assert len(resolver.calls) == 1


def test_allow_list_entry_covers_only_its_own_addresses(origin: Origin) -> None:
    resolver = CountingResolver({"mixed.test": ["127.0.0.1", "10.0.0.1"]})
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), **FAST), resolver=resolver)
    with pytest.raises(DestinationBlocked):
        fetcher.open("GET", origin.url("/", "mixed.test"))
    assert origin.seen == []


def test_unresolvable_names(origin: Origin) -> None:
    resolver = CountingResolver({"empty.test": []})
    fetcher = Fetcher(OutboundPolicy(**FAST), resolver=resolver)
    for name in ("empty.test", "nowhere.test"):
        with pytest.raises(ResolutionFailed) as failed:
            fetcher.open("GET", origin.url("/", name))
        assert failed.value.reason == "Couldn't resolve host."


def test_ip_literals_are_not_resolved(origin: Origin, resolver: CountingResolver,
                                      loopback_fetcher: Fetcher) -> None:
    origin.routes["/"] = ok(b"literal")
    assert loopback_fetcher.open("GET", origin.url()).read(100) == b"literal"
    with pytest.raises(DestinationBlocked):
        loopback_fetcher.open("GET", "http://[::1]:1/")
    assert resolver.calls == []


def test_mapped_address_connects_over_ipv4(origin: Origin) -> None:
    resolver = CountingResolver({"mapped.test": ["::ffff:127.0.0.1"]})
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), **FAST), resolver=resolver)
    origin.routes["/"] = ok(b"mapped")
    with fetcher.open("GET", origin.url("/", "mapped.test")) as response:
        assert response.address == "127.0.0.1"
        assert response.read(100) == b"mapped"


@pytest.mark.parametrize("allow", [("origin.test",), ("ORIGIN.test.",), ("127.0.0.0/8",),
                                   ("10.0.0.0/8", "127.0.0.1/32")])
def test_allow_list_by_hostname_or_network(origin: Origin, allow: tuple[str, ...]) -> None:
    resolver = CountingResolver({"origin.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    fetcher = Fetcher(OutboundPolicy(allow=allow, **FAST), resolver=resolver)
    origin.routes["/"] = ok(b"allowed")
    assert fetcher.open("GET", origin.url("/", "origin.test")).read(100) == b"allowed"
    if "origin.test" in allow[0].lower():
        with pytest.raises(DestinationBlocked):  # the name is allowed, not its addresses
            fetcher.open("GET", origin.url("/", "other.test"))


def test_allowed_host_still_needs_a_good_scheme_and_host() -> None:
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.0/8", "localhost"), **FAST))
    with pytest.raises(InvalidURL):
        fetcher.open("GET", "ftp://127.0.0.1/")
    with pytest.raises(DestinationBlocked):
        fetcher.open("GET", "http://2130706433/")


def test_localhost_through_the_system_resolver_is_refused() -> None:
    with pytest.raises(DestinationBlocked):
        Fetcher(OutboundPolicy(**FAST)).open("GET", "http://localhost:9/")


def test_check_url_resolves_and_checks_without_connecting(origin: Origin,
                                                          resolver: CountingResolver,
                                                          loopback_fetcher: Fetcher) -> None:
    assert loopback_fetcher.check_url(origin.url("/", "origin.test")) == ["127.0.0.1"]
    with pytest.raises(DestinationBlocked):
        Fetcher(OutboundPolicy(), resolver=resolver).check_url(origin.url("/", "origin.test"))
    assert origin.seen == []


# --- redirects ----------------------------------------------------------------------


@pytest.mark.parametrize(("start", "location"), [
    ("/dir/start", "../end"),
    ("/dir/start", "end?x"),
    ("/dir/start", "/end"),
    ("/dir/start", "//127.0.0.1:{port}/end"),
    ("/dir/start", "http://127.0.0.1:{port}/end"),
])
def test_relative_and_absolute_redirects(origin: Origin, loopback_fetcher: Fetcher,
                                         start: str, location: str) -> None:
    origin.routes[start] = redirect(location.format(port=origin.port))
    origin.routes["/end"] = origin.routes["/dir/end"] = ok(b"arrived")
    with loopback_fetcher.open("GET", origin.url(start)) as response:
        assert response.status == 200
        assert response.read(100) == b"arrived"
        assert response.url.startswith(origin.url("/"))
        assert response.url.endswith(origin.seen[-1].path)
    assert len(origin.seen) == 2


def chain(origin: Origin, hops: int) -> None:
    for i in range(hops, 0, -1):
        origin.routes[f"/hop{i}"] = redirect(f"/hop{i - 1}", status=(301, 302, 303, 307, 308)[i % 5])
    origin.routes["/hop0"] = ok(b"end of chain")


def test_five_redirects_are_followed(origin: Origin, loopback_fetcher: Fetcher) -> None:
    chain(origin, 5)
    with loopback_fetcher.open("GET", origin.url("/hop5")) as response:
        assert response.read(100) == b"end of chain"
        assert response.url == origin.url("/hop0")
    assert [s.path for s in origin.seen] == [f"/hop{i}" for i in range(5, -1, -1)]


def test_six_redirects_are_too_many(origin: Origin, loopback_fetcher: Fetcher) -> None:
    chain(origin, 6)
    with pytest.raises(TooManyRedirects) as failed:
        loopback_fetcher.open("GET", origin.url("/hop6"))
    assert failed.value.reason == "Failed to download: too many redirects"
    assert len(origin.seen) == 6  # /hop0 is never requested


def test_max_redirects_comes_from_the_policy(origin: Origin) -> None:
    chain(origin, 1)
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), max_redirects=0, **FAST))
    with pytest.raises(TooManyRedirects):
        fetcher.open("GET", origin.url("/hop1"))


def test_redirect_loop_ends(origin: Origin, loopback_fetcher: Fetcher) -> None:
    origin.routes["/loop"] = redirect("/loop")
    with pytest.raises(TooManyRedirects):
        loopback_fetcher.open("GET", origin.url("/loop"))
    assert len(origin.seen) == 6


@pytest.mark.parametrize("target", [
    "http://127.0.0.2:{port}/",
    "http://[::1]:{port}/",
    "http://10.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://[2002:a9fe:a9fe::1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://0x7f.1:{port}/",
    "http://internal.test/",
    # Not globally routable, though not in the spec's table.
    "http://192.0.2.2:{port}/",
    "http://[::ffff:192.0.2.2]:{port}/",
    "http://198.51.100.7/",
    "http://[2001:db8::2]/",
    "http://testnet.test/",
])
def test_redirect_to_a_blocked_address_is_refused(origin: Origin, target: str) -> None:
    resolver = CountingResolver({"internal.test": ["192.168.1.1"],
                                 "testnet.test": ["203.0.113.9"]})
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), **FAST), resolver=resolver)
    origin.routes["/go"] = redirect(target.format(port=origin.port))
    with pytest.raises(DestinationBlocked) as refused:
        fetcher.open("GET", origin.url("/go"))
    assert refused.value.reason == "IP address not allowed"
    assert [s.path for s in origin.seen] == ["/go"]


@pytest.mark.parametrize(("location", "error", "reason"), [
    ("ftp://127.0.0.1/x", InvalidURL, "URL scheme must be http or https."),
    ("file:///etc/passwd", InvalidURL, "URL scheme must be http or https."),
    ("http://[oops/", InvalidURL, "Invalid URL"),
    ("http://user@127.0.0.1/", InvalidURL, "Invalid URL"),
])
def test_redirect_to_a_bad_url_is_refused(origin: Origin, loopback_fetcher: Fetcher,
                                          location: str, error: type[FetchError],
                                          reason: str) -> None:
    origin.routes["/go"] = redirect(location)
    with pytest.raises(error) as refused:
        loopback_fetcher.open("GET", origin.url("/go"))
    assert refused.value.reason == reason


def test_redirect_without_location(origin: Origin, loopback_fetcher: Fetcher) -> None:
    origin.routes["/go"] = lambda h: h.reply(302, b"")
    with pytest.raises(BadRedirect) as failed:
        loopback_fetcher.open("GET", origin.url("/go"))
    assert failed.value.reason == "Failed to download: redirect without a location"


def test_redirects_not_followed_when_asked(origin: Origin, loopback_fetcher: Fetcher) -> None:
    origin.routes["/go"] = redirect("/elsewhere", 307)
    with loopback_fetcher.open("POST", origin.url("/go"), body=b"x",
                               follow_redirects=False) as response:
        assert response.status == 307
        assert response.headers["location"] == "/elsewhere"
    assert [s.path for s in origin.seen] == ["/go"]


@pytest.mark.parametrize(("status", "method", "body"), [
    (301, "GET", b""), (302, "GET", b""), (303, "GET", b""),
    (307, "POST", b"payload"), (308, "POST", b"payload"),
])
def test_method_after_a_redirect_of_a_post(origin: Origin, loopback_fetcher: Fetcher,
                                           status: int, method: str, body: bytes) -> None:
    origin.routes["/form"] = redirect("/next", status)
    origin.routes["/next"] = ok(b"done")
    with loopback_fetcher.open("POST", origin.url("/form"), body=b"payload",
                               headers={"Content-Type": "text/plain"}) as response:
        assert response.read(10) == b"done"
    first, second = origin.seen
    assert (first.method, first.body) == ("POST", b"payload")
    assert (second.method, second.body) == (method, body)
    assert ("content-type" in second.headers) == (method == "POST")


# --- credentials across origins -------------------------------------------------------


def test_credentials_dropped_on_a_cross_origin_hop(origin_factory, loopback_fetcher: Fetcher
                                                   ) -> None:
    first, second = origin_factory(), origin_factory()
    first.routes["/start"] = redirect(second.url("/land"))
    second.routes["/land"] = ok(b"landed")
    with loopback_fetcher.open(
            "GET", first.url("/start"),
            headers={"X-Trace": "t1", "Cookie": "session=abc", "authorization": "Basic eA=="},
            origin_headers={"Authorization": "Bearer source-token"}) as response:
        assert response.read(100) == b"landed"
    sent_first, sent_second = first.seen[0].headers, second.seen[0].headers
    assert sent_first["authorization"] == "Bearer source-token"
    assert sent_first["cookie"] == "session=abc"
    assert "authorization" not in sent_second
    assert "cookie" not in sent_second
    assert sent_second["x-trace"] == "t1"


def test_origin_headers_win_over_headers_of_the_same_name(origin: Origin,
                                                          loopback_fetcher: Fetcher) -> None:
    origin.routes["/"] = ok(b"")
    loopback_fetcher.open("GET", origin.url(), headers={"authorization": "Basic general"},
                          origin_headers={"Authorization": "Bearer specific"}).close()
    assert origin.seen[0].headers["authorization"] == "Bearer specific"


def test_same_origin_hops_keep_credentials(origin: Origin, loopback_fetcher: Fetcher) -> None:
    origin.routes["/a"] = redirect("/b")
    origin.routes["/b"] = redirect(origin.url("/c"))
    origin.routes["/c"] = ok(b"kept")
    loopback_fetcher.open("GET", origin.url("/a"),
                          origin_headers={"Authorization": "Bearer t"}).close()
    assert [s.headers.get("authorization") for s in origin.seen] == ["Bearer t"] * 3


def test_credentials_never_come_back_after_leaving(origin_factory, loopback_fetcher: Fetcher
                                                   ) -> None:
    home, away = origin_factory(), origin_factory()
    home.routes["/start"] = redirect(away.url("/bounce"))
    away.routes["/bounce"] = redirect(home.url("/back"))
    home.routes["/back"] = ok(b"home again")
    loopback_fetcher.open("GET", home.url("/start"),
                          origin_headers={"Authorization": "Bearer t"}).close()
    assert [s.headers.get("authorization") for s in home.seen] == ["Bearer t", None]
    assert away.seen[0].headers.get("authorization") is None


def test_another_host_on_the_same_port_is_another_origin(origin: Origin,
                                                         loopback_fetcher: Fetcher) -> None:
    origin.routes["/start"] = redirect(origin.url("/land", "other.test"))
    origin.routes["/land"] = ok(b"")
    loopback_fetcher.open("GET", origin.url("/start", "origin.test"),
                          origin_headers={"Authorization": "Bearer t"}).close()
    assert [s.headers.get("authorization") for s in origin.seen] == ["Bearer t", None]
    assert origin.seen[1].headers["host"] == f"other.test:{origin.port}"


def test_default_port_spelt_out_is_the_same_origin() -> None:
    resolver = CountingResolver({})
    fetcher = Fetcher(OutboundPolicy(**FAST), resolver=resolver)
    with pytest.raises(ResolutionFailed):
        fetcher.open("GET", "http://nowhere.test:80/")
    assert resolver.calls == [("nowhere.test", 80)]


# --- body size ------------------------------------------------------------------------


def test_body_at_the_limit_is_accepted(origin: Origin, loopback_fetcher: Fetcher) -> None:
    origin.routes["/"] = ok(b"x" * 1000)
    with loopback_fetcher.open("GET", origin.url()) as response:
        chunks = list(response.iter_body(1000, chunk_size=64))
    assert b"".join(chunks) == b"x" * 1000
    assert max(len(c) for c in chunks) <= 64


def test_announced_length_over_the_limit_fails_before_reading(
        origin: Origin, loopback_fetcher: Fetcher) -> None:
    def announce_then_stall(h: OriginHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(10 * 1024 * 1024))
        h.end_headers()
        h.wfile.write(b"x" * 10)
        h.wfile.flush()
        h.server.origin.stop.wait(10)

    origin.routes["/big"] = announce_then_stall
    with loopback_fetcher.open("GET", origin.url("/big")) as response, \
            pytest.raises(ResponseTooLarge) as failed:
        next(response.iter_body(1024 * 1024))
    assert failed.value.reason == "File too large: exceeds limit of 1 MB"
    assert failed.value.limit == 1024 * 1024


def test_counted_bytes_over_the_limit_fail_without_content_length(
        origin: Origin, loopback_fetcher: Fetcher) -> None:
    def endless_chunks(h: OriginHandler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        while not h.server.origin.stop.is_set():
            h.wfile.write(b"1000\r\n" + b"y" * 0x1000 + b"\r\n")

    origin.routes["/endless"] = endless_chunks
    received = 0
    with loopback_fetcher.open("GET", origin.url("/endless")) as response, \
            pytest.raises(ResponseTooLarge) as failed:
        for chunk in response.iter_body(100_000):
            received += len(chunk)
    assert received <= 100_000
    assert failed.value.reason == "File too large: exceeds limit of 97.7 KB"


def test_chunked_body_within_the_limit(origin: Origin, loopback_fetcher: Fetcher) -> None:
    def chunked(h: OriginHandler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for part in (b"hello ", b"chunked ", b"world"):
            h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        h.wfile.write(b"0\r\n\r\n")

    origin.routes["/c"] = chunked
    with loopback_fetcher.open("GET", origin.url("/c")) as response:
        assert response.read(19) == b"hello chunked world"


def test_body_until_close_without_length(raw_server, loopback_fetcher: Fetcher) -> None:
    def talk(conn: socket.socket, stop) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"z" * 5000)

    server = raw_server(talk)
    with loopback_fetcher.open("GET", server.url()) as response:
        assert response.read(5000) == b"z" * 5000
    with loopback_fetcher.open("GET", server.url()) as response, \
            pytest.raises(ResponseTooLarge):
        response.read(4999)


def test_body_cut_short_is_a_failure(raw_server, loopback_fetcher: Fetcher) -> None:
    def talk(conn: socket.socket, stop) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"z" * 40)

    server = raw_server(talk)
    with loopback_fetcher.open("GET", server.url()) as response, \
            pytest.raises(ConnectionFailed) as failed:
        response.read(1000)
    assert failed.value.reason == "Failed to download: connection failed"


def test_chunked_body_cut_short_is_a_failure(raw_server, loopback_fetcher: Fetcher) -> None:
    def talk(conn: socket.socket, stop) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n10\r\nab")

    server = raw_server(talk)
    with loopback_fetcher.open("GET", server.url()) as response, \
            pytest.raises(ConnectionFailed):
        response.read(1000)


def test_gzip_is_decoded_and_the_limit_counts_decoded_bytes(
        origin: Origin, loopback_fetcher: Fetcher) -> None:
    plain = b"0123456789" * 1000
    origin.routes["/small"] = ok(gzip.compress(plain), **{"Content-Encoding": "gzip"})
    bomb = gzip.compress(bytes(20 * 1024 * 1024))
    origin.routes["/bomb"] = ok(bomb, **{"Content-Encoding": "gzip"})
    with loopback_fetcher.open("GET", origin.url("/small")) as response:
        assert response.read(len(plain)) == plain
    assert len(bomb) < 1024 * 1024
    with loopback_fetcher.open("GET", origin.url("/bomb")) as response, \
            pytest.raises(ResponseTooLarge):
        response.read(1024 * 1024)


@pytest.mark.parametrize("encoded", [
    zlib.compress(b"deflated " * 500),
    zlib.compress(b"raw deflate " * 500)[2:-4],
])
def test_deflate_is_decoded_with_or_without_the_zlib_wrapper(
        origin: Origin, loopback_fetcher: Fetcher, encoded: bytes) -> None:
    origin.routes["/"] = ok(encoded, **{"Content-Encoding": "deflate"})
    with loopback_fetcher.open("GET", origin.url()) as response:
        body = response.read(100_000)
    assert body in (b"deflated " * 500, b"raw deflate " * 500)


def test_truncated_gzip_is_refused(origin: Origin, loopback_fetcher: Fetcher) -> None:
    origin.routes["/"] = ok(gzip.compress(bytes(range(256)) * 100)[:-20],
                            **{"Content-Encoding": "gzip"})
    with loopback_fetcher.open("GET", origin.url()) as response, \
            pytest.raises(FetchError) as failed:
        response.read(100_000)
    assert failed.value.reason == "Failed to download: bad content encoding"


def _endless(conn: socket.socket, stop: threading.Event, head: bytes, unit: bytes) -> None:
    """Send ``head``, then ``unit`` over and over until the client goes away."""
    conn.sendall(head)
    with contextlib.suppress(OSError):
        while not stop.is_set():
            conn.sendall(unit * 64)


def test_bytes_after_a_gzip_body_are_ignored_but_cannot_go_on(
        raw_server, origin: Origin) -> None:
    """Trailing bytes never reach the decoder (zlib kept copying them); the
    bytes on the wire are bounded by twice the limit and 64 KiB."""
    body = gzip.compress(b"hello")
    origin.routes["/short"] = ok(body + b"\r\n\r\n", **{"Content-Encoding": "gzip"})
    origin.routes["/members"] = ok(body + gzip.compress(b", world"),
                                   **{"Content-Encoding": "gzip"})
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), total_timeout=60))
    with fetcher.open("GET", origin.url("/short")) as response:
        assert response.read(1000) == b"hello"
    with fetcher.open("GET", origin.url("/members")) as response:
        assert response.read(1000) == b"hello, world"
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n"
    server = raw_server(lambda conn, stop: _endless(conn, stop, head + body, b"junk" * 256))
    with fetcher.open("GET", server.url()) as response, \
            pytest.raises(ResponseTooLarge) as failed:
        response.read(1000)
    assert failed.value.detail == f"more than {2 * 1000 + 65536} bytes on the wire"


@pytest.mark.parametrize("head,unit", [
    # Empty stored deflate blocks: bytes that never decode to anything.
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nConnection: close\r\n\r\n",
     b"\x00\x00\x00\xff\xff"),
    # Chunks of one byte behind 60 KB chunk extensions.
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
     b"1;" + b"x" * 60000 + b"\r\nA\r\n"),
], ids=["empty-deflate-blocks", "chunk-extensions"])
def test_a_body_that_never_grows_is_cut_by_its_bytes_on_the_wire(
        raw_server, head: bytes, unit: bytes) -> None:
    server = raw_server(lambda conn, stop: _endless(conn, stop, head, unit))
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), total_timeout=60))
    # 10 MB of body would be 600 GB of these on the wire: the deadline, not the cap.
    with fetcher.open("GET", server.url()) as response, pytest.raises(ResponseTooLarge):
        response.read(10_000_000)


def test_unknown_content_encoding_is_refused(origin: Origin, loopback_fetcher: Fetcher) -> None:
    origin.routes["/"] = ok(b"\x00\x01", **{"Content-Encoding": "br"})
    with loopback_fetcher.open("GET", origin.url()) as response, \
            pytest.raises(FetchError) as failed:
        response.read(100)
    assert failed.value.reason == "Failed to download: unsupported content encoding"


# --- time limits and broken origins ------------------------------------------------------


def test_slow_drip_is_cut_at_the_total_deadline(raw_server) -> None:
    def talk(conn: socket.socket, stop) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(100):  # 5 s, then the body is cut short: a failure, not a hang
            if stop.wait(0.05):
                return
            conn.sendall(b"x")

    server = raw_server(talk)
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), connect_timeout=2,
                                     read_timeout=1.0, total_timeout=0.6))
    with fetcher.open("GET", server.url()) as response, pytest.raises(FetchTimeout) as failed:
        response.read(1_000_000)
    assert failed.value.reason == "Failed to download: timed out"


def test_slow_drip_of_the_headers_is_cut_too(raw_server) -> None:
    def talk(conn: socket.socket, stop) -> None:
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"p" * 80 + b"\r\n\r\n"
        for i in range(len(head)):
            if stop.wait(0.05):
                return
            conn.sendall(head[i:i + 1])

    server = raw_server(talk)
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), connect_timeout=2,
                                     read_timeout=1.0, total_timeout=0.6))
    with pytest.raises(FetchTimeout):
        fetcher.open("GET", server.url())


def test_stalled_origin_times_out(raw_server) -> None:
    def talk(conn: socket.socket, stop) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        stop.wait(10)

    server = raw_server(talk)
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), connect_timeout=2,
                                     read_timeout=0.3, total_timeout=10))
    with fetcher.open("GET", server.url()) as response, pytest.raises(FetchTimeout):
        response.read(100)


def test_silent_origin_times_out_before_the_headers(raw_server) -> None:
    server = raw_server(lambda conn, stop: stop.wait(10))
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), **FAST))
    with pytest.raises(FetchTimeout):
        fetcher.open("GET", server.url(), timeouts=OutboundPolicy(
            connect_timeout=1, read_timeout=0.3, total_timeout=1))


def test_connection_refused(loopback_fetcher: Fetcher) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionFailed) as failed:
        loopback_fetcher.open("GET", f"http://127.0.0.1:{port}/")
    assert failed.value.reason == "Failed to download: connection failed"


def test_connect_timeout(resolver: CountingResolver) -> None:
    # A listener whose accept queue is full drops new SYNs, so connect() waits.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), connect_timeout=0.3,
                                         read_timeout=5, total_timeout=5))
        with pytest.raises(FetchTimeout) as failed:
            fetcher.open("GET", f"http://127.0.0.1:{listener.getsockname()[1]}/")
        assert failed.value.detail == (
            f"connecting to 127.0.0.1 port {listener.getsockname()[1]}: timed out")
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_slow_resolver_times_out() -> None:
    import threading

    release = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        release.wait(10)
        return ["127.0.0.1"]

    fetcher = Fetcher(OutboundPolicy(connect_timeout=0.3, read_timeout=1, total_timeout=2),
                      resolver=hanging)
    try:
        with pytest.raises(FetchTimeout):
            fetcher.open("GET", "http://slow.test/")
    finally:
        release.set()


def test_interim_responses_are_skipped(raw_server, loopback_fetcher: Fetcher) -> None:
    def talk(conn: socket.socket, stop) -> None:
        conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                     b"HTTP/1.1 100 Continue\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")

    server = raw_server(talk)
    with loopback_fetcher.open("GET", server.url()) as response:
        assert response.status == 200
        assert response.read(10) == b"final"


@pytest.mark.parametrize("reply", [
    b"garbage\r\n\r\n",
    b"HTTP/1.1 abc Nope\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Long: " + b"l" * 70_000 + b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 150 + b"\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"",
])
def test_garbage_responses(raw_server, loopback_fetcher: Fetcher, reply: bytes) -> None:
    server = raw_server(lambda conn, stop: conn.sendall(reply))
    with pytest.raises(ConnectionFailed) as failed, \
            loopback_fetcher.open("GET", server.url()) as response:
        response.read(1000)
    assert failed.value.reason == "Failed to download: connection failed"


def test_proxy_environment_is_ignored(origin: Origin, raw_server,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = raw_server(lambda conn, stop: conn.sendall(b"HTTP/1.1 200 OK\r\n\r\nproxied"))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    origin.routes["/"] = ok(b"direct")
    fetcher = Fetcher(OutboundPolicy(allow=("127.0.0.1",), **FAST))
    assert fetcher.open("GET", origin.url()).read(100) == b"direct"
    assert proxy.accepted == 0
