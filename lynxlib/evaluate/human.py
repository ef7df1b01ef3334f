"""Human rating of generated answers, as the paper's OwlEval study (Sec. 3.2, Figure 4).

Each item shows an image, the instruction and every model's answer side by side in a seeded random
order (model names hidden). The annotator scores each answer 1-5; correctness first, then richness.
Ties follow the paper: at most 2 models may share a score on one item, and at most 10 items per
annotator may contain a tie. :class:`RatingSession` holds the rules (pure, testable);
:class:`RatingWidget` is a thin ipywidgets view over it; :func:`ratings_figure` draws Figure 4.
"""
from __future__ import annotations

import io
import math
import random
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from lynxlib.runs import atomic_write_text

SCORES = (1, 2, 3, 4, 5)
COLUMNS = ["annotator", "item_id", "model", "score", "position"]


class RuleViolation(ValueError):
    """A rating that breaks the protocol (bad score, too many tied models or ties)."""


def tied_models(scores: Mapping[str, int]) -> list[str]:
    """Models sharing their score with another model on this item."""
    counts = Counter(scores.values())
    return sorted(m for m, s in scores.items() if counts[s] > 1)


def check_scores(scores: Mapping[str, int], *, models: Sequence[str], max_tied_models: int = 2) -> bool:
    """Validate one item's scores; True when the item contains a tie. Raises :class:`RuleViolation`."""
    if set(scores) != set(models):
        missing, extra = sorted(set(models) - set(scores)), sorted(set(scores) - set(models))
        raise RuleViolation(f"scores must cover exactly the models {list(models)}: "
                            f"missing {missing}, unexpected {extra}")
    for model, score in scores.items():
        if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
            raise RuleViolation(f"{model}: score must be an integer 1-5, got {score!r}")
    tied = tied_models(scores)
    if len(tied) > max_tied_models:
        raise RuleViolation(f"at most {max_tied_models} models may share a score on one item; tied: {tied}")
    return bool(tied)


class RatingSession:
    """One annotator's ratings over a set of items, enforcing the paper's tie rules."""

    def __init__(self, *, models: Sequence[str], item_ids: Sequence[Any], annotator: str, seed: int = 0,
                 max_tied_models: int = 2, max_ties: int = 10):
        if len(set(models)) != len(models) or len(models) < 2:
            raise ValueError(f"need at least 2 distinct models, got {list(models)}")
        if len({str(i) for i in item_ids}) != len(item_ids):
            raise ValueError("item ids must be unique")
        self.models, self.item_ids = list(models), list(item_ids)
        self.annotator, self.seed = str(annotator), int(seed)
        self.max_tied_models, self.max_ties = int(max_tied_models), int(max_ties)
        self.scores: dict[Any, dict[str, int]] = {}

    def order(self, item_id: Any) -> list[str]:
        """The models in this item's display order (seeded by seed, annotator and item)."""
        models = list(self.models)
        random.Random(f"{self.seed}|{self.annotator}|{item_id}").shuffle(models)
        return models

    @property
    def ties_used(self) -> int:
        return sum(bool(tied_models(s)) for s in self.scores.values())

    @property
    def pending(self) -> list[Any]:
        return [i for i in self.item_ids if i not in self.scores]

    @property
    def complete(self) -> bool:
        return not self.pending

    def rate(self, item_id: Any, scores: Mapping[str, int]) -> None:
        """Record (or replace) an item's scores; raises :class:`RuleViolation` on a broken rule."""
        if item_id not in self.item_ids:
            raise RuleViolation(f"unknown item {item_id!r}")
        scores = dict(scores)
        tie = check_scores(scores, models=self.models, max_tied_models=self.max_tied_models)
        before = bool(tied_models(self.scores.get(item_id, {})))
        if tie and self.ties_used - before + 1 > self.max_ties:
            raise RuleViolation(f"annotator {self.annotator!r} has used all {self.max_ties} ties allowed "
                                f"over the set; give item {item_id!r} distinct scores")
        self.scores[item_id] = scores

    def to_frame(self) -> pd.DataFrame:
        rows = [{"annotator": self.annotator, "item_id": item, "model": m, "score": s,
                 "position": self.order(item).index(m)}
                for item in self.item_ids if item in self.scores for m, s in self.scores[item].items()]
        return pd.DataFrame(rows, columns=COLUMNS)

    def save_csv(self, path: str | Path) -> Path:
        return atomic_write_text(path, self.to_frame().to_csv(index=False))

    @classmethod
    def from_csv(cls, path: str | Path, *, models: Sequence[str], item_ids: Sequence[Any],
                 **kwargs: Any) -> "RatingSession":
        """Resume a session saved by :meth:`save_csv` (rules re-checked on load)."""
        frame = pd.read_csv(path, dtype={"item_id": str, "annotator": str})
        missing = set(COLUMNS) - set(frame.columns)
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        annotators = set(frame.annotator)
        annotator = kwargs.pop("annotator", None) or (annotators.pop() if len(annotators) == 1 else None)
        if annotator is None:
            raise ValueError(f"{path}: holds several annotators {sorted(set(frame.annotator))}; pass annotator=")
        session = cls(models=models, item_ids=item_ids, annotator=annotator, **kwargs)
        by_str = {str(i): i for i in item_ids}
        for item, part in frame[frame.annotator == annotator].groupby("item_id", sort=False):
            if item not in by_str:
                raise ValueError(f"{path}: unknown item {item!r}")
            session.rate(by_str[item], {m: int(s) for m, s in zip(part.model, part.score)})
        return session


