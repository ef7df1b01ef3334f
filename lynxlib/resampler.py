"""Perceiver resampler (Flamingo; Lynx's "bridge"): N vision tokens -> Q learned queries in the LM width.

Lynx (Sec. 2.2 and the released config): 32 latents, depth 3, the latents living in the LLM's width
(4096), the media in the vision tower's width (1408). Each block: the latents attend to
``concat(media, latents)`` (Flamingo's PerceiverAttention), then a feed-forward; a final LayerNorm.
Media and latents have different widths here, so keys/values come from two projections whose
outputs are concatenated along the sequence: the same attention as Flamingo's single ``to_kv`` on
the concatenation when the widths match.

``locality > 0`` (off in Flamingo and Lynx) adds a spatial prior to the media attention: the first
``s * s`` latents (``s = isqrt(num_latents)``) are anchored on an ``s x s`` grid over the image and their
logit for a patch token is lowered by ``gain * d^2 / (2 sigma^2)`` (``d``: anchor-to-patch distance in
image units, ``sigma``: the anchor spacing; ``gain`` per head, learned, starts at ``locality``). The
other latents, the class tokens and the latent-to-latent keys carry no prior. Why: a resampler whose
queries start uniform pools the image, and a caption loss does not teach it where things are
(Honeybee, Cha et al. 2023, on resamplers losing locality; docs/calibration.md).

``sees_instruction`` (off in Flamingo and Lynx; the ``instruction_aware`` control) adds the prompt's
token embeddings (LM width, one more key/value projection) to every layer's keys, between the media
and the latents, as InstructBLIP's Q-Former sees the instruction: a latent can then fetch the object
the question names, where Lynx's LM has to find it among the latents itself. Padding and answer
tokens are masked out, so the visual tokens never see what the model is asked to predict.

``media_pos="sincos"`` (off in Flamingo and Lynx) adds a fixed 2-D sine-cosine code of each patch's row
and column (MAE's) to every frame's patch tokens before the first layer, scaled by ``tanh(gate)`` with
the gate at 0, so a new bridge starts as the plain one. Why: the tower's tokens carry their position
only as its ViT learned to, and an oracle probe found grid positions answerable only when each token
names its row and column in a shared code (docs/calibration.md).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from lynxlib.config import ResamplerConfig
from lynxlib.xattn import feed_forward


def anchor_positions(num_latents: int) -> torch.Tensor:
    """Centres of an ``s x s`` grid over the unit square, ``s = isqrt(num_latents)``: (s*s, 2) as (row, col)."""
    side = math.isqrt(num_latents)
    centres = (torch.arange(side) + 0.5) / side
    return torch.cartesian_prod(centres, centres)


def patch_positions(tokens_per_frame: int) -> tuple[torch.Tensor, int]:
    """Patch-centre positions of one frame's tokens, class token first: ((N - 1, 2), first patch index)."""
    for first in (1, 0):  # towers here put a class token first; accept a tower without one
        side = math.isqrt(tokens_per_frame - first)
        if side * side == tokens_per_frame - first:
            return anchor_positions(side * side), first
    raise ValueError(f"a locality prior needs square patch grids: {tokens_per_frame} tokens per frame is "
                     "neither g*g nor 1 + g*g")


@functools.lru_cache(maxsize=16)  # one per (Q, N, F): not recomputed every step; callers never write to it
def locality_logits(num_latents: int, tokens_per_frame: int, frames: int) -> torch.Tensor:
    """(Q, F*N) prior: -d^2 / (2 sigma^2) between anchored latents and patch tokens, 0 elsewhere."""
    anchors = anchor_positions(num_latents)
    patches, first = patch_positions(tokens_per_frame)
    sigma = 1.0 / math.isqrt(num_latents)
    prior = torch.zeros(num_latents, tokens_per_frame)
    prior[:len(anchors), first:] = -torch.cdist(anchors, patches).square() / (2 * sigma**2)
    return prior.repeat(1, frames)


