"""Building, freezing, checkpointing and counting: smoke shapes, and the paper's on the meta device."""
import pytest
import torch
from safetensors.torch import load_file, save_file

from lynxlib.adapters import AdaptedDecoderLayer, remove_adapters
from lynxlib.build import (CONFIG, WEIGHTS, CheckpointError, build_model, check_lm_shape, freeze_for_stage, load_lm, load_trainable,
                           paper_scale_counts, param_groups, save_trainable)
from lynxlib.vision import create_clip, load_clip
from model_kit import QUESTIONS, backbones, make_model, prompts, smoke
from lynxlib.data import pad_prompts


# ---------------------------------------------------------------------------------------- freezing
VARIANT_STAGES = {  # variant -> {stage: trainable groups that must be non-empty}
    "ours": {"pretrain_low": {"resampler", "adapters"}, "instruct": {"resampler", "adapters", "frame_pos"}},
    "cross_attn": {"pretrain_low": {"resampler", "xattn", "frame_pos"}},
    "cross_attn_tune_lm": {"instruct": {"resampler", "xattn", "frame_pos", "lm"}},
    "blind": {"instruct": {"adapters"}},
}


@pytest.mark.parametrize("variant", sorted(VARIANT_STAGES))
def test_freeze_counts_per_variant(tok, parts, variant):
    cfg = smoke(variant)
    model = make_model(cfg, tok, parts=parts, wake=False)
    groups = param_groups(model)
    sizes = {g: sum(p.numel() for p in ps.values()) for g, ps in groups.items()}
    assert sum(sizes.values()) == sum(p.numel() for p in model.parameters())
    for stage, nonempty in VARIANT_STAGES[variant].items():
        trainable = getattr(cfg, stage).trainable
        table = freeze_for_stage(model, trainable)
        assert table.trainable == sum(sizes[g] for g in trainable)
        assert table.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert all(sizes[g] > 0 for g in nonempty), (stage, sizes)
        assert sizes["tower"] == 0 or not any(p.requires_grad for p in model.tower.parameters())
        frame = table.to_frame()
        assert list(frame.columns) == ["group", "trainable", "params"] and frame.params.sum() == table.total
        assert "trainable" in str(table)
    if variant == "blind":
        assert sizes["resampler"] == sizes["frame_pos"] == sizes["tower"] == 0
    with pytest.raises(ValueError, match="unknown trainable groups"):
        freeze_for_stage(model, ["tower"])


def test_smoke_counts(tok, parts):
    model = make_model(smoke(), tok, parts=parts, wake=False)
    d, q, dv = 64, 8, 64
    counts = {g: sum(p.numel() for p in ps.values()) for g, ps in param_groups(model).items()}
    adapter = 2 * d + d * 32 + 32 + 32 * d + d
    assert counts["adapters"] == 2 * adapter  # smoke: every block (M = 1), 2 blocks
    attn = 2 * dv + 2 * d + d * 64 + dv * 128 + d * 128 + 64 * d
    ff = 2 * d + d * 2 * d + 2 * d * d
    assert counts["resampler"] == q * d + attn + ff + 2 * d
    assert counts["frame_pos"] == 5 * dv


# -------------------------------------------------------------------------------------- checkpoints
def test_save_load_trainable_round_trip(tmp_path, tok, parts):
    cfg = smoke()
    model = make_model(cfg, tok, parts=parts, seed=0)
    freeze_for_stage(model, cfg.instruct.trainable)
    path = save_trainable(model, tmp_path / "ckpt", cfg)
    assert path.name == WEIGHTS and (tmp_path / "ckpt" / CONFIG).is_file()
    assert not list((tmp_path / "ckpt").glob(".*.tmp")), "no temporary files left behind"
    saved = load_file(str(path))
    assert set(saved) == {n for n, p in model.named_parameters() if p.requires_grad}

    fresh = make_model(cfg, tok, parts=parts, seed=5, wake=False)  # other init of the trainable parts
    batch = pad_prompts(prompts(model, tok, QUESTIONS), pad_id=tok.pad_token_id)
    px = torch.randn(3, 1, 3, 64, 64)
    with torch.no_grad():
        want = model(**batch, pixel_values=px).logits
        assert not torch.equal(fresh(**batch, pixel_values=px).logits, want)
        assert load_trainable(fresh, tmp_path / "ckpt") == ["resampler", "adapters", "frame_pos"]
        assert torch.equal(fresh(**batch, pixel_values=px).logits, want)

    ca = make_model(smoke("cross_attn"), tok, parts=parts)
    with pytest.raises(CheckpointError, match="unexpected keys: lm.model.layers.0.adapter"):
        load_trainable(ca, tmp_path / "ckpt")
    one = next(iter(saved))
    save_file({k: v for k, v in saved.items() if k != one}, str(path), metadata={"groups": '["resampler", '
                                                                               '"adapters", "frame_pos"]'})
    with pytest.raises(CheckpointError, match=f"missing keys: {one}"):
        load_trainable(fresh, tmp_path / "ckpt")


