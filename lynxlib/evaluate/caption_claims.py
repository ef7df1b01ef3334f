"""Are the objects a caption names where it says they are? Position binding read from free text.

A captioning model (stage 1, or a stage-2 model asked to describe) writes phrases such as "a large
red star at the top left". :func:`caption_claims` parses every "<colour> <shape> ... <location>"
phrase of a reply; :func:`claim_frame` checks each against the scene the reply was about:

* ``exists``: the scene has an object of that colour and shape (objects never share both);
* ``right``: for an existing object, the claimed cell is its cell;
* ``exists_elsewhere``: the next scene (k + 1) has such an object: how often a claim names a real
  object by chance, the floor of ``exists``.

:func:`binding_summary` puts the claimed-cell accuracy beside two floors that need no binding: the
same claims' cells shuffled among themselves (a model that knows *which* cells hold objects and how
often it names each, but not which object is where), and the most often claimed cell. A position
accuracy at the shuffled floor means the captions name objects and places, not objects at places.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from lynxlib.world.language import location


CAPTION_PARTS = ("openvqa", "describe")  # Open-VQA-mini replies; captions asked for its scenes
COLUMNS = ["uid", "colour", "shape", "cell", "exists", "true_cell", "right", "exists_elsewhere"]


@dataclass(frozen=True)
class Claim:
    """One "<colour> <shape> <location>" phrase of a reply: the object and the grid cell it names."""

    colour: str
    shape: str
    cell: tuple[int, int]


def location_cells(grid: int) -> dict[str, tuple[int, int]]:
    """{location phrase: cell}, e.g. 'at the top left' -> (0, 0), for every cell of a grid x grid scene."""
    return {location(r, c, grid): (r, c) for r in range(grid) for c in range(grid)}


def claim_pattern(*, colours: Sequence[str], shapes: Sequence[str], grid: int) -> re.Pattern:
    """A regex for one object claim; longer locations first, so 'at the top left' never reads as 'at the top'."""
    def alternatives(items) -> str:
        return "|".join(re.escape(x) for x in sorted(items, key=len, reverse=True))

    motion = r"(?: moving (?:to the )?\w+)?"  # 'a red star moving up at the top' (video captions)
    return re.compile(rf"\b({alternatives(colours)}) ({alternatives(shapes)}){motion} "
                      rf"({alternatives(location_cells(grid))})\b", re.IGNORECASE)


def caption_claims(text: str, *, pattern: re.Pattern, grid: int) -> list[Claim]:
    """Every object claim in ``text``, in order (plural group phrases like 'six small stars' have no place)."""
    cells = location_cells(grid)
    return [Claim(colour.lower(), shape.lower(), cells[where.lower()]) for colour, shape, where in pattern.findall(text)]


def scene_index(uid: str) -> int:
    """'openvqa/image/17' -> 17: the Open-VQA-mini scene a prediction is about."""
    try:
        return int(uid.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        raise ValueError(f"prediction uid {uid!r} does not end in a scene index ('<part>/image/<k>')") from None


def claim_frame(predictions: Sequence[dict], scenes: Sequence, *, colours: Sequence[str],
                shapes: Sequence[str]) -> pd.DataFrame:
    """One row per claim in the replies about Open-VQA-mini images (``COLUMNS``; uid ``<part>/image/<k>`` is
    about scene k; parts in :data:`CAPTION_PARTS`)."""
    if not scenes:
        raise ValueError("claim_frame needs the Open-VQA-mini scenes the predictions are about; got none")
    grid = scenes[0].grid
    pattern = claim_pattern(colours=colours, shapes=shapes, grid=grid)
    rows = []
    for p in predictions:
        if p.get("part") not in CAPTION_PARTS or p.get("kind") != "image":
            continue
        k = scene_index(p["uid"])
        if not 0 <= k < len(scenes):
            raise ValueError(f"prediction {p['uid']!r} names scene {k}; the world has {len(scenes)} Open-VQA-mini images")
        where = {(o.colour, o.shape): (o.row, o.col) for o in scenes[k].objects}
        elsewhere = {(o.colour, o.shape) for o in scenes[(k + 1) % len(scenes)].objects}
        for claim in caption_claims(p["prediction"], pattern=pattern, grid=grid):
            true_cell = where.get((claim.colour, claim.shape))
            rows.append({"uid": p["uid"], "colour": claim.colour, "shape": claim.shape, "cell": claim.cell,
                         "exists": true_cell is not None, "true_cell": true_cell, "right": true_cell == claim.cell,
                         "exists_elsewhere": (claim.colour, claim.shape) in elsewhere})
    return pd.DataFrame(rows, columns=COLUMNS)


def _accuracy_and_floors(claimed: np.ndarray, truth: np.ndarray, rng: np.random.Generator,
                         shuffles: int) -> tuple[float, float, float]:
    """(accuracy, shuffled floor, most-claimed floor) of claimed labels against true ones."""
    shuffled = np.mean([np.mean(rng.permutation(claimed) == truth) for _ in range(shuffles)])
    top = pd.Series(claimed).value_counts().index[0]  # ties: first-seen order, deterministic
    return float(np.mean(claimed == truth)), float(shuffled), float(np.mean(truth == top))


def binding_summary(claims: pd.DataFrame, *, shuffles: int = 200, seed: int = 0) -> dict:
    """Claimed-cell (and row, column) accuracy on existing objects beside two floors that need no binding.

    The shuffled floor permutes the claimed cells among the existing-object claims (``shuffles`` times,
    seeded) and scores them against the true cells: it keeps how often the model names each cell. The
    most-claimed floor names the most often claimed cell for every object.
    """
    found = claims[claims["exists"]]
    summary = {"replies_with_claims": int(claims["uid"].nunique()), "claims": int(len(claims)),
               "exists": float(claims["exists"].mean()) if len(claims) else float("nan"),
               "exists_floor": float(claims["exists_elsewhere"].mean()) if len(claims) else float("nan"),
               "located": int(len(found))}
    rng = np.random.default_rng(seed)
    for part, pick in (("cell", lambda rc: f"{rc[0]},{rc[1]}"), ("row", lambda rc: rc[0]), ("col", lambda rc: rc[1])):
        if found.empty:
            summary.update({f"{part}_acc": float("nan"), f"{part}_shuffled_floor": float("nan"),
                            f"{part}_most_claimed_floor": float("nan")})
            continue
        claimed = np.array([pick(rc) for rc in found["cell"]])
        truth = np.array([pick(rc) for rc in found["true_cell"]])
        acc, shuffled, top = _accuracy_and_floors(claimed, truth, rng, shuffles)
        summary.update({f"{part}_acc": acc, f"{part}_shuffled_floor": shuffled, f"{part}_most_claimed_floor": top})
    summary["cell_se"] = float(np.sqrt(summary["cell_acc"] * (1 - summary["cell_acc"]) / max(len(found), 1)))
    return summary
