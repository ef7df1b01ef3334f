"""Real evaluation and instruction formats: Open-VQA jsonl, MME result files, LLaVA-style JSON.

Readers validate every record and raise :class:`FormatError` naming the file, the 1-based line and
what is wrong (bad JSON, a missing key, a wrong type, a wrong number of tab-separated fields).
Writers validate too and write atomically (``lynxlib.runs.atomic_path``), so a reader never sees a
half-written file. Round trips are exact: ``write(read(f))`` reproduces the released files byte for byte.

- Open-VQA (the Lynx authors' release): one JSON object a line with ``question``, ``answer`` (list of
  str), ``index`` (int), ``class`` and ``image`` or ``video`` (a relative path); ``dataset`` and
  ``origin_dataset`` are optional strings.
- MME: ``image<TAB>question<TAB>ground truth`` question files and the same plus ``<TAB>response``
  result files (one per subtask, what MME's ``calculation.py`` scores); ground truth is Yes or No.
- LLaVA: a JSON list of ``{"id", "image" (optional), "conversations": [{"from": "human"|"gpt",
  "value"}]}``, turns alternating human/gpt.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from lynxlib.runs import atomic_path

MME_ANSWERS = ("Yes", "No")


class FormatError(ValueError):
    """A malformed file: ``path``, 1-based ``line`` (None when not line-specific) and the problem."""

    def __init__(self, path: str | Path, line: int | None, problem: str):
        self.path, self.line, self.problem = Path(path), line, problem
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


def _check_type(record: dict, key: str, kind: type | tuple[type, ...], path, line: int, required: bool = True) -> None:
    if key not in record:
        if required:
            raise FormatError(path, line, f"missing key {key!r} (keys: {', '.join(sorted(record))})")
        return
    value = record[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise FormatError(path, line, f"key {key!r} must be {names}, got {type(value).__name__} {value!r}")


def _read_lines(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path.read_text(encoding="utf-8").split("\n")


# --- Open-VQA -----------------------------------------------------------------------------------

def validate_open_vqa(record: Any, path: str | Path = "<records>", line: int = 0) -> dict:
    """Check one Open-VQA record; returns it unchanged."""
    if not isinstance(record, dict):
        raise FormatError(path, line, f"expected a JSON object, got {type(record).__name__}")
    for key, kind in (("question", str), ("answer", list), ("index", int), ("class", str)):
        _check_type(record, key, kind, path, line)
    if not record["answer"] or not all(isinstance(a, str) for a in record["answer"]):
        raise FormatError(path, line, f"key 'answer' must be a non-empty list of str, got {record['answer']!r}")
    visual = [k for k in ("image", "video") if k in record]
    if len(visual) != 1:
        raise FormatError(path, line, f"expected exactly one of 'image' or 'video', got {visual or 'neither'}")
    for key in ("image", "video", "dataset", "origin_dataset"):
        _check_type(record, key, str, path, line, required=False)
    return record


def read_open_vqa(path: str | Path) -> list[dict]:
    """Records of an Open-VQA jsonl file (blank lines are skipped)."""
    records = []
    for number, text in enumerate(_read_lines(path), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise FormatError(path, number, f"bad JSON: {err.msg} (column {err.colno})") from None
        records.append(validate_open_vqa(record, path, number))
    return records


def write_open_vqa(path: str | Path, records: Iterable[dict]) -> Path:
    """Validate and write records as jsonl (key order kept, non-ASCII \\u-escaped, as in the release)."""
    records = list(records)
    for number, record in enumerate(records, start=1):
        validate_open_vqa(record, path, number)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return Path(path)


# --- MME ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MMERow:
    """One MME line; ``response`` is None in a question file (3 columns)."""

    image: str
    question: str
    ground_truth: str
    response: str | None = None


def _parse_mme(path: str | Path, columns: Sequence[int]) -> list[MMERow]:
    rows = []
    for number, text in enumerate(_read_lines(path), start=1):
        if not text.strip():
            continue
        fields = text.rstrip("\r").split("\t")
        if len(fields) not in columns:
            want = " or ".join(str(c) for c in columns)
            raise FormatError(path, number, f"expected {want} tab-separated fields, got {len(fields)}")
        if fields[2] not in MME_ANSWERS:
            raise FormatError(path, number, f"ground truth must be Yes or No, got {fields[2]!r}")
        if not fields[0] or not fields[1]:
            raise FormatError(path, number, "empty image name or question")
        rows.append(MMERow(*fields[:3], fields[3] if len(fields) == 4 else None))
    return rows


def read_mme_results(path: str | Path) -> list[MMERow]:
    """An MME result file: ``image, question, ground truth, response`` per line."""
    return _parse_mme(path, (4,))


def read_mme_questions(path: str | Path) -> list[MMERow]:
    """An MME question file (3 columns); result files (4 columns) are accepted too."""
    return _parse_mme(path, (3, 4))


def _mme_line(row: MMERow, path: str | Path, number: int, with_response: bool) -> str:
    fields = [row.image, row.question, row.ground_truth]
    for name, value in zip(("image", "question", "ground truth"), fields):
        if not isinstance(value, str) or "\t" in value or "\n" in value or not value:
            raise FormatError(path, number, f"{name} must be a non-empty str without tabs or newlines, got {value!r}")
    if row.ground_truth not in MME_ANSWERS:
        raise FormatError(path, number, f"ground truth must be Yes or No, got {row.ground_truth!r}")
    if with_response:
        if row.response is None:
            raise FormatError(path, number, "row has no response (use write_mme_questions for question files)")
        fields.append(" ".join(row.response.split("\t")).replace("\r", " ").replace("\n", " "))
    return "\t".join(fields)


def write_mme_results(path: str | Path, rows: Iterable[MMERow]) -> Path:
    """Write a 4-column result file; tabs and newlines inside responses become spaces."""
    lines = [_mme_line(r, path, i, True) for i, r in enumerate(rows, start=1)]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return Path(path)


def write_mme_questions(path: str | Path, rows: Iterable[MMERow]) -> Path:
    """Write a 3-column question file (responses, if any, are dropped)."""
    lines = [_mme_line(r, path, i, False) for i, r in enumerate(rows, start=1)]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return Path(path)


# --- LLaVA --------------------------------------------------------------------------------------

def validate_llava(record: Any, path: str | Path = "<records>", line: int = 0) -> dict:
    """Check one LLaVA record: id, optional image, alternating human/gpt conversations."""
    if not isinstance(record, dict):
        raise FormatError(path, line, f"expected a JSON object, got {type(record).__name__}")
    _check_type(record, "id", (str, int), path, line)
    _check_type(record, "image", str, path, line, required=False)
    _check_type(record, "conversations", list, path, line)
    turns = record["conversations"]
    if not turns or len(turns) % 2:
        raise FormatError(path, line, f"'conversations' must hold human/gpt pairs, got {len(turns)} turns")
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise FormatError(path, line, f"conversations[{i}] must be an object with a str 'value', got {turn!r}")
        expected = "human" if i % 2 == 0 else "gpt"
        if turn.get("from") != expected:
            raise FormatError(path, line, f"conversations[{i}]['from'] must be {expected!r}, got {turn.get('from')!r}")
    return record


def read_llava(path: str | Path) -> list[dict]:
    """Records of a LLaVA JSON file (a top-level list); errors name the line each record starts on."""
    text = "\n".join(_read_lines(path))
    decoder = json.JSONDecoder()
    try:
        start = text.index("[")
    except ValueError:
        raise FormatError(path, 1, "expected a JSON list of records") from None
    records, pos = [], start + 1
    while True:
        pos = _skip(text, pos)
        if pos < len(text) and text[pos] == "]":
            break
        line = text.count("\n", 0, pos) + 1
        try:
            record, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise FormatError(path, err.lineno, f"bad JSON: {err.msg} (column {err.colno})") from None
        records.append(validate_llava(record, path, line))
        pos = _skip(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos >= len(text) or text[pos] != "]":
            raise FormatError(path, text.count("\n", 0, pos) + 1, "expected ',' or ']' between records")
    if text[pos + 1:].strip():
        raise FormatError(path, text.count("\n", 0, pos) + 1, "unexpected content after the list")
    return records


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def write_llava(path: str | Path, records: Iterable[dict]) -> Path:
    """Validate and write a LLaVA JSON list (indent 2, one key per line, like the released files)."""
    records = list(records)
    for number, record in enumerate(records, start=1):
        validate_llava(record, path, number)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(path)


def llava_record(uid: str, turns: Sequence[tuple[str, str]], image: str | None = None) -> dict:
    """A LLaVA record from (user, bot) turns; an image record gets ``<image>\\n`` before its first question."""
    conversations = []
    for i, (user, bot) in enumerate(turns):
        value = f"<image>\n{user}" if image is not None and i == 0 else user
        conversations += [{"from": "human", "value": value}, {"from": "gpt", "value": bot}]
    return {"id": uid, **({"image": image} if image is not None else {}), "conversations": conversations}


def llava_turns(record: dict) -> tuple[tuple[str, str], ...]:
    """(user, bot) turns of a LLaVA record, without the ``<image>`` placeholder."""
    turns = record["conversations"]
    users = [t["value"].replace("<image>\n", "").replace("\n<image>", "").replace("<image>", "").strip()
             for t in turns[0::2]]
    return tuple(zip(users, (t["value"] for t in turns[1::2])))
