"""The model components at smoke shapes: tower, resampler, adapters, cross-attention, LynxModel."""
import numpy as np
import pytest
import torch

from lynxlib.adapters import AdaptedDecoderLayer, insert_adapters, remove_adapters
from lynxlib.config import AdapterConfig
from lynxlib.data import pad_prompts
from lynxlib.resampler import PerceiverResampler
from lynxlib.vision import VisionTower, create_clip, interpolate_pos, to_pixel_values
from lynxlib.xattn import CrossAttnDecoderLayer

from model_kit import QUESTIONS, TURNS, backbones, make_model, prompts, smoke, train_batch


# -------------------------------------------------------------------------------------------- vision
def test_tower_shapes_image_and_video(cfg, parts):
    tower = VisionTower(parts[1].visual, feature_layer=-2)
    n = 1 + (64 // 8) ** 2
    assert tower(torch.randn(2, 3, 64, 64)).shape == (2, n, cfg.vision.width)
    frames = tower.encode_frames(torch.randn(2, 5, 3, 64, 64))
    assert frames.shape == (2, 5, n, cfg.vision.width)
    assert not any(p.requires_grad for p in tower.parameters())
    tower.train()
    assert not tower.training, "a frozen tower stays in eval mode"


def test_tower_feature_layer_matches_open_clip(parts):
    visual = parts[1].visual
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        h = visual._embeds(x)
        inner = [h := block(h) for block in visual.transformer.resblocks]
        last = VisionTower(visual, feature_layer=-1)(x)
        penult = VisionTower(visual, feature_layer=-2)(x)
    assert torch.equal(last, inner[-1]) and torch.equal(penult, inner[-2])
    with pytest.raises(ValueError, match="out of range"):
        VisionTower(visual, feature_layer=-5)


def test_set_resolution_interpolates_and_reverts(cfg, parts):
    tower = VisionTower(parts[1].visual, feature_layer=-2)
    x = torch.randn(1, 3, 64, 64)
    before = tower(x)
    with pytest.raises(ValueError, match="set_resolution"):
        tower(torch.randn(1, 3, 128, 128))
    tower.set_resolution(128)
    assert tower(torch.randn(1, 3, 128, 128)).shape == (1, 1 + 16 ** 2, cfg.vision.width)
    tower.set_resolution(64)
    assert torch.equal(tower(x), before)
    pos = tower._pos_param()
    assert torch.allclose(interpolate_pos(pos, 8), pos, atol=1e-6)  # same grid: the identity
    assert torch.equal(interpolate_pos(pos, 16)[0], pos[0])  # class token kept


def test_eva_tower_matches_timm_at_high_resolution(tok):
    cfg = smoke()
    cfg.vision.arch, cfg.vision.open_clip_name, cfg.world.image_size_low = "eva", "lynx-tiny-eva", 28
    trunk = create_clip(cfg, vocab_size=len(tok)).visual.trunk
    tower = VisionTower(create_clip(cfg, vocab_size=len(tok)).visual, feature_layer=-1)
    tower.visual.trunk.load_state_dict(trunk.state_dict())
    x = torch.randn(2, 3, 56, 56)
    tower.set_resolution(56)
    trunk.set_input_size((56, 56))  # timm's own resampling of positions and RoPE
    with torch.no_grad():
        assert torch.allclose(trunk.norm(tower(x)), trunk.forward_features(x), atol=1e-5)


def test_to_pixel_values():
    img = np.zeros((2, 5, 8, 8, 3), np.uint8)
    img[..., 0] = 255
    px = to_pixel_values(img)
    assert px.shape == (2, 5, 3, 8, 8) and px.dtype == torch.float32
    assert torch.allclose(px[0, 0, 0, 0, 0], torch.tensor((1 - 0.48145466) / 0.26862954))
    with pytest.raises(ValueError):
        to_pixel_values(np.zeros((8, 8, 3), np.float32))


# ----------------------------------------------------------------------------------- resampler, adapters
def test_resampler_shape(cfg):
    r = PerceiverResampler(dim=48, dim_media=32, cfg=cfg.model.resampler)
    assert r(torch.randn(3, 65 * 5, 32)).shape == (3, cfg.model.resampler.num_latents, 48)


@pytest.mark.parametrize("every, wrapped", [(1, [0, 1, 2, 3]), (2, [1, 3]), (3, [2])])
def test_adapter_placement_and_identity_at_init(tok, every, wrapped):
    cfg = smoke()
    cfg.lm.num_layers = 4
    lm = backbones(cfg, tok)[0].eval()
    ids = torch.tensor([[1, 20, 30, 40, 50]])
    before = lm(input_ids=ids).logits
    assert insert_adapters(lm, AdapterConfig(every=every)) == wrapped
    layers = lm.model.layers
    assert [i for i, layer in enumerate(layers) if isinstance(layer, AdaptedDecoderLayer)] == wrapped
    assert torch.equal(lm(input_ids=ids).logits, before), "zero-init adapters are the identity"
    removed = remove_adapters(lm)
    assert len(removed) == len(wrapped) and not any(isinstance(m, AdaptedDecoderLayer) for m in lm.modules())


# ---------------------------------------------------------------------------------------- cross-attn
def test_cross_attn_gates_at_zero_leave_lm_unchanged(tok, parts):
    cfg = smoke("cross_attn")
    lm = parts[0].eval()
    model = make_model(cfg, tok, parts=parts, wake=False)
    assert [i for i, m in enumerate(model.lm.model.layers) if isinstance(m, CrossAttnDecoderLayer)] == [0, 1]
    batch = pad_prompts(prompts(model, tok, QUESTIONS), pad_id=tok.pad_token_id)
    px = torch.randn(3, 1, 3, 64, 64)
    plain = lm(**batch, position_ids=(batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)).logits
    gated = model(**batch, pixel_values=px).logits
    assert torch.equal(gated, plain)
    with torch.no_grad():
        model.lm.model.layers[0].xattn.attn_gate.fill_(0.5)
    opened = model(**batch, pixel_values=px, has_visual=torch.tensor([True, False, True])).logits
    assert not torch.allclose(opened[0], plain[0]) and not torch.allclose(opened[2], plain[2])
    assert torch.equal(opened[1], plain[1]), "a text-only row never sees the vision context"
    assert all(m.media is None for m in model.lm.modules() if isinstance(m, CrossAttnDecoderLayer))


# ------------------------------------------------------------------------------------------ LynxModel
def test_forward_shapes_and_label_masking(tok, parts):
    cfg = smoke()
    model = make_model(cfg, tok, parts=parts)
    batch = train_batch(model, tok, TURNS, visual=[True, True, False])
    px = torch.randn(3, 1, 3, 64, 64)
    out = model(**batch, pixel_values=px)
    assert out.logits.shape == (*batch["input_ids"].shape, model.lm.config.vocab_size)
    labels = batch["labels"]
    target = labels[:, 1:]
    manual = torch.nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1), target.flatten(), ignore_index=-100)
    assert torch.allclose(out.loss, manual)
    changed = labels.clone()
    changed[labels == -100] = 7  # a masked label is now a real target ...
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    assert not torch.allclose(model(**inputs, pixel_values=px, labels=changed).loss, out.loss)
    edited = labels.clone()
    edited[:, 0] = 5  # position 0 is never a target (labels are shifted inside): nothing changes
    assert torch.equal(model(**inputs, pixel_values=px, labels=edited).loss, out.loss)


