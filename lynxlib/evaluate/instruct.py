"""Instruction following under held-out styles (paper Sec. 3.3, Table 10).

Answers are produced under answer-style instructions the model never saw in training ("short",
"one_word", "explain"). We report the mean answer length in words per style and the compliance rate:

* one_word: exactly one word;
* short: at most ``short_max`` words (default 5);
* explain: gives a reason: contains "because", "since", "so", "therefore", "as a result", "due to"
  or a colon.

Separately, accuracy on held-out question phrasings against the trained ones measures how well the
model generalises to new instructions. The paper's reference: under "give a short answer" the
Vicuna-based model answers in 15.81 words on average, the LLaMA-based one in 20.15.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import pandas as pd

from lynxlib.evaluate.text import word_count

STYLES = ("short", "one_word", "explain")
REASON_MARKERS = ("because", "since", "so", "therefore", "as a result", "due to", ":")
PAPER_SHORT_ANSWER_WORDS = {"Vicuna-based": 15.81, "LLaMA-based": 20.15}
_REASON = re.compile(r"\b(?:because|since|so|therefore|as a result|due to)\b|:", re.IGNORECASE)


def has_reason(text: str) -> bool:
    """Whether ``text`` states a reason (a marker word as a whole word, or a colon)."""
    return bool(_REASON.search(str(text)))


def complies(text: str, *, style: str, short_max: int = 5) -> bool:
    """Whether an answer follows the style instruction ``style``."""
    if style == "one_word":
        return word_count(text) == 1
    if style == "short":
        return 1 <= word_count(text) <= short_max
    if style == "explain":
        return has_reason(text)
    raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")


def _get(row: Mapping[str, Any], key: str, index: int) -> Any:
    if key not in row:
        raise ValueError(f"row {index}: missing key {key!r} (has {sorted(row)})")
    return row[key]


@dataclass(frozen=True)
class StyleStats:
    style: str
    n: int
    mean_words: float
    std_words: float
    compliance: float


def style_stats(rows: Sequence[Mapping[str, Any]], *, short_max: int = 5) -> list[StyleStats]:
    """Per style (in :data:`STYLES` order, then others): answers, mean/std words, compliance rate.

    ``rows``: mappings with ``style`` and ``response``.
    """
    grouped: dict[str, list[str]] = {}
    for i, row in enumerate(rows):
        grouped.setdefault(str(_get(row, "style", i)), []).append(str(_get(row, "response", i)))
    order = [s for s in STYLES if s in grouped] + sorted(s for s in grouped if s not in STYLES)
    out = []
    for style in order:
        texts = grouped[style]
        lengths = [word_count(t) for t in texts]
        rate = (sum(complies(t, style=style, short_max=short_max) for t in texts) / len(texts)
                if style in STYLES else float("nan"))
        out.append(StyleStats(style=style, n=len(texts), mean_words=statistics.fmean(lengths),
                              std_words=statistics.stdev(lengths) if len(lengths) > 1 else 0.0, compliance=rate))
    return out


def instruct_table(rows: Sequence[Mapping[str, Any]], *, short_max: int = 5) -> pd.DataFrame:
    """:func:`style_stats` as a DataFrame (the ``instruct.csv`` of an eval folder)."""
    return pd.DataFrame([asdict(s) for s in style_stats(rows, short_max=short_max)],
                        columns=list(StyleStats.__dataclass_fields__))


@dataclass(frozen=True)
class PhrasingStats:
    """Accuracy on trained vs held-out question phrasings; ``gap`` = train - held_out."""

    n_train: int
    n_held_out: int
    train_accuracy: float
    held_out_accuracy: float

    @property
    def gap(self) -> float:
        return self.train_accuracy - self.held_out_accuracy


def phrasing_accuracy(rows: Sequence[Mapping[str, Any]]) -> PhrasingStats:
    """``rows``: mappings with ``phrasing`` ('train' or 'held_out') and ``correct`` (bool).

    Rows whose ``correct`` is None (an undecided judge verdict) are skipped.
    """
    tally = {"train": [0, 0], "held_out": [0, 0]}
    for i, row in enumerate(rows):
        phrasing, correct = _get(row, "phrasing", i), _get(row, "correct", i)
        if phrasing not in tally:
            raise ValueError(f"row {i}: phrasing must be 'train' or 'held_out', got {phrasing!r}")
        if correct is None:
            continue
        tally[phrasing][0] += bool(correct)
        tally[phrasing][1] += 1
    acc = {k: (c / n if n else float("nan")) for k, (c, n) in tally.items()}
    return PhrasingStats(n_train=tally["train"][1], n_held_out=tally["held_out"][1],
                         train_accuracy=acc["train"], held_out_accuracy=acc["held_out"])


def phrasing_table(rows_by_model: Mapping[str, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """Table 10 analogue: one row per model with trained / held-out phrasing accuracy and the gap."""
    records = []
    for model, rows in rows_by_model.items():
        stats = phrasing_accuracy(rows)
        records.append({"model": model, **asdict(stats), "gap": stats.gap})
    return pd.DataFrame(records).set_index("model")


def length_table(rows_by_model: Mapping[str, Sequence[Mapping[str, Any]]], *, short_max: int = 5) -> pd.DataFrame:
    """Mean words and compliance per model and style, beside the paper's 'give a short answer' numbers."""
    parts = []
    for model, rows in rows_by_model.items():
        frame = instruct_table(rows, short_max=short_max)
        frame.insert(0, "model", model)
        parts.append(frame)
    table = pd.concat(parts, ignore_index=True)
    table.attrs["paper_short_answer_words"] = dict(PAPER_SHORT_ANSWER_WORDS)
    return table