def test_lm_save_pretrained_round_trip_with_adapters_removed(tmp_path, tok, parts):
    lm = parts[0]
    base = {k: v.clone() for k, v in lm.state_dict().items()}
    model = make_model(smoke(), tok, parts=parts)  # adapters inserted into a copy of lm, then woken
    model.lm.save_pretrained(tmp_path / "with_adapters")  # runs with the wrappers in place
    assert any(isinstance(m, AdaptedDecoderLayer) for m in model.lm.modules())
    remove_adapters(model.lm)
    model.lm.save_pretrained(tmp_path / "lm")
    back = load_lm(tmp_path / "lm")
    state = back.state_dict()
    assert set(state) == set(base) and all(torch.equal(state[k], base[k]) for k in base)
    check_lm_shape(back, smoke().lm)
    bad = smoke().lm
    bad.hidden_size = 128
    with pytest.raises(ValueError, match="lm.hidden_size: 128, 64"):
        check_lm_shape(back, bad)


def test_clip_checkpoint_round_trip(tmp_path, tok, parts):
    cfg = smoke()
    clip = parts[1]
    assert clip.vocab_size == len(tok) and clip.text_pool_type == "eos" and clip.text_eos_id == tok.eos_token_id
    torch.save(clip.state_dict(), tmp_path / "clip.pt")
    loaded = load_clip(tmp_path / "clip.pt", cfg, vocab_size=len(tok))
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), clip.state_dict().values()))
    other = create_clip(cfg, vocab_size=len(tok))
    model = build_model(cfg, tokenizer=tok, lm=backbones(cfg, tok)[0], clip_visual_or_tower=other)
    assert model.tower.visual is other.visual
    with pytest.raises(FileNotFoundError):
        load_clip(tmp_path / "missing.pt", cfg)


# -------------------------------------------------------------------------------------- paper scale
def test_paper_scale_counts_on_meta_device():
    d, v, layers, mlp = 4096, 32001, 32, 11008
    adapter = 2 * d + d * 2048 + 2048 + 2048 * d + d
    assert adapter == 16_791_552
    llama = 2 * v * d + layers * (4 * d * d + 3 * d * mlp + 2 * d) + d
    assert llama == 6_738_415_616 + 2 * d  # LLaMA-7B (32000 vocab) + one pad row in embedding and head
    w, depth, hidden = 1408, 40, 6144
    block = 2 * w + 2 * w + 3 * w * w + w * w + w + 2 * w + w * hidden + hidden + hidden * w + w  # q/v biases
    tower = 3 * 14 * 14 * w + w + w + 257 * w + depth * block + 2 * w + w * 1024 + 1024  # + CLIP head
    inner, dv = 16 * 64, w
    attn = 2 * dv + 2 * d + d * inner + dv * 2 * inner + d * 2 * inner + inner * d
    ff = 2 * d + d * 4 * d + 4 * d * d
    resampler = 32 * d + 3 * (attn + ff) + 2 * d

    counts = paper_scale_counts(adapter_every=2)
    assert counts["adapter_layers"] == 16 and counts["adapters"] == 16 * adapter == 268_664_832
    assert counts["lm"] == llama
    assert counts["tower"] == tower == 1_012_588_928
    assert counts["resampler"] == resampler
    assert counts["frame_pos"] == 5 * w and counts["xattn"] == 0
    assert counts["total"] == llama + 16 * adapter + tower + resampler + 5 * w
    m1 = paper_scale_counts(adapter_every=1)
    assert m1["adapter_layers"] == 32 and m1["adapters"] == 32 * adapter
