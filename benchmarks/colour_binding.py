"""Does the model name the colour of the object asked about, or a colour of the image? Open-VQA-mini
Color accuracy by the number of colours in the image, per evaluation run.

    .venv/bin/python benchmarks/colour_binding.py --params params/tiny.yaml \
        outputs/tiny/ours/seed0/eval [more eval folders ...] [--out FILE.json]

Each folder holds an evaluation's ``predictions.jsonl`` (the study's eval, or ``benchmarks/visual_use.py
--eval-dir``); the scenes are Open-VQA-mini's, regenerated from the params' world config.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lynxlib.config import load  # noqa: E402
from lynxlib.evaluate.bridge import colour_by_choices, several_named  # noqa: E402
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
    colours = world_vocab(world).colours
    results, hedged = {}, {}
    for folder in args.folders:
        try:
            predictions = read_predictions(folder)
            table = colour_by_choices(predictions, scenes)
        except FileNotFoundError as err:
            raise SystemExit(str(err)) from None
        results[folder] = table.to_dict("records")
        hedged[folder] = several_named(predictions, colours)
        print(folder)
        print(table.round(2).to_string(index=False))
        print("replies naming two or more colours: {several} of {replies} ({several_correct} judged right)"
              .format(**hedged[folder]))
    if args.out:
        write_json(args.out, {"args": vars(args), "env": env_info(), "results": results,
                              "several_colours_named": hedged})


if __name__ == "__main__":
    main()
