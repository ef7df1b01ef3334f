"""The resampler's optional locality prior: anchors, the logit prior, what it changes, and what it leaves alone."""
import dataclasses

import pytest
import torch

from lynxlib.config import ConfigError, ResamplerConfig, load
from lynxlib.resampler import PerceiverResampler, anchor_positions, locality_logits, patch_positions
from lynxlib.stages import stage_key
from model_kit import TURNS, make_model, train_batch

GRID = 4                  # media: a class token + a 4 x 4 patch grid per frame
TOKENS = 1 + GRID * GRID


def resampler(locality: float, num_latents: int = 9) -> PerceiverResampler:
    torch.manual_seed(0)
    cfg = ResamplerConfig(num_latents=num_latents, depth=1, heads=2, dim_head=8, ff_mult=1, locality=locality)
    return PerceiverResampler(dim=16, dim_media=12, cfg=cfg)


def test_anchors_tile_the_image_on_the_largest_square_grid():
    anchors = anchor_positions(10)  # isqrt(10) = 3: nine anchored latents, one free
    assert anchors.shape == (9, 2)
    assert torch.allclose(anchors[0], torch.tensor([1 / 6, 1 / 6]))
    assert torch.allclose(anchors[-1], torch.tensor([5 / 6, 5 / 6]))


def test_prior_peaks_at_the_nearest_patch_and_spares_class_token_free_latents_and_frames():
    prior = locality_logits(10, TOKENS, frames=2)
    assert prior.shape == (10, 2 * TOKENS)
    assert torch.all(prior[:, 0] == 0) and torch.all(prior[:, TOKENS] == 0)   # class token of each frame
    assert torch.all(prior[9] == 0)                                           # the latent beyond 3 x 3
    assert torch.equal(prior[:, :TOKENS], prior[:, TOKENS:])                  # every frame alike
    patches, first = patch_positions(TOKENS)
    nearest = torch.cdist(anchor_positions(10), patches).argmin(1)
    assert torch.equal(prior[:9, first:TOKENS].argmax(1), nearest)
    assert (prior <= 0).all()


def test_patch_positions_reject_a_grid_that_is_not_square():
    with pytest.raises(ValueError, match="18 tokens per frame"):
        patch_positions(18)


def sensitivity(model: PerceiverResampler, patch: int) -> float:
    """How much latent 0 (anchored top-left) moves when one patch token changes."""
    media = torch.randn(1, TOKENS, 12, generator=torch.Generator().manual_seed(1))
    bumped = media.clone()
    bumped[0, 1 + patch] += 5.0 * torch.randn(12, generator=torch.Generator().manual_seed(2))  # not a shift: LayerNorm
    with torch.no_grad():
        return float((model(bumped) - model(media))[0, 0].norm())


def test_locality_makes_an_anchored_latent_read_its_own_region():
    near, far = 0, GRID * GRID - 1  # the top-left patch and the bottom-right one
    local, plain = resampler(locality=8.0), resampler(locality=0.0)
    assert sensitivity(local, near) > 5 * sensitivity(local, far)
    assert sensitivity(plain, near) < 3 * sensitivity(plain, far)  # Flamingo's resampler: no such preference


def test_locality_gain_is_a_learned_parameter_only_when_asked():
    assert not any("locality" in name for name in resampler(0.0).state_dict())
    local = resampler(3.0)
    gains = [p for name, p in local.named_parameters() if name.endswith("locality_gain")]
    assert len(gains) == 1 and torch.allclose(gains[0], torch.full((2,), 3.0))
    local(torch.randn(2, TOKENS, 12)).sum().backward()
    assert gains[0].grad is not None and gains[0].grad.abs().sum() > 0


def test_video_media_must_split_into_frames():
    model = resampler(2.0)
    assert model(torch.randn(2, 3 * TOKENS, 12), frames=3).shape == (2, 9, 16)
    with pytest.raises(ValueError, match="do not split into 2 frames"):
        model(torch.randn(2, 3 * TOKENS, 12), frames=2)


def test_default_locality_keeps_stage_keys_and_a_prior_changes_them():
    base = load("params/smoke.yaml", "ours")
    off = load("params/smoke.yaml", "ours", model={"resampler": {"locality": 0.0}})
    on = load("params/smoke.yaml", "ours", model={"resampler": {"locality": 2.0}})
    for stage in ("pretrain_low", "instruct"):
        assert stage_key(off, stage) == stage_key(base, stage)
        assert stage_key(on, stage) != stage_key(base, stage)
    assert stage_key(on, "backbones") == stage_key(base, "backbones")
    blind = load("params/smoke.yaml", "blind")
    blind_on = load("params/smoke.yaml", "blind", model={"resampler": {"locality": 2.0}})
    assert stage_key(blind_on, "instruct") == stage_key(blind, "instruct")  # nothing to anchor in a blind model
    assert dataclasses.asdict(base.model.resampler)["locality"] == 0.0


def test_negative_locality_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="model.resampler.locality"):
        load("params/smoke.yaml", "ours", model={"resampler": {"locality": -1.0}})


def test_attention_maps_are_the_weights_forward_uses():
    model = resampler(4.0)
    media = torch.randn(2, TOKENS, 12)
    maps = model.attention_maps(media)
    assert len(maps) == 1 and maps[0].shape == (2, 2, 9, TOKENS + 9)
    assert torch.allclose(maps[0].sum(-1), torch.ones(2, 2, 9))
    attn, ff = model.layers[0]
    latents = model.latents.expand(2, -1, -1)
    _, _, v, _ = attn.project(media, latents, model.prior(media, 1))
    by_hand = attn.to_out((maps[0] @ v).transpose(1, 2).flatten(2))
    assert torch.allclose(by_hand, attn(media, latents, model.prior(media, 1)), atol=1e-5)


@pytest.mark.parametrize("variant", ["ours", "cross_attn", "low_res"])
def test_tiny_params_prior_runs_at_both_resolutions_on_images_and_clips(tok, variant):
    """params/tiny.yaml holds the prior: each bridge (prefix, cross-attention) and the 64-px variant must
    place its anchors on the tower's real patch grid at 64 and 128 px, for an image and a 5-frame clip."""
    cfg = load("params/tiny.yaml", variant)
    assert cfg.model.resampler.locality > 0
    model = make_model(cfg, tok)
    gains = [p for name, p in model.named_parameters() if name.endswith("locality_gain")]
    assert len(gains) == cfg.model.resampler.depth and all(torch.all(g == cfg.model.resampler.locality) for g in gains)
    batch = train_batch(model, tok, TURNS[:2], visual=[True, True])
    for size in (cfg.world.image_size_low, cfg.world.image_size_high):
        model.set_resolution(size)
        for frames in (1, 5):
            torch.manual_seed(size + frames)
            logits = model(**batch, pixel_values=torch.randn(2, frames, 3, size, size)).logits
            assert logits.shape[:2] == batch["input_ids"].shape and torch.isfinite(logits).all()
