"""The typed readers of a ``[services.NAME]`` table (``ServiceConfig``) and the
names they record: what a service gets, and the message a bad value gives."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from hepcore import ServiceConfig
from hepcore.errors import ConfigError

Read = Callable[[ServiceConfig], Any]


@pytest.mark.parametrize(("options", "read", "expected"), [
    ({}, lambda c: c.integer("n", 5, low=1), 5),
    ({"n": 7}, lambda c: c.integer("n", 5, low=1), 7),
    ({"n": 0}, lambda c: c.integer("n", 5, low=0), 0),
    ({"n": 64}, lambda c: c.integer("n", 2, low=0, high=64), 64),
    ({"n": -3}, lambda c: c.integer("n", 5), -3),
    ({}, lambda c: c.number("t", 0.5, above=0), 0.5),
    ({"t": 2}, lambda c: c.number("t", 0.5, above=0), 2.0),
    ({"t": 0.25}, lambda c: c.number("t", 1, above=0), 0.25),
    ({"t": 0}, lambda c: c.number("t", 1, low=0), 0.0),
    ({}, lambda c: c.text("s", "dflt"), "dflt"),
    ({}, lambda c: c.text("s"), None),
    ({"s": ""}, lambda c: c.text("s"), ""),
    ({"s": "x"}, lambda c: c.text("s"), "x"),
    ({}, lambda c: c.texts("l", ("a", "b")), ["a", "b"]),
    ({}, lambda c: c.texts("l"), []),
    ({"l": ["x", "y"]}, lambda c: c.texts("l", ["a"]), ["x", "y"]),
    ({"l": []}, lambda c: c.texts("l", ["a"]), []),
    ({}, lambda c: c.flag("f"), False),
    ({"f": True}, lambda c: c.flag("f"), True),
    ({"u": "https://i.example.org/"}, lambda c: c.url("u"), "https://i.example.org"),
    ({"u": "http://[::1]:8080/base"}, lambda c: c.url("u"), "http://[::1]:8080/base"),
    ({"u": ""}, lambda c: c.url("u"), None),
    ({"r": {"a": [1]}}, lambda c: c.raw("r", {}), {"a": [1]}),
    ({}, lambda c: c.raw("r", 3), 3),
])
def test_a_reader_gives_the_value_or_its_default(options: dict[str, Any], read: Read,
                                                  expected: Any) -> None:
    config = ServiceConfig("svc", options=options)
    got = read(config)
    assert got == expected and type(got) is type(expected)
    assert len(config.read_names) == 1 and config.unread() == []


@pytest.mark.parametrize(("value", "read", "message"), [
    ("fast", lambda c: c.integer("v", 5, low=1), "must be an integer >= 1"),
    (True, lambda c: c.integer("v", 5, low=1), "must be an integer >= 1"),
    (1.5, lambda c: c.integer("v", 5, low=1), "must be an integer >= 1"),
    (2.0, lambda c: c.integer("v", 5, low=1), "must be an integer >= 1"),
    (0, lambda c: c.integer("v", 5, low=1), "must be an integer >= 1"),
    (-5, lambda c: c.integer("v", 5, low=0), "must be an integer >= 0"),
    (65, lambda c: c.integer("v", 2, low=0, high=64), "must be an integer from 0 to 64"),
    (11, lambda c: c.integer("v", 2, high=10), "must be an integer <= 10"),
    ("1", lambda c: c.integer("v", 2), "must be an integer"),
    ("0.5", lambda c: c.number("v", 1, above=0), "must be a number > 0"),
    (False, lambda c: c.number("v", 1, above=0), "must be a number > 0"),
    (0, lambda c: c.number("v", 1, above=0), "must be a number > 0"),
    (-0.5, lambda c: c.number("v", 1, low=0), "must be a number >= 0"),
    (float("nan"), lambda c: c.number("v", 1), "must be a number"),
    (float("inf"), lambda c: c.number("v", 1, above=0), "must be a number > 0"),
    (11, lambda c: c.number("v", 1, above=0, high=10), "must be a number > 0 and <= 10"),
    (5, lambda c: c.text("v"), "must be a string"),
    (["a"], lambda c: c.text("v", "x"), "must be a string"),
    ("image/*", lambda c: c.texts("v"), "must be a list of strings"),
    (["a", 1], lambda c: c.texts("v"), "must be a list of strings"),
    ({"a": "b"}, lambda c: c.texts("v"), "must be a list of strings"),
    ("i.example.org", lambda c: c.url("v"), "must be an http(s) URL"),
    ("ftp://i.example.org", lambda c: c.url("v"), "must be an http(s) URL"),
    ("https://", lambda c: c.url("v"), "must be an http(s) URL"),
    ("https://i.example.org/?x=1", lambda c: c.url("v"), "must be an http(s) URL"),
    ("https://i.example.org:99999", lambda c: c.url("v"), "must be an http(s) URL"),
    (5, lambda c: c.url("v"), "must be an http(s) URL"),
    ("false", lambda c: c.flag("v"), "must be true or false"),
    (1, lambda c: c.flag("v"), "must be true or false"),
])
def test_a_value_that_does_not_fit_names_the_option(value: Any, read: Read,
                                                     message: str) -> None:
    config = ServiceConfig("svc", options={"v": value})
    with pytest.raises(ConfigError) as info:
        read(config)
    assert str(info.value) == f"services.svc.v {message}"
    assert config.read_names == {"v"}


def test_every_reader_records_the_names_it_is_asked_for() -> None:
    config = ServiceConfig("svc", options={"a": 1, "b": 2.5, "c": "x", "d": ["y"], "e": True,
                                           "f": {}, "typo": 1, "also_typo": 2})
    assert config.unread() == ["a", "also_typo", "b", "c", "d", "e", "f", "typo"]
    config.integer("a", 0)
    config.number("b", 0)
    config.text("c")
    config.texts("d")
    config.flag("e")
    config.raw("f")
    config.integer("absent", 3)
    assert config.unread() == ["also_typo", "typo"]
    assert config.read_names == {"a", "b", "c", "d", "e", "f", "absent"}
    with pytest.raises(ConfigError, match=re.escape(
            "unknown settings in [services.svc]: also_typo, typo")):
        config.refuse_unread()
    config.raw("typo")
    config.raw("also_typo")
    config.refuse_unread()  # nothing left


def test_reading_does_not_change_equality_or_the_options() -> None:
    config = ServiceConfig("svc", options={"l": ["x"]})
    config.texts("l").append("y")
    assert config == ServiceConfig("svc", options={"l": ["x"]})
