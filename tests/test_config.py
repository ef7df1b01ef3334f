"""Params loading: merge, validation, clear errors naming the key."""
from pathlib import Path

import pytest

from lynxlib import config

VARIANTS = sorted(p.stem for p in Path("params/variants").glob("*.yaml"))
CONTROLS = {"blind", "resampler_locality", "instruction_aware"}  # variants no paper row has
SCALES = ["params/smoke.yaml", "params/tiny.yaml", "params/paper.yaml"]


def test_all_paper_rows_and_blind_control_exist():
    assert set(VARIANTS) >= {"ours", "llama", "no_diverse_prompts", "noisy_data", "cross_attn",
                             "cross_attn_tune_lm", "low_res", "blind"}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("scale", SCALES)
def test_every_variant_is_valid_at_every_scale(scale, variant):
    if not Path(scale).exists():
        pytest.skip(f"{scale} not written yet")
    cfg = config.load(scale, variant)
    assert cfg.variant == variant
    assert cfg.scale == Path(scale).stem


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_files_open_with_a_comment_naming_the_paper(variant):
    first = Path(f"params/variants/{variant}.yaml").read_text().splitlines()[0]
    assert first.startswith("# ")
    if variant in CONTROLS:
        assert first.startswith("# Control, no paper row")
    else:
        assert "Table 3" in first and "Sec." in first


def test_variant_overrides_apply():
    assert config.load("params/smoke.yaml", "llama").lm.backbone == "llama"
    assert config.load("params/smoke.yaml", "no_diverse_prompts").instruct.prompts == "single"
    assert config.load("params/smoke.yaml", "noisy_data").pretrain_low.captions == "clean+noisy"
    low = config.load("params/smoke.yaml", "low_res")
    assert not low.pretrain_high.enabled and low.instruct.resolution == "low"
    ca = config.load("params/smoke.yaml", "cross_attn_tune_lm")
    assert ca.model.fusion == "cross_attn" and "lm" in ca.instruct.trainable
    assert config.load("params/smoke.yaml", "blind").model.blind


def test_unknown_key_names_it_and_the_nearest(tmp_path):
    (tmp_path / "variants").mkdir()
    (tmp_path / "variants" / "ours.yaml").write_text("{}\n")
    (tmp_path / "s.yaml").write_text("scale: smoke\nworld:\n  train_scense: 3\n")
    with pytest.raises(config.ConfigError, match=r"world\.train_scense.*did you mean 'world\.train_scenes'"):
        config.load(tmp_path / "s.yaml")


def test_wrong_type_names_key_and_type(tmp_path):
    (tmp_path / "variants").mkdir()
    (tmp_path / "variants" / "ours.yaml").write_text("instruct:\n  steps: many\n")
    (tmp_path / "s.yaml").write_text("scale: smoke\n")
    with pytest.raises(config.ConfigError, match=r"instruct\.steps: expected int"):
        config.load(tmp_path / "s.yaml")


def test_exponent_without_dot_is_a_float(tmp_path):
    # PyYAML (YAML 1.1) reads ``1e-3`` as the string "1e-3"; a float key takes it as the number it means
    (tmp_path / "variants").mkdir()
    (tmp_path / "variants" / "ours.yaml").write_text("instruct:\n  lr: 2e-4\n")
    (tmp_path / "s.yaml").write_text("scale: smoke\n")
    cfg = config.load(tmp_path / "s.yaml", **config.dotted_overrides(["backbones.lm_lr=1e-3"]))
    assert cfg.instruct.lr == pytest.approx(2e-4) and isinstance(cfg.instruct.lr, float)
    assert cfg.backbones.lm_lr == pytest.approx(1e-3)
    with pytest.raises(config.ConfigError, match=r"backbones\.lm_lr: expected float, got str 'fast'"):
        config.load(tmp_path / "s.yaml", **config.dotted_overrides(["backbones.lm_lr=fast"]))
    with pytest.raises(config.ConfigError, match=r"instruct\.steps: expected int, got str '1e3'"):
        config.load(tmp_path / "s.yaml", **config.dotted_overrides(["instruct.steps=1e3"]))


