"""Training-only heads of the stage-0 tower (not in its checkpoint): direct signal from the caption's
words for the feature-layer tokens that the resampler reads (:mod:`lynxlib.backbones.tower`)."""
from __future__ import annotations

from typing import Sequence

import torch

from lynxlib.backbones.cells import cell_rows


class PooledHead(torch.nn.Module):
    """Training-only head on the mean-pooled feature-layer tokens, (B, P, W) -> (B, out). Two of them:
    the token head maps into the joint embedding space (ClipLoss on the tokens); the word head scores
    which caption tokens the image has (soft-target cross-entropy over the vocabulary, CatLIP-style), a
    direct, text-tower-free signal for every word a caption says (shapes, colours, sizes, counts, the
    word on the sign)."""

    def __init__(self, width: int, out: int):
        super().__init__()
        self.norm = torch.nn.LayerNorm(width)
        self.proj = torch.nn.Linear(width, out)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(self.norm(tokens.mean(dim=1)))


def word_targets(text: torch.Tensor, vocab_size: int, special: Sequence[int]) -> torch.Tensor:
    """(B, T) caption ids -> (B, V) uniform distribution over each caption's distinct non-special ids."""
    target = torch.zeros(len(text), vocab_size)
    target.scatter_(1, text, 1.0)
    target[:, list(special)] = 0.0
    return target / target.sum(1, keepdim=True).clamp_min(1.0)


def grounded_items(scenes: Sequence, rows: Sequence[int], grid_side: int) -> tuple[list[tuple[int, list[int]]], list[str]]:
    """Each object (and rendered word) of ``scenes[rows]`` as (batch row, its cell's token indices) and
    the words a caption says about it ("large red circle", 'sign "car"')."""
    where, phrases = [], []
    for b, i in enumerate(rows):
        scene = scenes[i]
        for obj in scene.objects:
            where.append((b, cell_rows(grid_side, obj.row, obj.col, scene.grid)))
            phrases.append(f"{obj.size} {obj.colour} {obj.shape}")
        if scene.text is not None:
            where.append((b, cell_rows(grid_side, scene.text.row, scene.text.col, scene.grid)))
            phrases.append(f'{scene.text.kind} "{scene.text.word}"')
    return where, phrases
