"""The optimizer side of :func:`lynxlib.train.train_stage` (importable from there too).

* :func:`param_groups`: AdamW groups over the trainable parameters, ``decay`` and ``no_decay`` (norms,
  biases, 1-D tensors and learned queries/latents get no weight decay). Not
  :func:`lynxlib.build.param_groups`, which groups parameters by model component.
* :func:`warmup_cosine`: the LR multiplier of a stage, linear warmup then cosine down to ``min_lr_ratio``
  (with ``opening_schedule: restart``: warmup and the peak over the opening, then warmup and cosine
  again over the mixture's steps).
"""
from __future__ import annotations

import math
from typing import Any, Callable

from torch import nn

from lynxlib.config import StageConfig


def _no_decay(name: str, param: nn.Parameter, owner: nn.Module) -> bool:
    """Norms, biases, 1-D tensors and learned queries/latents get no weight decay.

    Names alone would also exempt a projection called ``query`` (BERT-style attention), so a name
    match counts only when the parameter is not a Linear/Conv weight.
    """
    if param.ndim < 2 or "bias" in name.rsplit(".", 1)[-1]:
        return True
    if "norm" in type(owner).__name__.lower():
        return True
    projection = isinstance(owner, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
    return not projection and any(key in name.lower() for key in ("norm", "latent", "query", "queries"))


def param_groups(model: nn.Module, *, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups over trainable parameters: ``decay`` and ``no_decay`` (empty groups dropped)."""
    owners = {f"{mname}.{pname}" if mname else pname: module
              for mname, module in model.named_modules() for pname, _ in module.named_parameters(recurse=False)}
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if _no_decay(name, param, owners[name]) else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "decay"},
              {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"}]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ValueError("the model has no parameter with requires_grad=True: nothing to train")
    return groups


def warmup_cosine(cfg: StageConfig) -> Callable[[int], float]:
    """LR multiplier for 0-based step ``s``: linear warmup to 1, cosine down to ``min_lr_ratio``.

    With an opening and ``opening_schedule: restart`` the opening warms up and holds the peak rate
    (where the shared schedule's first 800 of 4,400 steps sit, above 0.93), and the mixture's steps
    then get exactly the schedule the stage would give them without an opening."""
    opening = cfg.opening_steps if cfg.opening_schedule == "restart" else 0
    if not opening:
        return _warmup_cosine(cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)
    first = _warmup_cosine(cfg.warmup_steps, opening, floor=1.0)  # a cosine down to 1.0: flat
    rest = _warmup_cosine(cfg.warmup_steps, cfg.steps - opening, cfg.min_lr_ratio)
    return lambda step: first(step) if step < opening else rest(step - opening)


def _warmup_cosine(warmup: int, total: int, floor: float) -> Callable[[int], float]:
    warmup, total = max(warmup, 0), max(total, 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
