"""MME scoring by the benchmark's official rules (``eval_tool/calculation.py`` of MME).

Result files hold one line per question, ``image<TAB>question<TAB>ground truth<TAB>response``, two
consecutive lines per image, one file per subtask (``existence.txt`` ...). Rules:

* the response is lower-cased and not stripped; exactly "yes" or "no" is that answer; otherwise only
  its first 4 characters count: "yes" in them is yes, else "no" in them is no, else "other" (wrong);
* acc is per question; acc+ is the share of images with both questions right;
* a subtask's score is 100 x (acc + acc+) (0-200); perception sums 10 subtasks, cognition 4.

Precision and recall treat "yes" as the positive class ("other" predicts neither), as the official
script does through scikit-learn (0.0 when undefined).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from lynxlib.runs import atomic_write_text

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
              "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
SUBTASKS = PERCEPTION + COGNITION
_BY_LOWER = {name.lower(): name for name in SUBTASKS}


@dataclass(frozen=True)
class MMERow:
    """One question of a result file; ``line`` is 1-based, for error messages."""

    image: str
    question: str
    truth: str
    response: str
    line: int = 0


@dataclass(frozen=True)
class SubtaskScore:
    subtask: str
    group: str
    n_questions: int
    n_images: int
    acc: float
    acc_plus: float
    score: float
    precision: float
    recall: float
    n_other: int


@dataclass
class MMEReport:
    """Per-subtask scores plus the perception and cognition totals (over the subtasks present)."""

    subtasks: dict[str, SubtaskScore]
    missing: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    encodings: dict[str, str] = field(default_factory=dict)

    def total(self, group: str) -> float:
        return sum(s.score for s in self.subtasks.values() if s.group == group)

    @property
    def perception(self) -> float:
        return self.total("perception")

    @property
    def cognition(self) -> float:
        return self.total("cognition")

    def to_frame(self) -> pd.DataFrame:
        """One row per subtask present, in MME's order (columns of :class:`SubtaskScore`)."""
        rows = [asdict(self.subtasks[name]) for name in SUBTASKS if name in self.subtasks]
        return pd.DataFrame(rows, columns=[f for f in SubtaskScore.__dataclass_fields__])

    def to_csv(self, path: str | Path) -> Path:
        """Write :meth:`to_frame` atomically (the ``mme.csv`` of an eval folder)."""
        return atomic_write_text(path, self.to_frame().to_csv(index=False))

    def summary(self) -> dict[str, Any]:
        return {"perception": self.perception, "cognition": self.cognition,
                "subtasks": {k: v.score for k, v in self.subtasks.items()}, "missing": list(self.missing)}


def parse_answer(response: str) -> str:
    """MME's official parse: 'yes', 'no' or 'other' (lower-cased, never stripped)."""
    text = str(response).lower()
    if text in ("yes", "no"):
        return text
    prefix = text[:4]
    if "yes" in prefix:
        return "yes"
    if "no" in prefix:
        return "no"
    return "other"


def subtask_name(name: str) -> str:
    """The canonical subtask name for ``name`` (case-insensitive: 'ocr' -> 'OCR')."""
    try:
        return _BY_LOWER[name.lower()]
    except KeyError:
        raise ValueError(f"unknown MME subtask {name!r}; expected one of {', '.join(SUBTASKS)}") from None


def group_of(subtask: str) -> str:
    return "perception" if subtask_name(subtask) in PERCEPTION else "cognition"


def _read_text(path: Path) -> tuple[str, str]:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"   # only the answers' first 4 characters matter


def parse_lines(text: str, *, source: str = "<text>") -> list[MMERow]:
    """Rows of a result file's text. Lines end at '\\n' (universal newlines, as Python's text mode
    reads them); empty lines are skipped; a tab inside the response stays in the response."""
    rows = []
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if not line:
            continue
        parts = line.split("\t", 3)
        if len(parts) != 4:
            raise ValueError(f"{source}:{number}: expected 4 tab-separated fields "
                             f"(image, question, ground truth, response), found {len(parts)}")
        image, question, truth, response = parts
        if truth.strip().lower() not in ("yes", "no"):
            raise ValueError(f"{source}:{number}: ground truth must be Yes or No, found {truth!r}")
        rows.append(MMERow(image, question, truth.strip(), response, number))
    return rows


def read_mme_file(path: str | Path) -> list[MMERow]:
    """Rows of one result file (UTF-8, with or without BOM; Latin-1 as a fallback)."""
    path = Path(path)
    text, _ = _read_text(path)
    return parse_lines(text, source=str(path))


