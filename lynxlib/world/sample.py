"""The instruction sample every task produces, and the answer statistics that keep them honest.

``majority_baseline`` is the accuracy of always giving a category's most frequent answer: the floor a
model must beat before any claim that it learned the category from the image.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class Sample:
    """One instruction example. ``turns`` are (user text, bot text) pairs without any chat template."""

    uid: str
    task: str
    category: str | None            # Open-VQA class ("Color", "Action(Y/N)"...), None for non-VQA tasks
    visual_kind: str                # "image" | "video" | "none"
    visual_index: int               # index into the split's scenes / clips; -1 for none
    turns: tuple[tuple[str, str], ...]
    references: tuple[str, ...]     # acceptable short answers of the last turn
    style: str = "plain"            # "plain" | "short" | "one_word" | "explain"
    phrasing: str = "train"         # "train" | "held_out"
    qtype: str = ""                 # question type within the task (answers are balanced per type)

    @property
    def question(self) -> str:
        return self.turns[-1][0]

    @property
    def answer(self) -> str:
        return self.turns[-1][1]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["turns"] = [list(t) for t in self.turns]
        data["references"] = list(self.references)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Sample":
        fields = dict(data)
        fields["turns"] = tuple((str(u), str(b)) for u, b in data["turns"])
        fields["references"] = tuple(data["references"])
        return cls(**fields)


def _label(item: Sample | Mapping) -> tuple[str | None, str | None, str, tuple[str, ...]]:
    """(group key for tasks, category, kind, acceptable answers) of a Sample or an Open-VQA record."""
    if isinstance(item, Sample):
        return item.task, item.category, item.visual_kind, item.references
    kind = "video" if "video" in item else "image"
    return item.get("class"), item.get("class"), kind, tuple(item["answer"])


def answer_distribution(samples: Iterable[Sample | Mapping], *, by: str = "task") -> dict[str, Counter]:
    """{task (or qtype, or record class): Counter of first references}: how balanced each type is."""
    out: dict[str, Counter] = defaultdict(Counter)
    for item in samples:
        key, _, _, answers = _label(item)
        if by == "qtype" and isinstance(item, Sample):
            key = f"{item.task}/{item.qtype}"
        out[key][answers[0]] += 1
    return dict(out)


def majority_baseline(samples: Iterable[Sample | Mapping]) -> dict[str, float]:
    """{category: accuracy of always answering the category's most common answer}.

    Works on Samples and on Open-VQA records (``class``/``answer``); items without a category are
    skipped. Pass image and video items separately: both have an "Others" class.
    """
    groups: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    kinds: dict[str, set[str]] = defaultdict(set)
    for item in samples:
        _, category, kind, answers = _label(item)
        if category is None:
            continue
        groups[category].append(answers)
        kinds[category].add(kind)
    mixed = [c for c, k in kinds.items() if len(k) > 1]
    if mixed:
        raise ValueError(f"categories {mixed} mix image and video items: pass each kind separately")
    out = {}
    for category, answer_lists in groups.items():
        majority, _ = Counter(a[0] for a in answer_lists).most_common(1)[0]
        out[category] = sum(majority in answers for answers in answer_lists) / len(answer_lists)
    return out
