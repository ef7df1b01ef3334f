"""From world samples to model batches: the prompt template, label masking, the task mixture.

One formatter serves every stage and every variant: the only things that differ are how many
``<image>`` placeholders the prompt carries (Q for prefix-tuning, 0 for cross-attention and the blind
control) and which tasks the mixture draws. Batches are a pure function of ``(seed, step, micro,
rank)``, so a resumed run sees exactly the batches an uninterrupted one would.

Token layout of one training sequence (prefix-tuning)::

    <s> <image>*Q "User: {q1}\\nBot:" " {a1}" </s> "\\nUser: {q2}\\nBot:" " {a2}" </s> ...
    labels: -100 ...................... a1 ids  </s>  -100 .................. a2 ids  </s>
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from lynxlib.tokenizer import IMAGE

IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    """One tokenised sample: ``input_ids`` and ``labels`` of equal length (labels -100 off-response)."""

    input_ids: list[int]
    labels: list[int]


class PromptFormatter:
    """Applies the chat template and masks everything but the responses.

    ``num_image_tokens`` placeholders are placed right after BOS for samples with a visual input:
    the prefix-tuning model swaps them for the resampler's Q vision tokens.
    """

    def __init__(self, *, tokenizer, template: str, num_image_tokens: int, max_len: int):
        if "{question}" not in template:
            raise ValueError(f"generation.template must contain '{{question}}', got {template!r}")
        self.tok = tokenizer
        self.template = template
        self.num_image_tokens = num_image_tokens
        self.max_len = max_len
        self.image_id = tokenizer.convert_tokens_to_ids(IMAGE)

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def _head(self, has_visual: bool) -> list[int]:
        return [self.tok.bos_token_id] + [self.image_id] * (self.num_image_tokens if has_visual else 0)

    def _user(self, question: str, first: bool) -> list[int]:
        # An empty instruction (stage-1 image-text pairs) is plain next-word prediction on the caption.
        if not question:
            return []
        return self._ids(("" if first else "\n") + self.template.format(question=question))

    def encode(self, turns: Sequence[tuple[str, str]], *, has_visual: bool) -> Encoded:
        """Training sequence: every turn's response is a target, ending in EOS."""
        ids = self._head(has_visual)
        labels = [IGNORE] * len(ids)
        for i, (question, answer) in enumerate(turns):
            user = self._user(question, first=i == 0)
            reply = self._ids((" " if question else "") + answer) + [self.tok.eos_token_id]
            ids += user + reply
            labels += [IGNORE] * len(user) + reply
        if len(ids) > self.max_len:  # keep the head (image tokens) intact; cut the tail
            ids, labels = ids[: self.max_len], labels[: self.max_len]
        return Encoded(ids, labels)

    def encode_prompt(self, turns: Sequence[tuple[str, str]], *, has_visual: bool) -> list[int]:
        """Generation prompt: earlier turns with their answers, then the last question, up to "Bot:"."""
        ids = self._head(has_visual)
        for i, (question, answer) in enumerate(turns[:-1]):
            ids += self._user(question, first=i == 0) + self._ids(" " + answer) + [self.tok.eos_token_id]
        return ids + self._user(turns[-1][0], first=len(turns) == 1)


def pad_batch(rows: Sequence[Encoded], *, pad_id: int, side: str = "right") -> dict[str, torch.Tensor]:
    """Pad to the longest row: ``input_ids``/``labels``/``attention_mask`` (B, T)."""
    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row.input_ids)
        span = slice(0, n) if side == "right" else slice(width - n, width)
        ids[i, span] = torch.tensor(row.input_ids)
        labels[i, span] = torch.tensor(row.labels)
        mask[i, span] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def pad_prompts(prompts: Sequence[list[int]], *, pad_id: int) -> dict[str, torch.Tensor]:
    """Left-pad generation prompts (B, T): the last real token sits at the end of every row."""
    batch = pad_batch([Encoded(p, [IGNORE] * len(p)) for p in prompts], pad_id=pad_id, side="left")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def mixture_kinds(mixture: dict[str, float], kind_of: dict[str, str]) -> dict[str, dict[str, float]]:
    """Group a task mixture by visual kind: {kind: {task: weight}}, dropping zero weights.

    Each micro-batch holds one kind (image, video or none), so frames stack into one tensor; drawing
    the kind by its total weight and then the task within it keeps every task's expected share.
    """
    groups: dict[str, dict[str, float]] = {}
    for task, weight in mixture.items():
        if task not in kind_of:
            raise KeyError(f"mixture task {task!r} is not a world task (known: {', '.join(sorted(kind_of))})")
        if weight > 0:
            groups.setdefault(kind_of[task], {})[task] = weight
    return groups


