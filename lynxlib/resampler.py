"""Perceiver resampler (Flamingo; Lynx's "bridge"): N vision tokens -> Q learned queries in the LM width.

Lynx (Sec. 2.2 and the released config): 32 latents, depth 3, the latents living in the LLM's width
(4096), the media in the vision tower's width (1408). Each block: the latents attend to
``concat(media, latents)`` (Flamingo's PerceiverAttention), then a feed-forward; a final LayerNorm.
Media and latents have different widths here, so keys/values come from two projections whose
outputs are concatenated along the sequence: the same attention as Flamingo's single ``to_kv`` on
the concatenation when the widths match.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from lynxlib.config import ResamplerConfig
from lynxlib.xattn import feed_forward


class PerceiverAttention(nn.Module):
    """Latents (queries) attend to the media and to themselves."""

    def __init__(self, *, dim: int, dim_media: int, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm_media = nn.LayerNorm(dim_media)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv_media = nn.Linear(dim_media, inner * 2, bias=False)
        self.to_kv_latents = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, media, latents):
        """media (B, N, Dv), latents (B, Q, D) -> (B, Q, D)"""
        media, latents = self.norm_media(media), self.norm_latents(latents)
        kv = torch.cat([self.to_kv_media(media), self.to_kv_latents(latents)], dim=1)  # (B, N+Q, 2*inner)
        q = rearrange(self.to_q(latents), "b q (h d) -> b h q d", h=self.heads)
        k, v = rearrange(kv, "b n (two h d) -> two b h n d", two=2, h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(rearrange(out, "b h q d -> b q (h d)"))


class PerceiverResampler(nn.Module):
    """``num_latents`` learned queries, ``depth`` x [attention + FF], LayerNorm: (B, N, Dv) -> (B, Q, D)."""

    def __init__(self, *, dim: int, dim_media: int, cfg: ResamplerConfig):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(cfg.num_latents, dim))  # Flamingo: N(0, 1)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim=dim, dim_media=dim_media, heads=cfg.heads, dim_head=cfg.dim_head),
                           feed_forward(dim, cfg.ff_mult)])
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(dim)

    @property
    def num_latents(self) -> int:
        return self.latents.shape[0]

    def forward(self, media):
        """(B, N, Dv) -> (B, Q, D)"""
        latents = repeat(self.latents, "q d -> b q d", b=media.shape[0])
        for attn, ff in self.layers:
            latents = latents + attn(media, latents)
            latents = latents + ff(latents)
        return self.norm(latents)
