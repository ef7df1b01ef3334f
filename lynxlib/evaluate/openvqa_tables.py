"""Open-VQA tables: the paper's layout, seed summaries and the comparison with the controls.

The comparison puts every model beside the majority-answer baseline and the text-only (blind)
control per category: a category where a model does not beat both controls says nothing about
vision.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import pandas as pd

from lynxlib.evaluate.baselines import best_constant
from lynxlib.evaluate.judges import RuleJudge
from lynxlib.evaluate.openvqa import CATEGORIES, Cell, OpenVQAResult, category_of
from lynxlib.evaluate.text import leading_verdict


def paper_table(results: Sequence[OpenVQAResult]) -> pd.DataFrame:
    """Tables 1-4 layout: one row per model, ``c/t`` per category and the pooled Overall."""
    if not results:
        raise ValueError("no results")
    rows = {r.model or f"model {i}": r.to_row() for i, r in enumerate(results)}
    columns = list(CATEGORIES[results[0].kind]) + ["Overall"]
    return pd.DataFrame.from_dict(rows, orient="index").reindex(columns=columns)


def seed_summary(results: Sequence[OpenVQAResult]) -> pd.DataFrame:
    """Per category (and Overall): mean and spread of the accuracy (percent) over seeds.

    With several seeds the spread is the sample std over seeds (``spread='std'``); with one it is
    the binomial standard error (``spread='se'``). ``cell`` renders 'mean ± spread'.
    """
    if not results:
        raise ValueError("no results")
    kind = results[0].kind
    if any(r.kind != kind for r in results):
        raise ValueError("seed_summary: results mix image and video")
    rows = []
    for cat in [c for c in CATEGORIES[kind] if any(c in r.cells for r in results)] + ["Overall"]:
        cells = [r.overall_cell if cat == "Overall" else r.cells[cat]
                 for r in results if cat == "Overall" or cat in r.cells]
        accs = pd.Series([c.accuracy for c in cells], dtype=float)
        several = len(cells) > 1
        spread = float(accs.std(ddof=1)) if several else cells[0].se
        rows.append({"category": cat, "mean": float(accs.mean()), "spread": spread,
                     "spread_kind": "std" if several else "se", "n_seeds": len(cells),
                     "cell": f"{accs.mean():.2f} ± {spread:.2f}"})
    return pd.DataFrame(rows).set_index("category")


def _as_result(name: str, value: OpenVQAResult | Mapping[str, tuple[int, int]], kind: str) -> OpenVQAResult:
    if isinstance(value, OpenVQAResult):
        return value
    return OpenVQAResult.from_counts(kind=kind, counts=value, model=name)


def comparison_table(scores: Mapping[str, OpenVQAResult | Mapping[str, tuple[int, int]]], *, kind: str = "image",
                     majority: str = "majority answer", blind: str = "text-only") -> pd.DataFrame:
    """Accuracy (percent) per category and pooled Overall: the two controls, then each model with
    its margin over each control (``'<model> − majority'``, ``'<model> − blind'``).

    ``scores``: name -> ``{category: (correct, total)}`` or an :class:`OpenVQAResult`; must hold the
    ``majority`` and ``blind`` entries. ``table.attrs['se']`` has the binomial standard errors.
    """
    for needed in (majority, blind):
        if needed not in scores:
            raise ValueError(f"comparison_table: no {needed!r} entry among {sorted(scores)}")
    results = {name: _as_result(name, value, kind) for name, value in scores.items()}
    index = [c for c in CATEGORIES[kind] if any(c in r.cells for r in results.values())] + ["Overall"]

    def accuracies(result: OpenVQAResult, attr: str) -> list[float]:
        cells = [result.overall_cell if c == "Overall" else result.cells.get(c) for c in index]
        return [getattr(cell, attr) if cell is not None else math.nan for cell in cells]

    table = pd.DataFrame(index=pd.Index(index, name="category"))
    se = pd.DataFrame(index=table.index)
    for name in (majority, blind, *[n for n in results if n not in (majority, blind)]):
        table[name] = accuracies(results[name], "accuracy")
        se[name] = accuracies(results[name], "se")
        if name not in (majority, blind):
            table[f"{name} − majority"] = table[name] - table[majority]
            table[f"{name} − blind"] = table[name] - table[blind]
    table.attrs["se"] = se
    return table


def render_markdown(table: pd.DataFrame, *, digits: int = 1) -> str:
    """A pipe table of ``table`` (index first); numbers to ``digits`` decimals, NaN as '-'."""
    def fmt(value) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    head = [str(table.index.name or "")] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for label, row in table.iterrows():
        lines.append("| " + " | ".join([str(label)] + [fmt(v) for v in row.tolist()]) + " |")
    return "\n".join(lines) + "\n"


def style_table(table: pd.DataFrame, *, digits: int = 1):
    """A pandas Styler for notebooks: margins over the controls green when positive, red otherwise."""
    margins = [c for c in table.columns if " − " in str(c)]

    def colour(value: float) -> str:
        if isinstance(value, float) and math.isnan(value):
            return ""
        return "color: #1a7f37" if value > 0 else "color: #cf222e"

    styler = table.style.format(f"{{:.{digits}f}}", na_rep="-")
    return styler.map(colour, subset=margins) if margins else styler


def yes_no_breakdown(predictions: Sequence[Mapping], categories: Sequence[str]) -> pd.DataFrame:
    """Per category: how many answers lead with a yes or no verdict (the rule judge's reading), and
    how many of those are right.

    Separates the format (a yes/no question answered with a description) from the decision (the
    yes or no itself), which one accuracy mixes. ``predictions`` are ``predictions.jsonl`` rows.
    """
    rows = []
    for category in categories:
        items = [p for p in predictions if p.get("part", "openvqa") == "openvqa" and p.get("category") == category]
        said = [p for p in items if leading_verdict(p.get("prediction") or "")]
        right = sum(bool(p["correct"]) for p in said)
        rows.append({"category": category, "n": len(items), "yes_no": len(said),
                     "correct_among_yes_no": right,
                     "accuracy_among_yes_no": round(right / len(said), 4) if said else float("nan")})
    return pd.DataFrame(rows)


def accuracy_by_qtype(predictions: Sequence[Mapping], plan: Sequence[tuple[str, str, str | None]],
                      *, kind: str = "image", judge=None) -> pd.DataFrame:
    """Open-VQA-mini accuracy (%) per (category, question type), beside that type's majority answer.

    ``plan``: :func:`lynxlib.world.evalsets.open_vqa_plan` for the evaluated world (item k of ``kind``:
    uid ``openvqa/<kind>/<k>``). One category can hide a learned type behind an unlearned one (Spatial's
    yes/no relations sit at 50 % for any model that says yes or no).
    """
    plan = [(category_of({"class": c}, kind=kind), q, a) for c, q, a in plan]  # the paper's names, as scored
    rows = []
    for p in predictions:
        if p.get("part", "openvqa") != "openvqa" or p.get("kind") != kind:
            continue
        k = int(str(p["uid"]).rsplit("/", 1)[1])
        if k >= len(plan) or plan[k][0] != p["category"]:
            raise ValueError(f"prediction {p['uid']} ({p['category']}) does not match the plan's item {k}: "
                             "score it with the plan of the world it was evaluated on")
        rows.append({"category": p["category"], "qtype": plan[k][1], "correct": bool(p["correct"]),
                     "references": tuple(p.get("references") or ())})
    if not rows:
        raise ValueError(f"no Open-VQA-mini {kind} predictions in the rows given")
    groups = pd.DataFrame(rows).groupby(["category", "qtype"], sort=False)
    table = groups["correct"].agg(["sum", "count"]).rename(columns={"sum": "correct", "count": "n"})
    cells = [Cell(int(c), int(n)) for c, n in zip(table["correct"], table["n"])]
    table["accuracy"], table["se"] = [c.accuracy for c in cells], [c.se for c in cells]
    answers = pd.DataFrame(plan, columns=["category", "qtype", "answer"]).dropna()
    majority = answers.groupby(["category", "qtype"])["answer"].agg(lambda a: 100 * a.value_counts().iloc[0] / len(a))
    table["majority"] = majority.reindex(table.index)
    best = groups["references"].agg(lambda refs: best_constant_answer(list(refs), judge))
    table["best_constant"], table["best_constant_answer"] = best.str[1], best.str[0]
    return table.reset_index()


def rejudged(predictions: Sequence[Mapping], judge) -> list[dict]:
    """Open-VQA rows of ``predictions.jsonl`` with ``correct`` judged again by ``judge`` (a stored
    evaluation scored under the current rules); other parts' rows are returned unchanged."""
    out = []
    for p in predictions:
        if p.get("part", "openvqa") == "openvqa":
            verdict = judge.judge(question=p.get("question", ""), prediction=p["prediction"], references=p["references"])
            p = {**p, "correct": bool(verdict.correct)}
        out.append(dict(p))
    return out


def best_constant_answer(references: Sequence[Sequence[str]], judge=None) -> tuple[str, float]:
    """(answer, accuracy %) of the best constant answer under ``judge`` (default: the rule judge;
    :func:`lynxlib.evaluate.baselines.best_constant`): the floor of one question type."""
    items = [r for r in references if r]
    if not items:
        return "", float("nan")
    answer, right = best_constant(items, judge or RuleJudge())
    return answer, 100 * right / len(items)
