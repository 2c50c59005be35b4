"""The reader page (P12): Pygments highlighting with line numbers, light and
dark themes by ``prefers-color-scheme``, every user string escaped, styles
inline under a per-response nonce (the page has no scripts).

Highlighting is the slow part (about 5 us and 14 bytes of HTML per byte of
content), so the highlighted block is cached in a bounded LRU keyed by the
content hash and lexer; the page around it (title, views, the nonce) is
built per response. Pastes too large to highlight get :func:`plain_block`,
the same markup without colours, built with a few string operations, and
so do pastes that take too long: some Pygments lexers take time that grows
with the square of the input (long runs of blank lines), so highlighting
has a time limit, checked between tokens.
"""

from __future__ import annotations

import codecs
import html
import itertools
import re
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from importlib import resources
from string import Template
from typing import Any

from pygments import format as format_tokens
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, find_lexer_class, get_all_lexers, get_lexer_by_name
from pygments.util import ClassNotFound

from hepcore.clock import iso_ms

from .fields import LANGUAGE_MAX
from .store import Paste

LIGHT_STYLE = "default"
DARK_STYLE = "monokai"
PAGE_CSP = ("default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self' data:;"
            " base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# Stored identifiers whose Pygments name differs.
LEXER_NAMES = {"plaintext": "text", "dockerfile": "docker", "csharp": "csharp", "xml": "xml"}
# Pygments' own token-stream format, not a language: its lexer would turn the
# token names in a paste into token types kept in an unbounded module cache.
NOT_LANGUAGES = frozenset({"Raw token data"})


def lexer_for(language: str) -> Lexer:
    """The Pygments lexer of a stored language, found by alias or else by name
    (section 5); plain text when Pygments has neither."""
    name = LEXER_NAMES.get(language, language)
    try:
        lexer: Lexer = get_lexer_by_name(name, stripnl=False, ensurenl=False)
        return lexer
    except ClassNotFound:
        pass
    full_name = _lexer_names().get(language)
    cls = None if full_name is None else find_lexer_class(full_name)
    return (cls or TextLexer)(stripnl=False, ensurenl=False)


@lru_cache(maxsize=1)
def _lexer_names() -> dict[str, str]:
    """Every Pygments lexer name as a stored language holds it (lower-cased,
    cut to 32 characters), to the name; built once, on the first miss by alias."""
    names: dict[str, str] = {}
    for name, *_ in get_all_lexers():
        if name not in NOT_LANGUAGES:
            names.setdefault(name.lower()[:LANGUAGE_MAX], name)
    return names


def _formatter() -> HtmlFormatter[str]:
    return HtmlFormatter(linenos="table", cssclass="hl", wrapcode=True)


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """The page's CSS: layout, the light theme, and the dark one in a media query."""
    light: str = HtmlFormatter(style=LIGHT_STYLE, cssclass="hl").get_style_defs(".hl")
    dark: str = HtmlFormatter(style=DARK_STYLE, cssclass="hl").get_style_defs(".hl")
    base = _template("page.css").template
    return (base + "\n" + light
            + "\n@media (prefers-color-scheme: dark) {\n" + _DARK_BASE + "\n" + dark + "\n}\n")


_DARK_BASE = """\
:root { color-scheme: dark; }
body { background: #1b1c1e; color: #e6e6e6; }
header .meta, .muted { color: #a8a8a8; }
a { color: #8cb4ff; }
.code, .cut { border-color: #3a3b3e; }
"""


@lru_cache(maxsize=4)
def _template(name: str) -> Template:
    text = resources.files(__package__).joinpath("templates", name).read_text("utf-8")
    return Template(text)


class HighlightCache:
    """A bounded LRU of highlighted blocks (encoded), by the memory they take
    (``sys.getsizeof``; for a string 1, 2 or 4 bytes a character)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], str | bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> str | bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[str, str], value: str | bytes) -> None:
        size = sys.getsizeof(value)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= sys.getsizeof(old)
            self._items[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= sys.getsizeof(dropped)

    @property
    def size(self) -> int:
        """Bytes held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)


class _TooSlow(Exception):
    pass


def highlighted(content: str, language: str, *, plain: bool = False,
                time_limit: float | None = None,
                clock: Callable[[], float] = time.perf_counter) -> str:
    """The content as a Pygments table with line numbers; ``plain``: without
    colours (:func:`plain_block`, for pastes too large to highlight). Past
    ``time_limit`` seconds of lexing, the answer is :func:`plain_block` too:
    the limit is checked between tokens, which no lexer takes long to yield
    one by one, even where their total grows with the square of the input."""
    if plain:
        return plain_block(content)
    tokens: Iterable[tuple[Any, str]] = lexer_for(language).get_tokens(content)
    if time_limit is not None:
        tokens = _until(tokens, clock() + time_limit, clock)
    try:
        html: str = format_tokens(tokens, _formatter())
    except _TooSlow:
        return plain_block(content)
    return html


