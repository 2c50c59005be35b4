"""The address classifier and the host rules, as tables and properties (no I/O)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hepcore.outbound import (
    DestinationBlocked,
    Fetcher,
    FetchError,
    InvalidURL,
    OutboundPolicy,
    embedded_ipv4,
    human_size,
    is_blocked,
    is_globally_routable,
    is_odd_numeric_host,
    parse_address,
    parse_allow_entry,
)

SPEC_V4 = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
           "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4",
           "240.0.0.0/4"]
SPEC_V6 = ["::/128", "::1/128", "64:ff9b::/96", "fc00::/7", "fe80::/10"]
# Not globally routable although the spec does not list them (IANA special-purpose
# registries). With SPEC_V4 this is every IPv4 address the fetcher refuses.
NOT_GLOBAL_V4 = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "192.88.99.0/24"]
# IPv6 outside 2000::/3 is refused (except IPv4-mapped, judged by its IPv4); inside
# it these are refused. 6to4 (2002::/16) is judged by the IPv4 address it embeds.
GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
NOT_GLOBAL_V6 = ["2001::/23", "2001:db8::/32", "3fff::/20"]
MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


def edges(cidr: str) -> list[str]:
    net = ipaddress.ip_network(cidr)
    return sorted({str(net[0]), str(net[-1]), str(net[net.num_addresses // 2])})


@pytest.mark.parametrize("address", [a for n in SPEC_V4 + SPEC_V6 for a in edges(n)])
def test_every_spec_range_is_blocked_first_middle_last(address: str) -> None:
    assert is_blocked(parse_address(address))


@pytest.mark.parametrize("address", [
    # Just outside the spec's ranges.
    "1.0.0.0", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0", "126.255.255.255",
    "128.0.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0",
    "191.255.255.255", "192.0.1.0", "192.167.255.255", "192.169.0.0", "198.17.255.255",
    "198.20.0.0", "223.255.255.255",
    # Just outside the ranges refused as not globally routable.
    "192.0.1.255", "192.0.3.0", "198.51.99.255", "198.51.101.0", "203.0.112.255",
    "203.0.114.0", "192.88.98.255", "192.88.100.0", "2001:200::1", "2001:db7:ffff::1",
    "2001:db9::1", "3ffe:ffff::1", "3fff:1000::1", "3fff:ffff::1",
    # Public addresses.
    "8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "2001:4860:4860::8888",
    "2a00:1450:4001::1", "2620:4f:8000::1",
])
def test_public_addresses_pass(address: str) -> None:
    assert not is_blocked(parse_address(address))
    assert is_globally_routable(parse_address(address))


def _mapped(v4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address((0xFFFF << 32) | int(v4))


def _six_to_four(v4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80) | 1)


@pytest.mark.parametrize("address", [a for n in NOT_GLOBAL_V4 for a in edges(n)])
def test_ipv4_that_is_not_globally_routable_is_blocked_in_every_form(address: str) -> None:
    v4 = ipaddress.IPv4Address(address)
    for form in (v4, _mapped(v4), _six_to_four(v4), ipaddress.IPv6Address(int(v4))):
        assert is_blocked(form), form
    assert not is_globally_routable(v4)


@pytest.mark.parametrize("address", [a for n in NOT_GLOBAL_V6 for a in edges(n)] + [
    "2001:db8::2", "2001:2::1", "2001:10::1", "2001:20::1", "2001:3::1", "2001:1::1",
    "100::1", "100::ffff:ffff:ffff:ffff",   # discard-only
    # Reserved by the IETF, outside 2000::/3: nothing routes there.
    "::1:0:0:1", "64:ff9b:0:0:0:1::1", "100:1::1", "400::1", "4000::1", "5f00::1",
    "8000::1", "c000::1", "e000::1", "f000::1", "fbff:ffff::1", "fe7f:ffff::1",
    "fe00::1",
])
def test_ipv6_that_is_not_globally_routable_is_blocked(address: str) -> None:
    assert is_blocked(parse_address(address))


@pytest.mark.parametrize("address", [
    # Multicast, in every form.
    "224.0.0.1", "224.0.0.251", "239.255.255.255", "::ffff:224.0.0.1", "::ffff:239.1.2.3",
    "2002:e000:0001::1", "ff02::1", "ff05::1:3", "ff0e::1", "ff3e::8000:1",
    # Unspecified, in every form.
    "0.0.0.0", "::", "::ffff:0.0.0.0", "::0.0.0.0", "2002::1",
    # Broadcast.
    "255.255.255.255", "::ffff:255.255.255.255",
])
def test_multicast_unspecified_and_broadcast_stay_blocked(address: str) -> None:
    ip = parse_address(address)
    assert is_blocked(ip)
    assert not is_globally_routable(ip)


@pytest.mark.parametrize(("address", "v4"), [
    ("::ffff:127.0.0.1", "127.0.0.1"),
    ("::ffff:7f00:1", "127.0.0.1"),
    ("::ffff:169.254.169.254", "169.254.169.254"),
    ("::ffff:10.1.2.3", "10.1.2.3"),
    ("2002:7f00:1::", "127.0.0.1"),
    ("2002:a9fe:a9fe:1234::5", "169.254.169.254"),
    ("2002:c0a8:0101::1", "192.168.1.1"),
    ("2002:0a00:0001:ffff:ffff:ffff:ffff:ffff", "10.0.0.1"),
    # Not in the spec's ranges, but not globally routable either.
    ("::ffff:192.0.2.2", "192.0.2.2"),
    ("::ffff:c000:202", "192.0.2.2"),
    ("::ffff:198.51.100.1", "198.51.100.1"),
    ("::ffff:203.0.113.200", "203.0.113.200"),
    ("::ffff:192.88.99.1", "192.88.99.1"),
    ("::ffff:100.64.0.1", "100.64.0.1"),     # Python 3.11 calls this one is_global
    ("2002:c000:0202::1", "192.0.2.2"),
    ("2002:c633:6401:1::1", "198.51.100.1"),
    ("2002:cb00:7101::", "203.0.113.1"),
    ("2002:c058:6301::1", "192.88.99.1"),
])
def test_embedded_private_or_non_global_ipv4_is_blocked(address: str, v4: str) -> None:
    ip = parse_address(address)
    assert ipaddress.IPv4Address(v4) in embedded_ipv4(ip)
    assert is_blocked(ip)


@pytest.mark.parametrize("address", ["::ffff:8.8.8.8", "::ffff:93.184.215.14",
                                     "2002:0808:0808::1", "2002:5db8:d70e:1::2"])
def test_embedded_public_ipv4_passes(address: str) -> None:
    assert not is_blocked(parse_address(address))


@pytest.mark.parametrize("address", [
    "64:ff9b::8.8.8.8",            # NAT64 is refused outright, whatever it embeds
    "64:ff9b::127.0.0.1",
    "64:ff9b:1::a00:1",            # local-use NAT64
    "::127.0.0.1",                 # IPv4-compatible
    "::8.8.8.8",
    "::ffff:0:127.0.0.1",          # IPv4-translated
    "ff02::1", "ff05::2",          # multicast
    "fec0::1",                     # site-local
    "fe80::1%eth0", "fe80::1%25", "::1%lo",
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, public server and client 8.8.8.8
])
def test_other_ipv6_forms_are_blocked(address: str) -> None:
    assert is_blocked(parse_address(address))


def _in(cidrs: list[str]) -> st.SearchStrategy[int]:
    """Integers of the addresses in one of ``cidrs``."""
    return st.sampled_from(cidrs).flatmap(
        lambda cidr: st.integers(int(ipaddress.ip_network(cidr)[0]),
                                 int(ipaddress.ip_network(cidr)[-1])))


@given(_in(SPEC_V4 + NOT_GLOBAL_V4))
@settings(max_examples=200, deadline=None)
def test_blocked_ipv4_stays_blocked_in_every_ipv6_wrapping(value: int) -> None:
    v4 = ipaddress.IPv4Address(value)
    assert is_blocked(v4)
    wrapped = [
        ipaddress.IPv6Address((0xFFFF << 32) | value),          # ::ffff:a.b.c.d
        ipaddress.IPv6Address((0x2002 << 112) | (value << 80)),  # 6to4
        ipaddress.IPv6Address((0x64FF9B << 96) | value),         # NAT64
        ipaddress.IPv6Address(value),                            # IPv4-compatible
    ]
    assert all(is_blocked(w) for w in wrapped)


def _v4_expected_blocked(v4: ipaddress.IPv4Address) -> bool:
    return any(v4 in ipaddress.ip_network(n) for n in SPEC_V4 + NOT_GLOBAL_V4)


@given(st.one_of(st.integers(0, 2**32 - 1), _in(NOT_GLOBAL_V4)))
@settings(max_examples=300, deadline=None)
def test_ipv4_classification_matches_the_tables(value: int) -> None:
    """Exactly the spec's ranges and the ones that are not globally routable."""
    v4 = ipaddress.IPv4Address(value)
    expected = _v4_expected_blocked(v4)
    assert is_blocked(v4) == expected
    assert is_blocked(_mapped(v4)) == expected
    assert is_blocked(_six_to_four(v4)) == expected


