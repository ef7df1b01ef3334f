"""Time ``write_world`` for a scale file: seconds, items per second, bytes on disk.

    .venv/bin/python benchmarks/world_gen.py --params params/tiny.yaml [--out /tmp/world-bench] [--keep]

Every run writes a fresh world (the output folder is emptied first), single-threaded numpy.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lynxlib.config import load
from lynxlib.world import write_world


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params/smoke.yaml", help="scale file (its world section is used)")
    parser.add_argument("--out", default=None, help="output folder (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the written world")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)
    cfg = load(args.params).world
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="world-bench-"))
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    manifest = write_world(cfg, out, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    counts = manifest["counts"]
    images = (counts["train_scenes"] + counts["eval_scenes"] + counts["open_vqa_images"] + counts["owleval"]
              + counts["mme_questions"] // 2)
    clips = counts["train_clips"] + counts["eval_clips"] + counts["open_vqa_videos"]
    frames = images + clips * cfg.frames
    result = {"params": args.params, "seconds": round(seconds, 2), "images": images, "clips": clips,
              "frames_rendered": frames, "frames_per_s": round(frames / seconds, 1),
              "items_per_s": round((images + clips) / seconds, 1), "megabytes": round(folder_bytes(out) / 2**20, 1)}
    print(" ".join(f"{k}={v}" for k, v in result.items()))
    if not args.keep and not args.out:
        shutil.rmtree(out, ignore_errors=True)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
