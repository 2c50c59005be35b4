"""The CDN's pure rules: human sizes (4.4), filename sanitising (4.2), names from
URLs (6.3), extensions on rename (6.5), UUIDv7 ids and content types (4.3)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import multipart
import pytest
import sqlite_utils
from cdnkit import UUID7_RE
from hypothesis import given, settings
from hypothesis import strategies as st

from hepcore.db import Database
from hepcore.outbound import human_size
from hepcore.storage import check_key
from hepcore.testing import FakeClock
from hepcore_cdn.migrations import cdn
from hepcore_cdn.names import (
    extension,
    filename_from_url,
    renamed,
    sanitize,
    sent_filename,
    storage_key,
)
from hepcore_cdn.store import UploadStore, uuid7
from hepcore_cdn.types import detect_type, normalise_declared


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 Bytes"), (1, "1 Byte"), (2, "2 Bytes"), (1023, "1023 Bytes"), (1024, "1 KB"),
    (1536, "1.5 KB"), (1237319, "1.18 MB"), (10 * 1024**2, "10 MB"), (10 * 1024**2 + 1, "10 MB"),
    (100 * 1024**2, "100 MB"), (500 * 1024**2, "500 MB"), (50 * 1024**3, "50 GB"),
    (1048575, "1020 KB"), (1024**4, "1 TB"), (3 * 1024**5, "3070 TB"),
    (1152, "1.13 KB"), (126 * 1024**2, "126 MB"),
])
def test_human_size(n: int, text: str) -> None:
    assert human_size(n) == text


@given(st.integers(min_value=0, max_value=2**60))
@settings(max_examples=200)
def test_human_size_form(n: int) -> None:
    value, unit = human_size(n).split(" ")
    assert unit in ("Byte", "Bytes", "KB", "MB", "GB", "TB")
    digits = value.replace(".", "").lstrip("0")
    assert unit in ("Byte", "Bytes") or len(digits.rstrip("0")) <= 3
    assert not value.endswith(".") and not (("." in value) and value.endswith("0"))


@pytest.mark.parametrize(("name", "clean"), [
    ("my file?.png", "my file-.png"), ("a/b.txt", "a-b.txt"), ("  x  ", "x"),
    ("\u202eexe.txt", "-exe.txt"), ("tab\there", "tab-here"), ("a\\b", "a-b"),
    ("100%.txt", "100-.txt"), ("$|:;<>?*\"", "---------"), ("ok-name_1.tar.gz", "ok-name_1.tar.gz"),
    ("\ud800bad", "\ufffdbad"),
])
def test_sanitize(name: str, clean: str) -> None:
    assert sanitize(name) == clean


@given(st.text(max_size=80) | st.text(min_size=250, max_size=400))
@settings(max_examples=300)
def test_sanitised_names_are_safe(name: str) -> None:
    clean = sanitize(name)
    assert len(clean) <= 255
    assert not set(clean) & set('\u202e%$|:;/<>?*"\t\r\n\\')
    assert clean == clean.strip() or clean.strip() == ""
    clean.encode("utf-8")
    assert sanitize(clean) == clean
    check_key(storage_key("0190f1a2-b3c4-7d5e-8f90-a1b2c3d4e5f6", clean))


@pytest.mark.parametrize(("disposition", "name"), [
    ('form-data; name="file"; filename="C:\\x\\y.txt"', "C:\\x\\y.txt"),
    ('form-data; name="file"; filename="\\\\server\\share\\f.txt"', "\\\\server\\share\\f.txt"),
    ('form-data; name="file"; filename="C:\\x\\y.txt"; size=3', "C:\\x\\y.txt"),
    ('form-data; name=file; filename="C:\\a\\\\"', "C:\\a\\\\"),
    ('form-data; name="file"; filename="a%22b%0Ac.txt"', 'a"b\nc.txt'),
    ('form-data; name="file"; filename="a\\"b.txt"', 'a"b.txt'),
    ('form-data; name="file"; filename=plain.txt', "plain.txt"),
    ('form-data; name="file"; filename=""', ""),
    ('form-data; name="file"', None),
    ("form-data", None),
    (None, None),
])
def test_sent_filename(disposition: str | None, name: str | None) -> None:
    assert sent_filename(disposition) == name


def _parsed(disposition: str) -> str | None:
    """``Part.filename``: what the multipart parser makes of the header."""
    return multipart.MultipartSegment([("Content-Disposition", disposition)]).filename


def _last_windows_part(name: str) -> str:
    """The parser's cut of a value that looks like a Windows path."""
    if name[1:3] == ":\\" or name[:2] == "\\\\":
        return name.rpartition("\\")[-1]
    return name


_FILENAME_CHARS = st.sampled_from(list('ab.:\\"%;= ') + ["%22", "%0D", "C:\\", "\\\\"])


@given(prefix=st.sampled_from(['form-data; name="file"; filename=', "form-data; filename=",
                               'form-data; name="f"; x=1; filename=']),
       quoted=st.booleans(), value=st.lists(_FILENAME_CHARS, max_size=12).map("".join),
       suffix=st.sampled_from(["", "; size=1", ";x", '"']))