def _v6_expected_blocked(ip: ipaddress.IPv6Address) -> bool:
    if ip in MAPPED:
        return _v4_expected_blocked(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip in SIX_TO_FOUR:
        return _v4_expected_blocked(ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF))
    return ip not in GLOBAL_UNICAST_V6 or any(ip in ipaddress.ip_network(n)
                                              for n in NOT_GLOBAL_V6)


@given(st.one_of(
    st.integers(0, 2**128 - 1),
    _in([str(GLOBAL_UNICAST_V6)]),
    _in(NOT_GLOBAL_V6 + SPEC_V6 + ["2002::/16", "::ffff:0:0/96", "ff00::/8", "fec0::/10"]),
))
@settings(max_examples=300, deadline=None)
def test_ipv6_classification_matches_the_tables(value: int) -> None:
    """Only global unicast (2000::/3) less the special ranges; embedded IPv4 decides."""
    ip = ipaddress.IPv6Address(value)
    assert is_blocked(ip) == _v6_expected_blocked(ip)


# --- hosts -----------------------------------------------------------------------------

ODD_NUMERIC = ["2130706433", "0x7f000001", "0x7F.1", "0x7f.0.0.1", "017700000001", "0177.1",
               "127.1", "127.0.1", "10.1", "0", "0x", "1.2.3.4.", "1.2.3.04", "127.000.000.001",
               "256.1.1.1", "1.2.3.4.5", "foo.123", "example.0x1f", "3232235777"]


