"""Training-only attribute heads for the tiny tower: one classifier per scene-graph attribute.

The grounded loss of :mod:`lynxlib.backbones.tower` asks a cell's tokens for the bag of its object's
caption words ("large red circle") under one softmax, so colour and size (solved from pixel counts)
take the gradient and shape waits: stage 0's probes read shape at 0.43 / 0.59. With one softmax per
attribute every attribute gets its own full-strength signal. ``benchmarks/tower_shapes.py`` measured
the effect on a conv-stem ViT with shape, colour and size heads side by side: shape 0.34 on held-out
scenes after 400 steps, 0.95 after 1,200; in stage 0 with the conv stem, 1,200 steps, the probes read
shape at 0.96 / 0.98 and count at 0.73 / 0.65 with these heads, 0.45 / 0.56 and 0.25 / 0.20 without
(docs/calibration.md).

Heads (each a LayerNorm + Linear on ``feature_layer`` tokens; none is saved with the tower):

* shape, colour, size: the mean of the object's grid-cell tokens, one row per object;
* word: the mean of the word's cell tokens, at the highest resolution only (it is illegible below);
* count: the mean of all patch tokens -> the countable group's size (0..max_count).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lynxlib.backbones.cells import cell_mean
from lynxlib.world.vocab import COLOURS, SHAPES, SIZES, WORDS


class AttributeHeads(nn.Module):
    """Per-attribute classifiers on the tower's feature-layer tokens (B, g*g, D), class token excluded."""

    def __init__(self, width: int, *, max_count: int):
        super().__init__()
        self.classes = {"shape": list(SHAPES), "colour": list(COLOURS), "size": list(SIZES), "word": list(WORDS),
                        "count": list(range(max_count + 1))}
        self.heads = nn.ModuleDict({name: nn.Sequential(nn.LayerNorm(width), nn.Linear(width, len(labels)))
                                    for name, labels in self.classes.items()})

    def targets(self, tokens: torch.Tensor, scenes: Sequence, rows: Sequence[int], *, legible: bool
                ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{attribute: (features (M, D), class ids (M,))} for the scenes ``scenes[rows]`` of the batch."""
        feats: dict[str, list] = {name: [] for name in self.classes}
        labels: dict[str, list] = {name: [] for name in self.classes}
        for b, i in enumerate(rows):
            scene = scenes[i]
            for obj in scene.objects:
                cell = cell_mean(tokens, b, obj.row, obj.col, scene.grid)
                for name, value in (("shape", obj.shape), ("colour", obj.colour), ("size", obj.size)):
                    feats[name].append(cell)
                    labels[name].append(self.classes[name].index(value))
            if legible and scene.text is not None:
                feats["word"].append(cell_mean(tokens, b, scene.text.row, scene.text.col, scene.grid))
                labels["word"].append(self.classes["word"].index(scene.text.word))
            feats["count"].append(tokens[b].mean(0))
            labels["count"].append(scene.count)
        return {name: (torch.stack(feats[name]), torch.tensor(labels[name])) for name in self.classes if feats[name]}

    def forward(self, tokens: torch.Tensor, scenes: Sequence, rows: Sequence[int], *, legible: bool) -> torch.Tensor:
        """Sum over attributes of the mean cross-entropy: (B, g*g, D) tokens -> scalar loss."""
        pairs = self.targets(tokens, scenes, rows, legible=legible)
        return sum(F.cross_entropy(self.heads[name](x), y) for name, (x, y) in pairs.items())
