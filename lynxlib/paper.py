"""The paper's reported numbers (copied into ``lynxlib/paper_data``) and how our variants map to them.

Sources: Tables 1-4 (Open-VQA image and video), the MME leaderboard of 2023-07-17 (Figure 7),
Figure 4 (OwlEval human ratings) and Sec. 3.3 (answer lengths under "give a short answer").
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

IMAGE_CATEGORIES = ("OCR", "Counting", "Reasoning", "Place", "Color", "Spatial", "Action", "Others")
VIDEO_CATEGORIES = ("Action (Y/N)", "Others")

# Our variant -> the paper's ablation row (Table 3 image / Table 4 video).
VARIANT_ROWS_IMAGE = {
    "ours": "Ours",
    "llama": "w/ LLaMA",
    "no_diverse_prompts": "w/o diverse prompts",
    "noisy_data": "w/ large-scale noisy data",
    "cross_attn": "w/ cross-attn",
    "cross_attn_tune_lm": "w/ cross-attn & trainable LLM",
    "low_res": "w/o high-resolution",
}
VARIANT_ROWS_VIDEO = VARIANT_ROWS_IMAGE | {"cross_attn_tune_lm": "w/ cross-attn, tune LLM"}

# Sec. 3.3: mean answer length (words) under "give a short answer".
SHORT_ANSWER_WORDS = {"ours": 15.81, "llama": 20.15}


PAPER_DATA = Path(__file__).resolve().parent / "paper_data"  # shipped as package data (pyproject)


def _csv(name: str) -> pd.DataFrame:
    return pd.read_csv(PAPER_DATA / name)


def _fraction(cell: str) -> tuple[int, int]:
    correct, total = str(cell).split("/")
    return int(correct), int(total)


def open_vqa(kind: str = "image", table: int | None = None) -> pd.DataFrame:
    """Long format: table, model, category, correct, total, accuracy (percent)."""
    frame = _csv(f"open_vqa_{kind}.csv")
    categories = IMAGE_CATEGORIES if kind == "image" else VIDEO_CATEGORIES
    if table is not None:
        frame = frame[frame["table"] == table]
    rows = []
    for _, row in frame.iterrows():
        for cat in categories:
            correct, total = _fraction(row[cat])
            rows.append({"table": row["table"], "model": row["model"], "category": cat,
                         "correct": correct, "total": total, "accuracy": 100 * correct / total})
        rows.append({"table": row["table"], "model": row["model"], "category": "Overall",
                     "correct": None, "total": None, "accuracy": float(row["Overall"])})
    return pd.DataFrame(rows)


def paper_overall(kind: str, variant: str) -> float:
    """The paper's pooled Overall (percent) for a variant's ablation row."""
    rows = VARIANT_ROWS_IMAGE if kind == "image" else VARIANT_ROWS_VIDEO
    table = 3 if kind == "image" else 4
    frame = open_vqa(kind, table)
    return float(frame[(frame.model == rows[variant]) & (frame.category == "Overall")].accuracy.iloc[0])


def mme_leaderboard() -> pd.DataFrame:
    return _csv("mme_leaderboard_2023-07-17.csv")


def owleval_human() -> pd.DataFrame:
    return _csv("owleval_human.csv")


@dataclass(frozen=True)
class Claim:
    """One of the paper's findings and the evidence the paper gives for it."""

    name: str
    statement: str
    paper_evidence: str
    ours: str          # variant expected to win
    other: str         # variant expected to lose
    metric: str        # "image_overall", "video_overall", "short_answer_words", "ocr", "owl_correctness"
    higher_is_better: bool = True


CLAIMS: tuple[Claim, ...] = (
    Claim("prefix_vs_xattn", "Prefix-tuning with adapters beats cross-attention (frozen LM)",
          "Table 3: 76.16 vs 31.79 Overall", "ours", "cross_attn", "image_overall"),
    Claim("prefix_vs_xattn_tuned", "Prefix-tuning with adapters beats cross-attention with a trainable LM",
          "Table 3: 76.16 vs 61.26 Overall", "ours", "cross_attn_tune_lm", "image_overall"),
    Claim("vicuna_vs_llama", "An instruction-tuned backbone (Vicuna) is slightly more accurate than LLaMA",
          "Table 3: 76.16 vs 70.86 Overall", "ours", "llama", "image_overall"),
    Claim("vicuna_follows_instructions", "The Vicuna-based model follows 'give a short answer' better",
          "Sec. 3.3: 15.81 vs 20.15 words", "ours", "llama", "short_answer_words", higher_is_better=False),
    Claim("diverse_prompts", "Diversified prompts improve accuracy (and instruction following)",
          "Table 4: 66.22 vs 59.46 video Overall; Table 3: 76.16 vs 75.50", "ours", "no_diverse_prompts",
          "video_overall"),
    Claim("clean_data", "Clean data beats adding large noisy data",
          "Table 3: 76.16 vs 72.85 Overall", "ours", "noisy_data", "image_overall"),
    Claim("high_resolution", "Higher resolution helps, most on OCR",
          "Table 3: OCR 36/53 vs 30/53; Overall 76.16 vs 73.51", "ours", "low_res", "ocr"),
)