@pytest.mark.parametrize("host", ODD_NUMERIC)
def test_odd_numeric_hosts(host: str) -> None:
    assert is_odd_numeric_host(host)
    with pytest.raises(DestinationBlocked):
        Fetcher(OutboundPolicy(allow=("0.0.0.0/0",))).check_url(f"http://{host}/")


@pytest.mark.parametrize("host", ["127.0.0.1", "8.8.8.8", "255.255.255.255", "0.0.0.0",
                                  "example.com", "123.example", "1e100.net", "x0x1", "a.b-1"])
def test_ordinary_hosts_are_not_odd(host: str) -> None:
    assert not is_odd_numeric_host(host)


def _inet_aton_accepts(text: str) -> bool:
    try:
        socket.inet_aton(text)
    except (OSError, ValueError):
        return False
    return True


numeric_parts = st.one_of(
    st.integers(0, 2**32 - 1).map(str),
    st.integers(0, 2**32 - 1).map(lambda n: f"0x{n:x}"),
    st.integers(0, 2**32 - 1).map(lambda n: f"0{n:o}"),
    st.integers(0, 255).map(str),
)


@given(st.lists(numeric_parts, min_size=1, max_size=4).map(".".join))
@settings(max_examples=300, deadline=None)
def test_whatever_the_c_library_reads_as_ipv4_is_a_plain_quad_or_refused(host: str) -> None:
    """No spelling of an address that inet_aton understands gets past as a "name"."""
    if not _inet_aton_accepts(host):
        return
    checked = Fetcher(OutboundPolicy(allow=("0.0.0.0/0",)), resolver=_no_lookups)
    if is_odd_numeric_host(host):
        with pytest.raises(DestinationBlocked):
            checked.check_url(f"http://{host}/")
    else:
        assert checked.check_url(f"http://{host}/") == [host]
        assert str(ipaddress.IPv4Address(host)) == host


