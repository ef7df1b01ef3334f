"""The paper's tables and figures, each beside our reproduction. Functions take data, return a Figure.

Inputs are long-format DataFrames collected by ``lynxlib.ablations``:
``openvqa`` (variant, seed, kind, category, correct, total), ``mme`` (variant, seed, subtask, score),
``owl`` (variant, seed, correctness, richness, words, distinct2), ``lengths`` (variant, seed, style,
mean_words, compliance), ``baselines`` (kind, category, majority[, type_floor]) for the baselines.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from lynxlib import paper

PALETTE = {"paper": "#4c72b0", "ours": "#dd8452", "majority": "#8c8c8c", "blind": "#55a868"}


def pooled_overall(openvqa: pd.DataFrame) -> pd.DataFrame:
    """Pooled Overall per variant, kind and seed: 100 * sum(correct) / sum(total) (the paper's rule)."""
    grouped = openvqa.groupby(["variant", "kind", "seed"])[["correct", "total"]].sum().reset_index()
    grouped["accuracy"] = 100 * grouped["correct"] / grouped["total"]
    return grouped


def overall_spread(openvqa: pd.DataFrame) -> pd.DataFrame:
    """Pooled Overall per variant: ``mean`` over seeds and its ``spread``, the std over seeds when there
    are several and the binomial standard error of the pooled accuracy with one (never a bare 0)."""
    per_seed = pooled_overall(openvqa)
    rows = []
    for variant, part in per_seed.groupby("variant"):
        if len(part) > 1:
            spread = float(part.accuracy.std())
        else:
            p, n = part.correct.iloc[0] / part.total.iloc[0], part.total.iloc[0]
            spread = float(100 * np.sqrt(p * (1 - p) / n))
        rows.append({"variant": variant, "mean": float(part.accuracy.mean()), "spread": spread, "seeds": len(part)})
    return pd.DataFrame(rows, columns=["variant", "mean", "spread", "seeds"])


def open_vqa_overall_figure(openvqa: pd.DataFrame, kind: str = "image") -> plt.Figure:
    """Table 3 (image) / Table 4 (video) Overall: the paper's ablation rows beside ours."""
    rows = paper.VARIANT_ROWS_IMAGE if kind == "image" else paper.VARIANT_ROWS_VIDEO
    ours = overall_spread(openvqa[openvqa.kind == kind])
    variants = [v for v in rows if v in set(ours.variant)] + [v for v in ours.variant if v not in rows]
    fig, ax = plt.subplots(figsize=(1.1 * len(variants) + 2, 3.6))
    x = np.arange(len(variants))
    paper_vals = [paper.paper_overall(kind, v) if v in rows else np.nan for v in variants]
    ours_stats = ours.set_index("variant").loc[variants]
    ax.bar(x - 0.2, paper_vals, 0.4, label="paper", color=PALETTE["paper"])
    ax.bar(x + 0.2, ours_stats["mean"], 0.4, yerr=ours_stats["spread"], label="ours (tiny world)",
           color=PALETTE["ours"], capsize=3)
    ax.set_xticks(x, variants, rotation=30, ha="right")
    ax.set_ylabel("Overall accuracy (%)")
    ax.set_title(f"Open-VQA {kind}: Table {3 if kind == 'image' else 4} beside the reproduction")
    ax.set_ylim(0, 100)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    plt.close(fig)  # shown once, by returning it (not again by pyplot's inline hook)
    return fig


BASELINE_ROWS = {"majority": "majority answer", "type_floor": "question-type floor"}  # baselines.csv column: row


def baseline_rows(baselines: pd.DataFrame, kind: str = "image") -> pd.DataFrame:
    """Accuracy (%) of each baseline in ``baselines.csv`` rows: one row per baseline (the majority answer;
    the question-type floor where it was scored), one column per category. Every run is scored on the
    same evaluation set, so the runs' values are equal; their mean skips runs without a column."""
    part = baselines[baselines.kind == kind]
    columns = [c for c in BASELINE_ROWS if c in part.columns and part[c].notna().any()]
    return (100 * part.groupby("category")[columns].mean()).T.rename(index=BASELINE_ROWS)


def category_heatmaps(openvqa: pd.DataFrame, baselines: pd.DataFrame, kind: str = "image") -> plt.Figure:
    """Per-category accuracy: the paper's rows (left) and ours with the baselines (right)."""
    categories = list(paper.IMAGE_CATEGORIES if kind == "image" else paper.VIDEO_CATEGORIES)
    rows = paper.VARIANT_ROWS_IMAGE if kind == "image" else paper.VARIANT_ROWS_VIDEO
    ref = paper.open_vqa(kind, 3 if kind == "image" else 4)
    ref = ref[ref.category != "Overall"].pivot(index="model", columns="category", values="accuracy")
    ref = ref.loc[[rows[v] for v in rows], categories]
    ours = openvqa[openvqa.kind == kind].groupby(["variant", "category"])[["correct", "total"]].sum()
    ours = (100 * ours["correct"] / ours["total"]).unstack()[categories]
    ours = ours.loc[[v for v in rows if v in ours.index] + sorted(v for v in ours.index if v not in rows)]  # paper's order
    for name, row in baseline_rows(baselines, kind).iterrows():
        ours.loc[name] = row.reindex(categories)
    fig, axes = plt.subplots(1, 2, figsize=(2 * len(categories) + 4, 0.45 * max(len(ref), len(ours)) + 1.8))
    for ax, data, title in ((axes[0], ref, "paper"), (axes[1], ours, "ours (tiny world)")):
        sns.heatmap(data, annot=True, fmt=".0f", vmin=0, vmax=100, cmap="viridis", cbar=False, ax=ax)
        ax.set_title(f"Open-VQA {kind}: {title}")
        ax.set_xlabel("")
        ax.set_ylabel("")
    fig.tight_layout()
    plt.close(fig)  # shown once, by returning it (not again by pyplot's inline hook)
    return fig


def mme_figure(mme: pd.DataFrame) -> plt.Figure:
    """Figure 7: per-subtask MME scores normalised to 0-100, the leaderboard beside ours."""
    board = paper.mme_leaderboard()
    ours = mme.groupby(["variant", "subtask"])["score"].mean().reset_index()
    subtasks = [s for s in board.subtask if s in set(ours.subtask)]
    models = [c for c in board.columns if c not in ("subtask", "group")]
    long = board[board.subtask.isin(subtasks)].melt(id_vars=["subtask", "group"], value_vars=models,
                                                   var_name="model", value_name="score")
    ours = ours[ours.subtask.isin(subtasks)].rename(columns={"variant": "model"})
    ours["model"] = "ours: " + ours["model"]
    both = pd.concat([long[["subtask", "model", "score"]], ours[["subtask", "model", "score"]]])
    both["score"] = both["score"] / 2  # each subtask's score is out of 200
    fig, ax = plt.subplots(figsize=(1.6 * len(subtasks) + 3, 4))
    sns.barplot(data=both, x="subtask", y="score", hue="model", ax=ax)
    ax.set_ylabel("score (0-100)")
    ax.set_title("MME (Figure 7): leaderboard 2023-07-17 beside MME-mini")
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    plt.close(fig)  # shown once, by returning it (not again by pyplot's inline hook)
    return fig


def generation_figure(owl: pd.DataFrame) -> plt.Figure:
    """Figure 4/8 analogue: the paper's human ratings beside OwlEval-mini's automatic scores."""
    human = paper.owleval_human()
    auto = owl.groupby("variant")[["correctness", "richness"]].mean().reset_index()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].barh(human["model"], human["mean_score_1_to_5"], color=PALETTE["paper"])
    axes[0].set_xlim(1, 5)
    axes[0].set_title("paper: OwlEval human rating (Figure 4)")
    long = auto.melt(id_vars="variant", var_name="score", value_name="value")
    sns.barplot(data=long, y="variant", x="value", hue="score", ax=axes[1])
    axes[1].set_xlim(0, 1)
    axes[1].set_title("ours: OwlEval-mini, scored against the scene graph")
    fig.tight_layout()
    plt.close(fig)  # shown once, by returning it (not again by pyplot's inline hook)
    return fig


def instruction_length_figure(lengths: pd.DataFrame) -> plt.Figure:
    """Sec. 3.3: mean answer length per held-out style; the paper's 'give a short answer' numbers."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    sns.barplot(data=lengths, x="style", y="mean_words", hue="variant", ax=ax)
    for variant, words in paper.SHORT_ANSWER_WORDS.items():
        ax.axhline(words, ls="--", lw=1, color="gray")
        ax.text(ax.get_xlim()[1], words, f" paper {variant}: {words}", va="center", fontsize=7)
    ax.set_ylabel("mean answer length (words)")
    ax.set_title("Instruction following under held-out styles")
    fig.tight_layout()
    plt.close(fig)  # shown once, by returning it (not again by pyplot's inline hook)
    return fig


def save(fig: plt.Figure, folder, name: str) -> list:
    """Save a figure as PNG and PDF (atomically) under ``folder``; returns the paths."""
    from pathlib import Path

    from lynxlib.runs import atomic_path

    paths = []
    for ext in ("png", "pdf"):
        path = Path(folder) / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=120, bbox_inches="tight")
        paths.append(path)
    return paths
