"""The conv stem (vision.stem: conv): same token shapes as the patch stem, strict save/load, valid
only where stage 0 trains a ViT, and out of the stage keys at its default."""
import pytest
import torch

from lynxlib.config import ConfigError, load
from lynxlib.conv_stem import ConvStem
from lynxlib.perf import ModelShape, step_flops
from lynxlib.stages import stage_key
from lynxlib.vision import VisionTower, create_clip, load_clip, to_pixel_values


def smoke(**overrides):
    return load("params/smoke.yaml", **overrides)


def test_conv_stem_matches_patch_stem_shapes_at_both_resolutions():
    patch_cfg, conv_cfg = smoke(), smoke(vision={"stem": "conv"})
    torch.manual_seed(0)
    patch = VisionTower(create_clip(patch_cfg, vocab_size=300).visual)
    conv = VisionTower(create_clip(conv_cfg, vocab_size=300).visual)
    assert isinstance(conv.visual.conv1, ConvStem) and not isinstance(patch.visual.conv1, ConvStem)
    assert (conv.width, conv.patch_size) == (patch.width, patch.patch_size)
    for size in (patch_cfg.world.image_size_low, patch_cfg.world.image_size_high):
        patch.set_resolution(size)
        conv.set_resolution(size)
        x = torch.randn(2, 3, size, size)
        assert conv(x).shape == patch(x).shape == (2, conv.num_tokens(size), conv.width)


def test_conv_stem_tokens_are_translation_equivariant_before_the_blocks():
    """A shape moved by one patch moves its stem features by one token (the reason for the stem)."""
    torch.manual_seed(0)
    stem = ConvStem(patch_size=8, width=64)
    img = torch.zeros(1, 3, 64, 64)
    img[:, :, 16:24, 16:24] = 1.0
    moved = torch.roll(img, shifts=(8, 8), dims=(2, 3))
    a, b = stem(img), stem(moved)
    assert torch.allclose(a[..., 2, 2], b[..., 3, 3], atol=1e-6)
    assert not torch.allclose(a[..., 2, 2], a[..., 3, 3])


def test_conv_stem_tower_round_trips_through_load_clip(tmp_path):
    cfg = smoke(vision={"stem": "conv"})
    torch.manual_seed(1)
    clip = create_clip(cfg, vocab_size=300).eval()
    torch.save(clip.state_dict(), tmp_path / "open_clip.pt")
    again = load_clip(tmp_path / "open_clip.pt", cfg, vocab_size=300).eval()
    x = to_pixel_values(torch.randint(0, 255, (2, 32, 32, 3), dtype=torch.uint8))
    size = cfg.world.image_size_low
    x = torch.nn.functional.interpolate(x, size=(size, size))
    assert torch.equal(VisionTower(clip.visual)(x), VisionTower(again.visual)(x))
    with pytest.raises(RuntimeError):  # a patch-stem model cannot take these weights
        load_clip(tmp_path / "open_clip.pt", smoke(), vocab_size=300)


def test_conv_stem_macs_per_token_counts_each_layer_at_its_resolution():
    stem = ConvStem(patch_size=8, width=128)
    # 3->32 at 4x4 positions per token, 32->64 at 2x2, 64->128 at 1
    assert stem.macs_per_token() == 32 * 3 * 9 * 16 + 64 * 32 * 9 * 4 + 128 * 64 * 9


@pytest.mark.parametrize("patch_size,width", [(6, 64), (8, 30)])
def test_conv_stem_rejects_shapes_it_cannot_build(patch_size, width):
    with pytest.raises(ValueError, match="conv stem|power-of-two"):
        ConvStem(patch_size=patch_size, width=width)


def test_conv_stem_is_only_for_a_stage0_vit():
    with pytest.raises(ConfigError, match="vision.stem"):
        smoke(vision={"stem": "conv", "arch": "eva", "open_clip_name": "lynx-tiny-eva"})
    with pytest.raises(ConfigError, match="vision.stem"):
        smoke(vision={"stem": "conv", "checkpoint": "some/open_clip.pt"})
    with pytest.raises(ConfigError, match="vision.stem"):
        smoke(vision={"stem": "convolutional"})


def test_stem_default_leaves_stage_keys_alone_and_conv_changes_them():
    base, patch, conv = smoke(), smoke(vision={"stem": "patch"}), smoke(vision={"stem": "conv"})
    for stage in ("backbones", "instruct", "eval"):
        assert stage_key(base, stage) == stage_key(patch, stage)
        assert stage_key(conv, stage) != stage_key(base, stage)
    assert stage_key(conv, "world") == stage_key(base, "world")


def test_tower_flop_formula_counts_the_stem():
    """perf.step_flops' tower term equals torch's FlopCounterMode with the conv stem (smoke, meta)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from lynxlib.bench import build_random

    cfg = smoke(vision={"stem": "conv"})
    model = build_random(cfg, device=torch.device("meta"), precision="fp32")
    shape = ModelShape.of(model)
    assert shape.tower_patch == model.tower.visual.conv1.macs_per_token() > 3 * shape.patch_size ** 2 * shape.tower_width
    size = cfg.world.image_size_low
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model.tower.encode_frames(torch.empty(2, 1, 3, size, size, device="meta"))
    assert counter.get_total_flops() == step_flops(shape, batch=2, seq_len=16, frames=1, resolution=size,
                                                   cached=False)["tower"]
