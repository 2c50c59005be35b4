"""Small hostile inputs that used to cost seconds to minutes of CPU per request,
stalling a whole worker: backtracking regular expressions, a quadratic form
parser, a paste detector that crossed lines.

Each case runs in a subprocess that must finish within a generous bound (60 s,
against well under a second now and minutes before the fix), and checks the
answer too. The bound is a liveness check, not a speed measurement.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CASES = {
    # Spaces around an empty digit run: cubic in the header's length (8 KB,
    # under gunicorn's field limit, took 280 s).
    "range": """
        from hepcore.serving import parse_range
        assert parse_range("bytes=" + " " * 4000 + "-" + " " * 4000 + "x", 100) is None
        assert parse_range("bytes = 10 - 19 ", 100) is not None
    """,
    # " ; " repeated: exponential (25 repeats would take days).
    "media-type": """
        from hepcore.serving import is_active_type, single_media_type
        assert single_media_type("a/b" + " ; " * 40 + ",") is None
        assert single_media_type("text/html ; charset=utf-8 ;  ; q=\\"a;b\\" ") == "text/html"
        assert is_active_type("a/b" + " ; " * 40 + ",")  # not one media type: fails closed
    """,
    # 8 MiB of "&" in one chunk: each field searched to the chunk's end for "=".
    "form-fields": """
        from hepcore.urlencoded import iter_field
        body = b"&" * (8 << 20) + b"a&" * (1 << 20) + b"a&&" * (1 << 20) + b"link=hi%21&x=1"
        assert b"".join(iter_field([body], "link")) == b"hi!"
        assert b"".join(iter_field([b"a=1&&&link=&b=2"], "link")) == b""
    """,
    # Newlines: "^\\s*" under MULTILINE crossed them from every line start
    # (a paste of 8,000 newlines and 20 letters took 3 s to create).
    "paste-detect-lines": """
        from hepcore_paste.detect import _SQL_STATEMENT, detect
        assert detect("\\n" * 8000 + "x" * 20) == "plaintext"
        assert _SQL_STATEMENT.search("\\n" * 60000 + "x") is None
        assert _SQL_STATEMENT.search("\\n\\n  SELECT 1;") is not None
    """,
    # Too deep for the JSON parser: a RecursionError, which was a 500.
    "paste-detect-nesting": """
        from hepcore_paste.detect import detect
        assert detect("[" * 5000 + "]" * 5000) == "plaintext"
    """,
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_input_is_answered_at_once(case: str) -> None:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CASES[case])],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
