"""Language detection (spec section 5, P11) against the corpus in
``tests/paste/corpus``: real code in every curated language and plain prose.
The bar: at least 90% of code right, at most 2% of prose labelled as code."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import CORPUS

from hepcore_paste.detect import CURATED, MAX_BYTES, PLAINTEXT, detect, explain

# A generous bound: these tests check answers, not speed (a loaded CI runner
# must not turn a right answer into "plaintext").
LIMIT = 5.0


HOLDOUT = CORPUS.parent / "holdout"


def code_samples(root: Path = CORPUS) -> list[tuple[str, str]]:
    return [(d.name, f.read_text(encoding="utf-8")) for d in sorted(root.iterdir())
            if d.is_dir() and d.name != "prose" for f in sorted(d.iterdir())]


def prose_samples(path: Path = CORPUS / "prose" / "prose.txt") -> list[str]:
    return path.read_text(encoding="utf-8").split("\n%%\n")


def test_corpus_covers_every_curated_language() -> None:
    counts = Counter(lang for lang, _ in code_samples())
    assert set(counts) == set(CURATED)
    assert min(counts.values()) >= 4, counts
    assert len(prose_samples()) >= 50
    assert {lang for lang, _ in code_samples(HOLDOUT)} == set(CURATED)


@pytest.mark.parametrize("root", [CORPUS, HOLDOUT], ids=["corpus", "holdout"])
def test_code_accuracy_is_at_least_90_percent(root: Path) -> None:
    samples = code_samples(root)
    right = Counter()
    for language, text in samples:
        if detect(text, time_limit=LIMIT) == language:
            right[language] += 1
    accuracy = sum(right.values()) / len(samples)
    misses = [(lang, explain(text, time_limit=LIMIT).language) for lang, text in samples
              if detect(text, time_limit=LIMIT) != lang]
    assert accuracy >= 0.90, (accuracy, misses)


# notices.txt: licence texts and paragraphs of Debian's common licences, whose
# capitalised disclaimers (AS IS, OR, ON, FROM) once read as SQL.
@pytest.mark.parametrize("path", [CORPUS / "prose" / "prose.txt", HOLDOUT / "prose.txt",
                                  CORPUS / "prose" / "notices.txt"],
                         ids=["corpus", "holdout", "notices"])
def test_prose_is_plaintext(path: Path) -> None:
    samples = prose_samples(path)
    labelled = [(detect(p, time_limit=LIMIT), p[:50]) for p in samples]
    false_positives = [x for x in labelled if x[0] != PLAINTEXT]
    assert len(false_positives) <= 0.02 * len(samples), false_positives


@pytest.mark.parametrize("text", [
    "", "   \n\t", "print(1)", "x = 1; y = 2;",  # fewer than 20 non-blank characters
    "a" * 100_000, "\n" * 100_000, "<" * 100_000, "import " + " " * 70_000 + "x",
    "{" * 50_000 + "}" * 50_000, "$a = " * 20_000, "#" * 100_000,
])
def test_short_or_degenerate_input_is_plaintext(text: str) -> None:
    assert detect(text) == PLAINTEXT


def test_only_the_first_64_kib_is_seen() -> None:
    prose = prose_samples()[0] + "\n\n"
    code = (CORPUS / "python" / "01.py.txt").read_text()
    hidden = prose * (MAX_BYTES // len(prose) + 1) + code * 50
    assert detect(hidden, time_limit=LIMIT) == PLAINTEXT
    assert detect(code * 50 + prose * 100, time_limit=LIMIT) == "python"


def test_large_json_is_json_even_when_cut() -> None:
    big = "[" + ",".join(['{"id": 1, "name": "n"}'] * 5000) + "]"
    assert len(big) > MAX_BYTES
    assert detect(big, time_limit=LIMIT) == "json"


def test_a_timeout_gives_plaintext() -> None:
    code = (CORPUS / "go" / "01.go").read_text()
    ticks = iter(range(1000))
    assert detect(code, time_limit=0.5, clock=lambda: float(next(ticks))) == PLAINTEXT
    assert detect(code, time_limit=LIMIT) == "go"
