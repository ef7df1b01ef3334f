"""Loss curves from ``metrics.jsonl`` (written by :func:`lynxlib.train.train_stage`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

Rows = list[dict]


def read_metrics(source: str | Path | Rows) -> Rows:
    """Rows from a list of dicts, a ``metrics.jsonl`` file, or a stage folder holding one."""
    if not isinstance(source, (str, Path)):
        return list(source)
    path = Path(source)
    if path.is_dir():
        path = path / "metrics.jsonl"
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a killed run
            continue
    return rows


def _runs(metrics) -> list:
    """One run (rows or a path) or several: always a list of runs."""
    if isinstance(metrics, (str, Path)) or (isinstance(metrics, list) and metrics and isinstance(metrics[0], dict)):
        return [metrics]
    return list(metrics)


def _smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average, so a point never uses later steps."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def loss_curve(metrics, labels: Iterable[str] | None = None, *, key: str = "loss", smooth: int = 1,
               logy: bool = False, title: str | None = None) -> Figure:
    """Plot ``key`` against ``step`` for one run or several (rows, ``metrics.jsonl`` paths or stage folders).

    ``smooth`` > 1 draws a trailing moving average over that many logged points with the raw curve
    faint behind it. Returns a closed Figure: Jupyter displays the returned object once, and loops
    that draw many curves do not accumulate open pyplot figures.
    """
    runs = _runs(metrics)
    labels = list(labels) if labels is not None else [
        str(run) if isinstance(run, (str, Path)) else f"run {i}" for i, run in enumerate(runs)]
    if len(labels) != len(runs):
        raise ValueError(f"{len(runs)} runs but {len(labels)} labels")
    # Made through pyplot (which installs Jupyter's inline display of Figures), then closed below.
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for run, label in zip(runs, labels):
        rows = [r for r in read_metrics(run) if key in r and "step" in r]
        steps, values = [r["step"] for r in rows], [r[key] for r in rows]
        if smooth > 1:
            line, = ax.plot(steps, values, alpha=0.25)
            ax.plot(steps, _smooth(values, smooth), color=line.get_color(), label=label)
        else:
            ax.plot(steps, values, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    plt.close(fig)
    return fig