def _no_lookups(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} was looked up")


@pytest.mark.parametrize("host", ["\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # fullwidth
                                  "127\u30020\u30020\u30021"])                 # ideographic dots
def test_unicode_spellings_of_loopback_are_refused(host: str) -> None:
    with pytest.raises(DestinationBlocked):
        Fetcher(OutboundPolicy(), resolver=_no_lookups).check_url(f"http://{host}/")


@pytest.mark.parametrize("url", [
    "http://192.0.2.2:8080/", "http://[::ffff:192.0.2.2]:8080/", "http://[::ffff:c000:202]/",
    "http://198.51.100.10/", "http://203.0.113.5/", "http://192.88.99.1/",
    "http://[2001:db8::2]/", "http://[2002:c000:202::1]/", "http://[3fff::1]/",
    "http://100.64.0.1/", "http://198.18.0.1/", "http://[ff02::1]/", "http://0.0.0.0/",
    "http://[::]/", "http://224.0.0.1/",
])
def test_literal_addresses_that_are_not_globally_routable_are_refused(url: str) -> None:
    with pytest.raises(DestinationBlocked) as refused:
        Fetcher(OutboundPolicy(), resolver=_no_lookups).check_url(url)
    assert refused.value.reason == "IP address not allowed"


@pytest.mark.parametrize("addresses", [["192.0.2.2"], ["93.184.215.14", "2001:db8::2"],
                                       ["::ffff:203.0.113.7"], ["8.8.8.8", "192.88.99.1"]])
def test_names_resolving_to_non_global_addresses_are_refused(addresses: list[str]) -> None:
    fetcher = Fetcher(OutboundPolicy(), resolver=lambda host, port: addresses)
    with pytest.raises(DestinationBlocked) as refused:
        fetcher.check_url("https://files.example/x")
    assert refused.value.reason == "IP address not allowed"


@pytest.mark.parametrize(("url", "addresses"), [
    ("http://8.8.8.8/", ["8.8.8.8"]),
    ("http://1.1.1.1:8080/x", ["1.1.1.1"]),
    ("https://[2606:4700:4700::1111]/", ["2606:4700:4700::1111"]),
    ("http://[::ffff:8.8.8.8]/", ["8.8.8.8"]),
    ("http://[2002:808:808::1]/", ["2002:808:808::1"]),
])
def test_literal_public_addresses_pass(url: str, addresses: list[str]) -> None:
    assert Fetcher(OutboundPolicy(), resolver=_no_lookups).check_url(url) == addresses


@pytest.mark.parametrize(("allow", "url"), [
    ("192.0.2.0/24", "http://192.0.2.2:8080/"),
    ("192.0.2.2", "http://[::ffff:192.0.2.2]/"),
    ("2001:db8::/32", "http://[2001:db8::2]/"),
    ("203.0.113.7", "http://testnet.example/"),
    ("testnet.example", "http://testnet.example/"),
])
def test_allow_list_overrides_the_global_rule(allow: str, url: str) -> None:
    def resolver(host: str, port: int) -> list[str]:
        assert host == "testnet.example"
        return ["203.0.113.7"]

    assert Fetcher(OutboundPolicy(allow=(allow,)), resolver=resolver).check_url(url)
    with pytest.raises(DestinationBlocked):
        Fetcher(OutboundPolicy(), resolver=resolver).check_url(url)


