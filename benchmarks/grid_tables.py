"""The README's grid tables from a study's run folders, as Markdown: nothing pasted by hand.

    .venv/bin/python benchmarks/grid_tables.py --scale tiny [--params params/tiny.yaml] [--out FILE.json]

Reads every evaluation under ``outputs/<scale>/`` that belongs to the params as they are now
(``lynxlib.ablations.collect``; a run left from older params is listed as left out, never mixed in) and
prints three tables:

* Open-VQA-mini per category, image and video, each cell accuracy % ± its binomial standard error (the
  std over seeds when there are several), with the pooled Overalls and the majority-answer and
  question-type-floor rows beside the variants;
* the findings table (``lynxlib.ablations.findings_table``, as ``06_figures.ipynb`` writes it);
* per variant: MME-mini perception and subtasks, words per answer under held-out style instructions,
  OwlEval-mini's automatic correctness and richness.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lynxlib import ablations  # noqa: E402
from lynxlib.evaluate.openvqa_tables import render_markdown  # noqa: E402
from lynxlib.runs import env_info, write_json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default="tiny")
    ap.add_argument("--params", default=None, help="default: params/<scale>.yaml")
    ap.add_argument("--out-root", default="outputs")
    ap.add_argument("--out", default=None, help="also write the tables as JSON")
    args = ap.parse_args()

    params = args.params or f"params/{args.scale}.yaml"
    tables = ablations.collect(args.scale, args.out_root, params=params)
    info = ablations.summary(tables)
    if tables["openvqa"].empty:
        raise SystemExit(f"no evaluation of {params} under {args.out_root}/{args.scale}/ "
                         f"(left out: {info['left_out'] or 'none'})")
    grid = ablations.grid_table(tables)
    findings = ablations.findings_table(tables).set_index("claim")
    side = ablations.side_table(tables)
    print(f"runs: {', '.join(info['runs'])}")
    for line in info["left_out"]:
        print(f"left out: {line}")
    for title, table in (("Open-VQA-mini", grid), ("findings", findings), ("MME-mini, instructions, OwlEval-mini", side)):
        print(f"\n{title}\n")
        print(render_markdown(table))
    if args.out:
        write_json(args.out, {"args": vars(args), "env": env_info(), "runs": info,
                              "grid": grid.reset_index().to_dict("records"),
                              "findings": findings.reset_index().to_dict("records"),
                              "side": side.reset_index().to_dict("records")})


if __name__ == "__main__":
    main()
