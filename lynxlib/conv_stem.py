"""A convolutional stem for the tiny ViT tower (ViTC: Xiao et al. 2021, "Early Convolutions Help
Transformers See Better").

The ViT's patchify is one linear map per ``p x p`` patch: every token starts from a fixed window,
and recognising a shape anywhere on the image has to be learned separately for each position from
absolute position embeddings. ``benchmarks/tower_shapes.py`` measures it on the tiny world (an
object's shape from the mean of its grid cell's feature-layer tokens, 64-px images, 400 steps,
held-out accuracy; majority 0.18): the ViT on whole images 0.69 with the patch stem, 0.90 with this
one (the same ViT on object-centred crops 0.92, a 3-layer CNN on them 0.88). A stack of stride-2
3x3 convolutions gives every token translation-equivariant local features first.

With colour and size heads trained beside shape, the conv-stem ViT reaches 0.34 in those 400 steps
and 0.95 in 1,200 (easy attributes first, shape's onset delayed). In stage 0's own recipe it probes
shape at 0.45 / 0.56 (64 / 128 px) after 1,200 steps and 0.98 / 0.99 after 2,400, or 0.96 / 0.98
after 1,200 with :mod:`lynxlib.backbones.attributes` (docs/calibration.md;
``benchmarks/results/stage0_tiny_convstem_*.json``). ``vision.stem`` defaults to ``patch``, which
the study's stage keys were made with.

The stem replaces ``VisionTransformer.conv1`` (same input, same ``(B, D, H/p, W/p)`` output), so
the class token, position embeddings, resolution interpolation and blocks are untouched. A tower
with it loads through :func:`lynxlib.vision.load_clip` (the config says ``vision.stem: conv``), not
through open_clip's own ``local-dir:`` loader, which knows only the patch stem.
"""
from __future__ import annotations

import math

from torch import nn


class ConvStem(nn.Module):
    """``log2(p)`` stride-2 3x3 convolutions (ReLU between), widths doubling up to ``width``:
    (B, 3, H, W) -> (B, width, H/p, W/p), the patch stem's output shape."""

    def __init__(self, *, patch_size: int, width: int):
        super().__init__()
        depth = int(math.log2(patch_size))
        if 2 ** depth != patch_size or depth < 1:
            raise ValueError(f"vision.stem 'conv' needs a power-of-two vision.patch_size, got {patch_size}")
        if width % 2 ** (depth - 1):
            raise ValueError(f"vision.width {width} must be divisible by {2 ** (depth - 1)} for the conv stem")
        widths = [3] + [width >> (depth - 1 - i) for i in range(depth)]  # e.g. 3 -> 32 -> 64 -> 128
        layers: list[nn.Module] = []
        for i in range(depth):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], kernel_size=3, stride=2, padding=1))
            if i < depth - 1:
                layers.append(nn.ReLU())
        self.layers = nn.Sequential(*layers)
        self.out_channels = width
        self.patch_size = patch_size

    def forward(self, x):
        """(B, 3, H, W) -> (B, D, H/p, W/p)"""
        return self.layers(x)

    def macs_per_token(self) -> int:
        """Multiply-accumulates per output token (the patch stem's is ``3 p^2 D``): layer i runs at
        ``4^(depth-1-i)`` positions per final token."""
        convs = [m for m in self.layers if isinstance(m, nn.Conv2d)]
        return sum(c.weight.numel() * 4 ** (len(convs) - 1 - i) for i, c in enumerate(convs))


def install_conv_stem(visual: nn.Module) -> nn.Module:
    """Replace an open_clip ``VisionTransformer``'s patchify ``conv1`` with a :class:`ConvStem` (in place)."""
    visual.conv1 = ConvStem(patch_size=visual.patch_size[0], width=visual.conv1.out_channels)
    return visual