def test_bad_choice_and_missing_variant(tmp_path):
    (tmp_path / "variants").mkdir()
    (tmp_path / "variants" / "ours.yaml").write_text("model:\n  fusion: sideways\n")
    (tmp_path / "s.yaml").write_text("scale: smoke\n")
    with pytest.raises(config.ConfigError, match=r"model\.fusion"):
        config.load(tmp_path / "s.yaml")
    with pytest.raises(config.ConfigError, match=r"known variants: ours"):
        config.load(tmp_path / "s.yaml", "nonexistent")


def test_int_is_accepted_for_float_and_hash_is_stable():
    a = config.load("params/smoke.yaml", "ours", instruct={"lr": 1})
    assert isinstance(a.instruct.lr, float)
    assert config.config_hash(a) == config.config_hash(config.load("params/smoke.yaml", "ours", instruct={"lr": 1.0}))
    assert config.config_hash(a) != config.config_hash(config.load("params/smoke.yaml", "ours"))


def test_extends_merges_the_parent_variant(tmp_path):
    ca = config.load("params/smoke.yaml", "cross_attn")
    tuned = config.load("params/smoke.yaml", "cross_attn_tune_lm")
    assert tuned.model.fusion == "cross_attn" and tuned.pretrain_low == ca.pretrain_low
    assert "text_instruction" in tuned.instruct.mixture and "text_instruction" not in ca.instruct.mixture
    (tmp_path / "variants").mkdir()
    (tmp_path / "variants" / "a.yaml").write_text("extends: b\n")
    (tmp_path / "variants" / "b.yaml").write_text("extends: a\n")
    (tmp_path / "s.yaml").write_text("scale: smoke\n")
    with pytest.raises(config.ConfigError, match="cycle"):
        config.load(tmp_path / "s.yaml", "a")


def test_nested_defaults_survive_partial_overrides():
    cfg = config.load("params/smoke.yaml")
    assert cfg.pretrain_high.resolution == "high"  # the field's default, not StageConfig's
    assert cfg.pretrain_low.resolution == "low"


@pytest.mark.parametrize("scale", SCALES)
def test_cross_attn_trains_on_the_scales_own_multimodal_mixture(scale):
    ours = config.load(scale, "ours").instruct.mixture
    multimodal = {task: w for task, w in ours.items() if task != "text_instruction"}
    ca, tuned = config.load(scale, "cross_attn"), config.load(scale, "cross_attn_tune_lm")
    for stage in (ca.pretrain_low, ca.pretrain_high, ca.instruct, tuned.pretrain_low):
        assert stage.mixture == multimodal
    assert tuned.instruct.mixture == ours
    # a changed scale mixture reaches the CA stages: they are derived, not copies
    changed = config.load(scale, "cross_attn", instruct={"mixture": {"vqa_color": 3, "text_instruction": 1}})
    assert changed.pretrain_low.mixture == {"vqa_color": 3.0}


def test_text_only_tasks_match_the_world_registry():
    from lynxlib.world.registry import TASK_SPECS
    assert set(config.TEXT_ONLY_TASKS) == {name for name, (_, kind, _) in TASK_SPECS.items() if kind == "none"}


def test_unknown_mixture_source_names_the_stage():
    with pytest.raises(config.ConfigError, match="pretrain_low.mixture_from: 'instruct'"):
        config.load("params/smoke.yaml", "ours", pretrain_low={"mixture_from": "instruct"})


