"""The contract every question type keeps, image (:mod:`lynxlib.world.questions`) and video
(:mod:`lynxlib.world.vquestions`) alike; ``questions`` re-exports these names, and the other modules
import them from there.

* :class:`Question`: what an asker returns, prompt slots plus the answer in two registers;
* :class:`QType`: a question type, its asker, its answer space and the prompt styles it can honour;
* :func:`refs`: the acceptable references of a short answer (synonyms, digits for numbers);
* ``YES_NO``, the answer space of yes/no types, and the prompt-style tuples ``NO_ONE_WORD`` (for types
  whose answers are more than one word) and ``OPEN_ENDED`` (captions).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from lynxlib.world.prompts import STYLES
from lynxlib.world.scene import WorldVocab
from lynxlib.world.vocab import NUMBER_WORDS, SYNONYMS

YES_NO = ("yes", "no")
NO_ONE_WORD = ("plain", "short", "explain")
OPEN_ENDED = ("plain",)
EXTRA_REFS = {"large": ("big",), "small": ("little",), "left": ("to the left",), "right": ("to the right",),
              "above": ("over",), "below": ("under", "beneath")}


@dataclass(frozen=True)
class Question:
    """One question's content: slots for the prompt template and the answer in two registers."""

    slots: dict[str, str]
    short: str                      # "red"
    reason: str = ""                # "the circle at the top left is red" ('' for open-ended answers)
    references: tuple[str, ...] = ()

    def answer(self, reasoned: bool) -> str:
        """Short register, or 'short: reason' when ``reasoned`` and a reason exists."""
        return f"{self.short}: {self.reason}" if reasoned and self.reason else self.short


Ask = Callable[[np.random.Generator, Any, WorldVocab, "str | None"], "Question | None"]


@dataclass(frozen=True)
class QType:
    """A question type: its prompt pool (same name), how to ask, and its answer space."""

    name: str
    ask: Ask
    answers: Callable[[WorldVocab], tuple[str, ...]] | None = None  # None: open-ended, not balanced
    styles: tuple[str, ...] = STYLES  # styles this type can honour ("one_word" needs one-word answers)


def refs(short: str, *more: str) -> tuple[str, ...]:
    """Acceptable answers: the short answer, its synonyms and digits for numbers, then ``more``."""
    out = [short, *SYNONYMS.get(short, ()), *EXTRA_REFS.get(short, ()), *more]
    if short in NUMBER_WORDS:
        out.append(str(NUMBER_WORDS.index(short)))
    return tuple(dict.fromkeys(out))