@settings(max_examples=300)
def test_sent_filename_is_the_parsers_filename_uncut(prefix: str, quoted: bool, value: str,
                                                     suffix: str) -> None:
    """Exactly the parser's decoding, the Windows-path cut aside: checked
    against the installed parser, so a change in it shows here."""
    disposition = prefix + (f'"{value}"' if quoted else value) + suffix
    ours, theirs = sent_filename(disposition), _parsed(disposition)
    assert (ours is None) == (theirs is None)
    if ours is not None:
        assert _last_windows_part(ours) == theirs


@pytest.mark.parametrize(("url", "name"), [
    ("https://example.com/test.jpg", "test.jpg"), ("https://example.com", "download"),
    ("https://example.com/", "-"), ("https://example.com/a/b/", "b"),
    ("https://example.com/a%20b.png?x=y#f", "a-20b.png"), ("https://e.com/x?name=y.png", "x"),
    ("https://e.com/pipe|name", "pipe-name"),
])
def test_filename_from_url(url: str, name: str) -> None:
    assert filename_from_url(url) == name


@pytest.mark.parametrize(("name", "clean"), [
    ("a" * 255, "a" * 255),
    ("a" * 300, "a" * 255),
    ("a" * 300 + ".png", "a" * 251 + ".png"),
    ("a" * 250 + "     " + "b" * 10 + ".png", "a" * 250 + ".png"),
    ("a" * 300 + "." + "e" * 31, "a" * 223 + "." + "e" * 31),
    ("a" * 300 + "." + "e" * 32, "a" * 255),
    ("€" * 3000 + ".txt", "€" * 251 + ".txt"),
])
def test_long_names_are_cut_keeping_the_extension(name: str, clean: str) -> None:
    assert sanitize(name) == clean


def test_renamed_cuts_a_name_that_gains_the_old_extension() -> None:
    assert renamed("old.jpeg", "n" * 255) == "n" * 250 + ".jpeg"


@pytest.mark.parametrize(("old", "new", "result"), [
    ("before.png", "after", "after.png"), ("before.png", "after.jpg", "after.jpg"),
    ("before", "after", "after"), ("x.tar.gz", "y", "y.gz"), ("before.png", ".env", ".env.png"),
    (".bashrc", "profile", "profile"), ("a.", "b", "b"),
])
def test_renamed(old: str, new: str, result: str) -> None:
    assert renamed(old, new) == result
    assert extension(".bashrc") == "" and extension("a.b") == ".b"


def test_uuid7() -> None:
    ids = [uuid7(1_780_000_000.123) for _ in range(200)]
    assert len(set(ids)) == 200
    for value in ids:
        assert re.fullmatch(UUID7_RE, value)
        parsed = uuid.UUID(value)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert parsed.int >> 80 == 1_780_000_000_123
    assert uuid7(1.0) < uuid7(2.0)


def test_detect_type() -> None:
    assert detect_type(b"PK\x03\x04", "book.epub", None) == "application/epub+zip"
    assert detect_type(b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>",
                       "x", None) == "image/svg+xml"
    assert detect_type(b"<?xml version='1.0'?><feed/>", "feed.atom", None) == \
        "application/atom+xml"
    assert detect_type(b"\x00\x00\x00\x18ftypM4A ", "song.m4a", None).startswith("audio/")
    assert detect_type(b"", "empty.json", None) == "application/json"
    assert detect_type(b"", "", "TEXT/Plain") == "text/plain; charset=utf-8"
    assert normalise_declared("image/png; name=x") == "image/png"
    assert normalise_declared("image/png\r\nX-Evil: 1") is None
    assert normalise_declared("*/*") is None


def test_rows_made_before_the_digest_was_dropped_survive_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    cdn.apply(old, stop_before="m002_no_content_digest")
    old["cdn_uploads"].insert({
        "id": "0190f1a2-b3c4-7d5e-8f90-a1b2c3d4e5f6", "account_id": "acc", "filename": "a.txt",
        "size": 5, "content_type": "text/plain", "storage_key": "cdn/x/a.txt",
        "sha256": "00" * 32, "original_url": None, "created_at": 1.0})
    old.close()
    database = Database(path)
    try:
        database.migrate([cdn])
        upload = UploadStore(database, FakeClock()).get("0190f1a2-b3c4-7d5e-8f90-a1b2c3d4e5f6")
        assert upload is not None
        assert (upload.filename, upload.size, upload.storage_key) == ("a.txt", 5, "cdn/x/a.txt")
        columns = [r["name"] for r in database.all("PRAGMA table_info(cdn_uploads)")]
        assert "sha256" not in columns
        indexes = {r["name"] for r in database.all("PRAGMA index_list(cdn_uploads)")}
        assert {"cdn_uploads_account", "cdn_uploads_original_url"} <= indexes
    finally:
        database.close()
