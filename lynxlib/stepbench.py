"""Timed training steps on the world's real batches: what ``benchmarks/feature_cache.py`` and
``benchmarks/stages.py`` share.

* :func:`bench_backbones` gives the frozen backbones a benchmark builds on: stage 0's (when its
  ``DONE.json`` exists, or at smoke scale where building it takes seconds) or the config's shapes at
  random init (throughput does not depend on the weights' values). A random-init model still uses the
  tokenizer stage 0 would train (same texts, same vocabulary), so its sequences have the real lengths.
* :func:`bench_visuals` gives a model's inputs with or without the frozen-feature cache. Benchmark
  caches live under ``<out_root>/<scale>/bench/features`` (never the training pipeline's cache), keyed by
  a hash of the tower's weights; how long each array took to build is recorded beside it.
* :class:`Trainer` runs one optimizer step (forward, backward, gradient clipping, AdamW on the
  trainable groups, LR schedule) with the parts timed separately: making the batch and the compute.

No checkpoint, log or metrics file is written: the step is ``train_stage``'s without its I/O.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lynxlib.config import Config, StageConfig
from lynxlib.pipeline import Backbones, image_size
from lynxlib.runs import file_lock, read_json, resolve, write_json

BUILD_RECORD = "bench_build.json"  # in a cache folder: seconds each array took to encode


# ------------------------------------------------------------------------------------ backbones
def bench_root(cfg: Config, out_root: str | Path) -> Path:
    """Where benchmarks keep what they make (caches, a random-init tokenizer)."""
    return resolve(out_root) / cfg.scale / "bench"


def stage0_done(cfg: Config, out_root: str | Path) -> bool:
    from lynxlib.stages import artifact_dir

    return (artifact_dir(cfg, "backbones", out_root) / "DONE.json").is_file()


def backbone_source(cfg: Config, *, out_root: str | Path, wanted: str = "auto") -> str:
    """``"stage0"`` or ``"random"``. ``auto``: stage 0 if finished, or smoke scale (it builds in seconds)."""
    if wanted not in ("auto", "stage0", "random"):
        raise ValueError(f"backbones must be auto, stage0 or random, got {wanted!r}")
    if cfg.scale == "paper":
        raise ValueError("these benchmarks train on the synthetic world (smoke/tiny); at paper scale use "
                         "benchmarks/paper_scale.py")
    if wanted != "auto":
        return wanted
    return "stage0" if cfg.scale == "smoke" or stage0_done(cfg, out_root) else "random"


def source_note(source: str) -> str:
    """One line for the output: what the model's frozen weights are."""
    if source == "stage0":
        return "stage-0 backbones (trained tokenizer, Vicuna-style LM, CLIP tower)"
    return ("LM and tower of the params' shapes at RANDOM INIT (stage 0 not finished here, or --backbones random), with the "
            "tokenizer stage 0 would train: step times do not depend on the weights' values")


def stage0_tokenizer(cfg: Config, world, *, out_root: str | Path):
    """The tokenizer stage 0 trains (same texts, same vocabulary size), trained once and kept under the
    bench folder (keyed by the world and the vocabulary size)."""
    from lynxlib.backbones.lm import world_texts
    from lynxlib.backbones.tower import world_pairs
    from lynxlib.config import config_hash
    from lynxlib.tokenizer import load_tokenizer, train_tokenizer

    key = config_hash({"world": world.manifest["config_hash"], "vocab": cfg.tokenizer.vocab_size})
    folder = bench_root(cfg, out_root) / f"tokenizer-{key}"
    with file_lock(folder.parent / f".{folder.name}.lock"):
        if not (folder / "tokenizer.json").is_file():
            texts = world_texts(world)
            _, captions, _ = world_pairs(cfg, world)
            lines = texts["corpus"] + [x for s in texts["instructions"] for turn in s.turns for x in turn] + captions
            train_tokenizer(lines, vocab_size=cfg.tokenizer.vocab_size).save_pretrained(folder)
    return load_tokenizer(folder)


