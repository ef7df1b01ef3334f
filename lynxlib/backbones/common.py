"""Small helpers shared by the stage-0 trainers: schedules, seeded generators, atomic folders."""
from __future__ import annotations

import contextlib
import math
import shutil
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from lynxlib.runs import atomic_path

# Distinct streams for each stage-0 piece, so changing one budget never reshuffles another's data.
STREAMS = {"lm": 1, "vicuna": 2, "tower": 3, "heldout": 4, "probe": 5, "style": 6}


def rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([seed, STREAMS[stream]])


def torch_seed(seed: int, stream: str) -> None:
    """Seed torch's global generator (model init) for one stage-0 piece; deterministic kernels."""
    torch.manual_seed(seed * 1000 + STREAMS[stream])
    torch.use_deterministic_algorithms(True, warn_only=True)


def adamw(model: torch.nn.Module, lr: float, weight_decay: float = 0.05) -> torch.optim.AdamW:
    """AdamW with no decay on gains, biases, embeddings of positions and scales (1-d parameters)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    keep = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8)


def warmup_cosine(optimizer: torch.optim.Optimizer, steps: int, warmup: int | None = None,
                  min_ratio: float = 0.1) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup (default 5% of steps) then cosine decay to ``min_ratio`` of the peak."""
    warmup = max(1, steps // 20) if warmup is None else max(1, warmup)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.unlink()
        tmp.mkdir()
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if path.exists():  # a stale result of an interrupted or older run: replace it whole
            shutil.rmtree(path) if path.is_dir() else path.unlink()


class Timer:
    """Wall-clock seconds of a block: ``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
