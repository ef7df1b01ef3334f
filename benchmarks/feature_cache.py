"""What the frozen-feature cache saves per training step, measured side by side in one run.

    .venv/bin/python benchmarks/feature_cache.py --params params/tiny.yaml [--steps 20] [--warmup 2] \
        [--batch-size B] [--resolution low|high] [--stage pretrain_low|pretrain_high|instruct] \
        [--backbones auto|stage0|random] [--threads N] [--out-root outputs] [--out FILE.json]

Builds ``ours``'s model twice (same weights) and the stage's ``MixtureBatches`` over the world's train
split twice: once reading pixels (``ArrayVisuals`` without a cache: the tower runs every step) and once
reading the tower's tokens from the frozen-feature cache (``vision_tokens``). Then, in rounds, each
round on the same batch index and in a rotating order: one optimizer step of each (batch making +
forward + backward + clip + AdamW on the trainable groups) and the tower's forward alone on the
uncached batch's pixels. The tower's share of the uncached step predicts the cache's speed-up,
1 / (1 - share); what the cache does not save beyond that is overhead.

Before timing, both models take the same batch 0 with the same weights: their losses (and gradients)
must agree to float tolerance (the cache stores exactly what the tower returns).

The cache lives under ``<out-root>/<scale>/bench/features`` (built once, reused). ``--backbones auto``
uses stage 0's backbones when they are finished (always at smoke scale), else the config's shapes at
random init: step times do not depend on the weights' values.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from lynxlib import stepbench as sb  # noqa: E402
from lynxlib.config import load  # noqa: E402
from lynxlib.pipeline import ensure_world  # noqa: E402
from lynxlib.runs import env_info, seed_everything, set_threads, show_progress, write_json  # noqa: E402

LOSS_RTOL = 1e-4   # cached vs uncached loss on the same batch and weights
GRAD_RTOL = 1e-3   # max |g_uncached - g_cached| / max |g_uncached| over the trainable tensors


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params/tiny.yaml")
    parser.add_argument("--variant", default="ours")
    parser.add_argument("--steps", type=int, default=20, help="timed rounds (one step of each mode per round)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the stage's")
    parser.add_argument("--resolution", choices=("low", "high"), default=None,
                        help="default: the stage's (and --resolution high alone picks pretrain_high)")
    parser.add_argument("--stage", choices=("pretrain_low", "pretrain_high", "instruct"), default=None,
                        help="whose batch size, mixture and trainable groups (default: pretrain_low)")
    parser.add_argument("--backbones", choices=("auto", "stage0", "random"), default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the params')")
    parser.add_argument("--out-root", default="outputs", help="where the world, backbones and caches live")
    parser.add_argument("--out", default=None,
                        help="JSON results (default: <out-root>/<scale>/bench/feature_cache.json)")
    return parser.parse_args(argv)


def stage_config(cfg, args):
    """(stage name, its StageConfig with the asked resolution and batch size)."""
    name = args.stage or ("pretrain_high" if args.resolution == "high" else "pretrain_low")
    stage = sb.with_batch_size(getattr(cfg, name), batch_size=args.batch_size)
    return name, dataclasses.replace(stage, resolution=args.resolution or stage.resolution)


def setup(cfg, args) -> dict:
    """Both trainers (same weights, same batches; pixels vs cached tokens) and what they were built from."""
    world = ensure_world(cfg, args.out_root)
    source = sb.backbone_source(cfg, out_root=args.out_root, wanted=args.backbones)
    name, stage = stage_config(cfg, args)
    trainers, cache_build = {}, None
    for mode in ("uncached", "cached"):
        backbones = sb.bench_backbones(cfg, world, out_root=args.out_root, source=source)
        model, table = sb.bench_model(cfg, backbones, stage=stage)
        visuals, built = sb.bench_visuals(cfg, world, model, resolution=stage.resolution, cached=mode == "cached",
                                          out_root=args.out_root)
        cache_build = built or cache_build
        batches = sb.stage_batches(cfg, world, model=model, tokenizer=backbones.tokenizer, stage=stage,
                                   visuals=visuals)
        trainers[mode] = sb.Trainer(model=model, stage=stage, batches=batches)
    return {"trainers": trainers, "stage_name": name, "stage": stage, "source": source, "params": table,
            "cache_build": cache_build}


def loss_check(trainers: dict, *, index: int = 0) -> dict:
    """Same weights, same batch: the cached and uncached losses and gradients must agree."""
    batches = {mode: t.batches.batch(index) for mode, t in trainers.items()}
    if not torch.equal(batches["uncached"]["input_ids"], batches["cached"]["input_ids"]):
        raise AssertionError("the two modes drew different text for the same batch index")
    (loss_u, grads_u), (loss_c, grads_c) = (trainers[m].loss_and_grads(batches[m]) for m in ("uncached", "cached"))
    scale = max(g.abs().max().item() for g in grads_u)
    grad_diff = max((gu - gc).abs().max().item() for gu, gc in zip(grads_u, grads_c)) / max(scale, 1e-30)
    loss_diff = abs(loss_u - loss_c) / max(abs(loss_u), 1e-30)
    return {"batch": index, "visual_input": sorted(set(batches["uncached"]) & {"pixel_values"})
            + sorted(set(batches["cached"]) & {"vision_tokens"}), "loss_uncached": loss_u, "loss_cached": loss_c,
            "loss_rel_diff": loss_diff, "grad_rel_diff": grad_diff, "loss_rtol": LOSS_RTOL, "grad_rtol": GRAD_RTOL,
            "passed": loss_diff <= LOSS_RTOL and grad_diff <= GRAD_RTOL}


def one_round(trainers: dict, *, index: int, order: tuple[str, ...]) -> dict[str, float]:
    """Batch ``index`` for both modes, then the two steps and the tower alone in ``order``."""
    out, batches = {}, {}
    for mode, trainer in trainers.items():
        started = time.perf_counter()
        batches[mode] = trainer.batches.batch(index)
        out[f"{mode}_data_s"] = time.perf_counter() - started
    for part in order:
        if part == "tower":
            out["tower_s"] = sb.tower_seconds(trainers["uncached"].model, batches["uncached"])
            continue
        started = time.perf_counter()
        out[f"{part}_loss"] = trainers[part].update(batches[part])
        out[f"{part}_compute_s"] = time.perf_counter() - started
    out["samples"] = int(batches["cached"]["input_ids"].shape[0])
    out["kind"] = sb.batch_kind(batches["uncached"])
    return out


def run_rounds(trainers: dict, *, steps: int, warmup: int) -> list[dict]:
    """``warmup`` untimed then ``steps`` timed rounds; the order of the three parts rotates per round."""
    parts = ("uncached", "cached", "tower")
    rows = []
    for i in tqdm(range(warmup + steps), desc="rounds", disable=not show_progress()):
        order = parts[i % 3:] + parts[: i % 3]
        row = one_round(trainers, index=1 + i, order=order)  # batch 0 was the loss check's
        if i >= warmup:
            rows.append(row)
    return rows


def mode_summary(rows: list[dict], mode: str) -> dict:
    data = [r[f"{mode}_data_s"] for r in rows]
    compute = [r[f"{mode}_compute_s"] for r in rows]
    step = [d + c for d, c in zip(data, compute)]
    return {"s_per_step": statistics.fmean(step), "median_s_per_step": statistics.median(step),
            "data_s_per_step": statistics.fmean(data), "compute_s_per_step": statistics.fmean(compute),
            "samples_per_s": sum(r["samples"] for r in rows) / sum(step), "steps": len(rows),
            "step_s": step, "losses": [r[f"{mode}_loss"] for r in rows]}


def by_kind(rows: list[dict]) -> dict:
    """The same comparison per batch kind (image, video, text): the tower's share differs by kind."""
    out = {}
    for kind in sorted({r["kind"] for r in rows}):
        sub = [r for r in rows if r["kind"] == kind]
        unc = statistics.fmean(r["uncached_data_s"] + r["uncached_compute_s"] for r in sub)
        cac = statistics.fmean(r["cached_data_s"] + r["cached_compute_s"] for r in sub)
        tower = statistics.fmean(r["tower_s"] for r in sub)
        out[kind] = {"rounds": len(sub), "uncached_s_per_step": unc, "cached_s_per_step": cac,
                     "tower_s_per_step": tower, "tower_share": tower / unc, "ratio": unc / cac,
                     "predicted_ratio": 1.0 / (1.0 - tower / unc)}
    return out


