"""Yes/no categories split into format and decision: how many answers say yes or no, and how many
of those are right, per evaluation run.

    .venv/bin/python benchmarks/yes_no_answers.py outputs/tiny/ours/seed0/eval outputs/tiny/blind/seed0/eval \
        [--categories "Action (Y/N)" Reasoning] [--out FILE.json]

Each folder holds an evaluation's ``predictions.jsonl`` (the study's eval, or ``benchmarks/visual_use.py
--eval-dir``).
"""
from __future__ import annotations

import argparse

from lynxlib.evaluate.harness import read_predictions
from lynxlib.evaluate.openvqa_tables import yes_no_breakdown
from lynxlib.runs import env_info, write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", help="evaluation folders with predictions.jsonl")
    ap.add_argument("--categories", nargs="+", default=["Action (Y/N)", "Reasoning"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    results = {}
    for folder in args.folders:
        try:
            table = yes_no_breakdown(read_predictions(folder), args.categories)
        except FileNotFoundError as err:
            raise SystemExit(str(err)) from None
        results[folder] = table.to_dict("records")
        print(folder)
        print(table.to_string(index=False))
    if args.out:
        write_json(args.out, {"args": vars(args), "env": env_info(), "results": results})


if __name__ == "__main__":
    main()
