"""Samples/s of each training stage with the feature cache on, and the wall time the params' budgets imply.

    .venv/bin/python benchmarks/stages.py --params params/tiny.yaml --variant ours [--steps-scale 1.0] \
        [--steps 20] [--warmup 3] [--stages pretrain_low,pretrain_high,instruct] [--rebuild-cache] \
        [--backbones auto|stage0|random] [--threads N] [--out-root outputs] [--out FILE.json]

For each training stage of the variant (pretrain_low, pretrain_high unless disabled, instruct) at the
params' batch size, resolution, mixture and trainable groups: ``--warmup`` untimed then ``--steps``
timed optimizer steps (batch making + forward + backward + clip + AdamW; no checkpoint or log I/O),
reading the tower's tokens from the frozen-feature cache. The projection multiplies each stage's
s/step by its full step budget in the params (times ``--steps-scale``): stage 1 = pretrain_low +
pretrain_high, stage 2 = instruct. The time to build the cache (the tower over the train split at each
resolution) is measured when this run builds it; a cache an earlier benchmark run built is reused and
its recorded build time reported (``--rebuild-cache`` re-encodes it now).

The model's trainable modules start fresh in every stage (no earlier stage's weights are loaded): the
step time does not depend on the weights' values. ``--backbones auto`` uses stage 0's backbones when
they are finished (always at smoke scale), else the config's shapes at random init.
"""
from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")

from tqdm.auto import tqdm  # noqa: E402

from lynxlib import stepbench as sb  # noqa: E402
from lynxlib.config import load  # noqa: E402
from lynxlib.pipeline import TRAINING_STAGES, ensure_world  # noqa: E402
from lynxlib.runs import env_info, seed_everything, set_threads, show_progress, write_json  # noqa: E402