def random_backbones(cfg: Config, tokenizer) -> Backbones:
    """The config's LM and tower shapes at random init (seeded: every call gives the same weights)."""
    from lynxlib.backbones.lm import build_base_lm
    from lynxlib.vision import create_clip

    torch.manual_seed(cfg.backbones.seed)
    lm = build_base_lm(cfg, tokenizer)
    clip = create_clip(cfg, vocab_size=len(tokenizer), pad_id=tokenizer.pad_token_id, eos_id=tokenizer.eos_token_id)
    return Backbones(tokenizer, lm, clip.visual, None)


def bench_backbones(cfg: Config, world, *, out_root: str | Path, source: str) -> Backbones:
    """Fresh backbones (a new LM each call: building a model inserts adapters into it in place)."""
    from lynxlib.pipeline import load_backbones

    if source == "stage0":
        return load_backbones(cfg, out_root)
    return random_backbones(cfg, stage0_tokenizer(cfg, world, out_root=out_root))


def bench_model(cfg: Config, backbones: Backbones, *, stage: StageConfig):
    """``ours``'s LynxModel (fresh trainable modules, seeded) frozen for ``stage``, at its resolution."""
    from lynxlib.build import build_model, freeze_for_stage

    torch.manual_seed(cfg.seed)
    model = build_model(cfg, tokenizer=backbones.tokenizer, lm=backbones.lm, clip_visual_or_tower=backbones.visual)
    table = freeze_for_stage(model, stage.trainable)
    model.set_resolution(image_size(cfg, stage.resolution))
    return model, table


