"""Open-VQA scoring in the paper's format (Tables 1-4).

Cells are ``correct/total`` per category in the paper's order; Overall is pooled: the sum of correct
over the sum of totals (230/302 = 76.16 for the paper's image row), not the mean of the category
accuracies. Each cell carries a binomial standard error; several seeds give mean ± std.

Works for the released ``Open_VQA_images.jsonl`` / ``Open_VQA_videos.jsonl`` records (``class``
field) and for Open-VQA-mini records (``class`` or ``category``).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from lynxlib.evaluate.judges import Judge, judge_items
from lynxlib.paper import IMAGE_CATEGORIES, VIDEO_CATEGORIES
from lynxlib.runs import atomic_write_text

CATEGORIES = {"image": IMAGE_CATEGORIES, "video": VIDEO_CATEGORIES}
_IMAGE_ALIASES = {"ocr": "OCR", "counting": "Counting", "count": "Counting", "reasoning": "Reasoning",
                  "place": "Place", "places": "Place", "scene": "Place", "color": "Color", "colour": "Color",
                  "spatial": "Spatial", "position": "Spatial", "action": "Action", "others": "Others",
                  "other": "Others"}
_VIDEO_ALIASES = {"action(y/n)": "Action (Y/N)", "actionyn": "Action (Y/N)", "action": "Action (Y/N)",
                  "others": "Others", "other": "Others"}


def kind_of(record: Mapping[str, Any]) -> str:
    """'video' for records with a ``video`` field, else 'image'."""
    return "video" if "video" in record else "image"


def category_of(record: Mapping[str, Any], *, kind: str | None = None) -> str:
    """The paper's category of a record, from its ``class`` (released set) or ``category`` field.

    The released image set's classes are the paper's names (OCR, Counting, ..., Others); the video
    set writes ``Action(Y/N)`` where the paper prints ``Action (Y/N)``.
    """
    kind = kind or kind_of(record)
    raw = record.get("class", record.get("category"))
    where = f"record index={record.get('index', '?')}"
    if raw is None:
        raise ValueError(f"{where}: no 'class' or 'category' field")
    key = str(raw).lower().replace(" ", "").replace("_", "")
    aliases = _VIDEO_ALIASES if kind == "video" else _IMAGE_ALIASES
    if key not in aliases:
        raise ValueError(f"{where}: unknown {kind} category {raw!r}; expected one of {CATEGORIES[kind]}")
    return aliases[key]


@dataclass(frozen=True)
class Cell:
    """One category: ``correct`` of ``total`` scored items; ``undecided`` of them had no verdict
    (counted in ``total``, not in ``correct``)."""

    correct: int
    total: int
    undecided: int = 0

    @property
    def accuracy(self) -> float:
        """Percent; NaN for an empty cell."""
        return 100 * self.correct / self.total if self.total else math.nan

    @property
    def se(self) -> float:
        """Binomial standard error of the accuracy, in percent points."""
        if not self.total:
            return math.nan
        p = self.correct / self.total
        return 100 * math.sqrt(p * (1 - p) / self.total)

    def __str__(self) -> str:
        return f"{self.correct}/{self.total}"


def _pooled(cells: Iterable[Cell]) -> Cell:
    cells = list(cells)
    return Cell(sum(c.correct for c in cells), sum(c.total for c in cells), sum(c.undecided for c in cells))


@dataclass
class OpenVQAResult:
    """A model's Open-VQA cells for one kind ('image' or 'video'), with its provenance."""

    kind: str
    cells: dict[str, Cell]
    model: str = ""
    items: list[dict[str, Any]] = field(default_factory=list)
    missing: list[tuple[Any, str]] = field(default_factory=list)
    judge: dict[str, Any] = field(default_factory=dict)
    missing_by_category: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in CATEGORIES:
            raise ValueError(f"kind must be 'image' or 'video', got {self.kind!r}")
        unknown = set(self.cells) - set(CATEGORIES[self.kind])
        if unknown:
            raise ValueError(f"unknown {self.kind} categories {sorted(unknown)}; expected {CATEGORIES[self.kind]}")

    @classmethod
    def from_counts(cls, *, kind: str, counts: Mapping[str, tuple[int, int]], model: str = "") -> "OpenVQAResult":
        """From ``{category: (correct, total)}`` (or ``'c/t'`` strings, as the paper prints them)."""
        cells = {}
        for cat, value in counts.items():
            correct, total = (int(x) for x in value.split("/")) if isinstance(value, str) else value
            if not 0 <= correct <= total:
                raise ValueError(f"{model or 'counts'}: {cat} has {correct}/{total}")
            cells[cat] = Cell(int(correct), int(total))
        return cls(kind=kind, cells=cells, model=model)

    @property
    def categories(self) -> list[str]:
        return [c for c in CATEGORIES[self.kind] if c in self.cells]

    @property
    def overall_cell(self) -> Cell:
        return _pooled(self.cells.values())

    @property
    def overall(self) -> float:
        """Pooled accuracy in percent: sum correct / sum total x 100."""
        return self.overall_cell.accuracy

    @property
    def overall_se(self) -> float:
        return self.overall_cell.se

    @property
    def n_undecided(self) -> int:
        return self.overall_cell.undecided

    def to_row(self) -> dict[str, str]:
        """The paper's row: ``correct/total`` per category and Overall to two decimals."""
        return {**{c: str(self.cells[c]) for c in self.categories}, "Overall": f"{self.overall:.2f}"}

    def to_frame(self) -> pd.DataFrame:
        """Long format, one row per category (no Overall row: sum the cells to pool); ``missing``
        counts the items left out for want of their image/video, ``undecided`` those without a verdict."""
        rows = [{"kind": self.kind, "category": c, "correct": cell.correct, "total": cell.total,
                 "undecided": cell.undecided, "missing": self.missing_by_category.get(c, 0),
                 "accuracy": cell.accuracy, "se": cell.se}
                for c, cell in ((c, self.cells[c]) for c in self.categories)]
        frame = pd.DataFrame(rows)
        for key in ("judge", "judge_model", "prompt_hash"):
            frame[key] = self.judge.get(key, "")
        return frame

    def to_csv(self, path: str | Path) -> Path:
        """Write :meth:`to_frame` atomically (the ``openvqa.csv`` of an eval folder)."""
        return atomic_write_text(path, self.to_frame().to_csv(index=False))

    def items_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.items)


