"""Benchmark stage 0: wall time of each backbone piece and its quality gates, at a given scale.

    .venv/bin/python benchmarks/stage0.py --params params/tiny.yaml --out /tmp/stage0-tiny \
        [--world DIR] [--set backbones.lm_steps=600 --set vision.width=128 ...] [--threads 2]

Writes the world (unless ``--world`` points at one), runs :func:`lynxlib.backbones.train_backbones`
into ``OUT/backbones`` and prints one line per piece (seconds) and a gate table; the full report is
saved as ``OUT/stage0_benchmark.json``. Pieces already trained for the same config are reused: use a
fresh ``--out`` to time them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def gate_table(gates: dict) -> str:
    lines = []
    for name in ("llama", "vicuna"):
        g = gates["lm"][name]
        lines.append(f"LM {name:7s} held-out loss {g['loss']:.3f} (ppl {g['ppl']:.2f})  "
                     f"unigram {g['unigram_loss']:.3f} (ppl {g['unigram_ppl']:.1f})")
    style = gates["lm"]["style"]
    lines.append("style (mean words)   " + "  ".join(f"{s:>8s}" for s in style["styles"]))
    lines.append("  reference          " + "  ".join(f"{style['reference_words'][s]:8.2f}" for s in style["styles"]))
    for model, per in style["models"].items():
        lines.append(f"  {model:18s} " + "  ".join(f"{per[s]['mean_words']:8.2f}" for s in style["styles"]))
    for size, res in gates["tower"].items():
        r = res["retrieval"]
        lines.append(f"tower @{size}px retrieval i2t {r['i2t_top1']:.3f} t2i {r['t2i_top1']:.3f} (chance {r['chance']:.4f})")
        lines.append("  probe " + "  ".join(f"{task} {p['acc']:.2f}/{p['majority']:.2f}" for task, p in res["probe"].items())
                     + "   (acc/majority)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params/tiny.yaml")
    parser.add_argument("--out", required=True)
    parser.add_argument("--world", default=None, help="an existing world folder (else OUT/world is written)")
    parser.add_argument("--set", action="append", default=[], help="override, e.g. backbones.lm_steps=600")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: the config's)")
    args = parser.parse_args()

    import torch

    from lynxlib.backbones import train_backbones
    from lynxlib.config import dotted_overrides, load, to_dict
    from lynxlib.world import WorldStore, write_world

    overrides = dotted_overrides(args.set)
    if args.threads:
        overrides["threads"] = args.threads
    cfg = load(args.params, **overrides)
    out = Path(args.out)
    world_dir = Path(args.world) if args.world else out / "world"
    start = time.perf_counter()
    write_world(cfg.world, world_dir, progress=True)
    world_s = time.perf_counter() - start
    start = time.perf_counter()
    report = train_backbones(cfg, out_dir=out / "backbones", world=WorldStore(world_dir))
    total = time.perf_counter() - start
    result = {"params": args.params, "overrides": overrides, "backbones": to_dict(cfg.backbones),
              "lm": to_dict(cfg.lm), "vision": to_dict(cfg.vision), "world_seconds": world_s,
              "stage0_seconds": total, "times": report.times, "reused": report.reused, "gates": report.gates,
              "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "platform": platform.platform()}}
    (out / "stage0_benchmark.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"world {world_s:.1f}s; stage 0 {total:.1f}s on {torch.get_num_threads()} thread(s): "
          + ", ".join(f"{k} {v:.1f}s" for k, v in report.times.items()))
    print(gate_table(report.gates))


if __name__ == "__main__":
    main()