# ------------------------------------------------------------------------------------ visual inputs
def weights_hash(module: torch.nn.Module) -> str:
    """A short hash of a module's parameters and buffers (names, shapes, values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def bench_cache(cfg: Config, model, *, resolution: str, out_root: str | Path):
    """The benchmark's FeatureCache for ``model``'s tower at ``resolution``."""
    from lynxlib.features import FeatureCache

    key = f"{weights_hash(model.tower)}-L{cfg.vision.feature_layer}-{image_size(cfg, resolution)}px"
    return FeatureCache(bench_root(cfg, out_root) / "features", key)


def ensure_cache(cache, *, tower, arrays: dict[str, np.ndarray]) -> dict[str, dict]:
    """Encode each named array once, timing it; returns {name: {seconds, frames, measured_now}}.

    An array encoded by an earlier run reports the seconds recorded then (``measured_now`` False).
    """
    record_path = cache.folder / BUILD_RECORD
    record = read_json(record_path) if record_path.is_file() else {}
    out = {}
    for name, frames in arrays.items():
        built = not cache.has(name)
        started = time.perf_counter()
        cache.ensure(name, tower, frames)
        if built or name not in record:
            record[name] = {"seconds": time.perf_counter() - started, "threads": torch.get_num_threads(),
                            "frames": int(np.prod(frames.shape[:-3])), "built_by_this_call": built}
            write_json(record_path, record)
        out[name] = {**record[name], "measured_now": built}
    return out


def bench_visuals(cfg: Config, world, model, *, resolution: str, cached: bool, out_root: str | Path,
                  rebuild: bool = False):
    """(ArrayVisuals over the train split at ``resolution``, cache build record or None)."""
    from lynxlib.data import ArrayVisuals

    size = image_size(cfg, resolution)
    images, videos = world.images("train", size), world.videos("train", size)
    if not cached:
        return ArrayVisuals(images=images, videos=videos), None
    cache = bench_cache(cfg, model, resolution=resolution, out_root=out_root)
    if rebuild:  # time the encoding now, not a record of an earlier run
        shutil.rmtree(cache.folder, ignore_errors=True)
    built = ensure_cache(cache, tower=model.tower, arrays={"train_images": images, "train_videos": videos})
    names = {"image": "train_images", "video": "train_videos"}
    return ArrayVisuals(images=images, videos=videos, cache=cache, cache_names=names), built


def stage_batches(cfg: Config, world, *, model, tokenizer, stage: StageConfig, visuals):
    """The stage's MixtureBatches over the world's train split (as ``pipeline.ensure_stage`` builds them)."""
    from lynxlib.data import MixtureBatches, PromptFormatter

    formatter = PromptFormatter(tokenizer=tokenizer, template=cfg.generation.template,
                                num_image_tokens=model.num_image_tokens, max_len=stage.max_seq_len)
    return MixtureBatches(world_cfg=cfg.world, scenes=world.scenes("train"), clips=world.clips("train"),
                          visuals=visuals, formatter=formatter, stage=stage, seed=cfg.seed,
                          sees_images=not cfg.model.blind,
                          pass_has_visual=cfg.model.fusion == "cross_attn" and not cfg.model.blind)


def with_batch_size(stage: StageConfig, *, batch_size: int | None) -> StageConfig:
    return stage if not batch_size else dataclasses.replace(stage, batch_size=batch_size)


# ------------------------------------------------------------------------------------ the step
def batch_kind(batch: dict) -> str:
    """"video", "image" or "text": what a micro-batch carries (one visual kind per batch)."""
    visual = batch.get("pixel_values", batch.get("vision_tokens"))
    if visual is None:
        return "text"
    return "video" if visual.shape[1] > 1 else "image"  # (B, F, ...) from ArrayVisuals


@dataclass
class StepTiming:
    loss: float
    samples: int
    kind: str          # batch_kind of the step's batch
    data_s: float      # building the batch (prompt encoding, pixels or cached tokens)
    compute_s: float   # forward + backward + clip + AdamW + schedule
    text_tokens: int = 0    # attention_mask ones: the tokens the LM must process ...
    text_slots: int = 0     # ... of the B x T it does process (the rest is right-padding)

    @property
    def step_s(self) -> float:
        return self.data_s + self.compute_s


class Trainer:
    """One model, its AdamW over the trainable groups (``train.param_groups``) and its schedule."""

    def __init__(self, *, model, stage: StageConfig, batches):
        from lynxlib.train import param_groups, warmup_cosine

        self.model, self.stage, self.batches = model, stage, batches
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(param_groups(model, weight_decay=stage.weight_decay), lr=stage.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(stage))
        model.train()

    def loss_and_grads(self, batch: dict) -> tuple[float, list[torch.Tensor]]:
        """Forward + backward on ``batch`` without an update: (loss, gradient of each trainable tensor)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.model(**batch).loss
        loss.backward()
        grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in self.params]
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach()), grads

    def update(self, batch: dict) -> float:
        """One optimizer step on ``batch``; returns its loss."""
        loss = self.model(**batch).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {float(loss)}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.stage.clip_grad if self.stage.clip_grad > 0 else math.inf)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def step(self, index: int) -> StepTiming:
        """Make batch ``index`` and train on it, timing both parts."""
        started = time.perf_counter()
        batch = self.batches.batch(index)
        made = time.perf_counter()
        loss = self.update(batch)
        return StepTiming(loss, int(batch["input_ids"].shape[0]), batch_kind(batch), made - started,
                          time.perf_counter() - made, text_tokens=int(batch["attention_mask"].sum()),
                          text_slots=int(batch["attention_mask"].numel()))


def tower_seconds(model, batch: dict) -> float:
    """Seconds of the tower's forward alone on a batch's pixels (0 for a text-only batch), run as the
    training step runs it: grad mode on (nothing in the tower requires grad, so no graph is kept)."""
    if "pixel_values" not in batch:
        return 0.0
    started = time.perf_counter()
    model.tower.encode_frames(batch["pixel_values"])
    return time.perf_counter() - started


def machine() -> dict:
    """What the timings ran on; the load average says how busy the shared cores were."""
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