def pairs(rows: Sequence[MMERow], *, source: str = "<rows>") -> list[tuple[MMERow, MMERow]]:
    """Consecutive pairs (two questions per image), as the official script chunks them.

    An image may occur in several pairs; the two lines of one pair must name the same image.
    """
    if len(rows) % 2:
        raise ValueError(f"{source}: {len(rows)} questions, not two per image")
    out = []
    for first, second in zip(rows[::2], rows[1::2]):
        if first.image != second.image:
            raise ValueError(f"{source}:{second.line}: image {second.image!r} does not match line "
                             f"{first.line}'s {first.image!r}: questions must come in pairs per image")
        out.append((first, second))
    return out


def score_rows(rows: Sequence[MMERow], *, subtask: str, source: str = "<rows>") -> SubtaskScore:
    """Score one subtask's rows by the official rules."""
    name = subtask_name(subtask)
    chunks = pairs(rows, source=source)
    if not chunks:
        raise ValueError(f"{source}: no questions for subtask {name}")
    truths = [r.truth.lower() for r in rows]
    preds = [parse_answer(r.response) for r in rows]
    right = [p == t for p, t in zip(preds, truths)]
    both = sum(right[2 * i] and right[2 * i + 1] for i in range(len(chunks)))
    acc, acc_plus = sum(right) / len(rows), both / len(chunks)
    tp = sum(p == t == "yes" for p, t in zip(preds, truths))
    pred_yes, true_yes = preds.count("yes"), truths.count("yes")
    return SubtaskScore(
        subtask=name, group=group_of(name), n_questions=len(rows), n_images=len(chunks),
        acc=acc, acc_plus=acc_plus, score=100 * (acc + acc_plus),
        precision=tp / pred_yes if pred_yes else 0.0, recall=tp / true_yes if true_yes else 0.0,
        n_other=preds.count("other"))


def score_mme_dir(path: str | Path) -> MMEReport:
    """Score every ``<subtask>.txt`` in ``path``; absent subtasks are listed in ``missing`` and other
    ``.txt`` files in ``ignored``."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"MME result folder not found: {folder}")
    report = MMEReport(subtasks={})
    for file in sorted(folder.glob("*.txt")):
        if file.stem.lower() not in _BY_LOWER:
            report.ignored.append(file.name)
            continue
        name = subtask_name(file.stem)
        if name in report.subtasks:
            raise ValueError(f"{file}: subtask {name} appears twice in {folder}")
        text, encoding = _read_text(file)
        report.encodings[name] = encoding
        report.subtasks[name] = score_rows(parse_lines(text, source=str(file)), subtask=name, source=str(file))
    report.missing = [name for name in SUBTASKS if name not in report.subtasks]
    return report


_ROW_KEYS = ("image", "question", "answer", "response")


def _as_row(row: Mapping | Sequence, index: int) -> tuple[str, str, str, str]:
    if isinstance(row, MMERow):
        return row.image, row.question, row.truth, row.response
    if isinstance(row, Mapping):
        truth_key = next((k for k in ("answer", "truth", "ground_truth") if k in row), None)
        missing = [k for k in ("image", "question", "response") if k not in row] + ([] if truth_key else ["answer"])
        if missing:
            raise ValueError(f"row {index}: missing key(s) {missing}; expected {_ROW_KEYS}")
        return row["image"], row["question"], row[truth_key], row["response"]
    if len(row) != 4:
        raise ValueError(f"row {index}: expected 4 fields {_ROW_KEYS}, found {len(row)}")
    return tuple(row)  # type: ignore[return-value]


def _one_line(value: Any) -> str:
    return " ".join(str(value).replace("\t", " ").splitlines()) if value is not None else ""


def write_mme_responses(directory: str | Path, subtask: str, rows: Iterable[Mapping | Sequence]) -> Path:
    """Write ``<directory>/<subtask>.txt`` in MME's result format, atomically.

    ``rows``: dicts with image, question, answer (ground truth; also ``truth``/``ground_truth``) and
    response, or 4-tuples in that order, two consecutive rows per image. Tabs and line breaks inside
    fields become spaces so each question stays on one line.
    """
    name = subtask_name(subtask)
    lines, parsed = [], []
    for i, row in enumerate(rows):
        fields = [_one_line(v) for v in _as_row(row, i)]
        if fields[2].strip().lower() not in ("yes", "no"):
            raise ValueError(f"row {i}: ground truth must be Yes or No, found {fields[2]!r}")
        parsed.append(MMERow(*fields, line=i + 1))
        lines.append("\t".join(fields))
    pairs(parsed, source=f"{name} rows")
    return atomic_write_text(Path(directory) / f"{name}.txt", "\n".join(lines) + "\n")
