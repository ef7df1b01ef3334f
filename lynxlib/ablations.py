"""Collect every variant's evaluation into the paper's ablation tables and the findings table.

Each evaluated run writes ``outputs/<scale>/<variant>/seed<k>/eval/`` with ``openvqa.csv``
(kind, category, correct, total), ``mme.csv`` (subtask, score, ...), ``owleval.csv`` (per item:
correctness, richness, words, distinct2), ``instruct.csv`` (style, mean_words, compliance) and
``baselines.csv`` (kind, category, majority[, type_floor]). This module reads them back into long DataFrames.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lynxlib import paper
from lynxlib.config import ConfigError, load
from lynxlib.figures import baseline_rows, overall_spread
from lynxlib.runs import read_json, resolve
from lynxlib.stages import run_key, run_state

TABLES = ("openvqa", "mme", "owleval", "instruct", "baselines")


def eval_dirs(scale: str, out_root: str | Path = "outputs") -> list[tuple[str, int, Path]]:
    """(variant, seed, eval dir) of every finished evaluation under ``outputs/<scale>``."""
    found = []
    for summary in sorted((resolve(out_root) / scale).glob("*/seed*/eval/summary.json")):
        folder = summary.parent
        found.append((folder.parent.parent.name, int(folder.parent.name.removeprefix("seed")), folder))
    return found


def why_stale(folder: Path, params: str | Path, variant: str, seed: int) -> str | None:
    """Why an evaluation does not belong to ``params`` as they are now (None when it does)."""
    try:
        cfg = load(params, variant, seed=seed)
    except ConfigError as err:
        return f"not a variant of {params}: {err}"
    state = run_state(folder, run_key(cfg, "eval"))
    if state == "stale":
        return f"run with other params (key {read_json(folder / 'summary.json').get('key')}, now {run_key(cfg, 'eval')})"
    return None if state == "done" else f"status {read_json(folder / 'summary.json').get('status')!r}"


def collect(scale: str, out_root: str | Path = "outputs", params: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Long DataFrames per table, with ``variant`` and ``seed`` columns added.

    With ``params``, only evaluations of those params as they are now are collected (the run's config
    key matches): a run left from older params must not sit in a table beside current ones. What was
    left out, and why, is the ``left_out`` table.
    """
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLES}
    left_out = []
    for variant, seed, folder in eval_dirs(scale, out_root):
        reason = why_stale(folder, params, variant, seed) if params is not None else None
        if reason is not None:
            left_out.append({"variant": variant, "seed": seed, "folder": str(folder), "reason": reason})
            continue
        for name in TABLES:
            path = folder / f"{name}.csv"
            if path.exists():
                frame = pd.read_csv(path)
                frame.insert(0, "seed", seed)
                frame.insert(0, "variant", variant)
                parts[name].append(frame)
    tables = {name: pd.concat(frames, ignore_index=True) if frames else pd.DataFrame() for name, frames in parts.items()}
    tables["left_out"] = pd.DataFrame(left_out, columns=["variant", "seed", "folder", "reason"])
    return tables


def paper_style_table(openvqa: pd.DataFrame, kind: str = "image") -> pd.DataFrame:
    """Table 3/4 shape: one row per variant, ``correct/total`` per category (summed over seeds when
    there is one seed; mean correct otherwise) and the pooled Overall as mean ± std over seeds."""
    categories = list(paper.IMAGE_CATEGORIES if kind == "image" else paper.VIDEO_CATEGORIES)
    part = openvqa[openvqa.kind == kind]
    cells = part.groupby(["variant", "category"])[["correct", "total"]].mean()
    table = pd.DataFrame(index=sorted(part.variant.unique(), key=_variant_order))
    for cat in categories:
        table[cat] = [_fraction(cells, v, cat) for v in table.index]
    overall = overall_spread(part).set_index("variant")
    table["Overall"] = [f"{overall.loc[v, 'mean']:.2f} ± {overall.loc[v, 'spread']:.2f}" for v in table.index]
    return table


def _fraction(cells: pd.DataFrame, variant: str, cat: str) -> str:
    if (variant, cat) not in cells.index:
        return "-"
    row = cells.loc[(variant, cat)]
    return f"{row['correct']:.4g}/{row['total']:.0f}"


def _variant_order(variant: str) -> int:
    order = list(paper.VARIANT_ROWS_IMAGE) + ["blind"]
    return order.index(variant) if variant in order else len(order)


def with_baselines(openvqa: pd.DataFrame, baselines: pd.DataFrame, kind: str = "image") -> pd.DataFrame:
    """Accuracy (%) per category for each variant beside the baselines (the majority answer and, where
    scored, the question-type floor), with a binomial standard error per cell."""
    part = openvqa[openvqa.kind == kind].groupby(["variant", "category"])[["correct", "total"]].sum()
    acc = part["correct"] / part["total"]
    se = np.sqrt(acc * (1 - acc) / part["total"])
    table = (100 * acc).round(1).astype(str) + " ± " + (100 * se).round(1).astype(str)
    table = table.unstack()
    for name, row in baseline_rows(baselines, kind).iterrows():
        table.loc[name] = row.round(1).astype(str)
    categories = [c for c in (paper.IMAGE_CATEGORIES if kind == "image" else paper.VIDEO_CATEGORIES)
                  if c in table.columns]
    return table[categories]


