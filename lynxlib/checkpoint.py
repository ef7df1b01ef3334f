"""Resumable checkpoints of a training stage: trainable weights, optimizer, schedule, RNG, step.

Layout under a stage's ``out_dir``::

    ckpt/step_000050/   model.safetensors   trainable parameters only ({name: tensor})
                        optimizer.pt        (optimizer_rank<r>.pt when ZeRO shards it)
                        scheduler.pt        LR schedule state
                        rng_rank<r>.pt      python / numpy / torch CPU / CUDA RNG of each rank
                        config.json         the resolved stage config the run used
                        trainer_state.json  step, losses so far, elapsed seconds (written last)
    ckpt/latest         name of the newest complete checkpoint (for people and tools)
    final/              model.safetensors + config.json of a finished stage

A checkpoint is written into ``ckpt/.tmp_step_000050`` and renamed when complete: a process killed
while writing leaves only a dot-folder, which :func:`find_latest` ignores and the next save removes.
Frozen weights are never saved: they come from the stage's inputs (backbones, previous stage).
"""
from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from lynxlib.runs import atomic_write_text, write_json

STEP_RE = re.compile(r"^step_(\d{6,})$")
TMP_PREFIX = ".tmp_"


@dataclass
class CheckpointState:
    """What :func:`load_checkpoint` returns besides the objects it restored in place."""

    path: Path
    step: int
    losses: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    samples: int = 0
    config: dict = field(default_factory=dict)


def step_name(step: int) -> str:
    return f"step_{step:06d}"


def ckpt_root(out_dir: str | Path) -> Path:
    return Path(out_dir) / "ckpt"


