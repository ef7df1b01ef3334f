"""Batched answers from a LynxModel: prompts in, decoded answers out, in the input order.

:func:`generate_answers` is what every evaluation calls. It groups the items by visual kind (a batch
holds one kind, so image frames (F = 1) and video frames (F = 5) stack), sorts each kind by prompt
length (neighbours in a batch then need few pad tokens), left-pads, generates with the model's KV
cache and decodes only the new tokens. Answers come back in the order of ``items``.

Greedy decoding (the default) is deterministic, and a row's answer does not depend on its batch
mates: left padding is masked and positions count real tokens only, so the batched answers equal
:func:`generate_one_by_one`'s (the per-sample loop ``benchmarks/generation.py`` times against).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from lynxlib.data import PromptFormatter, pad_prompts
from lynxlib.runs import show_progress

KINDS = ("image", "video", "none")
Visuals = Callable[[str, Sequence[int]], dict]  # (kind, indices) -> model vision kwargs (lynxlib.data.ArrayVisuals)


@dataclass(frozen=True)
class PromptItem:
    """One question to answer. ``turns``: (user, bot) pairs without the chat template; earlier turns are
    given with their answers, the last turn's bot text is ignored (the model writes it).
    ``visual_index`` is a row of the visual arrays of ``visual_kind`` (-1 for "none"); ``uid`` names the
    item in predictions files (generation never reads it)."""

    turns: tuple[tuple[str, str], ...]
    visual_kind: str = "none"
    visual_index: int = -1
    uid: str = ""

    def __post_init__(self) -> None:
        if self.visual_kind not in KINDS:
            raise ValueError(f"item {self.uid!r}: visual_kind must be one of {KINDS}, got {self.visual_kind!r}")
        if not self.turns:
            raise ValueError(f"item {self.uid!r}: no turns")

    @classmethod
    def ask(cls, question: str, *, visual_kind: str = "none", visual_index: int = -1, uid: str = "") -> "PromptItem":
        """A single-turn item."""
        return cls(((question, ""),), visual_kind, visual_index, uid)


def plan_batches(lengths: Sequence[int], kinds: Sequence[str], *, batch_size: int) -> list[tuple[str, list[int]]]:
    """(kind, item positions) per batch: kinds in :data:`KINDS` order, each sorted by prompt length
    (ties by position, so the plan is deterministic), cut into batches of at most ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    plan = []
    for kind in KINDS:
        positions = sorted((i for i, k in enumerate(kinds) if k == kind), key=lambda i: (lengths[i], i))
        plan += [(kind, positions[s:s + batch_size]) for s in range(0, len(positions), batch_size)]
    return plan


def decode(tokenizer, row: torch.Tensor, *, stop: str | None = None) -> str:
    """New tokens (L,) -> text: special tokens (pad, EOS) skipped, cut at ``stop`` (e.g. "User:", the
    model opening a new turn), stripped."""
    text = tokenizer.decode(row.tolist(), skip_special_tokens=True)
    if stop:
        text = text.split(stop)[0]
    return text.strip()


def _sees_images(model) -> bool:
    return not getattr(model, "blind", False)


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def generate_batch(model, *, tokenizer, prompts: Sequence[list[int]], kind: str, indices: Sequence[int],
                   visuals: Visuals | None, stop: str | None = None, **gen_kwargs) -> list[str]:
    """One batch of one visual kind: prompt ids (B lists) -> B answers.

    Builds ``input_ids``/``attention_mask`` (B, T) left-padded, ``has_visual`` (B,) and, for a model that
    sees images, ``visuals(kind, indices)`` (``pixel_values`` (B, F, 3, H, W) or ``vision_tokens``
    (B, F, N, Dv)); ``model.generate`` returns the new tokens (B, <= max_new_tokens).
    """
    if gen_kwargs.get("num_return_sequences", 1) != 1:
        raise ValueError("generate_answers returns one answer per item: num_return_sequences must be 1")
    visual = kind != "none" and _sees_images(model)
    batch = pad_prompts(prompts, pad_id=tokenizer.pad_token_id)
    if visual:
        if visuals is None:
            raise ValueError(f"{kind} items need visuals (an ArrayVisuals or a (kind, indices) -> inputs callable)")
        batch.update(visuals(kind, list(indices)))
    batch["has_visual"] = torch.full((len(prompts),), visual, dtype=torch.bool)
    device = _device(model)
    batch = {k: v.to(device) for k, v in batch.items()}
    out = model.generate(**batch, **gen_kwargs)
    return [decode(tokenizer, row, stop=stop) for row in out.cpu()]


def _encode(formatter: PromptFormatter, items: Sequence[PromptItem]) -> list[list[int]]:
    return [formatter.encode_prompt(item.turns, has_visual=item.visual_kind != "none") for item in items]


def generate_answers(model, *, tokenizer, formatter: PromptFormatter, items: Sequence[PromptItem],
                     visuals: Visuals | None, batch_size: int, desc: str = "generate", stop: str | None = None,
                     progress: bool = True, **gen_kwargs) -> list[str]:
    """Answers to ``items`` in their order, generated in batches of one visual kind sorted by prompt
    length. ``gen_kwargs`` override ``model.generation_kwargs()`` (greedy, ``max_new_tokens`` from the
    config); ``stop`` cuts each answer at that text (see :func:`decode`)."""
    items = list(items)
    prompts = _encode(formatter, items)
    plan = plan_batches([len(p) for p in prompts], [it.visual_kind for it in items], batch_size=batch_size)
    answers: list[str] = [""] * len(items)
    training = model.training
    model.eval()
    try:
        with tqdm(total=len(items), desc=desc, leave=False, disable=not show_progress(progress)) as bar:
            for kind, positions in plan:
                texts = generate_batch(model, tokenizer=tokenizer, prompts=[prompts[i] for i in positions], kind=kind,
                                       indices=[items[i].visual_index for i in positions], visuals=visuals,
                                       stop=stop, **gen_kwargs)
                for i, text in zip(positions, texts):
                    answers[i] = text
                bar.update(len(positions))
    finally:
        model.train(training)
    return answers


def generate_one_by_one(model, *, tokenizer, formatter: PromptFormatter, items: Sequence[PromptItem],
                        visuals: Visuals | None, desc: str = "one by one", stop: str | None = None,
                        progress: bool = True, **gen_kwargs) -> list[str]:
    """The per-sample loop (batch size 1, no padding): the baseline batched generation must equal."""
    items = list(items)
    prompts = _encode(formatter, items)
    answers = []
    training = model.training
    model.eval()
    try:
        for item, prompt in zip(tqdm(items, desc=desc, leave=False, disable=not show_progress(progress)), prompts):
            answers += generate_batch(model, tokenizer=tokenizer, prompts=[prompt], kind=item.visual_kind,
                                      indices=[item.visual_index], visuals=visuals, stop=stop, **gen_kwargs)
    finally:
        model.train(training)
    return answers
