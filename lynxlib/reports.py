"""Tables the notebooks show: what trains, how the stages ran, what the paper scale costs.

Functions take configs or results and return pandas DataFrames (or the dict a run records).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from lynxlib.config import load

if TYPE_CHECKING:
    from lynxlib.pipeline import StageOutcome


def stage_table(outcomes: list[StageOutcome]):
    """One row per trained stage: steps, final loss, throughput, wall time, trainable parameters."""
    rows = [{"stage": o.stage, "steps": o.result.steps, "final_loss": round(o.result.final_loss, 4),
             "samples_per_s": round(o.result.samples_per_s, 1), "wall_s": round(o.wall_s, 1),
             "trainable": o.params.trainable, "resumed_from": o.result.resumed_from} for o in outcomes]
    return pd.DataFrame(rows).set_index("stage")


def run_summary(outcomes: list[StageOutcome]) -> dict:
    """What ``finish_run`` records for a training notebook."""
    return {"stages": {o.stage: {"folder": str(o.folder), "steps": o.result.steps,
                                 "final_loss": o.result.final_loss, "wall_s": o.wall_s} for o in outcomes}}


def mixture_table(stage_cfg):
    """A stage's task mixture: weight, share, and the visual kind of each task; with an opening, each
    task's share in the stage's first ``opening_steps`` too (``opening share``)."""
    from lynxlib.world import TASKS

    mixture, opening = stage_cfg.mixture, stage_cfg.opening_mixture if stage_cfg.opening_steps else {}
    total, opening_total = sum(mixture.values()), sum(opening.values())
    rows = []
    for t in [*mixture, *(t for t in opening if t not in mixture)]:
        row = {"task": t, "kind": TASKS[t].visual_kind, "category": TASKS[t].category,
               "weight": float(mixture.get(t, 0.0)), "share": round(mixture.get(t, 0.0) / total, 3)}
        if opening:
            row["opening share"] = round(opening.get(t, 0.0) / opening_total, 3)
        rows.append(row)
    return pd.DataFrame(rows).set_index("task")



def parameter_table(params: str, variants=("ours", "cross_attn", "cross_attn_tune_lm", "blind"),
                    out_root: str = "outputs") -> pd.DataFrame:
    """Parameters per group (trainable in stage 2 or frozen) for several variants' models."""
    from lynxlib.build import freeze_for_stage
    from lynxlib.pipeline import build_run_model, load_backbones

    columns = {}
    for variant in variants:
        cfg = load(params, variant)
        model = build_run_model(cfg, load_backbones(cfg, out_root), after=[], out_root=out_root)
        table = freeze_for_stage(model, cfg.instruct.trainable).to_frame().set_index("group")
        columns[variant] = [f"{n:,}" + (" *" if t else "") for n, t in zip(table["params"], table["trainable"])]
        index = table.index
    frame = pd.DataFrame(columns, index=index)
    frame.attrs["note"] = "* trained in stage 2"
    return frame


def paper_counts_table() -> pd.DataFrame:
    """The paper-scale model's parameters per group for adapters after every block (the paper's text,
    M = 1) and every second block (the released config, M = 2), built on the meta device."""
    from lynxlib.build import paper_scale_counts

    columns = {}
    for every in (1, 2):
        counts = paper_scale_counts(adapter_every=every)
        columns[f"M = {every}"] = {k: f"{v:,}" for k, v in counts.items() if isinstance(v, int)}
    frame = pd.DataFrame(columns)
    frame.attrs["tower"] = paper_scale_counts(adapter_every=2)["tower_name"]
    return frame