def test_video_and_cached_tokens_match_pixels(tok, parts):
    model = make_model(smoke(), tok, parts=parts)
    batch = train_batch(model, tok, TURNS[:2], visual=[True, True])
    video = torch.randn(2, 5, 3, 64, 64)
    out = model(**batch, pixel_values=video)
    cached = model.tower.encode_frames(video)  # (B, F, N, Dv): what a feature cache stores
    assert cached.shape == (2, 5, 65, 64)
    assert torch.equal(model(**batch, vision_tokens=cached).logits, out.logits)
    image = torch.randn(2, 3, 64, 64)  # (B, 3, H, W) is an image: F = 1
    assert torch.equal(model(**batch, pixel_values=image).logits, model(**batch, pixel_values=image[:, None]).logits)


def test_mixed_batch_rows_match_alone(tok, parts):
    for variant in ("ours", "cross_attn"):
        model = make_model(smoke(variant), tok, parts=parts)
        visual = [True, False, True]
        batch = train_batch(model, tok, TURNS, visual=visual)
        has = torch.tensor(visual)
        px = torch.randn(3, 1, 3, 64, 64)
        full = model(**batch, pixel_values=px, has_visual=has).logits
        only_visual = model(**batch, pixel_values=px[has], has_visual=has).logits  # one row per visual sample
        assert torch.allclose(full, only_visual, atol=1e-6)
        for i in range(3):
            n = int(batch["attention_mask"][i].sum())
            row = {k: v[i: i + 1, :n] for k, v in batch.items() if k != "labels"}
            alone = model(**row, pixel_values=px[i: i + 1] if visual[i] else None,
                          has_visual=has[i: i + 1]).logits
            assert torch.allclose(full[i, :n], alone[0], atol=1e-5), (variant, i)


def test_placeholder_errors(tok, parts):
    model = make_model(smoke(), tok, parts=parts)
    batch = pad_prompts(prompts(model, tok, QUESTIONS[:1]), pad_id=tok.pad_token_id)
    ids = batch["input_ids"].clone()
    ids[0, (ids[0] == model.image_token_id).nonzero()[0]] = 10  # Q - 1 placeholders
    with pytest.raises(ValueError, match="exactly 8 <image> placeholders"):
        model(input_ids=ids, attention_mask=batch["attention_mask"], pixel_values=torch.randn(1, 1, 3, 64, 64))
    with pytest.raises(ValueError, match="neither pixel_values nor vision_tokens"):
        model(**batch)
    blind = make_model(smoke("blind"), tok, parts=parts)
    assert blind.tower is None and blind.num_image_tokens == 0
    with pytest.raises(ValueError, match="no <image> placeholders"):
        blind(**batch)
    text = pad_prompts(prompts(blind, tok, QUESTIONS[:1]), pad_id=tok.pad_token_id)
    assert blind(**text, pixel_values=torch.randn(1, 1, 3, 64, 64)).logits.shape[0] == 1  # images ignored


@pytest.mark.parametrize("variant", ["ours", "cross_attn"])
def test_gradients_reach_only_trainable_groups(tok, parts, variant):
    from lynxlib.build import freeze_for_stage, param_groups

    cfg = smoke(variant)
    model = make_model(cfg, tok, parts=parts)
    freeze_for_stage(model, cfg.instruct.trainable)
    model.train()
    batch = train_batch(model, tok, TURNS, visual=[True, True, False])
    model(**batch, pixel_values=torch.randn(3, 5, 3, 64, 64)).loss.backward()  # a video batch: frame_pos learns
    for group, params in param_groups(model).items():
        grads = [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in params.values()]
        assert all(grads) if group in cfg.instruct.trainable else not any(grads), group
