"""The launch side of training: which ``Accelerator`` the launcher asked for, checked.

DDP, FSDP and DeepSpeed come from the launch command and its config (``params/launch/``); this module
turns them into an ``Accelerator`` and resolves what DeepSpeed's JSON leaves as "auto". Nothing here
is specific to a model.
"""
from __future__ import annotations

import os
import warnings

import torch

from lynxlib.config import StageConfig

# DeepSpeed logs a timestamped warning when it has to guess the accelerator: tell it on CPU machines.
if not torch.cuda.is_available():
    os.environ.setdefault("DS_ACCELERATOR", "cpu")


def make_accelerator(*, grad_accum: int = 1, mixed_precision: str | None = "no"):
    """An ``Accelerator`` for the current launch. ``mixed_precision``: "no", "bf16", "fp16",
    "auto" (bf16 on CUDA, fp32 on CPU) or None (the launcher's ``--mixed_precision``)."""
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    if mixed_precision == "auto":
        mixed_precision = "bf16" if torch.cuda.is_available() else "no"
    launcher_mp = os.environ.get("ACCELERATE_MIXED_PRECISION")
    if mixed_precision is not None and launcher_mp not in (None, mixed_precision):
        warnings.warn(f"mixed_precision={mixed_precision!r} overrides the launcher's {launcher_mp!r}")
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true"
    handlers = []
    if deepspeed and not torch.cuda.is_available():
        handlers.append(InitProcessGroupKwargs(backend="gloo"))
        _skip_deepspeed_shm_op()
    # Without a GPU, accelerate joins the launcher's processes only when told cpu=True (DeepSpeed
    # takes its own path); otherwise each process would silently train alone.
    cpu = not torch.cuda.is_available() and not deepspeed
    return Accelerator(gradient_accumulation_steps=grad_accum, mixed_precision=mixed_precision,
                       kwargs_handlers=handlers, cpu=cpu)


def check_world(accelerator) -> None:
    """Fail fast when the launcher started N processes but accelerate sees fewer (see cpu_2proc.yaml)."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:
        raise RuntimeError(f"the launcher started {launched} processes but accelerate counts "
                           f"{accelerator.num_processes}: on a CPU set ACCELERATE_USE_CPU=true "
                           f"(params/launch/cpu_2proc.yaml)")


def _skip_deepspeed_shm_op() -> None:
    """DeepSpeed on CPU only (tests): gloo instead of its shared-memory all-reduce op.

    The op is JIT-compiled on first use (~30 s on 2 cores, cached in ~/.cache/torch_extensions,
    which a fresh CI machine lacks) and only speeds up large CPU all-reduces. Without a backend
    accelerate also counts every CPU rank as process 0 of 1, hence the explicit gloo above.
    ``LYNX_DS_SHM=1`` keeps the op.
    """
    if os.environ.get("LYNX_DS_SHM") == "1":
        return
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def fill_deepspeed_auto(accelerator, cfg: StageConfig) -> None:
    """Resolve the DeepSpeed JSON's "auto" batch keys from the stage config (there is no
    DataLoader for accelerate to read them from). Explicit batch keys must agree with it;
    an explicit gradient_clipping wins."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        return
    ds = plugin.deepspeed_config
    wanted = {"train_micro_batch_size_per_gpu": cfg.batch_size, "gradient_accumulation_steps": cfg.grad_accum,
              "train_batch_size": cfg.batch_size * cfg.grad_accum * accelerator.num_processes,
              "gradient_clipping": cfg.clip_grad if cfg.clip_grad > 0 else 0.0}
    for key, value in wanted.items():
        if ds.get(key, "auto") == "auto":
            ds[key] = value
        elif ds[key] != value and key != "gradient_clipping":  # the loop counts micro-batches itself
            raise ValueError(f"DeepSpeed config sets {key}={ds[key]} but the stage config implies {value}; "
                             f'use "auto" in the JSON')
