"""The training loop in one process: outputs, schedule, weight-decay groups, accumulation, NaN stop."""
import json
import math
import shutil
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

sys.path.insert(0, str(Path(__file__).parent / "train_scripts"))
from tinytask import SyntheticSource, build_model, tiny_stage  # noqa: E402

from lynxlib import checkpoint as ckpt  # noqa: E402
from lynxlib.plots import loss_curve  # noqa: E402
from lynxlib.train import NonFiniteLossError, param_groups, train_stage, warmup_cosine  # noqa: E402


def trainable(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_stage_writes_metrics_checkpoints_final_and_done(tmp_path):
    cfg = tiny_stage(steps=10, ckpt_every=3, keep_last=2)
    logged = []
    model = build_model()
    frozen_before = model.frozen.weight.clone()
    result = train_stage(model=model, batches=SyntheticSource(), cfg=cfg, out_dir=tmp_path, seed=0,
                         on_log=logged.append)

    assert result.steps == 10 and len(result.losses) == 10 and result.resumed_from is None
    assert result.final_loss == result.losses[-1] and result.losses[-1] < result.losses[0]
    assert torch.equal(model.frozen.weight, frozen_before)  # frozen parameters never move
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 11)) and rows == logged
    assert set(rows[0]) == {"step", "loss", "lr", "grad_norm", "samples_per_s", "elapsed"}
    assert [r["loss"] for r in rows] == result.losses
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [9, 10]  # every 3 + the end, keep_last 2
    final = load_file(tmp_path / "final" / "model.safetensors")
    assert all(torch.equal(final[n], t) for n, t in trainable(model).items())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 10 and summary["losses"] == result.losses
    assert (tmp_path / "DONE").is_file() and (tmp_path / "env.json").is_file()


def test_a_finished_stage_only_loads_its_final_weights(tmp_path):
    cfg = tiny_stage(steps=4)
    first = build_model()
    done = train_stage(model=first, batches=SyntheticSource(), cfg=cfg, out_dir=tmp_path, seed=0)
    mtime = (tmp_path / "metrics.jsonl").stat().st_mtime_ns
    fresh = build_model(seed=9)
    again = train_stage(model=fresh, batches=SyntheticSource(), cfg=cfg, out_dir=tmp_path, seed=0)
    assert again.losses == done.losses and again.steps == 4
    assert all(torch.equal(t, trainable(first)[n]) for n, t in trainable(fresh).items())
    assert (tmp_path / "metrics.jsonl").stat().st_mtime_ns == mtime  # nothing retrained


def test_resume_refuses_a_changed_config(tmp_path):
    cfg = tiny_stage(steps=4, ckpt_every=2)
    train_stage(model=build_model(), batches=SyntheticSource(), cfg=cfg, out_dir=tmp_path, seed=0)
    (tmp_path / "DONE").unlink()
    with pytest.raises(ValueError, match="lr"):
        train_stage(model=build_model(), batches=SyntheticSource(), cfg=replace(cfg, lr=1e-4), out_dir=tmp_path, seed=0)
    with pytest.raises(ValueError, match="seed"):
        train_stage(model=build_model(), batches=SyntheticSource(), cfg=cfg, out_dir=tmp_path, seed=1)
    # bookkeeping keys may change
    train_stage(model=build_model(), batches=SyntheticSource(), cfg=replace(cfg, log_every=2), out_dir=tmp_path, seed=0)


def test_in_process_resume_is_bit_identical(tmp_path):
    cfg = tiny_stage(steps=8, ckpt_every=3, keep_last=0)
    ref_model = build_model(dropout=0.3)
    ref = train_stage(model=ref_model, batches=SyntheticSource(), cfg=cfg, out_dir=tmp_path / "ref", seed=0)
    run = tmp_path / "run"
    train_stage(model=build_model(dropout=0.3), batches=SyntheticSource(), cfg=cfg, out_dir=run, seed=0)
    # roll the folder back to "killed after the step-6 checkpoint" (the subprocess test kills for real)
    (run / "DONE").unlink()
    (run / "summary.json").unlink()
    shutil.rmtree(run / "ckpt" / "step_000008")
    shutil.rmtree(run / "final")
    resumed_model = build_model(dropout=0.3)
    resumed = train_stage(model=resumed_model, batches=SyntheticSource(), cfg=cfg, out_dir=run, seed=0)
    assert resumed.resumed_from == 6 and resumed.losses == ref.losses
    assert all(torch.equal(t, trainable(ref_model)[n]) for n, t in trainable(resumed_model).items())


def test_non_finite_loss_stops_at_its_step_and_keeps_the_last_checkpoint(tmp_path):
    cfg = tiny_stage(steps=10, ckpt_every=2, keep_last=3)
    with pytest.raises(NonFiniteLossError, match=r"step=5 micro=0") as err:
        train_stage(model=build_model(), batches=SyntheticSource(inf_at=5), cfg=cfg, out_dir=tmp_path, seed=0)
    assert err.value.step == 5 and err.value.last_checkpoint.name == "step_000004"
    assert "step_000004" in str(err.value)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [2, 4]
    weights = load_file(tmp_path / "ckpt" / "step_000004" / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in weights.values())
    assert not (tmp_path / "DONE").exists() and not (tmp_path / "final").exists()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 5 and all(math.isfinite(r["loss"]) for r in rows)