def aggregate_ratings(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean score per model over items and annotators, with its standard error, lowest first."""
    if frame.empty:
        raise ValueError("no ratings to aggregate")
    stats = frame.groupby("model")["score"].agg(["mean", "std", "count"])
    stats["se"] = stats["std"].fillna(0.0) / stats["count"].map(math.sqrt)
    return stats.rename(columns={"count": "n"})[["mean", "se", "n"]].sort_values("mean")


def ratings_figure(ratings: pd.DataFrame, *, paper: Mapping[str, float] | None = None,
                   title: str = "Human rating (1-5)"):
    """Figure 4-style horizontal bars of the mean rating per model (``ratings``: raw rows with
    model/score, or :func:`aggregate_ratings` output); ``paper`` adds the paper's values beside."""
    import matplotlib.pyplot as plt

    stats = aggregate_ratings(ratings) if "score" in ratings.columns else ratings
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(stats) + 1.5))
    y = list(range(len(stats)))
    height = 0.4 if paper else 0.7
    ax.barh([v + (height / 2 if paper else 0) for v in y], stats["mean"], height=height, xerr=stats["se"],
            capsize=3, color="#dd8452", label="ours")
    for v, value in zip(y, stats["mean"]):
        ax.text(value + 0.05, v + (height / 2 if paper else 0), f"{value:.2f}", va="center", fontsize=8)
    if paper:
        ax.barh([v - height / 2 for v in y], [paper.get(m, math.nan) for m in stats.index], height=height,
                color="#4c72b0", label="paper")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_yticks(y, list(stats.index))
    ax.set_xlim(1, 5)
    ax.set_xlabel("mean score")
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)  # displayed once, as the returned object
    return fig


def png_bytes(image) -> bytes:
    """PNG bytes of an HxW or HxWxC array (uint8, or floats in [0, 1])."""
    import numpy as np
    from PIL import Image

    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


class RatingWidget:
    """A thin ipywidgets view over a :class:`RatingSession`: the image, the instruction and the
    answers labelled 'Answer 1..k' in the session's order, a 1-5 picker under each, and 'Save & next'
    (which calls :meth:`RatingSession.rate`, shows any rule violation and saves the CSV atomically).

    ``items``: ``{item_id: {"image": array, "question": str, "answers": {model: text}}}``.
    Display it with ``display(widget.view)`` (or just leave it as a cell's last expression).
    """

    def __init__(self, session: RatingSession, items: Mapping[Any, Mapping[str, Any]], *, path: str | Path):
        import ipywidgets as w

        for item in session.item_ids:
            if item not in items or set(items[item].get("answers", {})) != set(session.models):
                raise ValueError(f"item {item!r}: need answers for exactly {session.models}")
        self.session, self.items, self.path = session, items, Path(path)
        self.image = w.Image(format="png", layout=w.Layout(width="256px"))
        self.question = w.HTML()
        self.answers = [w.HTML(layout=w.Layout(width=f"{90 // len(session.models)}%")) for _ in session.models]
        self.pickers = [w.Dropdown(options=[("-", 0)] + [(str(s), s) for s in SCORES], value=0,
                                   description="score") for _ in session.models]
        self.status = w.HTML()
        save, back = w.Button(description="Save & next", button_style="primary"), w.Button(description="Back")
        save.on_click(lambda _: self.submit())
        back.on_click(lambda _: self.show(max(0, self.index - 1)))
        columns = [w.VBox([a, p]) for a, p in zip(self.answers, self.pickers)]
        self.view = w.VBox([w.HBox([self.image, self.question]), w.HBox(columns), w.HBox([back, save]), self.status])
        pending = session.pending
        self.index = session.item_ids.index(pending[0]) if pending else 0
        self.show(self.index)

    def show(self, index: int) -> None:
        import html

        self.index = index
        item_id = self.session.item_ids[index]
        item = self.items[item_id]
        self.image.value = png_bytes(item["image"])
        self.question.value = f"<b>{index + 1}/{len(self.session.item_ids)}</b> {html.escape(str(item['question']))}"
        previous = self.session.scores.get(item_id, {})
        for k, (box, picker, model) in enumerate(zip(self.answers, self.pickers, self.session.order(item_id))):
            box.value = f"<b>Answer {k + 1}</b><br>{html.escape(str(item['answers'][model]))}"
            picker.value = previous.get(model, 0)
        self.status.value = f"ties used: {self.session.ties_used}/{self.session.max_ties}"

    def submit(self) -> bool:
        """Rate the shown item from the pickers; True when saved (then the next item is shown)."""
        item_id = self.session.item_ids[self.index]
        values = [p.value for p in self.pickers]
        if 0 in values:
            self.status.value = "<span style='color:#cf222e'>score every answer first</span>"
            return False
        try:
            self.session.rate(item_id, dict(zip(self.session.order(item_id), values)))
        except RuleViolation as err:
            self.status.value = f"<span style='color:#cf222e'>{err}</span>"
            return False
        self.session.save_csv(self.path)
        self.show(min(self.index + 1, len(self.session.item_ids) - 1))
        return True

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.view)