def _until(tokens: Iterable[tuple[Any, str]], deadline: float,
           clock: Callable[[], float]) -> Iterator[tuple[Any, str]]:
    for token in tokens:
        if clock() > deadline:
            raise _TooSlow()
        yield token


def page_text(data: bytes, *, complete: bool, max_lines: int) -> tuple[str, int | None]:
    """What the reader page shows of a paste whose first bytes are ``data``
    (``complete``: all of them): decoded, its line ends made ``\\n``, cut to
    ``max_lines`` lines, and the lines shown when that is not the whole paste
    (``None`` when it is). A paste cut short by ``data`` ends at its last
    whole line, if it has one."""
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=complete)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    cut = not complete
    if cut and "\n" in text:
        text = text[:text.rindex("\n") + 1]
    ends = text.count("\n")
    if ends >= max_lines and not (ends == max_lines and text.endswith("\n")):
        last = next(itertools.islice(_NEWLINE.finditer(text), max_lines - 1, None))
        text, cut = text[:last.end()], True
    if not cut:
        return text, None
    return text, text.count("\n") + (0 if text.endswith("\n") or not text else 1)


_NEWLINE = re.compile("\n")


def cut_notice(paste: Paste, lines: int) -> str:
    """The note under a page that shows only the first ``lines`` lines."""
    raw = html.escape(f"./{paste.id}/raw", quote=True)
    return (f'<p class="cut">The page shows the first {lines:,} lines. <a href="{raw}"'
            f' rel="nofollow">The raw text</a> holds the whole paste:'
            f" {html.escape(human_size(paste.size))}.</p>\n")


def plain_block(content: str) -> str:
    """The markup Pygments' table formatter gives plain text (escaped, with
    line numbers), in time linear in the size and without per-token work."""
    content = content.removeprefix("\ufeff")
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if content and not content.endswith("\n"):
        content += "\n"
    lines = content.count("\n")
    width = len(str(lines))
    numbers = "\n".join(f'<span class="normal">{n:>{width}}</span>'
                        for n in range(1, lines + 1))
    code = content.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (f'<div class="hl"><table class="hltable"><tr><td class="linenos">'
            f'<div class="linenodiv"><pre>{numbers}</pre></div></td><td class="code"><div>'
            f'<pre><span></span><code>{code}</code></pre></div></td></tr></table></div>\n')


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    for unit, factor in (("KiB", 1024), ("MiB", 1024 ** 2)):
        value = size / factor
        if value < 1024 or unit == "MiB":
            return f"{value:.1f} {unit} ({size:,} bytes)"
    return f"{size} bytes"


# Every value put in the page is escaped, so no "<" of it survives: the marker
# can come only from the template's own $code.
_CODE_MARK = "<hepcore-code>"


def reader_page(paste: Paste, block: bytes, *, views: int, site_name: str) -> tuple[bytes, str]:
    """The whole page around the encoded highlighted ``block``, and its CSP
    header value (a fresh nonce each time)."""
    nonce = secrets.token_urlsafe(18)
    title = paste.title or "Untitled"
    page = _template("reader.html").substitute(
        nonce=nonce,
        css=stylesheet(),
        title=html.escape(title),
        # Isolated (FSI ... PDI): bidi controls in the title cannot reorder the
        # site name after it in the browser's tab; the <h1> is its own paragraph.
        tab_title=f"\u2068{html.escape(title)}\u2069",
        site=html.escape(site_name),
        language=html.escape(paste.language),
        views=f"{views:,}",
        created=iso_ms(paste.created_at),
        expires="Never" if paste.expires_at is None else iso_ms(paste.expires_at),
        size=html.escape(human_size(paste.size)),
        raw=html.escape(f"./{paste.id}/raw", quote=True),
        code=_CODE_MARK,
    )
    head, _, tail = page.partition(_CODE_MARK)
    return b"".join((head.encode("utf-8"), block, tail.encode("utf-8"))), PAGE_CSP.format(
        nonce=nonce)


def not_found_page(site_name: str) -> tuple[bytes, str]:
    nonce = secrets.token_urlsafe(18)
    page = _template("not_found.html").substitute(
        nonce=nonce, css=_template("page.css").template, site=html.escape(site_name))
    return page.encode("utf-8"), PAGE_CSP.format(nonce=nonce)