class Pair:
    """Micro-batches 0 and 1 of ``inner`` as one batch: what accumulation over 2 must equal."""

    def __init__(self, inner):
        self.inner = inner

    def batch(self, step, micro, rank, world_size):
        parts = [self.inner.batch(step, m, rank, world_size) for m in (0, 1)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def test_gradient_accumulation_equals_the_bigger_batch(tmp_path):
    accum, big = build_model(), build_model()
    train_stage(model=accum, batches=SyntheticSource(batch_size=4), cfg=tiny_stage(steps=6, batch_size=4, grad_accum=2),
                out_dir=tmp_path / "accum", seed=0)
    train_stage(model=big, batches=Pair(SyntheticSource(batch_size=4)), cfg=tiny_stage(steps=6, batch_size=8),
                out_dir=tmp_path / "big", seed=0)
    for name, tensor in trainable(accum).items():
        torch.testing.assert_close(tensor, trainable(big)[name], atol=1e-6, rtol=1e-5)


def test_weight_decay_groups():
    class WithQueries(nn.Module):
        def __init__(self):
            super().__init__()
            self.latents = nn.Parameter(torch.zeros(4, 8))
            self.query = nn.Linear(8, 8)          # a projection named "query" still decays
            self.query_embed = nn.Embedding(4, 8)  # learned query embeddings do not
            self.ln = nn.LayerNorm(8)
            self.rms_norm = nn.RMSNorm(8)
            self.mlp = nn.Linear(8, 8)
            self.frozen = nn.Linear(8, 8).requires_grad_(False)

    model = WithQueries()
    groups = {g["name"]: g for g in param_groups(model, weight_decay=0.05)}
    names = {id(p): n for n, p in model.named_parameters()}
    decay = sorted(names[id(p)] for p in groups["decay"]["params"])
    no_decay = sorted(names[id(p)] for p in groups["no_decay"]["params"])
    assert decay == ["mlp.weight", "query.weight"]
    assert no_decay == ["latents", "ln.bias", "ln.weight", "mlp.bias", "query.bias", "query_embed.weight",
                        "rms_norm.weight"]
    assert groups["decay"]["weight_decay"] == 0.05 and groups["no_decay"]["weight_decay"] == 0.0
    with pytest.raises(ValueError, match="requires_grad"):
        param_groups(nn.Linear(2, 2).requires_grad_(False), weight_decay=0.1)


def test_warmup_then_cosine_to_the_floor():
    factor = warmup_cosine(tiny_stage(steps=20, lr=1.0))  # warmup 2, min_lr_ratio 0.1
    assert factor(0) == 0.5 and factor(1) == 1.0 and factor(2) == 1.0
    assert math.isclose(factor(11), 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 9 / 18)))
    assert math.isclose(factor(20), 0.1) and all(factor(s) >= factor(s + 1) for s in range(2, 25))


def test_a_restarted_schedule_gives_the_mixture_the_schedule_it_has_without_an_opening():
    opened = replace(tiny_stage(steps=30, lr=1.0), opening_steps=10, opening_mixture={"a": 1.0})
    shared, restart = (warmup_cosine(replace(opened, opening_schedule=s)) for s in ("shared", "restart"))
    alone = warmup_cosine(tiny_stage(steps=20, lr=1.0))
    assert [shared(s) for s in range(30)] == [warmup_cosine(tiny_stage(steps=30, lr=1.0))(s) for s in range(30)]
    assert [restart(10 + s) for s in range(20)] == [alone(s) for s in range(20)]
    assert [restart(s) for s in range(10)] == [0.5] + [1.0] * 9  # warmup, then the peak for the onset
    assert restart(10) == 0.5 and shared(10) > 0.5  # warmup again at the mixture's first step


def test_loss_curve_from_rows_and_paths(tmp_path):
    train_stage(model=build_model(), batches=SyntheticSource(), cfg=tiny_stage(steps=5), out_dir=tmp_path / "a",
                seed=0)
    rows = [{"step": i, "loss": 1.0 / i} for i in range(1, 6)]
    fig = loss_curve([rows, tmp_path / "a", tmp_path / "a" / "metrics.jsonl"], ["rows", "dir", "file"], smooth=2)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["rows", "dir", "file"]
    assert len(ax.lines) == 6  # raw + smoothed per run
    assert loss_curve(rows).axes[0].get_legend().get_texts()[0].get_text() == "run 0"
    with pytest.raises(ValueError, match="labels"):
        loss_curve([rows, rows], ["one"])
    fig.savefig(tmp_path / "curve.png")


def test_a_stage_another_live_process_trains_is_refused_naming_it(tmp_path):
    """Two study runs on one output root share stages by key: the second must not train the same folder."""
    from lynxlib.stage_lock import StageBusyError

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "LOCK").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        with pytest.raises(StageBusyError, match=rf"being trained by process {holder.pid} .*delete .*LOCK"):
            train_stage(model=build_model(), batches=SyntheticSource(), cfg=tiny_stage(steps=3), out_dir=tmp_path, seed=0)
        assert not (tmp_path / "metrics.jsonl").exists() and (tmp_path / "LOCK").exists()  # nothing written, lock kept
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale, taken over, and released when the stage is done
    result = train_stage(model=build_model(), batches=SyntheticSource(), cfg=tiny_stage(steps=3), out_dir=tmp_path, seed=0)
    assert result.steps == 3 and (tmp_path / "DONE").is_file() and not (tmp_path / "LOCK").exists()


def test_a_half_written_lock_is_stale(tmp_path):
    (tmp_path / "LOCK").write_text('{"pid": ')  # a process killed while writing it
    train_stage(model=build_model(), batches=SyntheticSource(), cfg=tiny_stage(steps=2), out_dir=tmp_path, seed=0)
    assert (tmp_path / "DONE").is_file() and not (tmp_path / "LOCK").exists()