def tokens_per_frame(media: torch.Tensor, frames: int) -> int:
    """N of media (B, F*N, Dv) holding ``frames`` frames, or a clear error."""
    if media.shape[1] % frames:
        raise ValueError(f"{media.shape[1]} media tokens do not split into {frames} frames")
    return media.shape[1] // frames


@functools.lru_cache(maxsize=16)  # one per (side, dim); callers never write to it
def sincos_2d(side: int, dim: int) -> torch.Tensor:
    """(side * side, dim) fixed position code of a side x side patch grid, row-major: the first half of
    the channels code the row, the second half the column, each as sin and cos at dim / 4 frequencies."""
    if dim % 4:
        raise ValueError(f"a 2-D sine-cosine code needs a width divisible by 4, got {dim}")
    freqs = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    coord = torch.arange(side, dtype=torch.float32)[:, None] * freqs  # (side, dim/4)
    axis = torch.cat([coord.sin(), coord.cos()], dim=1)               # (side, dim/2)
    rows, cols = repeat(axis, "r d -> (r c) d", c=side), repeat(axis, "c d -> (r c) d", r=side)
    return torch.cat([rows, cols], dim=1)


@functools.lru_cache(maxsize=16)  # one per (N, F, Dv), like locality_logits: not rebuilt every step
def media_position_code(tokens_per_frame: int, frames: int, dim: int) -> torch.Tensor:
    """(F*N, dim): :func:`sincos_2d` on each frame's patch tokens, zeros on the class token."""
    patches, first = patch_positions(tokens_per_frame)
    code = F.pad(sincos_2d(math.isqrt(len(patches)), dim), (0, 0, first, 0))  # (N, dim)
    return code.repeat(frames, 1)


class PerceiverAttention(nn.Module):
    """Latents (queries) attend to the media and to themselves (with an optional locality prior)."""

    def __init__(self, *, dim: int, dim_media: int, heads: int, dim_head: int, locality: float = 0.0,
                 sees_instruction: bool = False):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm_media = nn.LayerNorm(dim_media)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv_media = nn.Linear(dim_media, inner * 2, bias=False)
        self.to_kv_latents = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)
        # a parameter only when asked, so checkpoints of the plain resampler load unchanged
        self.locality_gain = nn.Parameter(torch.full((heads,), float(locality))) if locality > 0 else None
        if sees_instruction:  # likewise: the instruction's keys exist only in the instruction-aware bridge
            self.norm_text = nn.LayerNorm(dim)
            self.to_kv_text = nn.Linear(dim, inner * 2, bias=False)

    def project(self, media, latents, prior=None, text=None, text_mask=None):
        """media (B, N, Dv), latents (B, Q, D), prior (Q, N), text (B, T, D), text_mask (B, T) bool ->
        q (B, h, Q, d), k, v (B, h, N+T+Q, d), bias (h or B, h, Q, N+T+Q) or None (T = 0 without text)"""
        media, latents = self.norm_media(media), self.norm_latents(latents)
        parts = [self.to_kv_media(media)]
        if text is not None:
            if not hasattr(self, "to_kv_text"):
                raise ValueError("instruction tokens given to a resampler built without sees_instruction")
            parts.append(self.to_kv_text(self.norm_text(text)))
        kv = torch.cat(parts + [self.to_kv_latents(latents)], dim=1)  # (B, N+T+Q, 2*inner)
        q = rearrange(self.to_q(latents), "b q (h d) -> b h q d", h=self.heads)
        k, v = rearrange(kv, "b n (two h d) -> two b h n d", two=2, h=self.heads)
        after = kv.shape[1] - media.shape[1]  # text and latent keys: no locality prior
        bias = None
        if self.locality_gain is not None and prior is not None:
            bias = self.locality_gain.to(q.dtype)[:, None, None] * F.pad(prior, (0, after)).to(q.dtype)
        if text is not None and text_mask is not None:  # padding and the answer are not the instruction
            keep = F.pad(text_mask.bool(), (media.shape[1], latents.shape[1]), value=True)  # (B, N+T+Q)
            block = torch.zeros(keep.shape, dtype=q.dtype, device=q.device).masked_fill(~keep, float("-inf"))
            bias = block[:, None, None] if bias is None else bias + block[:, None, None]
        return q, k, v, bias

    def forward(self, media, latents, prior=None, text=None, text_mask=None):
        """media (B, N, Dv), latents (B, Q, D), prior (Q, N), text (B, T, D), text_mask (B, T) -> (B, Q, D)"""
        q, k, v, bias = self.project(media, latents, prior, text, text_mask)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.to_out(rearrange(out, "b h q d -> b q (h d)"))

    def weights(self, media, latents, prior=None, text=None, text_mask=None) -> torch.Tensor:
        """The attention weights forward uses (diagnostics): (B, h, Q, N+T+Q), rows sum to 1."""
        q, k, _, bias = self.project(media, latents, prior, text, text_mask)
        logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        return (logits if bias is None else logits + bias).softmax(-1)