STAGE1, STAGE2 = ("pretrain_low", "pretrain_high"), ("instruct",)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params/tiny.yaml")
    parser.add_argument("--variant", default="ours")
    parser.add_argument("--steps-scale", type=float, default=1.0,
                        help="multiplies the params' step budgets in the projection (not the measured steps)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per stage")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per stage first")
    parser.add_argument("--stages", default=",".join(TRAINING_STAGES), help="comma-separated subset")
    parser.add_argument("--rebuild-cache", action="store_true", help="re-encode the benchmark's caches (timed)")
    parser.add_argument("--backbones", choices=("auto", "stage0", "random"), default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the params')")
    parser.add_argument("--out-root", default="outputs", help="where the world, backbones and caches live")
    parser.add_argument("--out", default=None, help="JSON results (default: <out-root>/<scale>/bench/stages.json)")
    return parser.parse_args(argv)


def stage_names(cfg, wanted: str) -> list[str]:
    names = [s.strip() for s in wanted.split(",") if s.strip()]
    unknown = set(names) - set(TRAINING_STAGES)
    if unknown:
        raise SystemExit(f"unknown stages {sorted(unknown)} (known: {', '.join(TRAINING_STAGES)})")
    return [s for s in TRAINING_STAGES if s in names and getattr(cfg, s).enabled]


def measure_stage(cfg, world, *, name: str, source: str, args, rebuild: bool) -> dict:
    """Build the stage's model and cached batches, then time ``args.steps`` steps after ``args.warmup``."""
    stage = getattr(cfg, name)
    backbones = sb.bench_backbones(cfg, world, out_root=args.out_root, source=source)
    model, table = sb.bench_model(cfg, backbones, stage=stage)
    visuals, built = sb.bench_visuals(cfg, world, model, resolution=stage.resolution, cached=True,
                                      out_root=args.out_root, rebuild=rebuild)
    trainer = sb.Trainer(model=model, stage=stage,
                         batches=sb.stage_batches(cfg, world, model=model, tokenizer=backbones.tokenizer,
                                                   stage=stage, visuals=visuals))
    for i in range(args.warmup):
        trainer.step(i)
    timings = [trainer.step(args.warmup + i) for i in tqdm(range(args.steps), desc=name, disable=not show_progress())]
    seconds = sum(t.step_s for t in timings)
    return {"stage": name, "resolution": stage.resolution, "image_size": sb.image_size(cfg, stage.resolution),
            "batch_size": stage.batch_size, "trainable": stage.trainable, "trainable_params": table.trainable,
            "steps_timed": len(timings), "samples_per_s": sum(t.samples for t in timings) / seconds,
            "s_per_step": seconds / len(timings), "median_s_per_step": statistics.median(t.step_s for t in timings),
            "data_s_per_step": statistics.fmean(t.data_s for t in timings),
            "compute_s_per_step": statistics.fmean(t.compute_s for t in timings),
            "full_steps": stage.steps,
            # the LM processes B x T text slots (image tokens come on top); padding is the rest
            "text_token_use": sum(t.text_tokens for t in timings) / max(1, sum(t.text_slots for t in timings)),
            "kinds": {k: sum(t.kind == k for t in timings) for k in ("image", "video", "text")},
            "step_s": [t.step_s for t in timings], "losses": [t.loss for t in timings], "cache_build": built}


def cache_build_seconds(rows: list[dict]) -> dict:
    """Build seconds per cache (one per resolution; stages sharing a resolution share its cache)."""
    out = {}
    for row in rows:
        for name, rec in (row["cache_build"] or {}).items():
            out.setdefault(f"{name}@{row['image_size']}px", rec)  # the first stage at a resolution built it
    return out


def project(rows: list[dict], *, builds: dict, scale: float) -> dict:
    """Wall seconds of the full budgets (x ``scale``): per stage, stage 1, stage 2, and with the cache build."""
    per = {r["stage"]: r["s_per_step"] * r["full_steps"] * scale for r in rows}
    stage1 = sum(v for k, v in per.items() if k in STAGE1)
    stage2 = sum(v for k, v in per.items() if k in STAGE2)
    build = sum(rec["seconds"] for rec in builds.values())
    return {"steps_scale": scale, "per_stage_s": per, "stage1_s": stage1, "stage2_s": stage2,
            "stage1_plus_stage2_s": stage1 + stage2, "cache_build_s": build,
            "total_with_cache_build_s": stage1 + stage2 + build}


def report(result: dict) -> None:
    m = result["machine"]
    print(f"stages @ {result['scale']} ({result['variant']}, {result['backbones']} backbones), cache on, "
          f"{result['warmup']} warmup + {result['steps']} timed steps per stage, {m['torch_threads']} torch "
          f"thread(s), load avg {m['load_avg_1_5_15']}")
    print(f"weights: {result['backbones_note']}")
    print(f"| {'stage':<13} | {'px':>4} | {'batch':>5} | {'samples/s':>9} | {'s/step':>7} | {'data s':>6} | "
          f"{'text use':>8} | {'full steps':>10} | {'projected':>10} |")
    print("|" + "|".join("-" * w for w in (15, 6, 7, 11, 9, 8, 10, 12, 12)) + "|")
    proj = result["projection"]
    for r in result["stages"]:
        print(f"| {r['stage']:<13} | {r['image_size']:>4} | {r['batch_size']:>5} | {r['samples_per_s']:9.1f} | "
              f"{r['s_per_step']:7.3f} | {r['data_s_per_step']:6.3f} | {100 * r['text_token_use']:7.1f}% | "
              f"{round(r['full_steps'] * proj['steps_scale']):>10} | "
              f"{proj['per_stage_s'][r['stage']]:9.1f}s |")
    for name, rec in result["cache_build"].items():
        print(f"cache {name}: {rec['seconds']:.1f}s for {rec['frames']} frames"
              f"{'' if rec['measured_now'] else ' (recorded by an earlier run)'}")
    print(f"projected: stage 1 {proj['stage1_s'] / 60:.1f} min + stage 2 {proj['stage2_s'] / 60:.1f} min = "
          f"{proj['stage1_plus_stage2_s'] / 60:.1f} min; "
          f"with the cache build {proj['total_with_cache_build_s'] / 60:.1f} min")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cfg = load(args.params, args.variant)
    set_threads(cfg.threads if args.threads is None else args.threads)
    seed_everything(cfg.seed)
    world = ensure_world(cfg, args.out_root)
    source = sb.backbone_source(cfg, out_root=args.out_root, wanted=args.backbones)
    load_before, rows, rebuilt = sb.machine()["load_avg_1_5_15"], [], set()
    for name in stage_names(cfg, args.stages):
        resolution = getattr(cfg, name).resolution
        rows.append(measure_stage(cfg, world, name=name, source=source, args=args,
                                  rebuild=args.rebuild_cache and resolution not in rebuilt))
        rebuilt.add(resolution)
    builds = cache_build_seconds(rows)
    result = {"benchmark": "stages", "params": args.params, "scale": cfg.scale, "variant": cfg.variant,
              "backbones": source, "backbones_note": sb.source_note(source), "steps": args.steps,
              "warmup": args.warmup, "stages": rows,
              "cache_build": builds, "projection": project(rows, builds=builds, scale=args.steps_scale),
              "machine": sb.machine() | {"load_avg_at_start": load_before}, "env": env_info()}
    report(result)
    out = Path(args.out) if args.out else sb.bench_root(cfg, args.out_root) / "stages.json"
    write_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
