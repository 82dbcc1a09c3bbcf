"""Comment sentiment: a small local lexicon model in pure polars (no network, no model download).

The word valences (-4 .. 4) are VADER's human-rated lexicon (Hutto & Gilbert 2014), read from
`vader_lexicon.txt` inside the installed `vaderSentiment` package. Scoring is a simplified VADER:
lowercase, extract word tokens, look each up in the lexicon, flip the sign of a word that one of
the NEGATION_SCOPE words before it negates (not, no, never, n't ...), sum per comment and
normalise to [-1, 1] with x / sqrt(x^2 + alpha), alpha = 15. A comment with no lexicon word
scores 0. VADER's boosters, capitals, punctuation emphasis and "but" rule are left out.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import polars as pl

from tasks.kpis.frame import as_float, summable

ALPHA = 15.0
"""VADER's normalisation constant: compound = x / sqrt(x^2 + ALPHA)."""

NEGATION_SCOPE = 3
"""A negation flips the valence of any of the next three words, as in VADER."""

WORD = r"[a-z]+(?:'[a-z]+)?"
"""A word token: letters, optionally one apostrophe inside (don't, isn't, can't)."""

NEGATIONS = (
    "not", "no", "never", "none", "nothing", "nobody", "nowhere", "neither", "nor", "without",
    "cannot", "cant", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont",
    "wouldnt", "shouldnt", "couldnt", "hasnt", "havent", "hadnt", "aint", "rarely", "seldom",
)  # fmt: skip
"""Negating words; any token ending in n't (don't, isn't, won't ...) negates too."""

LEXICON_SCHEMA = {"word": pl.String(), "valence": pl.Float64()}
_COMMENT = "_comment"
"""Working column: each comment's number, carried by its tokens."""


@cache
def _vader_lexicon() -> pl.DataFrame:
    """VADER's lexicon as (word, valence): word tokens only, negations dropped, last entry wins.

    The file is tab-separated: token, mean valence, standard deviation, the ten raw ratings.
    Emoticons and other non-word tokens cannot match a word token and are dropped; a negation
    word (VADER rates "no" -1.2) acts only as a negator here. A token listed twice keeps its
    last valence, as VADER's own dictionary does.
    """
    path = files("vaderSentiment").joinpath("vader_lexicon.txt")
    raw = pl.read_csv(
        path.read_bytes(),
        separator="\t",
        has_header=False,
        quote_char=None,
        new_columns=["word", "valence", "deviation", "ratings"],
        schema_overrides={"word": pl.String, "valence": pl.Float64},
    ).select("word", "valence")
    return (
        raw.filter(pl.col("word").str.contains(f"^{WORD}$"), ~_is_negation(pl.col("word")))
        .unique(subset="word", keep="last", maintain_order=True)
        .cast(LEXICON_SCHEMA)  # type: ignore[arg-type]
    )


def lexicon() -> pl.LazyFrame:
    """The word -> valence lexicon (word, valence) the sentiment model scores with."""
    return _vader_lexicon().lazy()


def _is_negation(token: pl.Expr) -> pl.Expr:
    """Whether a token negates the words after it."""
    return token.is_in(NEGATIONS) | token.str.ends_with("n't")


def _negated(token: pl.Expr, comment: pl.Expr) -> pl.Expr:
    """Whether one of the NEGATION_SCOPE tokens before this one, in its comment, negates it.

    Tokens are in comment order, so the k-th token before is k rows up if it has the same
    `comment` number: plain shifts, not a window per comment (M's comments: 0.09 s -> 0.015 s).
    """
    before = [
        (_is_negation(token.shift(k)) & (comment.shift(k) == comment)).fill_null(False)
        for k in range(1, NEGATION_SCOPE + 1)
    ]
    return pl.any_horizontal(before)


def normalise(total: pl.Expr) -> pl.Expr:
    """VADER's compound normalisation of a summed valence into [-1, 1]."""
    return total / (total.pow(2) + ALPHA).sqrt()


def comment_sentiment(
    comments: pl.LazyFrame,
    id_column: str,
    text_column: str,
    words: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """(id_column, sentiment) for every comment: its compound score in [-1, 1].

    `words` is a (word, valence) lexicon, VADER's by default. Comments are scored as given:
    drop NULL or empty ones first if they should not count.
    """
    valences = lexicon() if words is None else words
    texts = comments.select(
        id_column,
        pl.col(text_column).str.to_lowercase().str.replace_all("\u2019", "'").alias("text"),
    ).with_row_index(_COMMENT)
    tokens = texts.select(_COMMENT, pl.col("text").str.extract_all(WORD).alias("word")).explode(
        "word"
    )
    scored = (
        tokens.with_columns(_negated(pl.col("word"), pl.col(_COMMENT)).alias("negated"))
        .join(valences, on="word", how="inner")
        .group_by(_COMMENT)
        .agg(
            summable(
                pl.when(pl.col("negated")).then(-pl.col("valence")).otherwise(pl.col("valence"))
            )
            .sum()
            .alias("total")
        )
    )
    return texts.join(scored, on=_COMMENT, how="left").select(
        id_column, normalise(as_float(pl.col("total")).fill_null(0.0)).alias("sentiment")
    )
