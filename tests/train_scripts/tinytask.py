"""A tiny model and a deterministic synthetic BatchSource shared by the training tests and scripts.

The model has what the real one has, in miniature: a frozen block, learned queries, a norm, biases
and (optionally) dropout, so weight-decay groups, frozen parameters and RNG restore are all exercised.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from lynxlib.config import StageConfig

DIM, HIDDEN, CLASSES = 16, 32, 4


class Queries(nn.Module):
    """Learned queries live in a submodule: ZeRO-3 gathers a parameter around its owner's forward,
    and a parameter owned by the root module and read in its forward fails in backward."""

    def __init__(self):
        super().__init__()
        self.query = nn.Parameter(torch.randn(2, DIM) * 0.1)

    def forward(self, h):
        return h + self.query.mean(0)


class TinyModel(nn.Module):
    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.frozen = nn.Linear(DIM, DIM)
        self.frozen.requires_grad_(False)
        self.queries = Queries()
        self.fc1 = nn.Linear(DIM, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x, y):
        h = self.queries(self.frozen(x))
        logits = self.fc2(self.drop(torch.relu(self.norm(self.fc1(h)))))
        return SimpleNamespace(loss=F.cross_entropy(logits, y), logits=logits)


def build_model(seed: int = 0, dropout: float = 0.0) -> TinyModel:
    torch.manual_seed(seed)
    return TinyModel(dropout=dropout)


@dataclass
class SyntheticSource:
    """``batch(step, micro, rank, world)`` is a pure function of its arguments (and ``seed``)."""

    batch_size: int = 8
    seed: int = 0
    inf_at: int | None = None      # this step's batches carry an inf (NaN-loss tests)
    sleep: float = 0.0             # seconds per batch, so a test can kill a run mid-way

    def batch(self, step: int, micro: int, rank: int, world_size: int) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(((self.seed * 100_003 + step) * 101 + micro) * 1009 + rank)
        x = torch.randn(self.batch_size, DIM, generator=gen)
        y = x[:, :CLASSES].argmax(dim=1)
        if self.inf_at is not None and step == self.inf_at:
            x[0, 0] = float("inf")
        if self.sleep:
            time.sleep(self.sleep)
        return {"x": x, "y": y}


@dataclass
class ConcatSource:
    """One process seeing what ``world`` data-parallel ranks see together, concatenated."""

    inner: SyntheticSource
    world: int = 2

    def batch(self, step: int, micro: int, rank: int, world_size: int) -> dict[str, torch.Tensor]:
        parts = [self.inner.batch(step, micro, r, self.world) for r in range(self.world)]
        return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}


def tiny_stage(*, steps: int = 12, batch_size: int = 8, grad_accum: int = 1, ckpt_every: int = 4,
               keep_last: int = 2, lr: float = 3e-2) -> StageConfig:
    """The stage config every tiny run uses (scripts and in-process references alike)."""
    return StageConfig(steps=steps, batch_size=batch_size, grad_accum=grad_accum, lr=lr, warmup_steps=2,
                       weight_decay=0.1, clip_grad=1.0, log_every=1, ckpt_every=ckpt_every, keep_last=keep_last)
