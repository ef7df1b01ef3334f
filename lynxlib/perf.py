"""Throughput accounting for LynxModel: model FLOPs per training step, accelerator peaks, MFU.

MFU = (model FLOPs of the steps timed) / (wall time x the accelerator's peak dense bf16 FLOP/s).
*Model* FLOPs count the work the model needs, not what an implementation does: recomputation by
gradient checkpointing is excluded (:func:`recompute_flops` gives it separately, for hardware FLOP/s).

The count (one training step, batch B, LM sequence T tokens = 1 BOS + Q vision + text, F frames of
N = 1 + (res / patch)^2 tower tokens each; a matmul with an (m x n) weight over t tokens costs 2 m n t
forward; each matmul's backward costs 2 m n t per gradient it must produce):

* tower (frozen, nothing trainable below it): forward only = 2 P_tower (B F N) + 4 L_v N^2 D_v (B F),
  P_tower = the linear weights of the blocks that run (up to ``feature_layer``) + the patch conv
  (over the N - 1 patch tokens). Zero with cached vision tokens.
* resampler (trainable): 3 x forward; forward = 2 (P_kv_media B F N + P_latent B Q)
  + 4 depth inner Q (F N + Q) B.
* adapters (trainable): 3 x 2 P_adapters (B T): forward, activation and weight gradients.
* LM (frozen, but gradients must flow through it down to the vision prefix): linear layers, LM head
  included, 2 x 2 P_lm (B T) (forward + activation gradients, no weight gradients); attention
  3 x 4 L d T^2 B (forward QK^T and AV; backward dQ, dK, dV, dP). The full T x T matrix is
  counted, causal masking not discounted (the Megatron/PaLM convention).

Elementwise work (norms, softmax, activations, the loss, the optimizer) is not counted. The count is
checked against ``torch.utils.flop_counter.FlopCounterMode`` in the tests (math attention backend).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lynxlib.adapters import Adapter

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets. Matched in
# order against torch.cuda.get_device_name(); the first substring found wins.
PEAK_BF16_TFLOPS: tuple[tuple[str, float, str], ...] = (
    ("H100 PCIe", 756.0, "H100 PCIe: 1513 with sparsity / 2"),
    ("H100 NVL", 835.5, "H100 NVL: 1671 with sparsity / 2"),
    ("H200 NVL", 835.5, "H200 NVL: 1671 with sparsity / 2"),
    ("H100", 989.4, "H100 SXM5: 1979 with sparsity / 2"),
    ("H200", 989.4, "H200 SXM: 1979 with sparsity / 2 (same tensor cores as H100 SXM)"),
    ("GH200", 989.4, "GH200: as H100 SXM"),
    ("A100", 312.0, "A100: 312 dense (624 with sparsity)"),
    ("L40S", 362.1, "L40S: 733 with sparsity / 2"),
    ("A6000", 154.8, "RTX A6000: 309.7 with sparsity / 2 (fp32 accumulate)"),
    ("A10", 125.0, "A10: 250 with sparsity / 2"),
)


def peak_tflops(device: torch.device | str) -> tuple[float | None, str]:
    """(peak dense bf16 TFLOP/s, where the number comes from) for a CUDA device; (None, why) otherwise."""
    device = torch.device(device)
    if device.type != "cuda":
        return None, f"{device.type}: no tensor-core peak; MFU not reported"
    name = torch.cuda.get_device_name(device)
    for key, value, source in PEAK_BF16_TFLOPS:
        if key in name:
            return value, f"{name}: {source}"
    return None, f"{name}: not in lynxlib.perf.PEAK_BF16_TFLOPS (give --peak-tflops)"


def _linear_weights(modules) -> int:
    return sum(m.weight.numel() for mod in modules for m in mod.modules() if isinstance(m, nn.Linear))


def _matrix_weights(modules) -> int:
    """Every 2-D parameter: Linear weights and ``nn.MultiheadAttention.in_proj_weight`` (open_clip ViT)."""
    return sum(p.numel() for mod in modules for p in mod.parameters() if p.ndim == 2)


@dataclass(frozen=True)
class ModelShape:
    """What the FLOP count needs from a built LynxModel (prefix fusion)."""

    lm_linear: int        # LM linear weights incl. the head, adapters excluded
    lm_head: int          # the head's share of lm_linear (outside the checkpointed blocks)
    adapter_linear: int
    lm_layers: int
    lm_width: int         # d (attention width = heads x head_dim for LLaMA)
    res_kv_media: int     # resampler weights applied to media tokens (to_kv_media, all layers)
    res_latent: int       # resampler weights applied to latent tokens
    res_depth: int
    res_inner: int        # heads x dim_head
    num_latents: int
    tower_linear: int     # linear weights of the tower blocks that run
    tower_patch: int      # stem multiply-accumulates per token (patch conv: its weights, 3 p^2 D_v)
    tower_layers: int     # blocks that run (up to feature_layer)
    tower_width: int
    patch_size: int

    @classmethod
    def of(cls, model) -> "ModelShape":
        lm, tower, res = model.lm, model.tower, model.resampler
        adapters = [m for m in lm.modules() if isinstance(m, Adapter)]
        lm_all = _linear_weights([lm])
        trunk = tower.visual.trunk if tower.arch == "eva" else tower.visual
        blocks = trunk.blocks if tower.arch == "eva" else tower.visual.transformer.resblocks
        stem = trunk.patch_embed.proj if tower.arch == "eva" else tower.visual.conv1
        kv_media = sum(layer[0].to_kv_media.weight.numel() for layer in res.layers)
        attn = res.layers[0][0]
        return cls(lm_linear=lm_all - _linear_weights(adapters), lm_head=lm.get_output_embeddings().weight.numel(),
                   adapter_linear=_linear_weights(adapters),
                   lm_layers=lm.config.num_hidden_layers, lm_width=lm.config.hidden_size,
                   res_kv_media=kv_media, res_latent=_linear_weights([res]) - kv_media, res_depth=len(res.layers),
                   res_inner=attn.to_q.out_features, num_latents=res.num_latents,
                   tower_linear=_matrix_weights(list(blocks[: tower.num_blocks])),
                   tower_patch=stem.macs_per_token() if hasattr(stem, "macs_per_token") else stem.weight.numel(),
                   tower_layers=tower.num_blocks, tower_width=tower.width, patch_size=tower.patch_size)


def step_flops(shape: ModelShape, *, batch: int, seq_len: int, frames: int, resolution: int,
               cached: bool) -> dict[str, float]:
    """Model FLOPs of one training step (forward + backward), by component (see the module doc)."""
    B, T, F, Q = batch, seq_len, frames, shape.num_latents
    N = 1 + (resolution // shape.patch_size) ** 2
    tower = 0.0 if cached else float(
        2 * shape.tower_linear * B * F * N + 2 * shape.tower_patch * B * F * (N - 1)
        + 4 * shape.tower_layers * N * N * shape.tower_width * B * F)
    res_fwd = (2 * (shape.res_kv_media * B * F * N + shape.res_latent * B * Q)
               + 4 * shape.res_depth * shape.res_inner * Q * (F * N + Q) * B)
    out = {
        "tower": tower,
        "resampler": 3.0 * res_fwd,
        "adapters": 3.0 * 2 * shape.adapter_linear * B * T,
        "lm_linear": 2.0 * 2 * shape.lm_linear * B * T,
        "lm_attention": 3.0 * 4 * shape.lm_layers * shape.lm_width * T * T * B,
    }
    out["total"] = sum(out.values())
    return out


def recompute_flops(shape: ModelShape, *, batch: int, seq_len: int) -> float:
    """Extra forward work of gradient checkpointing every LM block (hardware, not model, FLOPs)."""
    B, T = batch, seq_len
    return float(2 * (shape.lm_linear - shape.lm_head) * B * T + 4 * shape.lm_layers * shape.lm_width * T * T * B)
