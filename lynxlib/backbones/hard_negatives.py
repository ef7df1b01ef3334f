"""Stage 0, vision side: one-attribute-off hard-negative captions for the tower's CLIP training.

With ``tower_hard_negatives`` > 0, :func:`lynxlib.backbones.tower.train_tower` adds, per image, the
cross-entropy of picking its caption over the caption of the same scene with ONE attribute changed (an
object's shape, colour or size, the group's count, or the word), both phrased with the same caption seed.
Measured no probe gain at 300-1200 steps and a retrieval cost (:mod:`lynxlib.backbones.tower`), so off
by default.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lynxlib.config import Config
from lynxlib.world.scene import Group

HARD_KINDS = ("shape", "colour", "size", "count", "word")


def perturb_scene(scene, rng: np.random.Generator, vocab):
    """The scene with ONE attribute changed (an object's shape, colour or size, the group's count, or
    the word), keeping every object's full name unique; its caption is a hard negative. None if the
    drawn change is impossible."""
    kinds = [k for k in HARD_KINDS if k != "word" or scene.text is not None]
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "word":
        words = [w for w in vocab.words if w != scene.text.word]
        return replace(scene, text=replace(scene.text, word=words[int(rng.integers(len(words)))]))
    if kind == "count":
        counts = [c for c in range(vocab.max_count + 1) if c != scene.count]
        n = counts[int(rng.integers(len(counts)))]
        if n == 0:
            return replace(scene, group=None)
        group = scene.group
        if group is None:
            used = {o.shape for o in scene.objects}
            shapes = [s for s in vocab.shapes if s not in used]
            group = Group(shapes[int(rng.integers(len(shapes)))], vocab.colours[int(rng.integers(len(vocab.colours)))], ())
        return replace(scene, group=replace(group, slots=tuple((0, k) for k in range(n))))  # captions read the count
    i = int(rng.integers(len(scene.objects)))
    obj = scene.objects[i]
    taken = {(o.shape, o.colour) for j, o in enumerate(scene.objects) if j != i}
    if kind == "size":
        new = replace(obj, size="small" if obj.size == "large" else "large")
    elif kind == "shape":
        banned = {scene.group.shape} if scene.group else set()
        options = [s for s in vocab.shapes if s != obj.shape and s not in banned and (s, obj.colour) not in taken]
        if not options:
            return None
        new = replace(obj, shape=options[int(rng.integers(len(options)))])
    else:
        options = [c for c in vocab.colours if c != obj.colour and (obj.shape, c) not in taken]
        new = replace(obj, colour=options[int(rng.integers(len(options)))])
    return replace(scene, objects=scene.objects[:i] + (new,) + scene.objects[i + 1:])


def caption_pairs(cfg: Config, scenes: Sequence, rows: Sequence[int], step: int) -> tuple[list[str], list[str]]:
    """Fresh clean captions of ``scenes[rows]`` and, phrased identically (same caption seed), captions of
    the one-attribute-changed scenes: (positives, hard negatives)."""
    from lynxlib.world import clean_caption, stream_rng, world_vocab

    vocab = world_vocab(cfg.world)
    pos, neg = [], []
    for j, i in enumerate(rows):
        scene, other = scenes[i], None
        draw = stream_rng(cfg.backbones.seed, f"backbones-hard-{step}", j)
        for _ in range(8):
            other = perturb_scene(scene, draw, vocab)
            if other is not None:
                break
        seed = int(draw.integers(2**31))
        pos.append(clean_caption(scene, np.random.default_rng(seed)))
        neg.append(clean_caption(other if other is not None else scene, np.random.default_rng(seed)))
    return pos, neg


def hard_negative_loss(emb: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of picking each image's caption over its one-attribute-off twin."""
    logits = scale * torch.stack([(emb * pos).sum(-1), (emb * neg).sum(-1)], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(emb), dtype=torch.long))