def list_checkpoints(out_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first. Temp folders and stray files are not checkpoints."""
    root = ckpt_root(out_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = STEP_RE.match(path.name)
        if match and path.is_dir() and (path / "trainer_state.json").is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def find_latest(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder, or None.

    Scans the folders rather than trusting ``latest``: a kill between the rename and the pointer
    update leaves a complete checkpoint the pointer does not name yet.
    """
    found = list_checkpoints(out_dir)
    return found[-1][1] if found else None


# ---------------------------------------------------------------- distributed helpers (no-ops alone)
def _rank_world(accelerator) -> tuple[int, int]:
    if accelerator is None:
        return 0, 1
    return accelerator.process_index, accelerator.num_processes


def _barrier(accelerator) -> None:
    if accelerator is not None and accelerator.num_processes > 1:
        accelerator.wait_for_everyone()


def _unwrap(model, accelerator):
    return accelerator.unwrap_model(model) if accelerator is not None else model


def _is_sharded_optimizer(accelerator) -> bool:
    """ZeRO partitions optimizer state across ranks, so each rank saves its own shard."""
    return accelerator is not None and getattr(accelerator, "deepspeed_engine_wrapped", None) is not None


# ---------------------------------------------------------------- weights
def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` of the parameters with ``requires_grad``, gathered if ZeRO-3 shards them.

    Under ZeRO-3 a parameter's ``data`` is an empty placeholder; ``GatheredParameters`` is a
    collective, so every rank must call this, and only while the DeepSpeed engine is alive (after
    ``accelerator.free_memory()`` it crashes the process at exit): read ``final/`` instead.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    sharded = [p for _, p in named if hasattr(p, "ds_status")]
    if sharded:
        import deepspeed

        with deepspeed.zero.GatheredParameters(sharded, modifier_rank=None):
            return {n: p.detach().to("cpu", copy=True).contiguous() for n, p in named}
    return {n: p.detach().to("cpu", copy=True).contiguous() for n, p in named}


def save_weights(path: str | Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write safetensors, refusing non-finite values: a NaN checkpoint would poison every resume."""
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ValueError(f"refusing to save non-finite weights: {', '.join(bad[:5])}")
    save_file(tensors, str(path))


def load_weights(path: str | Path, model: torch.nn.Module) -> list[str]:
    """Copy saved trainable weights into ``model`` (unprepared); every trainable name must match."""
    saved = load_file(str(Path(path)))
    params = dict(model.named_parameters())
    trainable = {n for n, p in params.items() if p.requires_grad}
    missing, unexpected = sorted(trainable - saved.keys()), sorted(saved.keys() - params.keys())
    if missing or unexpected:
        raise KeyError(f"{path}: checkpoint does not match the model's trainable parameters; "
                       f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    with torch.no_grad():
        for name, tensor in saved.items():
            params[name].copy_(tensor)
    return sorted(saved)


# ---------------------------------------------------------------- RNG
def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["key"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- save
def save_checkpoint(*, out_dir: str | Path, step: int, model: torch.nn.Module, optimizer=None,
                    scheduler=None, config: dict | None = None, trainer_state: dict | None = None,
                    accelerator=None, keep_last: int = 0) -> Path:
    """Write ``ckpt/step_<step>/`` atomically, update ``latest``, prune to ``keep_last``.

    Call on every rank: rank 0 writes the shared files, each rank its RNG (and its optimizer shard
    under ZeRO). ``trainer_state.json`` is written last, so a folder holding it is complete.
    """
    rank, world = _rank_world(accelerator)
    root = ckpt_root(out_dir)
    final, tmp = root / step_name(step), root / f"{TMP_PREFIX}{step_name(step)}"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)  # a previous attempt killed mid-write
        tmp.mkdir(parents=True)
    _barrier(accelerator)
    weights = trainable_state(_unwrap(model, accelerator))  # collective under ZeRO-3
    torch.save(rng_state(), tmp / f"rng_rank{rank}.pt")
    if optimizer is not None and _is_sharded_optimizer(accelerator):
        torch.save(optimizer.state_dict(), tmp / f"optimizer_rank{rank}.pt")
    if rank == 0:
        save_weights(tmp / "model.safetensors", weights)
        if optimizer is not None and not _is_sharded_optimizer(accelerator):
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        if scheduler is not None:
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        write_json(tmp / "config.json", config or {})
    _barrier(accelerator)
    if rank == 0:
        write_json(tmp / "trainer_state.json", {"step": step, "world_size": world, **(trainer_state or {})})
        _replace_dir(tmp, final)
        atomic_write_text(root / "latest", final.name + "\n")
        prune(out_dir, keep_last=keep_last)
    _barrier(accelerator)
    return final


def _replace_dir(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; an existing ``dst`` (a rerun of the same step) is moved aside first."""
    if dst.exists():
        trash = dst.with_name(f"{TMP_PREFIX}old_{dst.name}")
        shutil.rmtree(trash, ignore_errors=True)
        dst.rename(trash)
        src.rename(dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        src.rename(dst)


def prune(out_dir: str | Path, *, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints (``keep_last <= 0`` keeps all)."""
    if keep_last <= 0:
        return
    for _, path in list_checkpoints(out_dir)[:-keep_last]:
        shutil.rmtree(path, ignore_errors=True)


def clean_tmp(out_dir: str | Path) -> None:
    """Remove temp folders left by a process killed mid-save (main process only)."""
    root = ckpt_root(out_dir)
    if root.is_dir():
        for path in root.glob(f"{TMP_PREFIX}*"):
            shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- load
def read_state(path: str | Path) -> CheckpointState:
    path = Path(path)
    state = json.loads((path / "trainer_state.json").read_text())
    config = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    return CheckpointState(path=path, step=int(state["step"]), losses=list(state.get("losses", [])),
                           elapsed=float(state.get("elapsed", 0.0)), samples=int(state.get("samples", 0)),
                           config=config)


def load_checkpoint(path: str | Path, *, model: torch.nn.Module | None = None, optimizer=None,
                    scheduler=None, accelerator=None, rng: bool = True) -> CheckpointState:
    """Restore what is given from checkpoint folder ``path``; return step, losses and config.

    Load ``model`` weights *before* ``accelerator.prepare`` (ZeRO copies them into its fp32 master
    partitions at prepare time) and ``optimizer`` after it, when its state lives where it will step.
    """
    path = Path(path)
    rank, world = _rank_world(accelerator)
    if model is not None:
        load_weights(path / "model.safetensors", model)
    if optimizer is not None:
        _load_optimizer(path, optimizer, accelerator, rank, world)
    if scheduler is not None and (path / "scheduler.pt").is_file():
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    if rng:
        rng_file = path / f"rng_rank{rank}.pt"
        if not rng_file.is_file():  # resumed on more ranks than saved: rank 0's state is the best guess
            rng_file = path / "rng_rank0.pt"
        set_rng_state(torch.load(rng_file, weights_only=False))
    return read_state(path)


def _load_optimizer(path: Path, optimizer, accelerator, rank: int, world: int) -> None:
    if _is_sharded_optimizer(accelerator):
        saved_world = json.loads((path / "trainer_state.json").read_text()).get("world_size", world)
        if saved_world != world:
            raise ValueError(f"{path}: ZeRO optimizer shards were saved by {saved_world} ranks, "
                             f"resuming on {world}; resume with the same number of processes")
        shard = torch.load(path / f"optimizer_rank{rank}.pt", weights_only=False)
        shards = [None] * world
        shards[rank] = shard  # DeepSpeed indexes the list by data-parallel rank
        engine_opt = accelerator.deepspeed_engine_wrapped.engine.optimizer
        engine_opt.load_state_dict(shards, load_optimizer_states=True, load_from_fp32_weights=True)
        return
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))


def export_final(*, out_dir: str | Path, model: torch.nn.Module, config: dict, accelerator=None) -> Path:
    """``final/``: trainable weights + config of a finished stage, renamed into place atomically."""
    rank, _ = _rank_world(accelerator)
    final, tmp = Path(out_dir) / "final", Path(out_dir) / f"{TMP_PREFIX}final"
    weights = trainable_state(_unwrap(model, accelerator))  # collective under ZeRO-3
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_weights(tmp / "model.safetensors", weights)
        write_json(tmp / "config.json", config)
        _replace_dir(tmp, final)
    _barrier(accelerator)
    return final