def draw_tasks(rng: np.random.Generator, groups: dict[str, dict[str, float]], n: int) -> tuple[str, list[str]]:
    """Draw one visual kind by total weight, then ``n`` tasks of that kind by weight."""
    kinds = sorted(groups)
    totals = np.array([sum(groups[k].values()) for k in kinds])
    kind = kinds[rng.choice(len(kinds), p=totals / totals.sum())]
    tasks = sorted(groups[kind])
    weights = np.array([groups[kind][t] for t in tasks])
    return kind, [tasks[i] for i in rng.choice(len(tasks), size=n, p=weights / weights.sum())]


class ArrayVisuals:
    """Images ``(N, H, W, 3)`` and clips ``(M, F, H, W, 3)`` (uint8, e.g. memmapped world arrays) as
    model inputs: ``{"pixel_values": (B, F, 3, H, W)}``, or ``{"vision_tokens": (B, F, T, Dv)}`` when
    a feature cache holds the tower's tokens for them (``cache_names`` maps kind -> cached array)."""

    def __init__(self, *, images: np.ndarray | None, videos: np.ndarray | None, cache=None,
                 cache_names: dict[str, str] | None = None):
        self.arrays = {"image": images, "video": videos}
        self.cache = cache
        self.cache_names = cache_names or {}

    def __call__(self, kind: str, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        if kind == "none":
            return {}
        if self.cache is not None and kind in self.cache_names:
            return {"vision_tokens": self.cache.tokens(self.cache_names[kind], indices)}
        array = self.arrays.get(kind)
        if array is None:
            raise ValueError(f"no {kind} array was given to ArrayVisuals")
        from lynxlib.vision import to_pixel_values

        frames = np.asarray(array[np.asarray(indices)])
        if kind == "image":
            frames = frames[:, None]  # (B, 1, H, W, 3): one frame
        return {"pixel_values": to_pixel_values(frames)}


class MixtureBatches:
    """A stage's training data: the weighted task mixture over the world's training split.

    ``batch(step, micro, rank, world_size)`` is a pure function of its arguments (and the seed), so a
    resumed run sees exactly the batches an uninterrupted one would, and each data-parallel rank draws
    its own stream. ``stage.batch_size`` is the micro-batch per process.
    """

    def __init__(self, *, world_cfg, scenes, clips, visuals: ArrayVisuals, formatter: PromptFormatter,
                 stage, seed: int, sees_images: bool, pass_has_visual: bool):
        from lynxlib.world import tasks_for

        self.world_cfg, self.scenes, self.clips = world_cfg, scenes, clips
        self.visuals, self.formatter, self.stage, self.seed = visuals, formatter, stage, seed
        self.sees_images, self.pass_has_visual = sees_images, pass_has_visual
        kind_of = {name: task.visual_kind for name, task in tasks_for(world_cfg).items()}
        self.groups = mixture_kinds(stage.mixture, kind_of)
        self.opening_groups = mixture_kinds(stage.opening_mixture, kind_of)

    def groups_at(self, step: int) -> dict[str, dict[str, float]]:
        """The mixture step ``step`` draws from: the opening's for the stage's first ``opening_steps``."""
        return self.opening_groups if step < self.stage.opening_steps else self.groups

    def samples(self, rng: np.random.Generator, step: int = 0) -> tuple[str, list]:
        from lynxlib.world import sample_instruction

        kind, tasks = draw_tasks(rng, self.groups_at(step), self.stage.batch_size)
        return kind, [sample_instruction(rng=rng, task_name=t, scenes=self.scenes, clips=self.clips,
                                         prompt_mode=self.stage.prompts, captions=self.stage.captions,
                                         cfg=self.world_cfg) for t in tasks]

    def batch(self, step: int, micro: int = 0, rank: int = 0, world_size: int = 1) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step, micro, rank])
        kind, samples = self.samples(rng, step)
        visual = kind != "none" and self.sees_images
        rows = [self.formatter.encode(s.turns, has_visual=visual) for s in samples]
        batch = pad_batch(rows, pad_id=self.formatter.tok.pad_token_id)
        if visual:
            batch.update(self.visuals(kind, [s.visual_index for s in samples]))
        if self.pass_has_visual:
            batch["has_visual"] = torch.full((len(samples),), visual, dtype=torch.bool)
        return batch
