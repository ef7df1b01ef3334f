"""Baselines for Open-VQA scores: what an answer reaches without the image.

* the majority answer: every item of a category answered with the category's most frequent answer;
* the question-type floor: every item answered with the best constant of its question type under the
  judge (a model that reads only the question's wording, Spatial's yes/no vs grid positions).

Both are scored with :func:`lynxlib.evaluate.openvqa.evaluate_records` and written as ``baselines.csv``.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from lynxlib.evaluate.judges import Judge
from lynxlib.evaluate.openvqa import OpenVQAResult, category_of, evaluate_records, record_id, record_references
from lynxlib.evaluate.text import normalise


def majority_answers(records: Sequence[Mapping[str, Any]], *, kind: str | None = None) -> dict[str, str]:
    """The most frequent (normalised, first) reference answer per category of ``records``.

    Pass the training pool's records for an honest baseline; passing the evaluation records
    themselves gives an optimistic (leaky) one. Ties break alphabetically.
    """
    counts: dict[str, Counter] = {}
    for record in records:
        answers = record.get("answer", record.get("answers"))
        first = answers if isinstance(answers, str) else answers[0]
        counts.setdefault(category_of(record, kind=kind), Counter())[normalise(first)] += 1
    return {cat: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for cat, c in counts.items()}


def best_constant(references: Sequence[Sequence[str]], judge: Judge) -> tuple[str, int]:
    """(answer, items judged right) of the one answer that, given to every item, ``judge`` scores best.

    The candidates are the items' own first references (ties: the alphabetically last). The majority
    answer counts exact answers; a judge that accepts a reference's words inside a longer answer can
    score a constant higher ("kitchen or platform" is right wherever the answer is either).
    """
    items = [list(r) for r in references if r]
    candidates = sorted({r[0] for r in items})
    scores = {c: sum(bool(judge.judge(question="", prediction=c, references=r).correct) for r in items)
              for c in candidates}
    answer = max(candidates, key=lambda c: (scores[c], c))
    return answer, scores[answer]


def type_floor_baseline(records: Sequence[Mapping[str, Any]], judge: Judge, *, qtypes: Sequence[str],
                        kind: str | None = None) -> OpenVQAResult:
    """Score the question-type floor: each item answered with the best constant answer
    (:func:`best_constant`) of its (category, question type) group, ``qtypes[k]`` being record k's type.

    What a model reaches from the question's wording alone, without the image: above the category's
    majority answer where a category mixes types (Spatial: yes/no, which side, grid position) or where
    the judge credits a constant that contains several answers. Chosen on the evaluation records
    themselves, an optimistic bound like :func:`majority_baseline`'s.
    """
    if len(qtypes) != len(records):
        raise ValueError(f"type floor: {len(qtypes)} question types for {len(records)} records")
    groups: dict[tuple[str, str], list[tuple[Any, list[str]]]] = defaultdict(list)
    for position, (record, qtype) in enumerate(zip(records, qtypes)):
        rid = record_id(record, position)
        groups[(category_of(record, kind=kind), qtype)].append((rid, record_references(record, rid)))
    predictions = {}
    for members in groups.values():
        answer, _ = best_constant([refs for _, refs in members], judge)
        predictions.update({rid: answer for rid, _ in members})
    return evaluate_records(records, predictions, judge, model="question-type floor", kind=kind)


def baselines_frame(majority: OpenVQAResult, floor: OpenVQAResult | None = None) -> pd.DataFrame:
    """``baselines.csv`` rows: kind, category, majority (the majority answer's accuracy as a fraction)
    and, given the question-type floor's result, type_floor (its accuracy as a fraction)."""
    rows = []
    for c in majority.categories:
        cell = majority.cells[c]
        if not cell.total:
            continue
        row = {"kind": majority.kind, "category": c, "majority": cell.correct / cell.total}
        if floor is not None:
            row["type_floor"] = floor.cells[c].correct / floor.cells[c].total
        rows.append(row)
    return pd.DataFrame(rows)


def majority_baseline(records: Sequence[Mapping[str, Any]], judge: Judge, *,
                      pool: Sequence[Mapping[str, Any]] | None = None, missing: Iterable[tuple[Any, str]] = (),
                      kind: str | None = None) -> OpenVQAResult:
    """Score the majority-answer baseline: every item answered with its category's most frequent
    answer in ``pool`` (the training records; default: ``records`` themselves, an optimistic bound)."""
    answers = majority_answers(pool if pool is not None else records, kind=kind)
    predictions = {}
    for position, record in enumerate(records):
        category = category_of(record, kind=kind)
        if category not in answers:
            raise ValueError(f"majority baseline: the pool has no answers for category {category!r}")
        predictions[record_id(record, position)] = answers[category]
    return evaluate_records(records, predictions, judge, missing=missing, model="majority answer", kind=kind)
