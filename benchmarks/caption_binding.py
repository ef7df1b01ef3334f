"""Position binding in captions: are the objects a model's replies name in the cells they name?

    .venv/bin/python benchmarks/caption_binding.py --params params/tiny.yaml \
        outputs/probes/bench/v3_after_pretrain_high_eval [more eval folders ...] [--out FILE.json]

Each folder holds an evaluation's ``predictions.jsonl`` (the study's eval, or ``benchmarks/visual_use.py
--eval-dir``) on Open-VQA-mini, whose scenes are regenerated from the params' world config. Useful where
the replies are captions: a model straight after stage 1 answers every question with one. Prints, per
folder, how many claimed objects exist (beside the rate against another scene) and how many of those
sit in the claimed cell, beside the shuffled-cells and most-claimed-cell floors
(``lynxlib.evaluate.caption_claims``).
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lynxlib.config import load  # noqa: E402
from lynxlib.evaluate.caption_claims import binding_summary, claim_frame  # noqa: E402
from lynxlib.evaluate.harness import read_predictions  # noqa: E402
from lynxlib.runs import env_info, write_json  # noqa: E402
from lynxlib.world.evalsets import open_vqa_mini  # noqa: E402
from lynxlib.world.scene import world_vocab  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", help="evaluation folders with predictions.jsonl")
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    world = load(args.params).world
    _, _, scenes, _ = open_vqa_mini(world)
    vocab = world_vocab(world)
    results = {}
    for folder in args.folders:
        try:
            claims = claim_frame(read_predictions(folder), scenes, colours=vocab.colours, shapes=vocab.shapes)
        except FileNotFoundError as err:
            raise SystemExit(str(err)) from None
        results[folder] = binding_summary(claims)
        print(folder)
        print("  " + "\n  ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}"
                                 for k, v in results[folder].items()))
    if args.out:
        write_json(args.out, {"args": vars(args), "env": env_info(), "results": results})


if __name__ == "__main__":
    main()
