"""What the notebooks call: make sure a stage's artifact exists (compute it, or reuse a finished one),
build the model a run needs, and record each notebook run.

Artifacts are content-addressed (:mod:`lynxlib.stages`), so variants share what their configs share;
a lock around each artifact keeps two parallel runs from computing the same one twice.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from lynxlib.config import Config, dump
from lynxlib.runs import atomic_write_text, env_info, file_lock, resolve, seed_everything, set_threads, write_json
from lynxlib.stages import artifact_dir, previous_stage, run_dir, run_key

TRAINING_STAGES = ("pretrain_low", "pretrain_high", "instruct")


# ------------------------------------------------------------------------------------ run records
def start_run(cfg: Config, run_stage: str, out_root: str | Path = "outputs") -> Path:
    """Create the run directory with the resolved config and environment; seed and pin threads."""
    folder = run_dir(cfg, run_stage, out_root)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "config.yaml", dump(cfg))
    write_json(folder / "env.json", env_info())
    set_threads(cfg.threads)
    seed_everything(cfg.seed)
    return folder


def finish_run(cfg: Config, run_stage: str, summary: dict, out_root: str | Path = "outputs") -> Path:
    """``summary.json`` with status "done" and the run's key, written last: the runner reuses it."""
    record = {"status": "done", "key": run_key(cfg, run_stage), "stage": run_stage, **summary}
    return write_json(run_dir(cfg, run_stage, out_root) / "summary.json", record)


# ------------------------------------------------------------------------------------ world, stage 0
def ensure_world(cfg: Config, out_root: str | Path = "outputs"):
    """The world's training and evaluation splits on disk (generated once per world config)."""
    from lynxlib.world import WorldStore, write_world

    folder = artifact_dir(cfg, "world", out_root)
    with file_lock(folder.parent / f".{folder.name}.lock"):
        write_world(cfg.world, folder)
    return WorldStore(folder)


def ensure_backbones(cfg: Config, out_root: str | Path = "outputs"):
    """Stage 0: the tokenizer, "LLaMA", "Vicuna" and the tower (trained once per scale)."""
    from lynxlib.backbones import train_backbones

    world = ensure_world(cfg, out_root)
    return train_backbones(cfg, out_dir=artifact_dir(cfg, "backbones", out_root), world=world)


@dataclass
class Backbones:
    tokenizer: object
    lm: torch.nn.Module
    visual: torch.nn.Module | None     # the open_clip visual tower (None for a blind model)
    tower_checkpoint: Path | None      # what the feature cache is keyed by


def load_backbones(cfg: Config, out_root: str | Path = "outputs") -> Backbones:
    """The frozen backbones a run builds on: stage-0 outputs (smoke/tiny) or the paths in params (paper)."""
    from lynxlib.build import fit_vocab, load_lm
    from lynxlib.tokenizer import load_tokenizer
    from lynxlib.vision import load_clip

    if cfg.scale == "paper":
        lm_path = cfg.lm.vicuna_path if cfg.lm.backbone == "vicuna" else cfg.lm.llama_path
        missing = [k for k, v in (("lm." + cfg.lm.backbone + "_path", lm_path),
                                  ("vision.checkpoint", cfg.vision.checkpoint)) if not v]
        if missing:
            raise ValueError(f"paper scale needs {', '.join(missing)} in params/paper.yaml (a local path or hub id)")
        tok = load_tokenizer(cfg.tokenizer.path or lm_path)
        tower_ckpt = Path(cfg.vision.checkpoint)
    else:
        paths = ensure_backbones(cfg, out_root).paths
        tok = load_tokenizer(paths.tokenizer)
        lm_path = paths.vicuna if cfg.lm.backbone == "vicuna" else paths.llama
        tower_ckpt = paths.tower
    lm = load_lm(lm_path, dtype=cfg.lm.dtype)
    fit_vocab(lm, tok)
    visual = None if cfg.model.blind else load_clip(tower_ckpt, cfg).visual
    return Backbones(tok, lm, visual, None if cfg.model.blind else tower_ckpt)


# ------------------------------------------------------------------------------------ the model
def load_stage_weights(model: torch.nn.Module, folder: Path) -> list[str]:
    """Load a finished stage's ``final/model.safetensors`` (a subset of the model's parameters)."""
    saved = load_file(str(folder / "final" / "model.safetensors"))
    params = dict(model.named_parameters())
    unexpected = sorted(set(saved) - set(params))
    if unexpected:
        raise KeyError(f"{folder}: weights for parameters this model lacks: {unexpected[:5]}")
    with torch.no_grad():
        for name, tensor in saved.items():
            params[name].copy_(tensor)
    return sorted(saved)


def stage_chain(cfg: Config, upto: str) -> list[str]:
    """Training stages whose weights a model at ``upto`` carries, oldest first (``upto`` included)."""
    chain, stage = [], upto
    while stage in TRAINING_STAGES:
        chain.append(stage)
        stage = previous_stage(cfg, stage)
    return chain[::-1]


