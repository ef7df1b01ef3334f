"""Two CPU processes over gloo: plain data parallel (DDP), DeepSpeed ZeRO-2 and ZeRO-3.

Each launch uses the launcher files in params/launch/ (DeepSpeed JSONs with bucket sizes shrunk
for a 1k-parameter model: the paper-scale 2e8-element buckets cost ~0.3 s per step to allocate).
Each test compares to the data-parallel maths: one process whose micro-batch is the two ranks'
micro-batches concatenated (equal halves, so mean of means == mean) must reach the same weights.
"""
import json
import re
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent / "train_scripts"))
import procs  # noqa: E402
from tinytask import ConcatSource, SyntheticSource, build_model, tiny_stage  # noqa: E402

from lynxlib import checkpoint as ckpt  # noqa: E402
from lynxlib.train import train_stage  # noqa: E402

LAUNCH = procs.ROOT / "params" / "launch"
STEPS, MICRO, ACCUM = 8, 4, 2
ARGS = ["--steps", str(STEPS), "--batch-size", str(MICRO), "--grad-accum", str(ACCUM), "--ckpt-every", "4"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One process, batch = both ranks' micro-batches concatenated, same accumulation."""
    model = build_model()
    out = tmp_path_factory.mktemp("reference")
    result = train_stage(model=model, batches=ConcatSource(SyntheticSource(batch_size=MICRO)),
                         cfg=tiny_stage(steps=STEPS, batch_size=2 * MICRO, grad_accum=ACCUM, ckpt_every=0),
                         out_dir=out, seed=0)
    weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return weights, result.losses


def check_against_reference(out: Path, reference) -> None:
    ref_weights, ref_losses = reference
    rank0, rank1 = load_file(out / "rank0.safetensors"), load_file(out / "rank1.safetensors")
    final = load_file(out / "final" / "model.safetensors")
    assert rank0.keys() == rank1.keys() == final.keys() == ref_weights.keys()
    for name in ref_weights:
        assert torch.equal(rank0[name], rank1[name]), f"ranks differ on {name}"
        assert torch.equal(rank0[name], final[name]), name
        torch.testing.assert_close(rank0[name], ref_weights[name], atol=1e-6, rtol=1e-5)
    losses = json.loads((out / "summary.json").read_text())["losses"]
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(ref_losses), atol=1e-6, rtol=1e-5)
    assert losses[-1] < losses[0]
    assert json.loads((out / "env.json").read_text())["world_size"] == 2


def small_buckets(tmp_path: Path, stage: int) -> Path:
    """params/launch/deepspeed_zero<stage>.{json,yaml} for 2 CPU processes and tiny buckets."""
    ds = json.loads((LAUNCH / f"deepspeed_zero{stage}.json").read_text())
    zero = ds["zero_optimization"]
    for key in ("reduce_bucket_size", "allgather_bucket_size", "stage3_prefetch_bucket_size"):
        if key in zero:
            zero[key] = 50_000
    if stage == 3:
        zero.update(stage3_param_persistence_threshold=0, stage3_max_live_parameters=100_000,
                    stage3_max_reuse_distance=100_000)
    (tmp_path / "ds.json").write_text(json.dumps(ds))
    yaml_text = (LAUNCH / f"deepspeed_zero{stage}.yaml").read_text()
    yaml_text = yaml_text.replace(f"params/launch/deepspeed_zero{stage}.json", str(tmp_path / "ds.json"))
    yaml_text = re.sub(r"num_processes: \d+", "num_processes: 2", yaml_text)
    (tmp_path / "ds.yaml").write_text(yaml_text)
    return tmp_path / "ds.yaml"


def test_two_cpu_processes_match_data_parallel_maths(tmp_path, reference):
    started = time.monotonic()
    out = tmp_path / "ddp"
    procs.run(procs.script_cmd(procs.accelerate(LAUNCH / "cpu_2proc.yaml"), out, *ARGS), log=tmp_path / "ddp.log",
              ACCELERATE_USE_CPU="true")
    check_against_reference(out, reference)
    assert {p.name for p in (out / "ckpt" / "step_000008").iterdir()} >= {"optimizer.pt", "rng_rank0.pt",
                                                                          "rng_rank1.pt"}
    print(f"DDP 2-process test: {time.monotonic() - started:.1f} s")


def test_deepspeed_zero2_two_cpu_processes_resume_after_kill(tmp_path, reference):
    """ZeRO-2 through accelerate launch; killed inside the step-8 save, resumed from step 4."""
    started = time.monotonic()
    launcher, out = procs.accelerate(small_buckets(tmp_path, 2)), tmp_path / "zero2"
    proc = procs.start(procs.script_cmd(launcher, out, *ARGS, "--hang-save-at", "8"), log=tmp_path / "killed.log")
    procs.wait_for(out / "ckpt" / ".tmp_step_000008" / "model.safetensors", proc)
    procs.kill_tree(proc)
    assert ckpt.find_latest(out).name == "step_000004"
    assert {p.name for p in ckpt.find_latest(out).iterdir()} >= {"optimizer_rank0.pt", "optimizer_rank1.pt"}

    result = procs.run(procs.script_cmd(procs.accelerate(small_buckets(tmp_path, 2)), out, *ARGS),
                       log=tmp_path / "resumed.log")
    assert "resumed from 4" in result.stdout
    assert "shm_comm_op built" not in result.stdout + result.stderr  # no 30 s JIT compile
    check_against_reference(out, reference)
    print(f"ZeRO-2 kill + resume test: {time.monotonic() - started:.1f} s")


def test_deepspeed_zero3_two_cpu_processes(tmp_path, reference):
    """ZeRO-3 partitions the parameters themselves: the saved weights are gathered from both ranks."""
    started = time.monotonic()
    out = tmp_path / "zero3"
    procs.run(procs.script_cmd(procs.accelerate(small_buckets(tmp_path, 3)), out, *ARGS), log=tmp_path / "zero3.log")
    check_against_reference(out, reference)
    print(f"ZeRO-3 test: {time.monotonic() - started:.1f} s")