def test_allow_list_entry_covers_only_its_own_non_global_addresses() -> None:
    fetcher = Fetcher(OutboundPolicy(allow=("192.0.2.2",)),
                      resolver=lambda host, port: ["192.0.2.2", "198.51.100.1"])
    with pytest.raises(DestinationBlocked):
        fetcher.check_url("http://testnet.example/")
    with pytest.raises(DestinationBlocked):
        fetcher.check_url("http://192.0.2.3/")


def test_idn_hosts_are_looked_up_in_ascii() -> None:
    seen: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        seen.append(host)
        return ["93.184.215.14"]

    assert Fetcher(OutboundPolicy(), resolver=resolver).check_url(
        "https://B\u00fccher.example/x") == ["93.184.215.14"]
    assert seen == ["xn--bcher-kva.example"]


@pytest.mark.parametrize("url", ["http://a..b/", "http://" + "a" * 64 + ".com/",
                                 "http://exa%6dple.com/", "http://exa!mple.com/", "http://a_b\u00a0c/"])
def test_malformed_hostnames(url: str) -> None:
    with pytest.raises(InvalidURL):
        Fetcher(OutboundPolicy(), resolver=_no_lookups).check_url(url)


# --- allow-list entries ------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "parsed"), [
    ("127.0.0.1", ipaddress.ip_network("127.0.0.1/32")),
    ("10.0.0.0/8", ipaddress.ip_network("10.0.0.0/8")),
    ("10.1.2.3/8", ipaddress.ip_network("10.0.0.0/8")),
    ("::1", ipaddress.ip_network("::1/128")),
    ("fd00::/8", ipaddress.ip_network("fd00::/8")),
    ("Intranet.Example.org.", "intranet.example.org"),
    ("b\u00fccher.example", "xn--bcher-kva.example"),
])
def test_allow_entries(entry: str, parsed: object) -> None:
    assert parse_allow_entry(entry) == parsed


@pytest.mark.parametrize("entry", ["", "10.0.0.0/33", "not a host", "http://x/", "a/b", "127.1",
                                   "0x7f000001"])
def test_bad_allow_entries(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_allow_entry(entry)
    with pytest.raises(ValueError):
        OutboundPolicy(allow=(entry,))


def test_policy_checks_its_numbers() -> None:
    for bad in ({"connect_timeout": 0}, {"read_timeout": -1}, {"total_timeout": 0},
                {"max_redirects": -1}):
        with pytest.raises(ValueError):
            OutboundPolicy(**bad)  # type: ignore[arg-type]
    assert OutboundPolicy(allow="10.0.0.0/8").allow == ("10.0.0.0/8",)  # type: ignore[arg-type]


# --- the CDN's size format, used in ResponseTooLarge ------------------------------------


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 Bytes"), (1, "1 Byte"), (1023, "1023 Bytes"), (1024, "1 KB"), (1536, "1.5 KB"),
    (100_000, "97.7 KB"), (1_237_320, "1.18 MB"), (10_485_760, "10 MB"),
    (104_857_600, "100 MB"), (524_288_000, "500 MB"), (53_687_091_200, "50 GB"),
    (322_122_547_200, "300 GB"), (1024**4 * 3, "3 TB"),
])
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


url_text = st.one_of(
    st.text(max_size=60),
    st.builds(lambda scheme, host, rest: f"{scheme}://{host}{rest}",
              st.sampled_from(["http", "HTTPS", "ftp", "", "http:"]),
              st.text(alphabet="0123456789abcdefx.:[]%@-_\uff10\u3002 ", max_size=30),
              st.text(max_size=20)),
)


@given(url_text)
@settings(max_examples=400, deadline=None)
def test_any_text_is_checked_or_refused_with_a_fetch_error(text: str) -> None:
    """Whatever a user types, the checks end in addresses or a FetchError, nothing else."""
    fetcher = Fetcher(OutboundPolicy(), resolver=lambda host, port: ["93.184.215.14"])
    try:
        addresses = fetcher.check_url(text)
    except FetchError as exc:
        assert exc.reason
        return
    assert all(not is_blocked(parse_address(a)) for a in addresses)
