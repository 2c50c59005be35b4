"""Each service's Authorization header rules (uploader U1, paste, CDN C4, images)."""

from __future__ import annotations

import pytest

from hepcore.auth_headers import (
    MalformedCredential,
    MissingCredential,
    bearer_header,
    cdn_header,
    uploader_header,
)

KEY = "sk_cdn_" + "ab" * 32


@pytest.mark.parametrize(
    ("value", "token"),
    [("hyd-up-abc", "hyd-up-abc"), ("Bearer hyd-up-abc", "hyd-up-abc"),
     ("token   hyd-up-abc ", "hyd-up-abc"), ("BEARER\thyd-up-abc", "hyd-up-abc"),
     ("Basic xyz", "Basic xyz"), ("  hyd-up-abc  ", "hyd-up-abc"),
     ("Bearer\t hyd-up-abc", "hyd-up-abc"), ("token \t \thyd-up-abc", "hyd-up-abc"),
     ("Bearerhyd-up-abc", "Bearerhyd-up-abc")],
)
def test_uploader_accepts_raw_and_prefixed_tokens(value: str, token: str) -> None:
    assert uploader_header(value) == token


@pytest.mark.parametrize("value", [None, "", "   ", "Bearer", "Token ", "bearer   "])
def test_uploader_missing(value: str | None) -> None:
    with pytest.raises(MissingCredential):
        uploader_header(value)


@pytest.mark.parametrize("value", ["Bearer k1", "bearer k1", "BEARER   k1 "])
def test_bearer_scheme_is_case_insensitive(value: str) -> None:
    assert bearer_header(value) == "k1"


@pytest.mark.parametrize("value", ["k1", "Token k1", "Basic k1", "Bearer", "Bearer a b"])
def test_bearer_refuses_other_forms(value: str) -> None:
    with pytest.raises(MalformedCredential):
        bearer_header(value)


def test_bearer_missing() -> None:
    for value in (None, "", "  "):
        with pytest.raises(MissingCredential):
            bearer_header(value)


@pytest.mark.parametrize("value", [f"Bearer {KEY}", f"Token {KEY}", f'Token token="{KEY}"'])
def test_cdn_forms(value: str) -> None:
    assert cdn_header(value) == KEY


@pytest.mark.parametrize("value", [KEY, f"bearer {KEY}", f"TOKEN {KEY}", f'Bearer token="{KEY}"',
                                   "Bearer", 'Token token=""'])
def test_cdn_scheme_is_case_sensitive_and_required(value: str) -> None:
    with pytest.raises(MalformedCredential):
        cdn_header(value)