def record_id(record: Mapping[str, Any], position: int) -> Any:
    return record.get("index", position)


def record_references(record: Mapping[str, Any], rid: Any) -> list[str]:
    answers = record.get("answer", record.get("answers"))
    if answers is None:
        raise ValueError(f"record index={rid}: no 'answer' field")
    refs = [answers] if isinstance(answers, str) else [str(a) for a in answers]
    if not refs:
        raise ValueError(f"record index={rid}: empty answer list")
    return refs


def _prediction(predictions: Mapping[Any, str] | Sequence[str], rid: Any, position: int) -> str:
    if isinstance(predictions, Mapping):
        if rid not in predictions:
            raise ValueError(f"record index={rid}: no prediction (and not listed as missing)")
        return str(predictions[rid])
    return str(predictions[position])


def evaluate_records(records: Sequence[Mapping[str, Any]], predictions: Mapping[Any, str] | Sequence[str],
                     judge: Judge, *, missing: Iterable[tuple[Any, str]] = (), cache_dir: str | Path | None = None,
                     model: str = "", kind: str | None = None) -> OpenVQAResult:
    """Judge ``predictions`` against ``records`` and count them per category.

    ``predictions``: ``{record index: text}`` or a list aligned with ``records``. ``missing``:
    ``(index, path)`` of records whose image/video could not be loaded: they are left out of every
    cell and listed in ``result.missing``; the rest are still scored.
    """
    if not records:
        raise ValueError("no records to evaluate")
    kinds = {kind_of(r) for r in records}
    if kind is None and len(kinds) > 1:
        raise ValueError("records mix image and video items: evaluate them separately")
    kind = kind or kinds.pop()
    if not isinstance(predictions, Mapping) and len(predictions) != len(records):
        raise ValueError(f"{len(predictions)} predictions for {len(records)} records (a list must align with records)")
    missing = [(idx, str(path)) for idx, path in missing]
    skip = {idx for idx, _ in missing}
    items, cats, seen, skipped = [], [], set(), Counter()
    for position, record in enumerate(records):
        rid = record_id(record, position)
        if rid in seen:
            raise ValueError(f"record index={rid} occurs twice")
        seen.add(rid)
        category = category_of(record, kind=kind)
        cats.append(category)
        if rid in skip:
            skipped[category] += 1
            continue
        items.append({"id": rid, "category": category, "question": str(record.get("question", "")),
                      "prediction": _prediction(predictions, rid, position), "references": record_references(record, rid)})
    report = judge_items(judge, [{k: it[k] for k in ("id", "question", "prediction", "references")} for it in items],
                         cache_dir=cache_dir)
    counts = {c: [0, 0, 0] for c in CATEGORIES[kind] if c in cats}
    for item, verdict in zip(items, report.verdicts):
        cell = counts[item["category"]]
        cell[0] += verdict.correct is True
        cell[1] += 1
        cell[2] += verdict.correct is None
        item.update(correct=verdict.correct, status=verdict.status, raw=verdict.raw)
    cells = {c: Cell(*v) for c, v in counts.items()}
    return OpenVQAResult(kind=kind, cells=cells, model=model, items=items, missing=missing, judge=report.meta(),
                         missing_by_category=dict(skipped))


def __getattr__(name: str):  # the table builders live in openvqa_tables; re-exported lazily
    if name in ("paper_table", "seed_summary", "comparison_table", "render_markdown", "style_table"):
        from lynxlib.evaluate import openvqa_tables

        return getattr(openvqa_tables, name)
    raise AttributeError(name)