def summarize(rows: list[dict]) -> dict:
    """Per-mode step times, the tower's share of the uncached step and what it predicts."""
    unc, cac = mode_summary(rows, "uncached"), mode_summary(rows, "cached")
    tower = statistics.fmean(r["tower_s"] for r in rows)
    share = tower / unc["s_per_step"]
    ratio = unc["s_per_step"] / cac["s_per_step"]
    medians = statistics.median(r["uncached_data_s"] + r["uncached_compute_s"] for r in rows), \
        statistics.median(r["cached_data_s"] + r["cached_compute_s"] for r in rows)
    return {"uncached": unc, "cached": cac, "tower_s_per_step": tower, "tower_share": share,
            "ratio": ratio, "ratio_of_medians": medians[0] / medians[1], "predicted_ratio": 1.0 / (1.0 - share),
            "overhead_s_per_step": cac["s_per_step"] - (unc["s_per_step"] - tower),
            "trajectory_max_loss_diff": max(abs(a - b) for a, b in zip(unc["losses"], cac["losses"])),
            "by_kind": by_kind(rows)}


def report(result: dict) -> None:
    s, chk = result["summary"], result["loss_check"]
    print(f"feature cache @ {result['scale']} ({result['backbones']}), {result['stage']} at {result['image_size']}px, "
          f"batch {result['batch_size']}, {result['steps']} timed rounds after {result['warmup']} warmup, "
          f"{result['machine']['torch_threads']} torch thread(s), load avg {result['machine']['load_avg_1_5_15']}")
    print(f"weights: {result['backbones_note']}")
    print(f"{'mode':<10} {'s/step':>8} {'data s':>8} {'compute s':>10} {'samples/s':>10}")
    for mode in ("uncached", "cached"):
        m = s[mode]
        print(f"{mode:<10} {m['s_per_step']:8.4f} {m['data_s_per_step']:8.4f} {m['compute_s_per_step']:10.4f} "
              f"{m['samples_per_s']:10.1f}")
    print(f"tower forward alone: {s['tower_s_per_step']:.4f} s/step = {100 * s['tower_share']:.1f}% "
          "of the uncached step")
    print(f"ratio uncached/cached: {s['ratio']:.3f}x (of medians {s['ratio_of_medians']:.3f}x); "
          f"predicted by the share 1/(1-share): {s['predicted_ratio']:.3f}x; "
          f"overhead left: {s['overhead_s_per_step']:+.4f} s/step")
    for kind, k in s["by_kind"].items():
        print(f"  {kind:<6} x{k['rounds']:<3} uncached {k['uncached_s_per_step']:.4f} "
              f"cached {k['cached_s_per_step']:.4f} "
              f"s/step: ratio {k['ratio']:.3f}x, tower share {100 * k['tower_share']:.1f}% predicts "
              f"{k['predicted_ratio']:.3f}x")
    print(f"loss check (batch {chk['batch']}, same weights): uncached {chk['loss_uncached']:.6f} cached "
          f"{chk['loss_cached']:.6f} rel diff {chk['loss_rel_diff']:.2e} (tol {chk['loss_rtol']:.0e}), grad rel diff "
          f"{chk['grad_rel_diff']:.2e} (tol {chk['grad_rtol']:.0e}): {'PASSED' if chk['passed'] else 'FAILED'}")
    if result["cache_build"]:
        build = ", ".join(f"{k} {v['seconds']:.2f}s ({v['frames']} frames"
                          f"{'' if v['measured_now'] else ', recorded by an earlier run'})"
                          for k, v in result["cache_build"].items())
        print(f"cache build: {build}")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cfg = load(args.params, args.variant)
    set_threads(cfg.threads if args.threads is None else args.threads)
    seed_everything(cfg.seed)
    built = setup(cfg, args)
    trainers, stage = built["trainers"], built["stage"]
    check = loss_check(trainers)
    load_before = sb.machine()["load_avg_1_5_15"]
    rows = run_rounds(trainers, steps=args.steps, warmup=args.warmup)
    result = {"benchmark": "feature_cache", "params": args.params, "scale": cfg.scale, "variant": cfg.variant,
              "backbones": built["source"], "backbones_note": sb.source_note(built["source"]),
              "stage": built["stage_name"], "resolution": stage.resolution,
              "image_size": sb.image_size(cfg, stage.resolution), "batch_size": stage.batch_size,
              "trainable": stage.trainable, "trainable_params": built["params"].trainable,
              "steps": args.steps, "warmup": args.warmup, "loss_check": check, "summary": summarize(rows),
              "cache_build": built["cache_build"], "machine": sb.machine() | {"load_avg_at_start": load_before},
              "env": env_info()}
    report(result)
    out = Path(args.out) if args.out else sb.bench_root(cfg, args.out_root) / "feature_cache.json"
    write_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["loss_check"]["passed"] else 1)
