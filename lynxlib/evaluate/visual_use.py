"""Does the model use the image? Per-task loss with the true visuals vs the same batch with the visuals
of another sample (rolled by one row), teacher-forced.

The gap ``shuffled - true`` (nats per answer token) is the information the answer tokens draw from the
image. It is what located the tiny world's calibration problem (docs/calibration.md): a model that
learned only the answer prior has gap 0 on every task however low its loss.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import pandas as pd
import torch

VISUAL_KEYS = ("vision_tokens", "pixel_values")


def roll_visuals(batch: dict[str, torch.Tensor], shift: int = 1) -> dict[str, torch.Tensor]:
    """The batch with every row's visual input taken from the row ``shift`` before it (text unchanged)."""
    keys = [k for k in VISUAL_KEYS if batch.get(k) is not None]
    if not keys:
        raise ValueError("the batch has no visual input (vision_tokens or pixel_values): a blind model "
                         "or a text-only task has no image to shuffle")
    return {k: torch.roll(v, shift, dims=0) if k in keys else v for k, v in batch.items()}


@torch.no_grad()
def visual_gap(model: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Mean loss over ``batches`` with true and with rolled visuals: {"true", "shuffled", "gap", "batches"}."""
    was_training = model.training
    model.eval()
    true = shuffled = 0.0
    n = 0
    for batch in batches:
        true += float(model(**batch).loss)
        shuffled += float(model(**roll_visuals(batch)).loss)
        n += 1
    model.train(was_training)
    if n == 0:
        raise ValueError("visual_gap needs at least one batch")
    return {"true": true / n, "shuffled": shuffled / n, "gap": (shuffled - true) / n, "batches": n}


def visual_use_table(model: torch.nn.Module, make_batches, tasks: Iterable[str], *, n_batches: int = 3,
                     stage=None) -> pd.DataFrame:
    """One row per task: true / shuffled loss and the gap. ``make_batches(stage_cfg)`` returns a
    :class:`lynxlib.data.MixtureBatches`; each task gets ``stage`` with ``mixture={task: 1}``."""
    rows = []
    for task in tasks:
        source = make_batches(dataclasses.replace(stage, mixture={task: 1.0}))
        stats = visual_gap(model, (source.batch(step) for step in range(n_batches)))
        rows.append({"task": task, **stats})
    return pd.DataFrame(rows).set_index("task")
