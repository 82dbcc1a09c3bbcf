"""The lexicon sentiment model on a few comments scored by hand."""

from __future__ import annotations

from math import sqrt

import polars as pl
import pytest

from tasks.kpis.sentiment import NEGATIONS, comment_sentiment, lexicon

# A tiny lexicon so every sum below is easy to check: good 2, bad -2, slow -1, fast 1.5.
TINY = pl.LazyFrame({"word": ["good", "bad", "slow", "fast"], "valence": [2.0, -2.0, -1.0, 1.5]})


def compound(x: float) -> float:
    """VADER's normalisation x / sqrt(x^2 + 15), worked in plain Python."""
    return x / sqrt(x * x + 15)


def scores(texts: list[str], words: pl.LazyFrame | None = TINY) -> dict[str, float]:
    """comment_sentiment of each text, keyed by its position as 'c0', 'c1', ..."""
    comments = pl.LazyFrame({"id": [f"c{i}" for i in range(len(texts))], "text": texts})
    out = comment_sentiment(comments, "id", "text", words).collect()
    return dict(zip(out["id"], out["sentiment"], strict=True))


def test_sums_valences_per_comment_and_normalises() -> None:
    # c0 "Good and fast"    x = 2 + 1.5 = 3.5  -> 3.5 / sqrt(12.25 + 15) = 3.5 / 5.2202 = 0.67047
    # c1 "BAD, bad, slow!"  x = -2 - 2 - 1 = -5 -> -5 / sqrt(25 + 15) = -5 / 6.3246 = -0.79057
    # c2 "Arrived Tuesday"  no lexicon word     -> 0
    # c3 ""                 no word at all      -> 0 (still scored, not dropped)
    got = scores(["Good and fast", "BAD, bad, slow!", "Arrived Tuesday", ""])
    assert got == {
        "c0": pytest.approx(0.67047, abs=1e-5),
        "c1": pytest.approx(-0.79057, abs=1e-5),
        "c2": 0.0,
        "c3": 0.0,
    }
    assert got["c0"] == pytest.approx(compound(3.5))


def test_negation_flips_words_up_to_three_tokens_after_it() -> None:
    # c0 "not good"                 good negated                   x = -2     -> -0.45883
    # c1 "wasn't fast, still good"  fast negated (n't), good is 3 tokens after wasn't: negated
    #                               x = -1.5 - 2 = -3.5                       -> -0.67047
    # c2 "never was it so good"     good is 4 tokens after never: not negated, x = 2 -> 0.45883
    # c3 "It isn’t bad"             curly apostrophe read as isn't: bad flipped, x = 2 -> 0.45883
    # c4 "no"                       a negation alone carries no valence -> 0
    got = scores(
        ["not good", "wasn't fast, still good", "never was it so good", "It isn’t bad", "no"]
    )
    assert got["c0"] == pytest.approx(-2 / sqrt(19))
    assert got["c0"] == pytest.approx(-0.45883, abs=1e-5)
    assert got["c1"] == pytest.approx(compound(-3.5))
    assert got["c2"] == pytest.approx(2 / sqrt(19))
    assert got["c3"] == pytest.approx(2 / sqrt(19))
    assert got["c4"] == 0.0


def test_negation_does_not_reach_into_the_next_comment() -> None:
    # c0 "it was not"  a trailing negation, nothing after it in c0 -> 0
    # c1 "good"        first token of the next comment: not negated, x = 2 -> 0.45883
    # c2 "never"       negation alone -> 0;  c3 "" -> 0;  c4 "fast": not negated -> 1.5
    got = scores(["it was not", "good", "never", "", "fast"])
    assert got["c0"] == 0.0
    assert got["c1"] == pytest.approx(2 / sqrt(19))
    assert got["c2"] == 0.0
    assert got["c3"] == 0.0
    assert got["c4"] == pytest.approx(compound(1.5))


def test_vader_lexicon_is_read_from_the_installed_package() -> None:
    # Word tokens only, one valence each on VADER's -4 .. 4 scale, negations dropped.
    # Known ratings: great 3.1, terrible -2.1, love 3.2; "ok" is listed twice (1.6, then 1.2)
    # and keeps the last, as VADER's own dictionary does.
    words = lexicon().collect()
    assert words.height > 7000
    assert words["word"].n_unique() == words.height
    assert words.filter(pl.col("valence").abs() > 4).height == 0
    valence = dict(zip(words["word"], words["valence"], strict=True))
    assert (valence["great"], valence["terrible"], valence["love"], valence["ok"]) == (
        3.1,
        -2.1,
        3.2,
        1.2,
    )
    assert not set(NEGATIONS) & set(valence)
    assert ":)" not in valence


def test_default_lexicon_scores_a_support_comment() -> None:
    # VADER valences: love 3.2, bad -2.5; "i", "don't", "it", "it's" are not rated.
    # "I don't love it, it's BAD": love is negated (-3.2); bad is 3 tokens after love and
    # 4 after don't, so it keeps -2.5. x = -5.7 -> -5.7 / sqrt(32.49 + 15) = -0.82713.
    got = scores(["I don't love it, it's BAD"], words=None)
    assert got["c0"] == pytest.approx(-0.82713, abs=1e-5)