class PerceiverResampler(nn.Module):
    """``num_latents`` learned queries, ``depth`` x [attention + FF], LayerNorm: (B, N, Dv) -> (B, Q, D)."""

    def __init__(self, *, dim: int, dim_media: int, cfg: ResamplerConfig):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(cfg.num_latents, dim))  # Flamingo: N(0, 1)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim=dim, dim_media=dim_media, heads=cfg.heads, dim_head=cfg.dim_head,
                                              locality=cfg.locality, sees_instruction=cfg.sees_instruction),
                           feed_forward(dim, cfg.ff_mult)])
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.locality = cfg.locality
        self.sees_instruction = cfg.sees_instruction
        if cfg.media_pos == "sincos":  # a parameter only when asked: plain checkpoints load unchanged
            self.media_pos_gate = nn.Parameter(torch.zeros(1))

    @property
    def num_latents(self) -> int:
        return self.latents.shape[0]

    def prior(self, media: torch.Tensor, frames: int) -> torch.Tensor | None:
        """The locality prior (Q, F*N) for media (B, F*N, Dv), or None without one."""
        if self.locality <= 0:
            return None
        return locality_logits(self.num_latents, tokens_per_frame(media, frames), frames).to(media.device)

    def with_positions(self, media: torch.Tensor, frames: int) -> torch.Tensor:
        """media (B, F*N, Dv) plus tanh(gate) x the sine-cosine code on each frame's patch tokens (the
        class token, first where the tower has one, gets none); unchanged without ``media_pos``."""
        if not hasattr(self, "media_pos_gate"):
            return media
        code = media_position_code(tokens_per_frame(media, frames), frames, media.shape[-1])
        return media + torch.tanh(self.media_pos_gate) * code.to(device=media.device, dtype=media.dtype)

    @torch.no_grad()
    def attention_maps(self, media, frames: int = 1) -> list[torch.Tensor]:
        """Each layer's attention weights (B, h, Q, F*N + Q) on the way through (diagnostics)."""
        media = self.with_positions(media, frames)
        latents, prior, maps = repeat(self.latents, "q d -> b q d", b=media.shape[0]), self.prior(media, frames), []
        for attn, ff in self.layers:
            maps.append(attn.weights(media, latents, prior))
            latents = latents + attn(media, latents, prior)
            latents = latents + ff(latents)
        return maps

    def forward(self, media, frames: int = 1, *, text=None, text_mask=None):
        """(B, F*N, Dv) (``frames`` frames of N tokens each, concatenated) -> (B, Q, D).

        ``text`` (B, T, D), ``text_mask`` (B, T): the instruction's token embeddings, which an
        instruction-aware bridge (``sees_instruction``) adds to every layer's keys, so a latent can
        fetch the object the question names (InstructBLIP's Q-Former; Lynx's bridge sees no text)."""
        media = self.with_positions(media, frames)
        latents, prior = repeat(self.latents, "q d -> b q d", b=media.shape[0]), self.prior(media, frames)
        for attn, ff in self.layers:
            latents = latents + attn(media, latents, prior, text, text_mask)
            latents = latents + ff(latents)
        return self.norm(latents)
