"""Fixtures of the outbound fetcher tests: live origins on 127.0.0.1 and fetchers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from outbound_servers import CountingResolver, Origin, RawServer

from hepcore.outbound import Fetcher, OutboundPolicy

FAST = {"connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 5.0}


@pytest.fixture
def origin_factory() -> Iterator[Callable[[], Origin]]:
    made: list[Origin] = []

    def make() -> Origin:
        origin = Origin().start()
        made.append(origin)
        return origin

    yield make
    for origin in made:
        origin.close()


@pytest.fixture
def origin(origin_factory: Callable[[], Origin]) -> Origin:
    return origin_factory()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket, threading.Event], None]],
                                      RawServer]]:
    made: list[RawServer] = []

    def make(talk: Callable[[socket.socket, threading.Event], None]) -> RawServer:
        server = RawServer(talk)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture
def resolver() -> CountingResolver:
    return CountingResolver({"origin.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})


@pytest.fixture
def loopback_fetcher(resolver: CountingResolver) -> Fetcher:
    """Loopback allowed by IP, short time limits, names through ``resolver``."""
    return Fetcher(OutboundPolicy(allow=("127.0.0.1",), **FAST), resolver=resolver)
