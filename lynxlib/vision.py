"""The frozen vision tower: an open_clip visual returning the token sequence of a chosen block.

* :class:`VisionTower` wraps an open_clip ``VisionTransformer`` (``arch: vit``) or a timm EVA trunk
  through open_clip's ``TimmModel`` (``arch: eva``, e.g. ``EVA01-g-14`` = timm ``eva_giant_patch14_224``).
  It runs the patch embedding, class token, position embedding and blocks itself, stopping at
  ``VisionConfig.feature_layer`` (-1 last block, -2 penultimate, BLIP-2/LLaVA's choice). The
  tokens are the raw block output, class token first: (B, 1 + g*g, Dv); no final LayerNorm (the
  resampler normalises its media). Higher resolutions (224 -> 420 paper, 64 -> 128 tiny) interpolate
  the position embedding bicubically on the patch grid, class token kept (:meth:`set_resolution`).
* :class:`FramePosition`: the learned frame-position embedding for video (trainable group
  ``frame_pos``), added to each frame's tokens before the frames are concatenated.
* :func:`create_clip` / :func:`load_clip`: the whole open_clip CLIP (image + text tower) that stage 0
  trains and that the tower is cut from; :func:`to_pixel_values`: uint8 images -> CLIP-normalised.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import math
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from einops import rearrange
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torch import nn

from lynxlib.config import Config
from lynxlib.conv_stem import install_conv_stem

MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
TINY_PREFIX = "lynx-tiny"  # our registered configs; their shapes come from Config, not the json


# ----------------------------------------------------------------------------------------- pixels
def to_pixel_values(images, *, mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD) -> torch.Tensor:
    """uint8 images (..., H, W, 3) (numpy or torch) -> float32 (..., 3, H, W), CLIP mean/std normalised."""
    x = images if torch.is_tensor(images) else torch.from_numpy(np.array(images, copy=True))  # memmaps are read-only
    if x.dtype != torch.uint8 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 images (..., H, W, 3), got {x.dtype} {tuple(x.shape)}")
    x = x.float().div(255.0).movedim(-1, -3)
    shape = (3, 1, 1)
    return (x - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)


# ----------------------------------------------------------------------------------------- tower
def interpolate_pos(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """(1 + G*G, D) -> (1 + grid*grid, D): bicubic on the patch grid, class token kept as is.

    ``antialias=True`` as timm's ``resample_abs_pos_embed`` and open_clip's ``resize_pos_embed`` do, so
    the tower matches what either library computes at the new size.
    """
    cls, patches = pos[:1], pos[1:]
    side = math.isqrt(patches.shape[0])
    if side * side != patches.shape[0]:
        raise ValueError(f"position embedding of {patches.shape[0]} patches is not a square grid")
    patches = rearrange(patches, "(h w) d -> 1 d h w", h=side).float()
    patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False, antialias=True)
    return torch.cat([cls, rearrange(patches, "1 d h w -> (h w) d").to(pos.dtype)])


def _blocks_to_run(num_blocks: int, feature_layer: int) -> int:
    """How many blocks produce the chosen layer: -1 -> all, -2 -> all but the last, k >= 0 -> k + 1."""
    n = num_blocks + 1 + feature_layer if feature_layer < 0 else feature_layer + 1
    if not 1 <= n <= num_blocks:
        raise ValueError(f"feature_layer {feature_layer} is out of range for {num_blocks} blocks")
    return n


class VisionTower(nn.Module):
    """Frozen open_clip visual -> token sequence of one block: (B, 3, H, W) -> (B, N, Dv), N = 1 + (H/p)^2."""

    def __init__(self, visual: nn.Module, *, feature_layer: int = -2):
        super().__init__()
        self.visual = visual
        self.arch = "eva" if hasattr(visual, "trunk") else "vit"
        trunk = self._trunk
        if self.arch == "eva" and (getattr(trunk, "no_embed_class", False) or trunk.reg_token is not None
                                   or getattr(trunk, "rope_mixed", False)):
            raise NotImplementedError("EVA towers with register tokens, no_embed_class or mixed RoPE")
        blocks = trunk.blocks if self.arch == "eva" else visual.transformer.resblocks
        self.num_blocks = _blocks_to_run(len(blocks), feature_layer)
        self.native_size = self._native_size()
        self.image_size = self.native_size
        self._cache: dict = {}  # interpolated position (and RoPE) embeddings per grid; not state
        self.requires_grad_(False)
        self.train(False)

    # -- shapes
    @property
    def _trunk(self) -> nn.Module:
        return self.visual.trunk if self.arch == "eva" else self.visual

    @property
    def patch_size(self) -> int:
        return self._trunk.patch_embed.patch_size[0] if self.arch == "eva" else self.visual.patch_size[0]

    @property
    def width(self) -> int:
        return self._trunk.embed_dim if self.arch == "eva" else self.visual.conv1.out_channels

    def _native_size(self) -> int:
        grid = int(math.isqrt(self._pos_param().shape[0] - 1))
        return grid * self.patch_size

    def num_tokens(self, size: int | None = None) -> int:
        """Tokens per image at ``size`` (default: the current resolution): 1 + (size / patch)^2."""
        return 1 + ((size or self.image_size) // self.patch_size) ** 2

    def train(self, mode: bool = True):
        """The tower is frozen: it stays in eval mode (no dropout, no patch dropout) whatever ``mode``."""
        return super().train(False)

    # -- resolution
    def set_resolution(self, size: int) -> None:
        """Accept ``size`` x ``size`` inputs from now on (interpolating positions; cached per size).

        Reversible: at the native size the tower's own embedding is used, untouched.
        """
        if size % self.patch_size:
            raise ValueError(f"image size {size} is not a multiple of the patch size {self.patch_size}")
        self.image_size = size
        self._pos_embed(size // self.patch_size)

    def _pos_param(self) -> torch.Tensor:
        """The tower's own position embedding as (1 + G*G, Dv)."""
        pos = self._trunk.pos_embed if self.arch == "eva" else self.visual.positional_embedding
        return pos.reshape(-1, pos.shape[-1])

    def _pos_embed(self, grid: int) -> torch.Tensor:
        pos = self._pos_param()
        if grid * self.patch_size == self.native_size:
            return pos
        # the version counter changes when weights are loaded in place, so a stale entry is never used
        key = ("pos", grid, pos._version, pos.device, pos.dtype)
        if key not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[:2] != key[:2]}
            self._cache[key] = interpolate_pos(pos.detach(), grid)
        return self._cache[key]

    def _rope(self, grid: int):
        """EVA-02 rotary embedding for the grid (None for EVA-01 and ViT)."""
        rope = getattr(self._trunk, "rope", None)
        if rope is None or grid * self.patch_size == self.native_size:
            return None if rope is None else rope.get_embed()
        key = ("rope", grid, self._pos_param().device)
        if key not in self._cache:
            resized = copy.deepcopy(rope)
            resized.update_feat_shape([grid, grid])
            self._cache[key] = resized.get_embed()
        return self._cache[key]

    # -- forward
    def _check_size(self, pixel_values: torch.Tensor) -> int:
        h, w = pixel_values.shape[-2:]
        if h != w or h != self.image_size:
            raise ValueError(f"tower expects {self.image_size}x{self.image_size} images, got {h}x{w}: "
                             f"call set_resolution({h}) first")
        return h // self.patch_size

    def _forward_vit(self, x: torch.Tensor, grid: int) -> torch.Tensor:
        v = self.visual
        x = rearrange(v.conv1(x), "b d h w -> b (h w) d")
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = v.ln_pre(torch.cat([cls, x], dim=1) + self._pos_embed(grid).to(x.dtype))
        batch_first = getattr(v.transformer, "batch_first", True)
        x = x if batch_first else x.transpose(0, 1)
        for block in v.transformer.resblocks[: self.num_blocks]:
            x = block(x)
        return x if batch_first else x.transpose(0, 1)

    def _forward_eva(self, x: torch.Tensor, grid: int) -> torch.Tensor:
        t = self._trunk
        x = t.patch_embed.norm(rearrange(t.patch_embed.proj(x), "b d h w -> b (h w) d"))
        x = torch.cat([t.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self._pos_embed(grid).to(x.dtype)
        x = t.norm_pre(t.pos_drop(x))
        rope = self._rope(grid)
        for block in t.blocks[: self.num_blocks]:
            x = block(x, rope=rope)
        return x

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, N, Dv), N = 1 + (H / patch)^2, class token first"""
        grid = self._check_size(pixel_values)
        pixel_values = pixel_values.to(self._pos_param().dtype)  # a bf16 tower takes bf16 pixels
        if self.arch == "eva":
            return self._forward_eva(pixel_values, grid)
        return self._forward_vit(pixel_values, grid)

    def encode_frames(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, F, 3, H, W) -> (B, F, N, Dv): every frame through the tower (F = 1 for an image)"""
        frames = rearrange(pixel_values, "b f c h w -> (b f) c h w")
        return rearrange(self(frames), "(b f) n d -> b f n d", b=pixel_values.shape[0])


class FramePosition(nn.Module):
    """Learned frame-position embedding (F, Dv), added per frame, then frames concatenated.

    As in Lynx's released code, only video (F > 1) gets it: a single image passes through unchanged,
    so image and video samples share the tower's token space.
    """

    def __init__(self, *, num_frames: int, dim: int):
        super().__init__()
        self.embed = nn.Parameter(torch.zeros(num_frames, dim))
        nn.init.trunc_normal_(self.embed, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, F, N, Dv) -> (B, F*N, Dv)"""
        frames = tokens.shape[1]
        if frames > self.embed.shape[0]:
            raise ValueError(f"{frames} frames but the frame embedding has {self.embed.shape[0]}")
        if frames > 1:
            tokens = tokens + self.embed[:frames, None, :].to(tokens.dtype)
        return rearrange(tokens, "b f n d -> b (f n) d")


# ------------------------------------------------------------------------------------ open_clip
def register_model_configs() -> None:
    """Make ``lynx-tiny-*`` known to open_clip (idempotent)."""
    if f"{TINY_PREFIX}-vit" not in open_clip.list_models():
        open_clip.add_model_config(MODEL_CONFIG_DIR)


def clip_model_kwargs(cfg: Config, *, vocab_size: int | None = None, pad_id: int = 0, eos_id: int = 2) -> dict:
    """open_clip constructor overrides for a ``lynx-tiny-*`` config, from ``cfg.vision`` and the tokenizer.

    The text tower uses the project's BPE (``pool_type: eos``: the EOS id is not the largest id) and,
    for the ViT, mirrors the image tower's width/heads/layers.
    """
    register_model_configs()
    model_cfg = open_clip.get_model_config(cfg.vision.open_clip_name)
    v, text = model_cfg["vision_cfg"], model_cfg["text_cfg"]
    if "timm_model_name" not in v:  # a ViT: every shape from the config
        v.update(width=cfg.vision.width, layers=cfg.vision.layers, head_width=cfg.vision.width // cfg.vision.heads,
                 patch_size=cfg.vision.patch_size, image_size=cfg.world.image_size_low)
        text.update(width=cfg.vision.width, heads=cfg.vision.heads, layers=cfg.vision.layers)
    text.update(vocab_size=vocab_size or cfg.tokenizer.vocab_size, pad_id=pad_id, eos_id=eos_id, pool_type="eos")
    return {"embed_dim": cfg.vision.embed_dim, "vision_cfg": v, "text_cfg": text}


def create_clip(cfg: Config, *, vocab_size: int | None = None, pad_id: int = 0, eos_id: int = 2,
                pretrained: str | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """The CLIP model named by ``cfg.vision.open_clip_name`` (random init unless ``pretrained``).

    ``lynx-tiny-*`` take their shapes from ``cfg`` (image size ``world.image_size_low``); any other
    open_clip name (``EVA01-g-14`` ...) is built as registered, ``pretrained`` an open_clip tag or file.
    """
    name = cfg.vision.open_clip_name
    kwargs = clip_model_kwargs(cfg, vocab_size=vocab_size, pad_id=pad_id, eos_id=eos_id) \
        if name.startswith(TINY_PREFIX) else {}
    is_timm = "timm_model_name" in (kwargs.get("vision_cfg") or open_clip.get_model_config(name)["vision_cfg"])
    size = cfg.world.image_size_low if is_timm else None  # timm towers ignore the config's image size
    with _quiet_root_logger(enabled=pretrained is None):  # open_clip warns "no pretrained weights" on purpose
        model = open_clip.create_model(name, pretrained=pretrained, force_image_size=size, output_dict=True,
                                       device=device, **kwargs)
    if cfg.vision.stem == "conv":
        install_conv_stem(model.visual).to(device)
    return model


@contextlib.contextmanager
def _quiet_root_logger(*, enabled: bool):
    root = logging.getLogger()
    level = root.level
    if enabled:
        root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def load_clip(path: str | Path, cfg: Config, **kwargs) -> nn.Module:
    """A CLIP model from an open_clip checkpoint file (``.pt``/``.safetensors``, strict) or an open_clip tag."""
    if not Path(path).is_file():
        if cfg.vision.open_clip_name.startswith(TINY_PREFIX):
            raise FileNotFoundError(f"CLIP checkpoint {path} not found (the stage-0 tower of this run?)")
        return create_clip(cfg, pretrained=str(path), **kwargs)
    model = create_clip(cfg, **kwargs)
    open_clip.load_checkpoint(model, str(path), strict=True)
    return model
