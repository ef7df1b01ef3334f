"""One variant through the study's stages and evaluation, with dotted overrides, outside the notebooks.

    .venv/bin/python benchmarks/variant_run.py --params params/tiny.yaml --variant ours \
        --set vision.stem=conv --set instruct.mixture.vqa_ocr=12 [--out-root outputs/probes] [--out FILE.json]

The same calls the notebooks make (``lynxlib.pipeline.evaluate_run``: every stage is trained or reused by
its key, then Open-VQA-mini, MME-mini and the rest are scored), for a config the params files do not
hold: a recipe under test before it earns a place in ``params/``. Writes the per-category Open-VQA
table beside the world's majority-answer baseline, and the seconds each stage took.

Probes with overrides share every stage artifact of the same key with the study (artifacts live under
``<out-root>/<scale>/shared``), but each gets its own run folder, ``<variant>@<hash of the overrides>``:
two probes of one variant in one out-root never write over each other's evaluation.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")

import pandas as pd  # noqa: E402

from lynxlib import pipeline as P  # noqa: E402
from lynxlib.config import config_hash, dotted_overrides, load  # noqa: E402
from lynxlib.runs import env_info, set_threads, write_json  # noqa: E402
from lynxlib.stages import run_dir  # noqa: E402


def run_name(variant: str, overrides: list[str]) -> str:
    """The run folder's name: the variant's own without overrides, else tagged by the parsed overrides
    (order-free). The thread count changes no result, so it does not tag."""
    edits = {k: v for k, v in dotted_overrides(overrides).items() if k != "threads"}
    return f"{variant}@{config_hash(edits)[:8]}" if edits else variant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--variant", default="ours")
    ap.add_argument("--set", action="append", default=[], help="override, e.g. instruct.mixture.vqa_ocr=12")
    ap.add_argument("--out-root", default="outputs")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: the params file's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    cfg = load(args.params, args.variant, **dotted_overrides(args.set))
    # stage keys never read the variant's name, so the tag moves only the evaluation's folder
    cfg = dataclasses.replace(cfg, variant=run_name(args.variant, args.set))
    if args.threads:
        set_threads(args.threads)

    seconds: dict[str, float] = {}
    artifacts: dict[str, str] = {}
    for stage in P.stage_chain(cfg, "instruct"):
        started = time.perf_counter()
        artifacts[stage] = P.ensure_stage(cfg, stage, args.out_root).folder.name
        seconds[stage] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    P.evaluate_run(cfg, args.out_root)
    seconds["eval"] = round(time.perf_counter() - started, 1)

    folder = run_dir(cfg, "eval", args.out_root)
    table = pd.read_csv(folder / "openvqa.csv")[["kind", "category", "correct", "total", "accuracy", "se"]]
    table = table.merge(pd.read_csv(folder / "baselines.csv"), on=["kind", "category"], how="left")
    table["majority"] = 100 * table["majority"]
    print(table.to_string(index=False))
    print(seconds)
    if args.out:
        write_json(args.out, {"args": vars(args), "env": env_info(), "seconds": seconds, "artifacts": artifacts,
                              "eval_dir": str(folder),
                              "openvqa": table.to_dict("records")})


if __name__ == "__main__":
    main()
