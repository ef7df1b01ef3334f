"""What each pipeline stage depends on, and where its shared artifact lives.

A stage's *key* hashes exactly the config sections that determine its result, chained to the key of
the stage before it. Variants whose configs agree up to a stage get the same key there and share the
artifact: every variant shares the world and the backbones; ``no_diverse_prompts`` shares ``ours``'s
stage 1; ``low_res`` shares ``ours``'s low-resolution stage 1; the two cross-attention variants share
their pretraining.

Artifacts: ``outputs/<scale>/shared/<stage>-<key>/``. The variant's own run directory
``outputs/<scale>/<variant>/seed<k>/<stage>/`` holds the executed notebook, the resolved config and a
``summary.json`` that points at the artifact.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from lynxlib.config import Config, config_hash, stage_identity, without_later_keys
from lynxlib.runs import read_json, resolve

STAGES = ("world", "backbones", "pretrain_low", "pretrain_high", "instruct", "eval")


# Keys added after artifacts were trained without them: at these values (the behaviour before the key
# existed) they stay out of the stage key, so those artifacts, and every stage after them, keep theirs.
# A key is (section, dotted path inside it).
LATER_KEYS: dict[tuple[str, str], object] = {("world", "reading_questions"): 1, ("world", "recall_share"): 0.0,
                                             ("world", "recall_positions"): 0.0,
                                             ("vision", "stem"): "patch", ("backbones", "tower_attr_loss"): 0.0,
                                             ("backbones", "tower_high_words"): False,
                                             ("model", "resampler.locality"): 0.0,
                                             ("model", "resampler.sees_instruction"): False,
                                             ("model", "resampler.media_pos"): "none"}


def _keyed(cfg: Config, section: str) -> dict:
    """``asdict(cfg.<section>)`` less the later keys at their old behaviour."""
    later = {dotted: old for (sec, dotted), old in LATER_KEYS.items() if sec == section}
    return without_later_keys(asdict(getattr(cfg, section)), later)


def _sections(cfg: Config, stage: str) -> dict:
    """The config sections a stage's result depends on (besides its predecessor's key)."""
    if stage == "world":  # the generator's version too: a changed generator must not reuse a stored world
        from lynxlib.world.store import GENERATOR_VERSION

        return {"world": _keyed(cfg, "world"), "data": asdict(cfg.data), "generator": GENERATOR_VERSION}
    if stage == "backbones":
        lm_shape = {k: v for k, v in asdict(cfg.lm).items() if k != "backbone"}
        return {"tokenizer": asdict(cfg.tokenizer), "lm": lm_shape, "vision": _keyed(cfg, "vision"),
                "backbones": _keyed(cfg, "backbones"), "template": cfg.generation.template}
    if stage in ("pretrain_low", "pretrain_high", "instruct"):
        # mixture_from is resolved into mixture at load: how a mixture was written never changes a result
        stage_cfg = {k: v for k, v in stage_identity(getattr(cfg, stage)).items() if k != "mixture_from"}
        model = _keyed(cfg, "model")
        if cfg.model.blind:  # no resampler: its locality prior cannot change a blind run
            model["resampler"].pop("locality", None)
        return {"seed": cfg.seed, "backbone": cfg.lm.backbone, "model": model, "stage": stage_cfg}
    if stage == "eval":
        return {"eval": asdict(cfg.eval), "generation": asdict(cfg.generation)}
    raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")


def previous_stage(cfg: Config, stage: str) -> str | None:
    """The stage whose artifact this one starts from (a disabled high-res stage is skipped)."""
    order = ["world", "backbones", "pretrain_low"]
    if cfg.pretrain_high.enabled:
        order.append("pretrain_high")
    order += ["instruct", "eval"]
    if stage == "pretrain_high" and not cfg.pretrain_high.enabled:
        raise ValueError("pretrain_high is disabled in this config (low_res variant)")
    i = order.index(stage)
    return order[i - 1] if i else None


def stage_key(cfg: Config, stage: str) -> str:
    prev = previous_stage(cfg, stage)
    chain = {"stage": stage, "sections": _sections(cfg, stage), "after": stage_key(cfg, prev) if prev else None}
    return config_hash(chain)


def artifact_dir(cfg: Config, stage: str, out_root: str | Path = "outputs") -> Path:
    """Shared, content-addressed folder of a stage's result."""
    return resolve(out_root) / cfg.scale / "shared" / f"{stage}-{stage_key(cfg, stage)}"


def run_dir(cfg: Config, stage: str, out_root: str | Path = "outputs") -> Path:
    """The folder of a notebook run: executed notebook, resolved config, summary.

    World and backbones are one per scale (``outputs/<scale>/world``); the rest one per variant and
    seed (``outputs/<scale>/<variant>/seed<k>/<stage>``).
    """
    if stage in ("world", "backbones", "ablations", "figures"):
        return resolve(out_root) / cfg.scale / stage
    return resolve(out_root) / cfg.scale / cfg.variant / f"seed{cfg.seed}" / stage


def run_key(cfg: Config, run_stage: str) -> str | None:
    """Key of a notebook-level run: ``pretrain`` covers both stage-1 phases; aggregates have none."""
    if run_stage == "pretrain":
        return stage_key(cfg, "pretrain_high" if cfg.pretrain_high.enabled else "pretrain_low")
    if run_stage in ("ablations", "figures"):
        return None
    return stage_key(cfg, run_stage)


def run_state(run_folder: Path, key: str | None) -> str:
    """A notebook run folder's state for ``key``: 'done', 'stale' (finished under another key: other
    params) or 'unfinished' (no summary yet, still running, or failed)."""
    summary = Path(run_folder) / "summary.json"
    if key is None or not summary.exists():
        return "unfinished"
    data = read_json(summary)
    if data.get("key") != key:
        return "stale"
    return "done" if data.get("status") == "done" else "unfinished"
