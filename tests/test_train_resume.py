"""A real training process, SIGKILLed mid-run and mid-checkpoint, resumes bit-identically."""
import json
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent / "train_scripts"))
import procs  # noqa: E402

from lynxlib import checkpoint as ckpt  # noqa: E402

ARGS = ["--steps", "12", "--ckpt-every", "3", "--keep-last", "2", "--dropout", "0.3"]


def metrics(out: Path) -> list[dict]:
    """Rows without wall-clock fields, which differ between any two runs."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("elapsed", "samples_per_s")} for row in rows]


@pytest.mark.slow
def test_killed_twice_then_resumed_equals_an_uninterrupted_run(tmp_path):
    started = time.monotonic()
    ref, run = tmp_path / "ref", tmp_path / "run"
    procs.run(procs.script_cmd(procs.python(), ref, *ARGS), log=tmp_path / "ref.log")

    # 1. killed mid-run, right after the step-6 checkpoint is complete
    proc = procs.start(procs.script_cmd(procs.python(), run, *ARGS, "--sleep", "0.1"), log=tmp_path / "killed1.log")
    procs.wait_for(run / "ckpt" / "step_000006" / "trainer_state.json", proc)
    procs.kill_tree(proc)
    assert not (run / "DONE").exists() and ckpt.find_latest(run).name == "step_000006"

    # 2. killed inside the step-9 checkpoint write: only the temp folder holds step 9
    proc = procs.start(procs.script_cmd(procs.python(), run, *ARGS, "--hang-save-at", "9"), log=tmp_path / "killed2.log")
    procs.wait_for(run / "ckpt" / ".tmp_step_000009" / "model.safetensors", proc)
    procs.kill_tree(proc)
    assert ckpt.find_latest(run).name == "step_000006"
    assert max(r["step"] for r in metrics(run)) >= 9  # rows past the checkpoint, to be rewritten

    # 3. runs to the end from step 6
    out = procs.run(procs.script_cmd(procs.python(), run, *ARGS), log=tmp_path / "resumed.log").stdout
    assert "resumed from 6" in out

    ref_w, run_w = load_file(ref / "final" / "model.safetensors"), load_file(run / "final" / "model.safetensors")
    assert ref_w.keys() == run_w.keys()
    for name in ref_w:
        assert torch.equal(ref_w[name], run_w[name]), name
    assert metrics(run) == metrics(ref)  # steps 1..12 once each, identical losses, lr, grad norms
    assert json.loads((run / "summary.json").read_text())["losses"] == \
        json.loads((ref / "summary.json").read_text())["losses"]
    assert [s for s, _ in ckpt.list_checkpoints(run)] == [9, 12]
    assert not list((run / "ckpt").glob(".tmp*"))
    print(f"resume test wall time: {time.monotonic() - started:.1f} s")
