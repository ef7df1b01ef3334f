"""benchmarks/paper_scale.py runs end to end (smoke scale, CPU), and its FLOP count is right.

The FLOP formula (lynxlib/perf.py) is checked against torch's FlopCounterMode: at smoke scale for
every section of a real training step, and for the paper's EVA ViT-g/14 tower on the meta device.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lynxlib.bench import build_random
from lynxlib.config import load
from lynxlib.perf import ModelShape, peak_tflops, step_flops

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ("stage1_low", "stage1_low_cached", "stage1_high", "stage1_high_cached", "stage2_video", "stage2_video_cached")
POSITIVE = ("step_s", "samples_per_s", "tokens_per_s", "model_tflop_per_step", "achieved_tflops", "peak_mem_gib",
            "loss")


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "paper_scale.py"), "--scale", "smoke", "--device", "cpu",
           "--steps", "2", "--warmup", "1", "--threads", "1", "--new-tokens", "8", "--gen-repeats", "1",
           "--check-flops", "--out", str(out)]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| stage1_low |" in proc.stdout and "| beam5_b16 |" in proc.stdout
    return json.loads(out.read_text())


def test_every_section_has_finite_positive_numbers(bench_json):
    assert set(bench_json["train"]) == set(TRAIN)
    for name, row in bench_json["train"].items():
        assert "error" not in row, (name, row)
        assert all(positive(row[k]) for k in POSITIVE), (name, row)
        assert row["mfu"] is None  # CPU: no tensor-core peak
    assert bench_json["train"]["stage2_video"]["frames"] == 5
    low, high = bench_json["train"]["stage1_low"]["resolution"], bench_json["train"]["stage1_high"]["resolution"]
    assert high > low
    assert bench_json["train"]["stage1_low_cached"]["flops_by_part"]["tower"] == 0
    for name in ("stage1_low", "stage1_high", "stage2_video"):
        assert positive(bench_json["cache_speedup"][name])
    assert set(bench_json["generation"]) == {"beam5_b1", "beam5_b16", "greedy_b1", "greedy_b16"}
    for name, row in bench_json["generation"].items():
        assert row["new_tokens"] == 8, name  # EOS suppressed: every call makes exactly the tokens asked for
        assert all(positive(row[k]) for k in ("call_s", "latency_s_per_sample", "new_tokens_per_s")), (name, row)
    meta = bench_json["meta"]
    assert meta["scale"] == "smoke" and meta["peak_tflops"] is None and meta["precision"] == "fp32"
    assert meta["params"]["resampler"] > 0 and meta["adapter_layers"] > 0


def test_flop_formula_matches_flop_counter(bench_json):
    checks = bench_json["flops_check"]
    assert {c["section"] for c in checks} >= {"stage1_low", "stage1_low_cached", "stage2_video"}
    for check in checks:
        assert check["ratio"] == pytest.approx(1.0, abs=1e-6), check


def test_paper_tower_flops_on_meta():
    """The paper's EVA ViT-g/14 (39 of 40 blocks run) at 224 and 420: formula == FlopCounterMode."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    cfg = load("params/paper.yaml", "ours")
    model = build_random(cfg, device=torch.device("meta"), precision="amp")
    shape = ModelShape.of(model)
    assert (shape.tower_layers, shape.tower_width, shape.lm_layers, shape.num_latents) == (39, 1408, 32, 32)
    assert next(model.lm.parameters()).dtype == torch.bfloat16
    assert next(model.tower.parameters()).dtype == torch.bfloat16
    assert {p.dtype for p in model.resampler.parameters()} == {torch.float32}  # amp: fp32 master weights
    for res in (224, 420):
        model.set_resolution(res)
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model.tower.encode_frames(torch.empty(2, 1, 3, res, res, device="meta", dtype=torch.bfloat16))
        formula = step_flops(shape, batch=2, seq_len=113, frames=1, resolution=res, cached=False)["tower"]
        assert counter.get_total_flops() == formula
    stage1 = step_flops(shape, batch=64, seq_len=113, frames=1, resolution=224, cached=False)
    assert 2.3e14 < stage1["total"] < 2.6e14  # ~243 TFLOP per stage-1 step at batch 64 (RESULTS.md)


def test_peak_table():
    assert peak_tflops("cpu")[0] is None
    from lynxlib.perf import PEAK_BF16_TFLOPS

    names = [k for k, _, _ in PEAK_BF16_TFLOPS]
    assert names.index("H100 PCIe") < names.index("H100")  # specific names match first
    assert dict((k, v) for k, v, _ in PEAK_BF16_TFLOPS)["H100"] == pytest.approx(989.4)