def test_dotted_overrides_nest_and_parse_yaml_values():
    got = config.dotted_overrides(["model.resampler.locality=2", "instruct.trainable=[resampler, lm]", "seed=3"])
    assert got == {"model": {"resampler": {"locality": 2}}, "instruct": {"trainable": ["resampler", "lm"]}, "seed": 3}
    assert config.load("params/smoke.yaml", **got).model.resampler.locality == 2.0
    with pytest.raises(config.ConfigError, match="'locality': expected key.path=value"):
        config.dotted_overrides(["locality"])


def test_a_dotted_mixture_weight_edits_one_task_and_a_mapping_replaces_the_mixture():
    base = config.load("params/smoke.yaml").instruct.mixture
    edited = config.load("params/smoke.yaml", **config.dotted_overrides(["instruct.mixture.vqa_ocr=12"]))
    assert edited.instruct.mixture == {**base, "vqa_ocr": 12.0} and len(base) > 1
    whole = config.load("params/smoke.yaml", **config.dotted_overrides(["instruct.mixture={vqa_ocr: 1}"]))
    assert whole.instruct.mixture == {"vqa_ocr": 1.0}
    assert config.load("params/smoke.yaml", instruct={"mixture": {"vqa_ocr": 1}}).instruct.mixture == {"vqa_ocr": 1.0}


def test_a_dotted_weight_edits_a_mixture_left_at_its_default():
    # smoke.yaml's pretrain_high names no mixture: the edit adds to the default, it does not replace it
    default = config.load("params/smoke.yaml").pretrain_high.mixture
    edited = config.load("params/smoke.yaml", **config.dotted_overrides(["pretrain_high.mixture.vqa_ocr=3"]))
    assert default == {"caption_pair": 1.0}
    assert edited.pretrain_high.mixture == {"caption_pair": 1.0, "vqa_ocr": 3.0}
    assert config.load("params/smoke.yaml").pretrain_high.mixture == default  # the default is not mutated


def test_an_opening_mixture_is_edited_by_key_replaced_by_a_mapping_and_checked():
    smoke = config.load("params/smoke.yaml").instruct
    assert (smoke.opening_steps, smoke.opening_mixture) == (1, {"vqa_ocr": 4.0, "vqa_place": 1.0})
    edited = config.load("params/smoke.yaml", **config.dotted_overrides(["instruct.opening_mixture.vqa_color=1"]))
    assert edited.instruct.opening_mixture == {"vqa_ocr": 4.0, "vqa_place": 1.0, "vqa_color": 1.0}
    assert config.load("params/smoke.yaml").instruct.opening_mixture == {"vqa_ocr": 4.0, "vqa_place": 1.0}  # not mutated
    mapping = config.deep_merge({"instruct": {"opening_mixture": {"vqa_ocr": 1}}},
                                {"instruct": {"opening_mixture": {"vqa_color": 1}}})
    assert mapping["instruct"]["opening_mixture"] == {"vqa_color": 1}  # a file's mapping is a whole distribution
    with pytest.raises(config.ConfigError, match=rf"instruct.opening_steps: {smoke.steps} must be .* below instruct.steps"):
        config.load("params/smoke.yaml", instruct={"opening_steps": smoke.steps})
    with pytest.raises(config.ConfigError, match="instruct.opening_mixture: .* needs weights"):
        config.load("params/smoke.yaml", instruct={"opening_steps": 1, "opening_mixture": {"vqa_ocr": 0}})
    with pytest.raises(config.ConfigError, match="pretrain_low.opening_mixture is set but .*opening_steps is 0"):
        config.load("params/smoke.yaml", pretrain_low={"opening_mixture": {"vqa_ocr": 1}})
    with pytest.raises(config.ConfigError, match=r"instruct.opening_schedule: 'again' is not one of \('shared', 'restart'\)"):
        config.load("params/smoke.yaml", instruct={"opening_schedule": "again"})
    with pytest.raises(config.ConfigError, match="pretrain_low.opening_schedule: 'restart' needs an opening"):
        config.load("params/smoke.yaml", pretrain_low={"opening_schedule": "restart"})
