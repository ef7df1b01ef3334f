"""Benchmark plumbing: LynxModel at any params scale with random weights, synthetic batches, timers.

Used by ``benchmarks/paper_scale.py``. :func:`build_random` builds the model of a config directly on a
device (at ``paper`` scale: EVA ViT-g/14 + a LLaMA-7B-shaped decoder with a pad token) without any
checkpoint: throughput does not depend on the weights' values. Precision modes:

* ``amp``: frozen weights (tower, LM) in bf16, trainable ones (resampler, adapters, frame embedding) in
  fp32, forward under bf16 autocast (mixed precision as a training run would use it);
* ``bf16``: every weight in bf16, no autocast;
* ``fp32``: everything fp32 (the CPU default).
"""
from __future__ import annotations

import contextlib
import resource
import time

import torch

from lynxlib.adapters import Adapter
from lynxlib.build import build_lm
from lynxlib.lynx import LynxModel
from lynxlib.vision import VisionTower, create_clip

PRECISIONS = ("amp", "bf16", "fp32")


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def special_ids(cfg) -> dict[str, int]:
    """LLaMA's ids at paper scale (32000 + pad); the project's BPE layout otherwise. <image> lies past the
    vocabulary (placeholders are replaced before the embedding lookup)."""
    if cfg.scale == "paper":
        return {"vocab": 32001, "pad": 32000, "bos": 1, "eos": 2, "image": 32001, "first_text": 3}
    return {"vocab": cfg.tokenizer.vocab_size, "pad": 0, "bos": 1, "eos": 2,
            "image": cfg.tokenizer.vocab_size, "first_text": 5}


def build_random(cfg, *, device: torch.device, precision: str, attn: str = "sdpa") -> LynxModel:
    """The params' model at random init, built directly on ``device``; frozen weights in bf16 unless fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    frozen = torch.float32 if precision == "fp32" else torch.bfloat16
    ids = special_ids(cfg)
    with torch.device(device):
        with default_dtype(frozen):
            lm = build_lm(cfg.lm, vocab_size=ids["vocab"], pad_id=ids["pad"], bos_id=ids["bos"], eos_id=ids["eos"])
        visual = create_clip(cfg, device=device).visual.to(frozen)  # the text tower is dropped
        tower = VisionTower(visual, feature_layer=cfg.vision.feature_layer)
        model = LynxModel(lm=lm, tower=tower, cfg=cfg.model, image_token_id=ids["image"], num_frames=cfg.world.frames)
    trainable_modules = [model.resampler, model.frame_pos, *(m for m in model.modules() if isinstance(m, Adapter))]
    for module in trainable_modules:  # amp keeps fp32 master weights; bf16 trains in bf16
        module.to(torch.bfloat16 if precision == "bf16" else torch.float32)
    lm.set_attn_implementation(attn)
    return model


def set_checkpointing(model: LynxModel, on: bool) -> None:
    if on:
        model.lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    elif model.lm.is_activation_checkpointing:
        model.lm.activation_checkpointing_disable()


def compile_blocks(model: LynxModel) -> None:
    tower = model.tower
    blocks = tower.visual.trunk.blocks if tower.arch == "eva" else tower.visual.transformer.resblocks
    for block in [*model.lm.model.layers, *blocks[: tower.num_blocks]]:
        block.compile()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(device: torch.device) -> tuple[float, str]:
    """(GiB, what it measures): the CUDA caching allocator's peak, or the process's peak RSS on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30, "cuda max_memory_allocated (this section)"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "process peak RSS (whole run so far)"


def timed(fn, *, steps: int, warmup: int, device: torch.device) -> tuple[float, object]:
    """(seconds per call over ``steps`` calls after ``warmup`` untimed ones, the last call's result)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        out = fn()
    sync(device)
    return (time.perf_counter() - start) / steps, out


def autocast(device: torch.device, precision: str):
    if precision == "amp":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ---------------------------------------------------------------------------------------- batches
def token_batch(ids: dict, *, batch: int, q: int, text_len: int, seed: int) -> dict[str, torch.Tensor]:
    """BOS, Q <image> placeholders, ``text_len`` random text tokens: ids/mask/labels (B, 1 + Q + text_len)."""
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(ids["first_text"], ids["vocab"] - 1, (batch, 1 + q + text_len), generator=gen)
    input_ids[:, 0], input_ids[:, 1:1 + q] = ids["bos"], ids["image"]
    labels = input_ids.clone()
    labels[:, :1 + q] = -100
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}


def pixels(*, batch: int, frames: int, resolution: int, seed: int) -> torch.Tensor:
    """(B, F, 3, H, W) standard-normal pixels (already CLIP-normalised in scale)."""
    return torch.randn(batch, frames, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))
