"""The reader page shows at most ``page_max_bytes`` and ``page_max_lines`` of a
paste, with a note linking to the raw text: each line adds its number to the
page, so a Prime paste of 8 M newlines made every view build a 310 MB page."""

from __future__ import annotations

import re

import pytest
from conftest import bearer

from hepcore_paste.render import page_text


def create(client, key, content, **fields):
    r = client.simulate_post("/api/paste", json={"content": content, **fields},
                             headers=bearer(key))
    assert r.status_code == 200, r.text
    return r.json["data"]["id"]


def host_with_key(paste_host, **options):
    runtime, client = paste_host(**options)
    account = runtime.accounts.create("cap", plan="prime")
    key, _ = runtime.keys.create("paste", account.id)
    return runtime, client, key


def last_line_number(page: str) -> int:
    return max(int(n) for n in re.findall(r'<span class="normal">\s*(\d+)</span>', page))


NOTE = re.compile(r'<p class="cut">The page shows the first ([\d,]+) lines\. <a href="\./'
                  r'([A-Za-z0-9]+)/raw" rel="nofollow">The raw text</a> holds the whole paste'
                  r": (.*?)\.</p>")


def test_newlines_are_cut_at_the_line_limit(client, prime_key) -> None:
    content = "a" + "\n" * 400_000
    pid = create(client, prime_key, content, language="plaintext")
    page = client.simulate_get(f"/{pid}")
    assert page.status_code == 200
    assert last_line_number(page.text) == 50_000
    assert NOTE.search(page.text).groups() == ("50,000", pid, "390.6 KiB (400,001 bytes)")
    assert len(page.content) < 3_000_000  # 22 MB before the cap
    head = client.simulate_request("HEAD", f"/{pid}")
    assert head.headers["Content-Length"] == str(len(page.content))
    raw = client.simulate_get(f"/{pid}/raw")
    assert raw.text == content  # the raw text is whole


def test_a_paste_within_the_limits_has_no_note(client, key) -> None:
    pid = create(client, key, "x\n" * 50_000, language="plaintext")
    page = client.simulate_get(f"/{pid}").text
    assert last_line_number(page) == 50_000
    assert 'class="cut"' not in page


def test_the_byte_limit_ends_at_a_whole_line(paste_host) -> None:
    _, client, key = host_with_key(paste_host, page_max_bytes=1000)
    content = "".join(f"line {n}\n" for n in range(1, 501))
    pid = create(client, key, content, language="plaintext")
    page = client.simulate_get(f"/{pid}").text
    shown = content[:1000]
    shown = shown[:shown.rindex("\n") + 1]
    lines = shown.count("\n")
    assert last_line_number(page) == lines
    assert f"line {lines}\n</code>" in page and f"line {lines + 1}" not in page
    assert NOTE.search(page).group(1) == f"{lines:,}"


def test_the_byte_limit_never_splits_a_character(paste_host) -> None:
    _, client, key = host_with_key(paste_host, page_max_bytes=1001)
    pid = create(client, key, "é" * 3000, language="plaintext")
    page = client.simulate_get(f"/{pid}").text
    assert "<pre><span></span><code>" + "é" * 500 + "\n</code>" in page
    assert "\ufffd" not in page
    assert NOTE.search(page).group(1) == "1"


def test_carriage_returns_count_as_lines(paste_host) -> None:
    _, client, key = host_with_key(paste_host, page_max_lines=10)
    pid = create(client, key, "x\r" * 100 + "y\r\n" * 100, language="plaintext")
    page = client.simulate_get(f"/{pid}").text
    assert last_line_number(page) == 10
    assert NOTE.search(page).group(1) == "10"


def test_a_cut_highlighted_paste_is_cached_with_its_note(paste_host) -> None:
    runtime, client, key = host_with_key(paste_host, page_max_lines=5)
    pid = create(client, key, "def f(x):\n    return x\n" * 10, language="python")
    first = client.simulate_get(f"/{pid}").text
    assert '<span class="k">def</span>' in first  # still highlighted
    assert last_line_number(first) == 5
    assert NOTE.search(first).group(1) == "5"
    assert len(runtime.services["paste"].cache) == 1
    second = client.simulate_get(f"/{pid}").text
    assert NOTE.search(second).group(1) == "5"


@pytest.mark.parametrize(("data", "complete", "limit", "expected"), [
    (b"a\nb\nc\n", True, 3, ("a\nb\nc\n", None)),
    (b"a\nb\nc", True, 3, ("a\nb\nc", None)),
    (b"a\nb\nc\nd", True, 3, ("a\nb\nc\n", 3)),
    (b"a\nb\nc\n\n", True, 3, ("a\nb\nc\n", 3)),
    (b"a\r\nb\rc", True, 2, ("a\nb\n", 2)),
    (b"a\nb\nc", False, 9, ("a\nb\n", 2)),
    (b"abc", False, 9, ("abc", 1)),
    (b"ab\xc3", False, 9, ("ab", 1)),
    (b"ab\xc3", True, 9, ("ab\ufffd", None)),
    (b"", True, 1, ("", None)),
])
def test_page_text(data, complete, limit, expected) -> None:
    assert page_text(data, complete=complete, max_lines=limit) == expected
