"""Open-VQA-mini accuracy by question type, evaluation runs side by side: what a category's one number
hides (Spatial: which-side relations, yes/no relations and grid positions; Others: shape, existence,
size).

    .venv/bin/python benchmarks/openvqa_by_qtype.py --params params/tiny.yaml \
        ours=outputs/tiny/ours/seed0/eval blind=outputs/tiny/blind/seed0/eval [--category Spatial] [--out F.json]

Each folder holds an evaluation's ``predictions.jsonl``; the question types are replayed from the
params' world config (``lynxlib.world.evalsets.open_vqa_plan``), with ``--set`` for a world the params
file does not hold. Two floors per type: ``majority``, the share of its most frequent planned answer,
and ``best_constant``, the one answer the rule judge scores best on every item (the judge accepts a
reference's words inside a longer answer, so an answer naming several candidates can score above the
majority): what a model that knows the question's type but not the image can reach. ``--rejudge``
scores the stored answers again under the current rule judge (an evaluation written under an older
rule version, e.g. rule-v1, which credited "top left" wherever the answer was "top" or "left");
``--rejudge rule-v1`` under that older version, to compare a new run with numbers judged by it.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402

from lynxlib.config import dotted_overrides, load  # noqa: E402
from lynxlib.evaluate.harness import read_predictions  # noqa: E402
from lynxlib.evaluate.judges import RuleJudge  # noqa: E402
from lynxlib.evaluate.openvqa_tables import accuracy_by_qtype, rejudged  # noqa: E402
from lynxlib.runs import env_info, write_json  # noqa: E402
from lynxlib.world.evalsets import open_vqa_plan  # noqa: E402


def parse_runs(items: list[str]) -> dict[str, str]:
    """``name=folder`` (or a bare folder, named by itself) -> {name: folder}."""
    runs = {}
    for item in items:
        name, sep, folder = item.partition("=")
        runs[name if sep else item] = folder if sep else item
    return runs


def side_by_side(runs: dict[str, str], plan: list, kind: str, *, rejudge: str | None = None) -> pd.DataFrame:
    """One row per (category, question type): n, majority, then each run's accuracy and standard error."""
    table, judge = None, RuleJudge(rejudge or "rule-v2")  # floors under the re-scoring version (default: current)
    for name, folder in runs.items():
        try:
            predictions = read_predictions(folder)
            if rejudge:
                predictions = rejudged(predictions, judge)
            one = accuracy_by_qtype(predictions, plan, kind=kind, judge=judge)
        except (FileNotFoundError, ValueError) as err:
            raise SystemExit(f"{folder}: {err}") from None
        one = one.rename(columns={"accuracy": name, "se": f"{name} se"}).drop(columns="correct")
        floors = ["n", "majority", "best_constant", "best_constant_answer"]
        table = one if table is None else table.merge(one.drop(columns=floors), on=["category", "qtype"])
    return table


def per_category(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Each category's accuracy (%) per run and its two floors, pooled over its question types."""
    cols = ["best_constant", "majority", *names]
    weighted = table[cols].mul(table["n"], axis=0).assign(category=table["category"], n=table["n"])
    sums = weighted.groupby("category", sort=False).sum()
    out = sums[cols].div(sums["n"], axis=0).rename(columns={"best_constant": "type floor", "majority": "type majority"})
    return out.assign(n=sums["n"]).reset_index()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="name=eval folder with predictions.jsonl")
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--set", action="append", default=[], help="world override, e.g. world.eval_scale=10")
    ap.add_argument("--kind", default="image", choices=("image", "video"))
    ap.add_argument("--category", default=None, help="only this Open-VQA category")
    ap.add_argument("--rejudge", nargs="?", const="rule-v2", default=None, choices=("rule-v1", "rule-v2"),
                    help="judge the stored answers again with the rule judge (default version: rule-v2); "
                         "put it after the runs or give the version")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    plan = open_vqa_plan(load(args.params, **dotted_overrides(args.set)).world, args.kind)
    runs = parse_runs(args.runs)
    table = side_by_side(runs, plan, args.kind, rejudge=args.rejudge)
    if args.category:
        table = table[table["category"] == args.category]
    print(table.round(1).to_string(index=False))
    categories = per_category(table, list(runs))
    print(categories.round(1).to_string(index=False))
    if args.out:
        write_json(args.out, {"args": vars(args), "env": env_info(), "judge": args.rejudge or "as stored",
                              "table": table.to_dict("records"), "categories": categories.to_dict("records")})


if __name__ == "__main__":
    main()
