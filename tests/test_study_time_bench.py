"""benchmarks/study_time.py: reads papermill's clocks from run folders, leaves out stale and unfinished
runs, and packs the variants' chains onto the workers."""
import importlib.util
import json
from pathlib import Path

import pytest

from lynxlib.config import load
from lynxlib.stages import run_key

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("study_time", ROOT / "benchmarks" / "study_time.py")
study_time = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study_time)


def fake_run(folder: Path, notebook: str, seconds: float | None, key: str | None, status: str = "done"):
    folder.mkdir(parents=True)
    meta = {"duration": seconds, "exception": None if seconds is not None else True}
    (folder / notebook).write_text(json.dumps({"metadata": {"papermill": meta}, "cells": []}))
    if key is not None:
        (folder / "summary.json").write_text(json.dumps({"key": key, "status": status}))


def test_packing_puts_the_longest_chains_on_separate_workers():
    chains = [50.0, 40.0, 30.0, 20.0]
    assert study_time.packed_wall(chains, shared=10.0, workers=2) == 10.0 + 70.0  # 50+20 | 40+30
    assert study_time.packed_wall(chains, shared=0.0, workers=1) == 140.0
    assert study_time.packed_wall(chains, shared=0.0, workers=8) == 50.0


def test_report_counts_only_runs_of_the_current_params(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # params/smoke.yaml
    scale = tmp_path / "smoke"
    ours, blind = load("params/smoke.yaml", "ours", seed=0), load("params/smoke.yaml", "blind", seed=0)
    fake_run(scale / "backbones", "01_backbones.ipynb", 100.0, run_key(ours, "backbones"))
    fake_run(scale / "ours" / "seed0" / "instruct", "03_instruct.ipynb", 300.0, run_key(ours, "instruct"))
    fake_run(scale / "ours" / "seed0" / "eval", "04_evaluate.ipynb", 20.0, run_key(ours, "eval"))
    fake_run(scale / "blind" / "seed0" / "instruct", "03_instruct.ipynb", 200.0, run_key(blind, "instruct"))
    fake_run(scale / "blind" / "seed0" / "eval", "04_evaluate.ipynb", 999.0, "an-old-key")      # stale
    fake_run(scale / "blind" / "seed0" / "pretrain", "02_pretrain.ipynb", None, None)          # running
    result = study_time.report_scale("smoke", str(tmp_path), workers=2)
    out = capsys.readouterr().out
    assert "blind/eval" in out and "blind/pretrain" in out
    assert result["shared_s"] == pytest.approx(100.0)
    assert result["variants_s"] == {"ours/seed0": 320.0, "blind/seed0": 200.0}
    assert result["total_s"] == pytest.approx(620.0) and result["unfinished"] == 1
    assert result["packed_wall_s"] == pytest.approx(100.0 + 320.0)
