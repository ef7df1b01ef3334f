"""One training loop for every stage: a stage is a :class:`~lynxlib.config.StageConfig`.

``train_stage`` trains any ``nn.Module`` whose ``forward(**batch)`` returns an object with ``.loss``,
updating only parameters with ``requires_grad``. Data-parallel, ZeRO and mixed precision come from
the launcher and the accelerate config (``params/launch/``), never from branches here: the same call
runs one CPU process, ``torchrun`` over gloo, or DeepSpeed on GPUs. The AdamW parameter groups and
the LR schedule are in :mod:`lynxlib.optim`.

Batch-size convention: ``cfg.batch_size`` is the micro-batch of one process (DeepSpeed's
``train_micro_batch_size_per_gpu``); an optimizer step sees ``batch_size x grad_accum x processes``
samples. The :class:`BatchSource` decides what each (step, micro, rank) gets; the loop counts the
samples it actually returns.

Resume: a stage's ``out_dir`` holding checkpoints resumes from the newest one; one holding ``DONE``
is finished and only loads ``final/`` weights into the model. While it trains, ``out_dir/LOCK`` names
the process (``lynxlib.stage_lock``): a second trainer of the same folder stops with its pid.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import Tensor, nn

from lynxlib import checkpoint as ckpt
from lynxlib.config import StageConfig, stage_identity
from lynxlib.launch import check_world, fill_deepspeed_auto, make_accelerator
from lynxlib.optim import param_groups, warmup_cosine
from lynxlib.runs import atomic_write_text, env_info, seed_everything, show_progress, write_json
from lynxlib.stage_lock import stage_lock

# Stage-config keys that may change between a checkpoint and its resume (bookkeeping, not maths).
RESUME_TOLERATED = ("enabled", "log_every", "ckpt_every", "keep_last")


class BatchSource(Protocol):
    """Deterministic data: the same arguments always give the same batch, so a resume sees the
    exact data an uninterrupted run would. ``step`` is the 0-based optimizer step index."""

    def batch(self, step: int, micro: int, rank: int, world_size: int) -> dict[str, Tensor]: ...


class NonFiniteLossError(RuntimeError):
    """A NaN/inf loss: the run stops before the bad gradients touch the weights."""

    def __init__(self, *, step: int, micro: int, ranks: list[int], last_checkpoint: Path | None):
        self.step, self.micro, self.ranks, self.last_checkpoint = step, micro, ranks, last_checkpoint
        super().__init__(f"non-finite loss at step={step} micro={micro} (BatchSource indices; on rank(s) "
                         f"{ranks}); stopped after {step} completed steps; last good checkpoint: "
                         f"{last_checkpoint or 'none'}")


@dataclass
class TrainResult:
    steps: int                  # completed optimizer steps (cfg.steps when finished)
    final_loss: float
    wall_s: float               # wall time of this call
    samples_per_s: float        # samples (all processes) per second of this call's training
    losses: list[float]         # loss of every step since step 1 (carried across resumes)
    resumed_from: int | None = None
    out_dir: Path | None = None


# ---------------------------------------------------------------- the loop
def train_stage(*, model: nn.Module, batches: BatchSource, cfg: StageConfig, out_dir: str | Path, seed: int,
                accelerator=None, mixed_precision: str | None = "no",
                on_log: Callable[[dict], None] | None = None) -> TrainResult:
    """Train ``model`` for ``cfg.steps`` optimizer steps, resuming from ``out_dir/ckpt`` if present.

    Writes ``metrics.jsonl``, checkpoints every ``cfg.ckpt_every`` steps and at the end, then
    ``final/``, ``summary.json`` and ``DONE``. Raises :class:`NonFiniteLossError` on a NaN/inf loss.
    """
    out_dir, started = Path(out_dir), time.perf_counter()
    if (out_dir / "DONE").is_file():
        return _already_done(model, out_dir, started)
    owned = accelerator is None
    accelerator = accelerator or make_accelerator(grad_accum=cfg.grad_accum, mixed_precision=mixed_precision)
    accelerator.gradient_accumulation_steps = cfg.grad_accum
    check_world(accelerator)
    lock = stage_lock(out_dir) if accelerator.is_main_process else contextlib.nullcontext()
    try:
        with lock:  # one trainer per stage folder: a second study run on it stops here, naming the first
            run = _Run.start(model=model, batches=batches, cfg=cfg, out_dir=out_dir, seed=seed,
                             accelerator=accelerator, on_log=on_log)
            return run.train(started)
    finally:
        if owned:
            accelerator.free_memory()


def _already_done(model: nn.Module, out_dir: Path, started: float) -> TrainResult:
    summary = json.loads((out_dir / "summary.json").read_text())
    ckpt.load_weights(out_dir / "final" / "model.safetensors", model)
    return TrainResult(steps=summary["steps"], final_loss=summary["final_loss"],
                       wall_s=time.perf_counter() - started, samples_per_s=0.0, losses=summary["losses"],
                       resumed_from=summary["steps"], out_dir=out_dir)


def run_config(cfg: StageConfig, seed: int) -> dict:
    return {"stage": stage_identity(cfg), "seed": seed}


def _check_resumable(saved: dict, current: dict, path: Path) -> None:
    """Refuse to continue a different run: its schedule, data or seed would silently change."""
    def core(conf: dict) -> dict:
        stage = {k: v for k, v in conf.get("stage", {}).items() if k not in RESUME_TOLERATED}
        return {"stage": stage, "seed": conf.get("seed")}

    old, new = core(saved), core(current)
    if old != new:
        diff = sorted(k for k in set(old["stage"]) | set(new["stage"]) if old["stage"].get(k) != new["stage"].get(k))
        if old["seed"] != new["seed"]:
            diff.append("seed")
        raise ValueError(f"{path} was written with a different config ({', '.join(diff)}); "
                         f"restore that config or use a fresh out_dir")


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep rows up to the resumed step (they are about to be logged again); drop a line cut short."""
    rows = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows if r.get("step", 0) <= step))


