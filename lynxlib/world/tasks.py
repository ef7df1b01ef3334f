"""The instruction task registry: task -> question types -> prompt pools, and balanced sampling.

``TASKS`` holds exactly the task names the params' mixtures use. A :class:`Task` turns one visual
into a :class:`~lynxlib.world.sample.Sample`: it picks a question type, asks it (answer in two
registers), phrases the prompt (single / diverse / held-out) and appends a style instruction.
:meth:`Task.draw` balances answers: it draws the answer uniformly first, then looks for a visual in the
given list that supports it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from lynxlib.world.language import clean_caption, noisy_caption, pick
from lynxlib.world.prompts import POOLS, STYLES, PromptPool, style_wording
from lynxlib.world.questions import IMAGE_QTYPES, QType, Question
from lynxlib.world.sample import Sample
from lynxlib.world.scene import WorldVocab

REASONED_SHARE = 0.4     # plain style: share of answers given with their reason ("red: the circle ... is red")
EMPTY_PAIR_SHARE = 0.5   # caption_pair, diverse prompts: share of pairs with an empty instruction
TRAIN_STYLE_MIX = {"plain": 0.55, "short": 0.15, "one_word": 0.15, "explain": 0.15}
MAX_TRIES = 400          # visuals tried per balanced draw before giving up on the drawn answer
PROMPT_MODES = ("diverse", "single")


class Unanswerable(ValueError):
    """The visual cannot carry this question type with the requested answer."""


@dataclass(frozen=True)
class Task:
    """One instruction task: its question types share a category and a visual kind."""

    name: str
    category: str | None
    visual_kind: str                  # "image" | "video" | "none"
    qtypes: tuple[QType, ...]
    vocab: WorldVocab
    n_paraphrases: int = 15

    @property
    def pools(self) -> tuple[PromptPool, ...]:
        return tuple(POOLS[q.name] for q in self.qtypes)

    @property
    def prompts(self) -> tuple[str, ...]:
        """Hand-written prompts (>= 3 per question type)."""
        return tuple(p for pool in self.pools for p in pool.hand)

    @property
    def paraphrases(self) -> tuple[str, ...]:
        """Generated paraphrases used in training (``n_paraphrases`` per question type)."""
        return tuple(p for pool in self.pools for p in pool.paraphrases[: self.n_paraphrases])

    @property
    def held_out(self) -> tuple[str, ...]:
        return tuple(p for pool in self.pools for p in pool.held_out)

    @property
    def styles(self) -> tuple[str, ...]:
        return tuple(s for s in STYLES if any(s in q.styles for q in self.qtypes))

    def qtype(self, name: str) -> QType:
        for q in self.qtypes:
            if q.name == name:
                return q
        raise KeyError(f"task {self.name!r} has no question type {name!r} ({[q.name for q in self.qtypes]})")

    def _pick_qtype(self, rng: np.random.Generator, name: str | None, style: str) -> QType:
        if name is not None:
            q = self.qtype(name)
            if style not in q.styles:
                raise ValueError(f"{self.name}/{q.name} cannot honour style {style!r} (styles: {q.styles})")
            return q
        able = [q for q in self.qtypes if style in q.styles]
        if not able:
            raise ValueError(f"task {self.name!r} has no question type for style {style!r} (styles: {self.styles})")
        return pick(rng, able)

    def phrase(self, *, rng: np.random.Generator, pool: PromptPool, slots: dict[str, str], prompt_mode: str,
               style: str, split: str) -> tuple[str, bool]:
        """(prompt text, uses a held-out phrasing or style wording) for one question."""
        if prompt_mode not in PROMPT_MODES:
            raise ValueError(f"prompt_mode must be one of {PROMPT_MODES}, got {prompt_mode!r}")
        if prompt_mode == "single":
            template = pool.hand[0]
        else:
            template = pick(rng, pool.phrasings(split, self.n_paraphrases))
        held_style = split == "eval_held_out" or (split == "eval" and rng.random() < 0.5)
        wording = style_wording(style, held_out=held_style, rng=rng)
        prompt = " ".join(p for p in (template.format(**slots), wording) if p)
        return prompt, template in pool.held_out or (bool(wording) and held_style)

    def _sample(self, *, rng, q: QType, question: Question, visual_index: int, prompt_mode: str,
                style: str, split: str) -> Sample:
        prompt, held = self.phrase(rng=rng, pool=POOLS[q.name], slots=question.slots, prompt_mode=prompt_mode,
                                   style=style, split=split)
        reasoned = style == "explain" or (style == "plain" and rng.random() < REASONED_SHARE)
        return Sample(uid=make_uid(rng, self.name, self.visual_kind, visual_index), task=self.name,
                      category=self.category, visual_kind=self.visual_kind, visual_index=visual_index,
                      turns=((prompt, question.answer(reasoned)),), references=question.references,
                      style=style, phrasing="held_out" if held else "train", qtype=q.name)

    def make(self, *, rng: np.random.Generator, visual: Any, visual_index: int, prompt_mode: str,
             style: str = "plain", split: str = "train", qtype: str | None = None,
             answer: str | None = None) -> Sample:
        """One sample about ``visual`` (a Scene, a Clip, or None for text tasks).

        ``qtype`` and ``answer`` pin the question type and its short answer; :class:`Unanswerable` is
        raised when the visual cannot carry them.
        """
        q = self._pick_qtype(rng, qtype, style)
        question = q.ask(rng, visual, self.vocab, answer)
        if question is None:
            raise Unanswerable(f"{self.name}/{q.name}: visual {visual_index} cannot carry answer {answer!r}")
        return self._sample(rng=rng, q=q, question=question, visual_index=visual_index,
                            prompt_mode=prompt_mode, style=style, split=split)

    def draw(self, *, rng: np.random.Generator, visuals: Sequence[Any] | None, prompt_mode: str,
             style: str = "plain", split: str = "train") -> Sample:
        """A balanced sample: question type uniform, then its answer uniform, then a visual that fits.

        Falls back to any answer when none of ``MAX_TRIES`` random visuals supports the drawn one.
        """
        q = self._pick_qtype(rng, None, style)
        visuals = visuals if self.visual_kind != "none" else [None]
        if not visuals:
            raise ValueError(f"task {self.name!r} needs {self.visual_kind} visuals, got none")
        targets = [pick(rng, q.answers(self.vocab))] if q.answers else []
        for answer in [*targets, None]:
            for _ in range(MAX_TRIES):
                i = int(rng.integers(len(visuals)))
                try:
                    return self.make(rng=rng, visual=visuals[i], visual_index=-1 if self.visual_kind == "none" else i,
                                     prompt_mode=prompt_mode, style=style, split=split, qtype=q.name, answer=answer)
                except Unanswerable:
                    continue
        raise RuntimeError(f"{self.name}/{q.name}: none of {len(visuals)} visuals can carry this question")


def make_uid(rng: np.random.Generator, task: str, kind: str, index: int) -> str:
    return f"{task}-{kind[0]}{index}-{int(rng.integers(2**32)):08x}"


@dataclass(frozen=True)
class CaptionPairTask(Task):
    """Stage-1 image-text pairs: an empty or neutral instruction, a clean or noisy caption as response."""

    def make(self, *, rng: np.random.Generator, visual: Any, visual_index: int, prompt_mode: str,
             style: str = "plain", split: str = "train", qtype: str | None = None, answer: str | None = None,
             noisy: bool = False) -> Sample:
        if style != "plain":
            raise ValueError(f"caption_pair takes no style instruction, got {style!r}")
        pool = POOLS["caption_pair"]
        if prompt_mode == "diverse" and rng.random() < EMPTY_PAIR_SHARE:
            prompt, held = "", False
        else:
            prompt, held = self.phrase(rng=rng, pool=pool, slots={}, prompt_mode=prompt_mode, style=style, split=split)
        clean = clean_caption(visual, rng)
        caption = noisy_caption(visual, rng) if noisy else clean
        return Sample(uid=make_uid(rng, self.name, "image", visual_index), task=self.name, category=None,
                      visual_kind="image", visual_index=visual_index, turns=((prompt, caption),),
                      references=(clean,), style=style, phrasing="held_out" if held else "train",
                      qtype="noisy" if noisy else "clean")


DIALOGUE_QTYPES = ("colour", "shape", "count", "ocr", "place", "grid_position", "exist", "relation_yn",
                   "direction", "size")


@dataclass(frozen=True)
class DialogueTask(Task):
    """Image-conditioned dialogue: 2-3 turns, maybe opening with "what can you see?", then questions.

    ``qtypes`` holds the opening turn; follow-up turns draw from ``DIALOGUE_QTYPES`` with their own
    prompt pools. ``references`` are the last turn's acceptable answers.
    """

    def make(self, *, rng: np.random.Generator, visual: Any, visual_index: int, prompt_mode: str,
             style: str = "plain", split: str = "train", qtype: str | None = None,
             answer: str | None = None) -> Sample:
        if style != "plain":
            raise ValueError(f"dialogue takes no style instruction, got {style!r}")
        n_turns = int(rng.integers(2, 4))
        asked: list[tuple[QType, Question]] = []
        if rng.random() < 0.5:
            opening = self.qtypes[0]
            asked.append((opening, opening.ask(rng, visual, self.vocab, None)))
        for name in [DIALOGUE_QTYPES[i] for i in rng.permutation(len(DIALOGUE_QTYPES))]:
            if len(asked) == n_turns:
                break
            question = IMAGE_QTYPES[name].ask(rng, visual, self.vocab, None)
            if question is not None:
                asked.append((IMAGE_QTYPES[name], question))
        turns, held = [], False
        for q, question in asked:
            prompt, turn_held = self.phrase(rng=rng, pool=POOLS[q.name], slots=question.slots,
                                            prompt_mode=prompt_mode, style="plain", split=split)
            turns.append((prompt, question.answer(rng.random() < REASONED_SHARE)))
            held |= turn_held
        return Sample(uid=make_uid(rng, self.name, "image", visual_index), task=self.name, category=None,
                      visual_kind="image", visual_index=visual_index, turns=tuple(turns),
                      references=asked[-1][1].references, style="plain", phrasing="held_out" if held else "train",
                      qtype="+".join(q.name for q, _ in asked))

    def draw(self, *, rng: np.random.Generator, visuals: Sequence[Any] | None, prompt_mode: str,
             style: str = "plain", split: str = "train") -> Sample:
        i = int(rng.integers(len(visuals)))
        return self.make(rng=rng, visual=visuals[i], visual_index=i, prompt_mode=prompt_mode, style=style, split=split)
