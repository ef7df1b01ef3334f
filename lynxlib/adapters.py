"""Bottleneck adapters inside a frozen transformers decoder (Lynx Sec. 2.2).

An :class:`Adapter` (LayerNorm -> Linear(d -> d*r) -> SiLU -> Linear(d*r -> d), added residually)
follows every M-th decoder block. The paper's text says M = 1; the released config uses M = 2
(``adapter_freq: 2``): :class:`lynxlib.config.AdapterConfig` ``every`` picks it.

The adapter is applied by an explicit wrapper module that replaces the block inside
``lm.model.layers`` (no monkey-patched forwards, no hooks), so ``generate`` with a KV cache, beam
search and ``save_pretrained`` all see an ordinary ``nn.Module``. The wrapped block's parameters move
under ``layers.{i}.layer.``: call :func:`remove_adapters` before ``save_pretrained`` to write a
checkpoint with the LM's own key names (the trainable adapters are saved separately).
"""
from __future__ import annotations

from torch import nn

from lynxlib.config import AdapterConfig


class Adapter(nn.Module):
    """x + up(SiLU(down(LN(x)))); ``up`` starts at zero so a new adapter is the identity."""

    def __init__(self, *, dim: int, ratio: float):
        super().__init__()
        hidden = int(dim * ratio)
        self.norm = nn.LayerNorm(dim)
        self.down = nn.Linear(dim, hidden)
        self.act = nn.SiLU()
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x):
        """(B, T, D) -> (B, T, D)"""
        # LayerNorm in fp32 would be kinder to bf16 LMs; the adapter runs in the LM's dtype for now.
        return x + self.up(self.act(self.down(self.norm(x))))


class AdaptedDecoderLayer(nn.Module):
    """A decoder block followed by an :class:`Adapter` on its hidden-state output.

    transformers 5 blocks return a tensor; older ones (and some architectures) a tuple whose first
    item is the hidden state: both are handled, everything else passes through untouched.
    """

    def __init__(self, *, layer: nn.Module, adapter: Adapter):
        super().__init__()
        self.layer = layer
        self.adapter = adapter

    def forward(self, hidden_states, *args, **kwargs):
        """(B, T, D), the block's own arguments -> the block's output with the adapter applied"""
        out = self.layer(hidden_states, *args, **kwargs)
        if isinstance(out, tuple):
            return (self.adapter(out[0]), *out[1:])
        return self.adapter(out)


def decoder_layers(lm: nn.Module) -> nn.ModuleList:
    """The ModuleList of decoder blocks of a transformers causal LM (``lm.model.layers``)."""
    layers = getattr(getattr(lm, "model", None), "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise TypeError(f"{type(lm).__name__} has no 'model.layers' ModuleList: not a LLaMA-style decoder")
    return layers


def adapter_indices(num_layers: int, every: int) -> list[int]:
    """Blocks followed by an adapter: i = M-1, 2M-1, ... (M = 1: all; M = 2: 1, 3, 5, ...)."""
    if every < 1:
        raise ValueError(f"adapter.every must be >= 1, got {every}")
    return list(range(every - 1, num_layers, every))


def insert_adapters(lm: nn.Module, cfg: AdapterConfig) -> list[int]:
    """Wrap every ``cfg.every``-th decoder block of ``lm`` with an adapter; returns the wrapped indices."""
    layers = decoder_layers(lm)
    dim = lm.config.hidden_size
    ref = next(lm.parameters())
    indices = adapter_indices(len(layers), cfg.every)
    for i in indices:
        if isinstance(layers[i], AdaptedDecoderLayer):
            raise ValueError(f"decoder layer {i} already has an adapter")
        adapter = Adapter(dim=dim, ratio=cfg.bottleneck_ratio).to(device=ref.device, dtype=ref.dtype)
        layers[i] = AdaptedDecoderLayer(layer=layers[i], adapter=adapter)
    return indices


def remove_adapters(lm: nn.Module) -> list[Adapter]:
    """Put the original blocks back (undoing :func:`insert_adapters`); returns the removed adapters.

    Works when an adapted block is itself wrapped (e.g. by a cross-attention layer).
    """
    found = [(parent, name, child) for parent in lm.modules() for name, child in parent.named_children()
             if isinstance(child, AdaptedDecoderLayer)]
    for parent, name, child in found:
        setattr(parent, name, child.layer)  # ModuleList children are named "0", "1", ...
    return [child.adapter for _, _, child in found]