def _open_tensorboard(out_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional; metrics.jsonl is the record
        return None
    return SummaryWriter(str(out_dir / "tb"))


@dataclass
class _Run:
    """One ``train_stage`` call's state, so each phase is a short method."""

    model: Any                      # as prepared by accelerate (DDP / DeepSpeed engine / itself)
    optimizer: Any
    scheduler: Any
    params: list[nn.Parameter]
    batches: BatchSource
    cfg: StageConfig
    out_dir: Path
    config: dict
    acc: Any
    on_log: Callable[[dict], None] | None
    start_step: int = 0
    resumed_from: int | None = None
    losses: list[float] = field(default_factory=list)
    elapsed0: float = 0.0
    samples: int = 0

    @classmethod
    def start(cls, *, model, batches, cfg, out_dir, seed, accelerator, on_log) -> "_Run":
        config, latest = run_config(cfg, seed), ckpt.find_latest(out_dir)
        if latest is not None:
            _check_resumable(ckpt.read_state(latest).config, config, latest)
        seed_everything(seed)
        if latest is not None:  # weights before prepare: ZeRO copies them into its master partitions
            ckpt.load_checkpoint(latest, model=model, rng=False)
        optimizer = torch.optim.AdamW(param_groups(model, weight_decay=cfg.weight_decay), lr=cfg.lr)
        # Our own scheduler on the raw optimizer: accelerate's wrapper would step it once per process.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg))
        params = [p for p in model.parameters() if p.requires_grad]
        fill_deepspeed_auto(accelerator, cfg)
        prepared, prepared_opt = accelerator.prepare(model, optimizer)
        run = cls(model=prepared, optimizer=prepared_opt, scheduler=scheduler, params=params, batches=batches,
                  cfg=cfg, out_dir=out_dir, config=config, acc=accelerator, on_log=on_log)
        run._prepare_dir(latest)
        return run

    def _prepare_dir(self, latest: Path | None) -> None:
        acc, metrics = self.acc, self.out_dir / "metrics.jsonl"
        if acc.is_main_process:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            ckpt.clean_tmp(self.out_dir)
            write_json(self.out_dir / "env.json", {**env_info(), "world_size": acc.num_processes,
                                                   "mixed_precision": acc.mixed_precision})
            if latest is None:
                metrics.unlink(missing_ok=True)  # rows of a run killed before its first checkpoint
        if latest is not None:  # optimizer after prepare, where its state lives; RNG last, as saved
            state = ckpt.load_checkpoint(latest, optimizer=self.optimizer, scheduler=self.scheduler, accelerator=acc)
            self.start_step = self.resumed_from = state.step
            self.losses, self.elapsed0, self.samples = state.losses, state.elapsed, state.samples
            if acc.is_main_process:
                _truncate_metrics(metrics, state.step)
        acc.wait_for_everyone()

    def _check_finite(self, loss: Tensor, step: int, micro: int) -> None:
        """Collective: every rank raises together, or the healthy ones would hang in all-reduce."""
        acc = self.acc
        bad = torch.zeros(acc.num_processes, device=loss.device)
        bad[acc.process_index] = float(not torch.isfinite(loss.detach()).all())
        bad = acc.reduce(bad, "sum") if acc.num_processes > 1 else bad
        if bad.sum().item() > 0:
            raise NonFiniteLossError(step=step, micro=micro, ranks=[i for i, v in enumerate(bad.tolist()) if v],
                                     last_checkpoint=ckpt.find_latest(self.out_dir))

    def step(self, step: int) -> dict[str, float]:
        """``grad_accum`` micro-batches and one optimizer update."""
        acc, cfg = self.acc, self.cfg
        total, samples = torch.zeros((), device=acc.device), 0
        for micro in range(cfg.grad_accum):
            batch = self.batches.batch(step, micro, acc.process_index, acc.num_processes)
            batch = {k: v.to(acc.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            samples += next((v.shape[0] for v in batch.values() if torch.is_tensor(v) and v.ndim), 0) \
                * acc.num_processes
            with acc.accumulate(self.model):  # no gradient all-reduce until the last micro-batch
                loss = self.model(**batch).loss
                self._check_finite(loss, step, micro)
                acc.backward(loss)  # scales by 1/grad_accum (under DeepSpeed its engine does, and steps)
                total += loss.detach().float()
        assert acc.sync_gradients, "micro-batches and gradient_accumulation_steps are out of step"
        grad_norm = acc.clip_grad_norm_(self.params, cfg.clip_grad if cfg.clip_grad > 0 else math.inf)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss = acc.reduce(total / cfg.grad_accum, "mean") if acc.num_processes > 1 else total / cfg.grad_accum
        return {"loss": float(loss), "lr": float(lr), "samples": samples,
                "grad_norm": float("nan") if grad_norm is None else float(grad_norm)}

    def train(self, started: float) -> TrainResult:
        from tqdm.auto import tqdm

        acc, cfg, main = self.acc, self.cfg, self.acc.is_main_process
        acc.step = 0  # accelerate's micro-batch counter decides when gradients sync
        self.model.train()  # once: a model keeping frozen parts in eval mode overrides train()
        tb = _open_tensorboard(self.out_dir) if main else None
        bar = tqdm(total=cfg.steps, initial=self.start_step, disable=not (main and show_progress()), desc=self.out_dir.name)
        loop_t0, run_samples, window = time.perf_counter(), 0, [0, 0.0]  # window: samples, step seconds
        try:
            for step in range(self.start_step, cfg.steps):
                t0 = time.perf_counter()
                out, done = self.step(step), step + 1
                window[0], window[1] = window[0] + out["samples"], window[1] + time.perf_counter() - t0
                self.losses.append(out["loss"])
                self.samples, run_samples = self.samples + out["samples"], run_samples + out["samples"]
                bar.update(1)
                if done % max(cfg.log_every, 1) == 0 or done == cfg.steps:
                    row = {"step": done, "loss": out["loss"], "lr": out["lr"], "grad_norm": out["grad_norm"],
                           "samples_per_s": window[0] / max(window[1], 1e-9),
                           "elapsed": self.elapsed0 + time.perf_counter() - loop_t0}
                    window = [0, 0.0]
                    self._log(row, bar, tb)
                if cfg.ckpt_every > 0 and (done % cfg.ckpt_every == 0 or done == cfg.steps):
                    self._save(done, self.elapsed0 + time.perf_counter() - loop_t0)
        finally:
            bar.close()
            if tb is not None:
                tb.close()
        loop_s = time.perf_counter() - loop_t0
        return self._finish(started, loop_s, run_samples / max(loop_s, 1e-9))

    def _log(self, row: dict, bar, tb) -> None:
        if not self.acc.is_main_process:
            return
        with (self.out_dir / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
        bar.set_postfix(loss=f"{row['loss']:.4f}", samples_s=f"{row['samples_per_s']:.1f}")
        for key, value in row.items() if tb is not None else ():
            tb.add_scalar(f"train/{key}", value, row["step"])
        if self.on_log is not None:
            self.on_log(row)

    def _save(self, done: int, elapsed: float) -> None:
        ckpt.save_checkpoint(out_dir=self.out_dir, step=done, model=self.model, optimizer=self.optimizer,
                             scheduler=self.scheduler, config=self.config, accelerator=self.acc,
                             keep_last=self.cfg.keep_last,
                             trainer_state={"losses": self.losses, "elapsed": elapsed, "samples": self.samples})

    def _finish(self, started: float, loop_s: float, samples_per_s: float) -> TrainResult:
        acc = self.acc
        ckpt.export_final(out_dir=self.out_dir, model=self.model, config=self.config, accelerator=acc)
        result = TrainResult(steps=self.cfg.steps, final_loss=self.losses[-1] if self.losses else float("nan"),
                             wall_s=time.perf_counter() - started, samples_per_s=samples_per_s,
                             losses=list(self.losses), resumed_from=self.resumed_from, out_dir=self.out_dir)
        if acc.is_main_process:
            write_json(self.out_dir / "summary.json", {**dataclasses.asdict(result), "train_s_this_call": loop_s,
                                                       "world_size": acc.num_processes, "config": self.config})
            atomic_write_text(self.out_dir / "DONE", f"{self.cfg.steps} steps\n")  # last: the stage is finished
        acc.wait_for_everyone()
        return result