def build_run_model(cfg: Config, backbones: Backbones, *, after: list[str], out_root: str | Path = "outputs"):
    """A LynxModel with the weights of the finished stages ``after`` loaded in order."""
    from lynxlib.build import build_model

    # new modules' init must not depend on what this process computed before (resume == fresh run)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, tokenizer=backbones.tokenizer, lm=backbones.lm, clip_visual_or_tower=backbones.visual)
    for stage in after:
        folder = artifact_dir(cfg, stage, out_root)
        if not (folder / "DONE").is_file():
            raise FileNotFoundError(f"stage {stage} has not finished: no {folder / 'DONE'}")
        load_stage_weights(model, folder)
    return model


def image_size(cfg: Config, resolution: str) -> int:
    return cfg.world.image_size_high if resolution == "high" else cfg.world.image_size_low


# ------------------------------------------------------------------------------------ training
@dataclass
class StageOutcome:
    stage: str
    folder: Path
    result: object        # lynxlib.train.TrainResult
    params: object        # lynxlib.build.ParamTable
    wall_s: float


def feature_cache(cfg: Config, backbones: Backbones, size: int, out_root: str | Path = "outputs"):
    """The tower-token cache for this tower checkpoint, feature layer and resolution (shared by runs)."""
    from lynxlib.features import FeatureCache, cache_key

    key = cache_key(tower_checkpoint=backbones.tower_checkpoint, feature_layer=cfg.vision.feature_layer,
                    resolution=size)
    return FeatureCache(resolve(out_root) / cfg.scale / "features", key)


def world_visuals(cfg: Config, world, model, backbones: Backbones, resolution: str, *, split: str = "train",
                  out_root: str | Path = "outputs"):
    """The split's images/videos at a resolution, through the frozen-feature cache (tiny/smoke)."""
    from lynxlib.data import ArrayVisuals

    size = image_size(cfg, resolution)
    images, videos = world.images(split, size), world.videos(split, size)
    if model.tower is None:
        return ArrayVisuals(images=images, videos=videos)
    model.set_resolution(size)
    cache = feature_cache(cfg, backbones, size, out_root)
    cache.ensure(f"{split}_images", model.tower, images)
    cache.ensure(f"{split}_videos", model.tower, videos)
    return ArrayVisuals(images=images, videos=videos, cache=cache,
                        cache_names={"image": f"{split}_images", "video": f"{split}_videos"})


def ensure_stage(cfg: Config, stage: str, out_root: str | Path = "outputs") -> StageOutcome:
    """Train one stage (or reuse its finished artifact), starting from the stages before it."""
    from lynxlib.build import freeze_for_stage
    from lynxlib.data import MixtureBatches, PromptFormatter
    from lynxlib.train import train_stage

    stage_cfg = getattr(cfg, stage)
    if not stage_cfg.enabled:
        raise ValueError(f"{stage} is disabled in this config")
    started = time.perf_counter()
    world, backbones = ensure_world(cfg, out_root), load_backbones(cfg, out_root)
    chain = stage_chain(cfg, stage)
    for earlier in chain[:-1]:
        ensure_stage(cfg, earlier, out_root)
    model = build_run_model(cfg, backbones, after=chain[:-1], out_root=out_root)
    params = freeze_for_stage(model, stage_cfg.trainable)
    folder = artifact_dir(cfg, stage, out_root)
    with file_lock(folder.parent / f".{folder.name}.lock"):
        visuals = world_visuals(cfg, world, model, backbones, stage_cfg.resolution, out_root=out_root)
        formatter = PromptFormatter(tokenizer=backbones.tokenizer, template=cfg.generation.template,
                                    num_image_tokens=model.num_image_tokens, max_len=stage_cfg.max_seq_len)
        batches = MixtureBatches(world_cfg=cfg.world, scenes=world.scenes("train"), clips=world.clips("train"),
                                 visuals=visuals, formatter=formatter, stage=stage_cfg, seed=cfg.seed,
                                 sees_images=not cfg.model.blind,
                                 pass_has_visual=cfg.model.fusion == "cross_attn" and not cfg.model.blind)
        result = train_stage(model=model, batches=batches, cfg=stage_cfg, out_dir=folder, seed=cfg.seed)
    return StageOutcome(stage, folder, result, params, time.perf_counter() - started)


def run_pretraining(cfg: Config, out_root: str | Path = "outputs") -> list[StageOutcome]:
    """Stage 1: low resolution, then (unless the low_res variant disables it) the high-resolution run."""
    stages = ["pretrain_low"] + (["pretrain_high"] if cfg.pretrain_high.enabled else [])
    return [ensure_stage(cfg, stage, out_root) for stage in stages]



# ------------------------------------------------------------------------------------ evaluation
def evaluate_run(cfg: Config, out_root: str | Path = "outputs"):
    """Evaluate the run's final model (after stage 2) into its eval run directory."""
    from lynxlib.evaluate.harness import evaluate_model

    world, backbones = ensure_world(cfg, out_root), load_backbones(cfg, out_root)
    chain = stage_chain(cfg, "instruct")
    for stage in chain:
        ensure_stage(cfg, stage, out_root)
    model = build_run_model(cfg, backbones, after=chain, out_root=out_root).eval()
    cache = None
    if model.tower is not None:  # encode the eval sets' images once for every variant
        cache = feature_cache(cfg, backbones, image_size(cfg, cfg.eval.resolution), out_root)
    return evaluate_model(cfg, model=model, tokenizer=backbones.tokenizer, world=world, cache=cache,
                          out_dir=run_dir(cfg, "eval", out_root))
