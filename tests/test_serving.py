"""Serving rules shared by every service: ranges, conditional GET, safe headers,
and handing files to a front proxy."""

from __future__ import annotations

import falcon.testing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hepcore import Config, ServiceConfig, build_runtime
from hepcore.errors import ConfigError
from hepcore.serving import (
    ByteRange,
    RangeNotSatisfiable,
    content_disposition,
    is_active_type,
    parse_range,
    single_media_type,
)
from hepcore.web import create_app


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-9", 100, ByteRange(0, 10)),
        ("bytes=90-", 100, ByteRange(90, 10)),
        ("bytes=-10", 100, ByteRange(90, 10)),
        ("bytes=-500", 100, ByteRange(0, 100)),
        ("bytes=50-5000", 100, ByteRange(50, 50)),
        ("bytes=0-0,5-9", 100, None),
        ("items=0-9", 100, None),
        ("bytes=9-0", 100, None),
        (None, 100, None),
        ("bytes=-5", 0, None),  # the last bytes of an empty object: all of it
        ("bytes=0-" + "9" * 5000, 100, ByteRange(0, 100)),  # past int()'s digit limit
        ("bytes=-" + "9" * 5000, 100, ByteRange(0, 100)),
    ],
)
def test_parse_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=200-300", "bytes=-0",
                                    "bytes=" + "9" * 5000 + "-"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


@settings(max_examples=50, deadline=None)
@given(size=st.integers(1, 10_000), a=st.integers(0, 20_000), b=st.integers(0, 20_000))
def test_ranges_stay_inside_the_object(size: int, a: int, b: int) -> None:
    try:
        got = parse_range(f"bytes={a}-{b}", size)
    except RangeNotSatisfiable:
        assert a >= size
        return
    if got is not None:
        assert 0 <= got.start < size
        assert 1 <= got.length <= size - got.start


@pytest.mark.parametrize(
    "ctype",
    ["text/html", "text/html; charset=utf-8", "image/svg+xml", "application/xhtml+xml",
     "text/xml", "application/atom+xml", "text/javascript", "application/javascript"],
)
def test_active_types_are_sandboxed(ctype: str) -> None:
    assert is_active_type(ctype)


@pytest.mark.parametrize("ctype", [
    "text/x-javascript", "application/x-ecmascript", "text/jscript", "text/livescript",
    "text/javascript1.5", "TEXT/HTML", " text/html ; charset=utf-8",
    "multipart/x-mixed-replace; boundary=x"])
def test_every_javascript_type_and_any_spelling_is_sandboxed(ctype: str) -> None:
    assert is_active_type(ctype)


@pytest.mark.parametrize("ctype", [
    "text/plain,text/html", "image/png, text/html", "image/gif;,text/html", "text/plain\ntext/html",
    "", "text", "text/", "/html", "image/png; a", "text/plain; charset=utf-8, text/html",
    # Only tab and visible ASCII in a quoted value: the type may go back out as a header.
    'text/plain; a="x\nSet-Cookie: a=b"', 'text/plain; a="x\r"', 'text/plain; a="\x00"',
    'text/plain; a="\x7f"', 'text/plain; a="\u6f22"', 'text/plain; a="\\\n"'])
def test_lists_and_malformed_types_fail_closed(ctype: str) -> None:
    # A browser takes the last type of a list ("extract a MIME type"), so a
    # list with a passive type first must not slip through unsandboxed.
    assert single_media_type(ctype) is None
    assert is_active_type(ctype)


@pytest.mark.parametrize("ctype", ["*/*", "image/*", "text/*; charset=utf-8", "*/html"])
def test_media_ranges_name_no_type_and_fail_closed(ctype: str) -> None:
    assert is_active_type(ctype)


@pytest.mark.parametrize("ctype", ["image/png", "text/plain", "application/pdf", "video/mp4",
                                   "text/plain; charset=utf-8", 'text/plain; charset="a,b"',
                                   'text/plain; a="x y\\"z\tw"', "image/png;"])
def test_passive_types_are_not(ctype: str) -> None:
    assert not is_active_type(ctype)


def test_configured_extra_types_are_sandboxed() -> None:
    assert not is_active_type("application/x-shockwave-flash")
    assert is_active_type("application/x-shockwave-flash; v=1", ["application/x-shockwave-flash"])


def test_active_types_config_is_checked(tmp_path) -> None:
    config = Config(data_dir=tmp_path, active_types=[" Application/X-Thing "])
    assert config.active_types == ["application/x-thing"]
    for bad in (["text/plain,text/html"], ["thing"], "application/x-thing"):
        with pytest.raises(ConfigError, match="server.active_types"):
            Config(data_dir=tmp_path, active_types=bad)


def test_filenames_in_headers_are_sanitised() -> None:
    assert content_disposition("inline", "a.png") == 'inline; filename="a.png"'
    value = content_disposition("inline", 'é"\\\r\n.txt')
    assert value.startswith('inline; filename="_____.txt"')
    assert "filename*=UTF-8''%C3%A9%22%5C%0D%0A.txt" in value


@pytest.mark.parametrize("mode,header", [("x-accel-redirect", "X-Accel-Redirect"),
                                         ("x-sendfile", "X-Sendfile")])
@pytest.mark.parametrize("asgi", [False, True])
def test_front_proxy_serves_the_bytes(tmp_path, mode: str, header: str, asgi: bool) -> None:
    config = Config(data_dir=tmp_path, secrets=["s"], serve_mode=mode,
                    services={"uploader": ServiceConfig("uploader", prefix="/")})
    runtime = build_runtime(config)
    account = runtime.accounts.create("a")
    token, _ = runtime.keys.create("uploader", account.id)
    client = falcon.testing.TestClient(create_app(runtime, asgi=asgi))
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n'
            b"Content-Type: application/zip\r\n\r\nPK\x03\x04data\r\n--b--\r\n")
    up = client.simulate_post("/upload", body=body, headers={
        "Authorization": token, "Content-Type": "multipart/form-data; boundary=b"})
    item_id = up.json["ID"]
    got = client.simulate_get("/" + item_id)
    assert got.status_code == 200
    target = got.headers[header]
    assert target.endswith(f"uploader/{item_id}")
    if mode == "x-accel-redirect":
        assert target.startswith("/_hepcore_files/")
    assert got.content == b""
    assert got.headers["etag"].startswith('"')
    assert got.headers["content-type"] == "application/zip"
    # Ranges still come from hepcore itself.
    part = client.simulate_get("/" + item_id, headers={"Range": "bytes=0-1"})
    assert part.status_code == 206 and part.content == b"PK"
    runtime.close()
