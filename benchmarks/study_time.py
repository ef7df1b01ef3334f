"""How long the study takes: per stage and variant, from the executed notebooks' own papermill clocks.

    .venv/bin/python benchmarks/study_time.py --scale tiny [--workers 2] [--out FILE.json]
    .venv/bin/python benchmarks/study_time.py --run-smoke [--out FILE.json]

With ``--scale`` it reads a finished (or partial) study under ``outputs/<scale>/``: every run folder's
executed notebook carries papermill's start and end time, so the table is what actually ran, whatever
processes ran it. A stage a variant reused from another (same config hash) shows the seconds its
notebook took to find the artifact, not the original run. It prints the CPU-seconds of the grid and,
with ``--workers``, the wall time they pack into when that many single-threaded notebooks share the
cores (the longest chain of a variant's stages bounds it from below).

With ``--run-smoke`` it runs the whole smoke pipeline (``python -m lynxlib.study --scale smoke``) from
nothing into a temporary folder and reports the wall time (target: under 3 minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from lynxlib.config import load
from lynxlib.stages import run_key, run_state

STAGE_ORDER = ("world", "backbones", "pretrain", "instruct", "eval", "ablations", "figures")


def notebook_seconds(path: Path) -> float | None:
    """The papermill duration recorded in an executed notebook (None if it never finished)."""
    meta = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
    return meta.get("duration") if meta.get("exception") is None else None


def folder_state(run_folder: Path, params: Path, variant: str, seed: str, stage: str) -> str:
    """'done' (its config key is the params' as they are now), 'stale' (another key) or 'unfinished'."""
    if stage in ("ablations", "figures"):
        return "done"
    cfg = load(params, "ours" if variant == "-" else variant, seed=None if seed == "-" else int(seed[4:]))
    return run_state(run_folder, run_key(cfg, stage))


def collect(scale_dir: Path, params: Path) -> pd.DataFrame:
    """One row per executed notebook: variant ('-' for per-scale runs), seed, stage, seconds, state."""
    rows = []
    for nb in sorted(scale_dir.glob("**/[0-9][0-9]_*.ipynb")):
        rel = nb.relative_to(scale_dir).parts
        if rel[0] in ("shared", "bench", "features"):
            continue
        if len(rel) == 2:  # world/, backbones/, ablations/, figures/
            variant, seed, stage = "-", "-", rel[0]
        elif len(rel) == 4:  # <variant>/seed<k>/<stage>/
            variant, seed, stage = rel[0], rel[1], rel[2]
        else:
            continue
        rows.append({"variant": variant, "seed": seed, "stage": stage, "seconds": notebook_seconds(nb),
                     "state": folder_state(nb.parent, params, variant, seed, stage)})
    return pd.DataFrame(rows, columns=["variant", "seed", "stage", "seconds", "state"])


def packed_wall(per_variant: pd.Series, shared: float, workers: int) -> float:
    """Greedy longest-first packing of the variants' chains onto ``workers`` slots, after the shared stages."""
    slots = [0.0] * max(1, workers)
    for seconds in sorted(per_variant, reverse=True):
        slots[slots.index(min(slots))] += seconds
    return shared + max(slots)


def report_scale(scale: str, out_root: str, workers: int) -> dict:
    scale_dir, params = Path(out_root) / scale, Path("params") / f"{scale}.yaml"
    if not scale_dir.is_dir():
        raise SystemExit(f"{scale_dir}: no study outputs (run `python -m lynxlib.study --scale {scale}` first)")
    runs = collect(scale_dir, params)
    for state, why in (("stale", f"run with other params than {params} now holds"), ("unfinished", "running or failed")):
        left_out = runs[runs.state == state]
        if len(left_out):
            print(f"left out, {why}:", ", ".join(f"{r.variant}/{r.stage}" for r in left_out.itertuples()))
    unfinished = int((runs.state == "unfinished").sum())
    runs = runs[runs.state == "done"]
    table = runs.pivot_table(index="variant", columns="stage", values="seconds", aggfunc="sum", dropna=False)
    table = table[[s for s in STAGE_ORDER if s in table.columns]].round(0)
    print(table.to_string(na_rep="-"))
    per_variant = runs[runs.variant != "-"].groupby(["variant", "seed"]).seconds.sum()
    shared = float(runs[runs.variant == "-"].seconds.sum())
    total = shared + float(per_variant.sum())
    print(f"\nCPU-seconds: shared stages {shared:.0f}, variants {per_variant.sum():.0f}, total {total:.0f} "
          f"({total / 60:.1f} min); unfinished notebooks: {unfinished}")
    wall = packed_wall(per_variant, shared, workers)
    print(f"packed onto {workers} worker(s): about {wall / 60:.1f} min of wall time")
    return {"scale": scale, "table": json.loads(table.to_json()), "shared_s": shared,
            "variants_s": {f"{v}/{s}": float(x) for (v, s), x in per_variant.items()},
            "total_s": total, "workers": workers, "packed_wall_s": wall, "unfinished": unfinished}


def run_smoke() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "DS_ACCELERATOR": "cpu"}
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "lynxlib.study", "--scale", "smoke", "--out-root", tmp],
                              env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"smoke study failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        result = report_scale("smoke", tmp, workers=1)
    print(f"\nsmoke study from nothing: {wall:.0f} s wall ({wall / 60:.1f} min; target < 3 min)")
    return {**result, "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default="tiny")
    ap.add_argument("--out-root", default="outputs")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--run-smoke", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    result = run_smoke() if args.run_smoke else report_scale(args.scale, args.out_root, args.workers)
    result["cpu_count"] = os.cpu_count()
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