def grid_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The README's grid: one row per variant, then the baseline rows; image categories, the pooled image
    Overall, the video categories (prefixed "video "), the pooled video Overall. Category cells as
    :func:`with_baselines` gives them; an Overall is mean ± spread (:func:`lynxlib.figures.overall_spread`),
    a baseline's Overall its accuracy pooled over the categories' items as the paper pools a model's."""
    openvqa, baselines = tables["openvqa"], tables["baselines"]
    parts = []
    for kind in ("image", "video"):
        part = openvqa[openvqa.kind == kind]
        if part.empty:
            continue
        table = with_baselines(openvqa, baselines, kind).add_prefix("" if kind == "image" else "video ")
        overall = overall_spread(part).set_index("variant")
        totals = part.groupby("category")["total"].first()  # every run scores the same items
        floors = baseline_rows(baselines, kind).reindex(columns=totals.index)
        pooled = {name: (rates * totals).sum() / totals.sum() for name, rates in floors.iterrows() if rates.notna().all()}
        table[f"{kind} Overall"] = [f"{overall.loc[row, 'mean']:.1f} ± {overall.loc[row, 'spread']:.1f}"
                                    if row in overall.index else
                                    (f"{pooled[row]:.1f}" if row in pooled else "-") for row in table.index]
        parts.append(table)
    grid = pd.concat(parts, axis=1)
    variants = sorted((r for r in grid.index if r in set(openvqa.variant)), key=_variant_order)
    return grid.loc[variants + [r for r in grid.index if r not in variants]]


def side_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per variant (mean over seeds): MME-mini perception and its subtasks (0-200; a constant answer
    scores 50), words per answer for 'short' (its compliance) and 'one word' instructions, and
    OwlEval-mini's automatic correctness / richness."""
    rows = {}
    mme, lengths, owl = tables["mme"], tables["instruct"], tables["owleval"]
    for variant in sorted(set(tables["openvqa"].variant), key=_variant_order):
        row: dict[str, float] = {}
        if not mme.empty:
            part = mme[(mme.variant == variant) & (mme.group == "perception")]
            row["MME perception"] = part.groupby("seed").score.sum().mean()
            row.update(part.groupby("subtask", sort=False).score.mean().to_dict())
        if not lengths.empty:
            styles = lengths[lengths.variant == variant].groupby("style")[["mean_words", "compliance"]].mean()
            for style in ("short", "one_word"):
                if style in styles.index:
                    row[f"{style} words"] = styles.loc[style, "mean_words"]
                    row[f"{style} compliance %"] = 100 * styles.loc[style, "compliance"]
        if not owl.empty:
            part = owl[owl.variant == variant]
            row["OwlEval correctness"], row["OwlEval richness"] = part.correctness.mean(), part.richness.mean()
        rows[variant] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "variant"
    return table


def metric(tables: dict[str, pd.DataFrame], variant: str, name: str) -> tuple[float, float] | None:
    """A claim's metric for one variant as (mean, spread): spread is the std over seeds when there
    are several, else the standard error of the one run (binomial for accuracies, in percent points;
    of the mean for answer lengths)."""
    openvqa = tables["openvqa"]
    if name in ("image_overall", "video_overall", "ocr"):
        kind = "video" if name == "video_overall" else "image"
        part = openvqa[(openvqa.variant == variant) & (openvqa.kind == kind)]
        if name == "ocr":
            part = part[part.category == "OCR"]
        if part.empty:
            return None
        per_seed = part.groupby("seed")[["correct", "total"]].sum()
        acc = 100 * per_seed["correct"] / per_seed["total"]
        if len(acc) > 1:
            return float(acc.mean()), float(acc.std())
        p, n = acc.iloc[0] / 100, per_seed["total"].iloc[0]
        return float(acc.iloc[0]), float(100 * np.sqrt(p * (1 - p) / n))
    if name == "short_answer_words":
        lengths = tables["instruct"]
        part = lengths[(lengths.variant == variant) & (lengths["style"] == "short")] if not lengths.empty else lengths
        if part.empty:
            return None
        if len(part) > 1:
            return float(part.mean_words.mean()), float(part.mean_words.std())
        row = part.iloc[0]  # one seed: the standard error of the mean length over its answers
        spread = row.std_words / np.sqrt(row.n) if {"std_words", "n"} <= set(part.columns) else 0.0
        return float(row.mean_words), float(spread)
    raise ValueError(f"unknown metric {name!r}")


def findings_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Each of the paper's claims: its evidence, our measurement with its spread, and whether they agree
    (same direction and the gap larger than twice the combined spread)."""
    rows = []
    for claim in paper.CLAIMS:
        a, b = metric(tables, claim.ours, claim.metric), metric(tables, claim.other, claim.metric)
        if a is None or b is None:
            rows.append({"claim": claim.statement, "paper": claim.paper_evidence, "ours": "not run", "agrees": "-"})
            continue
        gap = (a[0] - b[0]) * (1 if claim.higher_is_better else -1)
        spread = float(np.hypot(a[1], b[1]))
        verdict = "yes" if gap > 2 * spread else ("no (reversed)" if gap < -2 * spread else "inconclusive")
        rows.append({"claim": claim.statement, "paper": claim.paper_evidence,
                     "ours": f"{claim.ours} {a[0]:.1f}±{a[1]:.1f} vs {claim.other} {b[0]:.1f}±{b[1]:.1f} ({claim.metric})",
                     "agrees": verdict})
    return pd.DataFrame(rows)


def summary(tables: dict[str, pd.DataFrame]) -> dict:
    """What the ablations notebook records: which variants and seeds were collected."""
    openvqa = tables["openvqa"]
    runs = sorted({(v, int(s)) for v, s in zip(openvqa.variant, openvqa.seed)}) if not openvqa.empty else []
    left_out = tables.get("left_out", pd.DataFrame())
    return {"runs": [f"{v}/seed{s}" for v, s in runs],
            "left_out": [f"{r.variant}/seed{r.seed}: {r.reason}" for r in left_out.itertuples()]}


def save_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as CSV atomically."""
    from lynxlib.runs import atomic_path

    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)
