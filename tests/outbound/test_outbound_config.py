"""``[outbound]`` in hepcore.toml and ``runtime.fetcher``."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from outbound_servers import Origin

from hepcore import Config, build_runtime
from hepcore.config import DEFAULT_CONFIG_TOML, config_from_dict, load_config
from hepcore.errors import ConfigError
from hepcore.outbound import DestinationBlocked, Fetcher, OutboundPolicy
from hepcore.testing import FakeClock


def test_defaults_allow_nothing_and_use_the_cdn_time_limits(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.outbound_allow == []
    assert (config.outbound_connect_timeout, config.outbound_read_timeout,
            config.outbound_total_timeout) == (5.0, 30.0, 60.0)
    assert "outbound" not in tomllib.loads(DEFAULT_CONFIG_TOML)


def test_the_commented_example_is_valid(tmp_path: Path) -> None:
    block = re.search(r"^# \[outbound\]\n(?:^#.*\n)+", DEFAULT_CONFIG_TOML, re.MULTILINE)
    assert block is not None
    uncommented = "\n".join(line[2:] for line in block.group().splitlines())
    config = config_from_dict(tomllib.loads(uncommented), tmp_path)
    assert config.outbound_allow == ["10.0.0.0/8", "intranet.example.org"]
    assert config.outbound_total_timeout == 60


def test_outbound_table_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "hepcore.toml").write_text(
        '[outbound]\nallow = ["127.0.0.1", "fd00::/8", "Intranet.Example"]\n'
        'connect_timeout = 2\nread_timeout = 3.5\ntotal_timeout = 20\n'
        'user_agent = "MyCDN/2"\n')
    config = load_config(tmp_path)
    assert config.outbound_allow == ["127.0.0.1", "fd00::/8", "Intranet.Example"]
    assert (config.outbound_connect_timeout, config.outbound_read_timeout,
            config.outbound_total_timeout, config.outbound_user_agent) == (2, 3.5, 20, "MyCDN/2")


@pytest.mark.parametrize(("table", "message"), [
    ({"allowed": ["x"]}, "unknown outbound settings: allowed"),
    ({"allow": ["10.0.0.0/33"]}, "outbound.allow: '10.0.0.0/33' is not a hostname, IP or CIDR"),
    ({"allow": ["http://x/"]}, "is not a hostname, IP or CIDR"),
    ({"allow": "10.0.0.0/8"}, "outbound.allow must be a list"),
    ({"allow": [10]}, "outbound.allow must be a list"),
    ({"connect_timeout": 0}, "outbound.connect_timeout must be a positive number"),
    ({"read_timeout": "5"}, "outbound.read_timeout must be a positive number"),
    ({"total_timeout": True}, "outbound.total_timeout must be a positive number"),
    ({"user_agent": 5}, "outbound.user_agent must be a string"),
])
def test_bad_outbound_settings(tmp_path: Path, table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict({"outbound": table}, tmp_path)


def test_outbound_must_be_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("[outbound] must be a table")):
        config_from_dict({"outbound": "all"}, tmp_path)


def test_runtime_fetcher_follows_the_config(tmp_path: Path, origin: Origin) -> None:
    origin.routes["/"] = lambda h: h.reply(200, b"from the origin")
    strict = build_runtime(Config(data_dir=tmp_path / "strict"), clock=FakeClock())
    open_ = build_runtime(Config(data_dir=tmp_path / "open", outbound_allow=["127.0.0.1"],
                                 outbound_connect_timeout=1, outbound_read_timeout=2,
                                 outbound_total_timeout=3, outbound_user_agent="UA/1"),
                          clock=FakeClock())
    try:
        assert strict.fetcher is strict.fetcher
        with pytest.raises(DestinationBlocked):
            strict.fetcher.open("GET", origin.url())
        assert open_.fetcher.policy == OutboundPolicy(
            allow=("127.0.0.1",), connect_timeout=1, read_timeout=2, total_timeout=3,
            user_agent="UA/1")
        with open_.fetcher.open("GET", origin.url()) as response:
            assert response.read(100) == b"from the origin"
        assert origin.seen[-1].headers["user-agent"] == "UA/1"
    finally:
        strict.close()
        open_.close()


def test_tests_may_put_their_own_fetcher_on_the_runtime(tmp_path: Path) -> None:
    runtime = build_runtime(Config(data_dir=tmp_path), clock=FakeClock())
    try:
        mine = Fetcher(OutboundPolicy(allow=("origin.test",)),
                       resolver=lambda host, port: ["127.0.0.1"])
        runtime.fetcher = mine  # type: ignore[misc]
        assert runtime.fetcher is mine
    finally:
        runtime.close()
