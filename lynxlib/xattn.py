"""Flamingo-style gated cross-attention inside a frozen decoder: the paper's "cross-attn" baseline (Sec. 3.3).

A :class:`GatedCrossAttentionBlock` (text queries attend to the resampler's Q vision tokens, then a
feed-forward; each residual branch scaled by ``tanh(gate)`` with the gate at 0, so the frozen LM is
unchanged at initialisation) runs *before* every N-th decoder block, through an explicit wrapper
module (:class:`CrossAttnDecoderLayer`) that replaces the block in ``lm.model.layers``.

The vision context is not a forward argument of the LM, so it is set on the wrappers before
``forward``/``generate`` and cleared after (open_flamingo's ``condition_vis_x`` pattern): use
:func:`conditioned`. Each sample has one visual input (image or concatenated video frames) placed
before its text, so every text token may attend to all Q vision tokens: no media-position mask is
needed, only a per-sample ``visual_mask`` that switches the branch off for text-only samples.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from lynxlib.adapters import decoder_layers
from lynxlib.config import XAttnConfig


def feed_forward(dim: int, mult: int) -> nn.Sequential:
    """LN -> Linear(d -> d*mult) -> GELU -> Linear(d*mult -> d), as in Flamingo."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(),
                         nn.Linear(dim * mult, dim, bias=False))


class CrossAttention(nn.Module):
    """Queries from the (normalised) text, keys and values from the vision tokens."""

    def __init__(self, *, dim: int, dim_media: int, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim_media, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x, *, media):
        """x (B, T, D), media (B, Q, Dm) -> (B, T, D)"""
        q = rearrange(self.to_q(self.norm(x)), "b t (h d) -> b h t d", h=self.heads)
        k, v = rearrange(self.to_kv(media), "b q (two h d) -> two b h q d", two=2, h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(rearrange(out, "b h t d -> b t (h d)"))


class GatedCrossAttentionBlock(nn.Module):
    """x + tanh(g_attn) * xattn(x, media); then + tanh(g_ff) * FF(.). Gates start at 0: identity."""

    def __init__(self, *, dim: int, dim_media: int, heads: int, dim_head: int, ff_mult: int):
        super().__init__()
        self.attn = CrossAttention(dim=dim, dim_media=dim_media, heads=heads, dim_head=dim_head)
        self.attn_gate = nn.Parameter(torch.zeros(1))
        self.ff = feed_forward(dim, ff_mult)
        self.ff_gate = nn.Parameter(torch.zeros(1))

    def forward(self, x, *, media, visual_mask=None):
        """x (B, T, D), media (B, Q, Dm), visual_mask (B,) bool | None -> (B, T, D)

        Rows with ``visual_mask`` False (text-only samples) come out unchanged.
        """
        keep = 1.0 if visual_mask is None else visual_mask.to(x.dtype)[:, None, None]
        x = x + keep * self.attn_gate.tanh() * self.attn(x, media=media)
        return x + keep * self.ff_gate.tanh() * self.ff(x)


def expand_to_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    """Repeat a per-sample tensor (B, ...) to (B*k, ...) sample by sample, as beam search expands inputs."""
    if t.shape[0] == batch:
        return t
    if batch % t.shape[0]:
        raise ValueError(f"vision context for {t.shape[0]} samples cannot cover a batch of {batch}")
    return t.repeat_interleave(batch // t.shape[0], dim=0)


class CrossAttnDecoderLayer(nn.Module):
    """A gated cross-attention block applied before a decoder block, on the vision context set by
    :meth:`condition`. With no context set, the wrapper is the plain decoder block."""

    def __init__(self, *, xattn: GatedCrossAttentionBlock, layer: nn.Module):
        super().__init__()
        self.xattn = xattn
        self.layer = layer
        self.media: torch.Tensor | None = None
        self.visual_mask: torch.Tensor | None = None

    def condition(self, vision_tokens: torch.Tensor | None, visual_mask: torch.Tensor | None = None) -> None:
        """vision_tokens (B, Q, D) | None (clears), visual_mask (B,) bool | None"""
        self.media, self.visual_mask = vision_tokens, visual_mask

    def forward(self, hidden_states, *args, **kwargs):
        """(B', T, D) with B' = B or B * num_beams, the block's own arguments -> the block's output"""
        if self.media is not None:
            batch = hidden_states.shape[0]
            mask = None if self.visual_mask is None else expand_to_batch(self.visual_mask, batch)
            hidden_states = self.xattn(hidden_states, media=expand_to_batch(self.media, batch), visual_mask=mask)
        return self.layer(hidden_states, *args, **kwargs)


def xattn_indices(num_layers: int, every: int) -> list[int]:
    """Blocks preceded by cross-attention: i = N-1, 2N-1, ... (open_flamingo's (i + 1) % N == 0)."""
    if every < 1:
        raise ValueError(f"xattn.every must be >= 1, got {every}")
    return list(range(every - 1, num_layers, every))


def insert_cross_attention(lm: nn.Module, cfg: XAttnConfig, *, dim_media: int | None = None) -> list[int]:
    """Wrap every ``cfg.every``-th decoder block with gated cross-attention; returns the indices.

    ``dim_media``: width of the vision tokens (default: the LM width, the resampler's output).
    """
    layers = decoder_layers(lm)
    dim = lm.config.hidden_size
    ref = next(lm.parameters())
    indices = xattn_indices(len(layers), cfg.every)
    for i in indices:
        block = GatedCrossAttentionBlock(dim=dim, dim_media=dim_media or dim, heads=cfg.heads,
                                         dim_head=cfg.dim_head, ff_mult=cfg.ff_mult)
        layers[i] = CrossAttnDecoderLayer(xattn=block.to(device=ref.device, dtype=ref.dtype), layer=layers[i])
    return indices


def cross_attn_layers(lm: nn.Module) -> list[CrossAttnDecoderLayer]:
    return [m for m in lm.modules() if isinstance(m, CrossAttnDecoderLayer)]


@contextlib.contextmanager
def conditioned(lm: nn.Module, *, vision_tokens: torch.Tensor | None,
                visual_mask: torch.Tensor | None = None) -> Iterator[None]:
    """Set the vision context (B, Q, D) on every cross-attention layer for the duration of the block.

    The context is always cleared afterwards, so a later text-only call cannot see a stale image.
    """
    layers = cross_attn_layers(lm)
    for layer in layers:
        layer.condition(vision_tokens, visual_mask)
    try:
        yield
    finally:
        for layer in layers:
            layer.condition(None)
