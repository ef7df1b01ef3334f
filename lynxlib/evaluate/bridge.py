"""What the bridge passes on: per-cell probes on the resampler's latents beside the tower's own tokens.

The tower's tokens of a scene cell tell an object's colour and shape (stage 0's probes); the LM sees
only the resampler's Q latents. :func:`cell_probe_table` fits the same linear probes on three readouts
of held-out scenes, per grid cell:

* ``cell_mean``: the tower's patch tokens inside the cell, averaged (what the tower knows, given where);
* ``latents``: all Q latents flattened (PCA to ``pca`` dims on the training rows: what the LM can get);
* ``pooled``: the mean of every patch token (what a resampler that only pools would pass on).

Attributes: ``occupied`` (is there an object in the cell), and the ``shape`` / ``colour`` of the
object in an occupied cell. Latents at the ``pooled`` level mean the bridge loses where things are
(docs/calibration.md). :func:`attention_summary` gives the resampler's attention
entropy per layer beside the uniform one.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from lynxlib.backbones.cells import cell_rows
from lynxlib.backbones.gates import linear_probe
from lynxlib.evaluate.text import words as reply_words

ATTRIBUTES = ("occupied", "shape", "colour")


def cell_labels(scenes: Sequence, attr: str, row: int, col: int) -> tuple[list[int], list]:
    """Scene indices and answers for one cell: every scene for ``occupied``, occupied cells otherwise."""
    rows, labels = [], []
    for i, scene in enumerate(scenes):
        found = [o for o in scene.objects if (o.row, o.col) == (row, col)]
        if attr == "occupied":
            rows.append(i); labels.append(bool(found))
        elif found:
            rows.append(i); labels.append(getattr(found[0], attr))
    return rows, labels


def pca_project(x: torch.Tensor, n_train: int, dims: int) -> torch.Tensor:
    """(N, D) -> (N, min(dims, D)): centred on, and projected onto the top components of, the first n_train rows."""
    mean = x[:n_train].mean(0)
    dims = min(dims, n_train)  # no more components than training rows
    if x.shape[1] <= dims:
        return x - mean
    _, _, v = torch.pca_lowrank(x[:n_train] - mean, q=dims, center=False)
    return (x - mean) @ v


def readouts(patches: torch.Tensor, latents: torch.Tensor, grid: int, n_train: int, pca: int) -> dict:
    """patches (N, g*g, Dv) (no class token), latents (N, Q, D) -> {name: (N, D') or (N, cells, Dv)}"""
    side = int(round(patches.shape[1] ** 0.5))  # the cell's token indices are the same for every image
    cells = torch.stack([patches[:, cell_rows(side, r, c, grid)].mean(1) for r in range(grid) for c in range(grid)],
                        dim=1)
    return {"cell_mean": cells, "latents": pca_project(latents.flatten(1).float(), n_train, pca),
            "pooled": patches.mean(1)}


def cell_probe_table(patches: torch.Tensor, latents: torch.Tensor, scenes: Sequence, *, train_frac: float = 2 / 3,
                     pca: int = 512, l2: float = 1e-2) -> pd.DataFrame:
    """Mean held-out accuracy over the grid's cells, per attribute and readout, with the majority answer.

    The first ``train_frac`` of the scenes train every probe, the rest test it.
    """
    grid, n_train = scenes[0].grid, int(len(scenes) * train_frac)
    feats = readouts(patches.float(), latents, grid, n_train, pca)
    rows = []
    for attr in ATTRIBUTES:
        for name, x in feats.items():
            accs, majority = [], []
            for k in range(grid * grid):
                idx, labels = cell_labels(scenes, attr, *divmod(k, grid))
                train = [j for j, i in enumerate(idx) if i < n_train]
                test = [j for j, i in enumerate(idx) if i >= n_train]
                if not train or not test:
                    continue
                xs = x[idx, k] if name == "cell_mean" else x[idx]
                r = linear_probe(xs[train], [labels[j] for j in train], xs[test], [labels[j] for j in test], l2=l2)
                accs.append(r["acc"]); majority.append(r["majority"])
            rows.append({"attribute": attr, "readout": name, "acc": float(np.mean(accs)),
                         "majority": float(np.mean(majority)), "cells": len(accs)})
    return pd.DataFrame(rows)


def attention_summary(resampler, media: torch.Tensor, frames: int = 1) -> pd.DataFrame:
    """Per layer: mean entropy of the latents' attention over the media (renormalised), the uniform
    entropy log(N), the weight share on media (vs the latents) and the mean largest media weight."""
    rows = []
    for layer, w in enumerate(resampler.attention_maps(media, frames)):
        on_media = w[..., :media.shape[1]]
        share = on_media.sum(-1, keepdim=True)
        p = on_media / share
        entropy = -(p * p.clamp_min(1e-12).log()).sum(-1)
        rows.append({"layer": layer, "entropy": float(entropy.mean()), "uniform": math.log(media.shape[1]),
                     "media_share": float(share.mean()), "max_weight": float(p.amax(-1).mean())})
    return pd.DataFrame(rows)


def colours_present(scene) -> int:
    """Distinct colours drawn in a scene (objects and the countable group)."""
    return len({o.colour for o in scene.objects} | ({scene.group.colour} if scene.group else set()))


def colour_by_choices(predictions: Sequence[dict], scenes: Sequence) -> pd.DataFrame:
    """Open-VQA-mini Color accuracy by the number of colours in the image, beside 1/k.

    ``predictions``: the evaluation's ``predictions.jsonl`` rows (uid ``openvqa/image/<k>``: scene k).
    A model that knows which colours the image holds but not which object has which lands near 1/k: it
    names *a* colour of the image, not the one of the object the question names.
    """
    rows = [(colours_present(scenes[int(p["uid"].rsplit("/", 1)[1])]), bool(p["correct"])) for p in predictions
            if p["part"] == "openvqa" and p["kind"] == "image" and p["category"] == "Color"]
    if not rows:
        raise ValueError("no Open-VQA-mini image Color predictions in the rows given")
    table = pd.DataFrame(rows, columns=["colours", "correct"]).groupby("colours")["correct"].agg(["sum", "count"])
    table["accuracy"] = table["sum"] / table["count"]
    table["one_in_k"] = 1 / table.index
    return table.rename(columns={"sum": "correct", "count": "n"}).reset_index()


def several_named(predictions: Sequence[dict], words: Sequence[str], *, category: str = "Color") -> dict[str, int]:
    """Replies to a category's questions that name two or more of ``words`` (the world's colours), and
    how many of those the judge counted right.

    The rule judge accepts a reference anywhere in a reply, so a reply that lists every colour of the
    image (a caption) is right on any Color question it covers: a score is only evidence of binding
    when this count is near zero.
    """
    vocab = {w.lower() for w in words}
    rows = [p for p in predictions if p.get("part", "openvqa") == "openvqa" and p.get("category") == category]
    several = [p for p in rows if len(set(reply_words(p.get("prediction") or "")) & vocab) > 1]
    return {"replies": len(rows), "several": len(several), "several_correct": sum(bool(p["correct"]) for p in several)}
