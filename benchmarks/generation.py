"""Batched generation against the per-sample loop, on the same items in one run.

    .venv/bin/python benchmarks/generation.py --params params/tiny.yaml [--items 96] [--batch-size B] \
        [--max-new-tokens N] [--backbones auto|stage0|random] [--threads N] [--out-root outputs] [--out FILE.json]

Builds ``ours``'s LynxModel (stage 0's backbones when finished, else the config's shapes at random init:
the speed does not depend on the weights' values, though answer lengths do) and asks it Open-VQA-mini
questions, image and video in the real set's proportions (302 : 148), at ``eval.resolution``. Times
:func:`lynxlib.inference.generate_answers` (kinds grouped, sorted by prompt length, left-padded batches
of ``eval.batch_size``) and :func:`lynxlib.inference.generate_one_by_one` (batch size 1), prints both
wall times and the ratio, and fails unless both give identical answers. One untimed warm-up batch runs
first.

``--visuals cached`` (default) encodes the items' frames with the frozen tower once, timed apart
(``tower_s``), and both modes read those tokens, as an evaluation through the feature cache does: the
ratio is then the generation's own. ``--visuals pixels`` runs the tower inside both modes (the same
work in each, so it dilutes the ratio); ``ratio_with_tower`` reports the cached run's end-to-end view.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")

import torch  # noqa: E402

from lynxlib import stepbench as sb  # noqa: E402
from lynxlib.build import build_model  # noqa: E402
from lynxlib.config import load  # noqa: E402
from lynxlib.data import PromptFormatter  # noqa: E402
from lynxlib.evaluate import sets  # noqa: E402
from lynxlib.evaluate.text import word_count  # noqa: E402
from lynxlib.inference import generate_answers, generate_one_by_one  # noqa: E402
from lynxlib.pipeline import ensure_world  # noqa: E402
from lynxlib.runs import env_info, seed_everything, set_threads, write_json  # noqa: E402

IMAGE_SHARE = 302 / (302 + 148)   # Open-VQA's image : video proportion


class MemoryCache:
    """The tower's tokens of the benchmark's items, in memory: ``tokens(kind, indices)`` (B, F, T, Dv),
    what :class:`lynxlib.features.FeatureCache` gives :class:`lynxlib.data.ArrayVisuals`."""

    def __init__(self, arrays: dict):
        self.arrays = arrays

    def tokens(self, name: str, indices) -> torch.Tensor:
        return torch.from_numpy(self.arrays[name][list(indices)])


def item_visuals(world, model, *, size: int, counts: dict[str, int], cached: bool) -> tuple[object, float]:
    """(visuals for the first ``counts[kind]`` Open-VQA-mini records of each kind, tower seconds)."""
    from lynxlib.data import ArrayVisuals
    from lynxlib.features import encode_array

    arrays = {"image": world.images("open_vqa_mini", size), "video": world.videos("open_vqa_mini", size)}
    if not cached or model.tower is None:
        return ArrayVisuals(images=arrays["image"], videos=arrays["video"]), 0.0
    started = time.perf_counter()
    tokens = {kind: encode_array(model.tower, arrays[kind][:n]) for kind, n in counts.items() if n}
    seconds = time.perf_counter() - started
    visuals = ArrayVisuals(images=None, videos=None, cache=MemoryCache(tokens), cache_names={k: k for k in tokens})
    return visuals, seconds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params/tiny.yaml")
    parser.add_argument("--variant", default="ours")
    parser.add_argument("--items", type=int, default=96, help="questions (image and video, 302 : 148)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: eval.batch_size")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: generation.max_new_tokens")
    parser.add_argument("--visuals", choices=("cached", "pixels"), default="cached",
                        help="tower tokens encoded once beforehand (default) or pixels through the tower in both modes")
    parser.add_argument("--backbones", choices=("auto", "stage0", "random"), default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the params')")
    parser.add_argument("--out-root", default="outputs", help="where the world and backbones live")
    parser.add_argument("--out", default=None, help="JSON results (default: <out-root>/<scale>/bench/generation.json)")
    return parser.parse_args(argv)


def setup(cfg, args) -> dict:
    """The model at the eval resolution, the items, their visuals and the generation arguments."""
    world = ensure_world(cfg, args.out_root)
    source = sb.backbone_source(cfg, out_root=args.out_root, wanted=args.backbones)
    backbones = sb.bench_backbones(cfg, world, out_root=args.out_root, source=source)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, tokenizer=backbones.tokenizer, lm=backbones.lm,
                        clip_visual_or_tower=backbones.visual).eval()
    size = sets.resolution_size(world, cfg.eval.resolution)
    model.set_resolution(size)
    n_image = round(args.items * IMAGE_SHARE)
    records = {"image": world.open_vqa("image")[:n_image], "video": world.open_vqa("video")[:args.items - n_image]}
    items = [it for kind, recs in records.items() for it in sets.open_vqa_items(recs, kind=kind)]
    gen = cfg.generation
    formatter = PromptFormatter(tokenizer=backbones.tokenizer, template=gen.template,
                                num_image_tokens=model.num_image_tokens, max_len=cfg.instruct.max_seq_len)
    counts = {k: len(v) for k, v in records.items()}
    visuals, tower_s = item_visuals(world, model, size=size, counts=counts, cached=args.visuals == "cached")
    common = {"tokenizer": backbones.tokenizer, "formatter": formatter, "visuals": visuals,
              "stop": gen.template.split("{question}")[0].strip() or None, "progress": False,
              "max_new_tokens": args.max_new_tokens or gen.max_new_tokens, "num_beams": gen.num_beams}
    return {"model": model, "items": items, "common": common, "source": source, "size": size, "kinds": counts,
            "tower_s": tower_s}


def timed(fn, **kwargs) -> tuple[list[str], float]:
    started = time.perf_counter()
    answers = fn(**kwargs)
    return answers, time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cfg = load(args.params, args.variant)
    set_threads(args.threads if args.threads is not None else cfg.threads)
    seed_everything(cfg.seed)
    s = setup(cfg, args)
    model, items, common = s["model"], s["items"], s["common"]
    batch_size = args.batch_size or cfg.eval.batch_size
    generate_answers(model, items=items[:batch_size], batch_size=batch_size, **common)   # warm-up
    batched, t_batched = timed(generate_answers, model=model, items=items, batch_size=batch_size, **common)
    single, t_single = timed(generate_one_by_one, model=model, items=items, **common)
    mismatches = [i for i, (a, b) in enumerate(zip(batched, single)) if a != b]
    result = {"params": args.params, "scale": cfg.scale, "variant": cfg.variant, "backbones": s["source"],
              "items": len(items), "kinds": s["kinds"], "resolution": s["size"], "batch_size": batch_size,
              "max_new_tokens": common["max_new_tokens"], "num_beams": common["num_beams"],
              "threads": torch.get_num_threads(), "batched_s": t_batched, "one_by_one_s": t_single,
              "ratio": t_single / t_batched, "visuals": args.visuals, "tower_s": s["tower_s"],
              "ratio_with_tower": (t_single + s["tower_s"]) / (t_batched + s["tower_s"]),
              "batched_items_per_s": len(items) / t_batched, "one_by_one_items_per_s": len(items) / t_single,
              "mean_answer_words": sum(map(word_count, batched)) / len(batched),
              "identical": not mismatches, "mismatches": mismatches[:10], "env": env_info()}
    out = Path(args.out) if args.out else Path(args.out_root) / cfg.scale / "bench" / "generation.json"
    write_json(out, result)
    print(f"{cfg.scale}: {len(items)} items ({s['kinds']}), {s['size']} px, max_new_tokens {common['max_new_tokens']}, "
          f"{result['threads']} thread(s), backbones {s['source']}, visuals {args.visuals}")
    print(f"batched (batch {batch_size}): {t_batched:.2f} s  ({result['batched_items_per_s']:.1f} items/s)")
    print(f"one by one:        {t_single:.2f} s  ({result['one_by_one_items_per_s']:.1f} items/s)")
    if args.visuals == "cached":
        print(f"tower (once, both modes): {s['tower_s']:.2f} s   ratio with it: {result['ratio_with_tower']:.1f}x")
    print(f"ratio: {result['ratio']:.1f}x   identical answers: {result['identical']}   -> {out}")
    if mismatches:
        i = mismatches[0]
        sys.exit(f"batched and one-by-one answers differ at {len(mismatches)} items, e.g. item {i}: "
                 f"{batched[i]!r} vs {single[i]!r}")
    return result


if __name__ == "__main__":
    main()
