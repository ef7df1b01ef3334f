"""Tables and figures of the world notebook (00_world). Each takes data and returns a DataFrame or Figure.

Figures are closed before they are returned: a notebook shows the returned figure once (its repr),
not a second time through pyplot's automatic display; the backend is left to the caller.
"""
from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lynxlib.world.evalsets import CATEGORY_TASKS, OPEN_VQA_IMAGE, OPEN_VQA_VIDEO
from lynxlib.world.font import GLYPHS
from lynxlib.world.render import reader_accuracy
from lynxlib.world.sample import Sample, answer_distribution, majority_baseline
from lynxlib.world.store import WorldStore
from lynxlib.world.tasks import Task


def _finish(fig: plt.Figure) -> plt.Figure:
    fig.tight_layout()
    plt.close(fig)
    return fig


def _wrap(text: str, width: int = 28) -> str:
    return "\n".join(textwrap.wrap(text, width)[:4])


def examples_figure(store: WorldStore) -> plt.Figure:
    """The first Open-VQA-mini item of every image category: high resolution above low resolution."""
    records = store.open_vqa("image")
    firsts = {}
    for r in records:
        firsts.setdefault(r["class"], r)
    high, low = store.images("open_vqa_mini", "high"), store.images("open_vqa_mini", "low")
    fig, axes = plt.subplots(2, len(firsts), figsize=(2.3 * len(firsts), 5.6), squeeze=False)
    for col, (category, r) in enumerate(firsts.items()):
        axes[0, col].imshow(high[r["index"]])
        axes[0, col].set_title(f"{category}\n{_wrap(r['question'])}\n-> {r['answer'][0]}", fontsize=7)
        axes[1, col].imshow(low[r["index"]])
        axes[1, col].set_xlabel(f"{low.shape[1]} px", fontsize=7)
    axes[0, 0].set_ylabel(f"{high.shape[1]} px", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return _finish(fig)


def video_figure(store: WorldStore, index: int = 0, split: str = "open_vqa_mini") -> plt.Figure:
    """Every frame of one clip at both resolutions, with its events as the title."""
    clip = store.clips(split)[index]
    rows = [store.videos(split, "high")[index], store.videos(split, "low")[index]]
    fig, axes = plt.subplots(2, clip.frames, figsize=(2 * clip.frames, 4.4), squeeze=False)
    for r, frames in enumerate(rows):
        for f, frame in enumerate(frames):
            axes[r, f].imshow(frame)
            axes[r, f].set_xticks([])
            axes[r, f].set_yticks([])
            axes[0, f].set_title(f"frame {f + 1}", fontsize=8)
    events = "; ".join(f"{e.action} {list(e.subjects)} frames {e.start + 1}-{e.end + 1}" for e in clip.events)
    fig.suptitle(f"{clip.place}: {events}", fontsize=9)
    return _finish(fig)


def caption_table(store: WorldStore, n: int = 4) -> pd.DataFrame:
    """Clean caption beside the first two noisy captions of the first ``n`` training scenes."""
    noisy: dict[int, list[str]] = {}
    for i, caption in store.captions("noisy"):
        noisy.setdefault(i, []).append(caption)
    rows = [{"scene": i, "clean": caption, "noisy 1": noisy[i][0], "noisy 2": noisy[i][1 % len(noisy[i])]}
            for i, caption in store.captions("clean")[:n]]
    return pd.DataFrame(rows).set_index("scene")


def prompt_table(tasks: dict[str, Task]) -> pd.DataFrame:
    """Per task: category, visual kind, prompt pool sizes, the first prompt and a held-out phrasing."""
    rows = [{"task": t.name, "category": t.category or "", "visual": t.visual_kind, "hand-written": len(t.prompts),
             "paraphrases": len(t.paraphrases), "held-out": len(t.held_out), "first prompt": t.prompts[0],
             "held-out example": t.held_out[0]} for t in tasks.values()]
    return pd.DataFrame(rows).set_index("task")


def class_distribution_figure(image_records: Sequence[dict], video_records: Sequence[dict], eval_scale: float) -> plt.Figure:
    """Open-VQA-mini items per category beside the real set's counts times ``eval_scale``."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [4, 1.3]})
    for ax, records, real, title in ((axes[0], image_records, OPEN_VQA_IMAGE, "image"),
                                     (axes[1], video_records, OPEN_VQA_VIDEO, "video")):
        cats = list(real)
        ours = [sum(r["class"] == c for r in records) for c in cats]
        x = np.arange(len(cats))
        ax.bar(x - 0.2, [real[c] * eval_scale for c in cats], 0.4, label=f"real x {eval_scale:g}", color="#4c72b0")
        ax.bar(x + 0.2, ours, 0.4, label="Open-VQA-mini", color="#dd8452")
        ax.set_xticks(x, cats, rotation=30, fontsize=8)
        ax.set_title(f"Open-VQA-mini {title} categories", fontsize=9)
    axes[0].set_ylabel("items")
    axes[0].legend(fontsize=8)
    return _finish(fig)


def answer_distribution_figure(samples: Sequence[Sample], cols: int = 5, max_answers: int = 12) -> plt.Figure:
    """Answer shares per task and question type (open-ended types skipped); dashed: uniform share."""
    dist = {k: c for k, c in answer_distribution(samples, by="qtype").items() if len(c) <= 30}
    rows = int(np.ceil(len(dist) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.2 * rows), squeeze=False)
    for ax, (key, counter) in zip(axes.flat, sorted(dist.items())):
        answers = sorted(counter)[:max_answers]
        total = sum(counter.values())
        ax.bar(range(len(answers)), [counter[a] / total for a in answers], color="#55a868")
        ax.axhline(1 / len(counter), ls="--", color="#8c8c8c", lw=1)
        ax.set_xticks(range(len(answers)), answers, rotation=60, fontsize=6)
        ax.set_title(key, fontsize=8)
        ax.tick_params(axis="y", labelsize=6)
    for ax in list(axes.flat)[len(dist):]:
        ax.axis("off")
    return _finish(fig)


def baseline_table(train_samples: Sequence[Sample], image_records: Sequence[dict],
                   video_records: Sequence[dict]) -> pd.DataFrame:
    """Majority-answer accuracy per Open-VQA category: in training samples and in Open-VQA-mini."""
    rows = []
    for kind, records in (("image", image_records), ("video", video_records)):
        train = majority_baseline([s for s in train_samples if s.visual_kind == kind])
        evals = majority_baseline(records)
        for category, task in CATEGORY_TASKS[kind].items():
            rows.append({"kind": kind, "category": category, "task": task, "train majority": train.get(category),
                         "Open-VQA-mini majority": evals.get(category),
                         "items": sum(r["class"] == category for r in records)})
    return pd.DataFrame(rows).set_index(["kind", "category"]).round(3)


def legibility_table(store: WorldStore, split: str = "eval") -> pd.DataFrame:
    """Letter-reader accuracy on the split's words at both resolutions (chance: 1 / letters in use)."""
    scenes = store.scenes(split)
    alphabet = "".join(sorted({ch for s in scenes if s.text for ch in s.text.word} & set(GLYPHS)))
    rows = [{"resolution": r, "pixels": store.images(split, r).shape[1],
             "letter accuracy": reader_accuracy(scenes, store.images(split, r), alphabet),
             "chance": 1 / len(alphabet)} for r in ("low", "high")]
    return pd.DataFrame(rows).set_index("resolution").round(3)


def samples_table(samples: Sequence[Sample], per_task: int = 1) -> pd.DataFrame:
    """The first ``per_task`` samples of each task: style, prompt, response and references."""
    seen: dict[str, int] = {}
    rows = []
    for s in samples:
        if seen.get(s.task, 0) >= per_task:
            continue
        seen[s.task] = seen.get(s.task, 0) + 1
        rows.append({"task": s.task, "style": s.style, "prompt": " | ".join(u for u, _ in s.turns),
                     "response": " | ".join(b for _, b in s.turns), "references": ", ".join(s.references[:3])})
    return pd.DataFrame(rows).set_index("task")
