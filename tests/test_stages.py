"""Stage keys: variants share exactly the stages the paper's protocol lets them share."""
from lynxlib.config import load
from lynxlib.stages import artifact_dir, previous_stage, stage_key


def key(variant, stage, **kw):
    return stage_key(load("params/smoke.yaml", variant, **kw), stage)


def test_everyone_shares_world_and_backbones():
    for variant in ("llama", "noisy_data", "cross_attn", "low_res", "blind"):
        assert key(variant, "world") == key("ours", "world")
        assert key(variant, "backbones") == key("ours", "backbones")


def test_shared_stage_one_where_the_protocol_allows_it():
    assert key("no_diverse_prompts", "pretrain_high") == key("ours", "pretrain_high")
    assert key("no_diverse_prompts", "instruct") != key("ours", "instruct")
    assert key("low_res", "pretrain_low") == key("ours", "pretrain_low")
    assert key("cross_attn_tune_lm", "pretrain_high") == key("cross_attn", "pretrain_high")
    assert key("cross_attn_tune_lm", "instruct") != key("cross_attn", "instruct")


def test_differences_propagate_downstream():
    assert key("llama", "pretrain_low") != key("ours", "pretrain_low")
    assert key("noisy_data", "pretrain_low") != key("ours", "pretrain_low")
    assert key("blind", "pretrain_low") != key("ours", "pretrain_low")
    assert key("ours", "instruct", seed=1) != key("ours", "instruct", seed=0)
    assert key("ours", "backbones", seed=1) == key("ours", "backbones", seed=0)
    # a world change reaches every later stage
    changed = {"world": {"train_scenes": 65}}
    assert all(key("ours", s, **changed) != key("ours", s) for s in ("backbones", "instruct", "eval"))


def test_low_res_skips_the_high_resolution_stage():
    low = load("params/smoke.yaml", "low_res")
    assert previous_stage(low, "instruct") == "pretrain_low"
    assert previous_stage(load("params/smoke.yaml", "ours"), "instruct") == "pretrain_high"


def test_artifact_dirs_are_content_addressed(tmp_path):
    a = artifact_dir(load("params/smoke.yaml", "ours"), "pretrain_low", tmp_path)
    b = artifact_dir(load("params/smoke.yaml", "low_res"), "pretrain_low", tmp_path)
    assert a == b and a.parent == tmp_path / "smoke" / "shared"


def test_a_new_world_generator_changes_every_key(monkeypatch):
    """Stored worlds are content-addressed by config AND generator version: changed generation code
    (with its version bumped) must not reuse a world, or the backbones trained on it."""
    from lynxlib.world import store

    cfg = load("params/smoke.yaml", "ours")
    before = {s: stage_key(cfg, s) for s in ("world", "backbones", "instruct")}
    monkeypatch.setattr(store, "GENERATOR_VERSION", store.GENERATOR_VERSION + 1)
    after = {s: stage_key(cfg, s) for s in ("world", "backbones", "instruct")}
    assert all(before[s] != after[s] for s in before)


def test_a_referenced_mixture_keys_like_the_same_mixture_written_out():
    ca = load("params/tiny.yaml", "cross_attn")
    written = load("params/tiny.yaml", "cross_attn", pretrain_low={"mixture_from": "", "mixture": ca.pretrain_low.mixture})
    assert written.pretrain_low.mixture_from == "" and ca.pretrain_low.mixture_from == "instruct_multimodal"
    assert stage_key(written, "pretrain_low") == stage_key(ca, "pretrain_low")
    other = load("params/tiny.yaml", "cross_attn", pretrain_low={"mixture_from": "", "mixture": {"vqa_color": 1}})
    assert stage_key(other, "pretrain_low") != stage_key(ca, "pretrain_low")


def test_reading_questions_at_one_keeps_the_world_key_and_more_change_it():
    base = load("params/smoke.yaml")
    one = load("params/smoke.yaml", world={"reading_questions": 1})
    four = load("params/smoke.yaml", world={"reading_questions": 4})
    for stage in ("world", "backbones", "instruct"):
        assert stage_key(base, stage) == stage_key(one, stage) != stage_key(four, stage)


def test_position_lines_at_zero_keep_the_world_key_and_a_share_changes_it():
    """world.recall_positions came after worlds were trained: at 0 it stays out of every key (tiny's
    v3 artifacts keep theirs); any share of position lines is a new corpus, so a new world."""
    base = load("params/tiny.yaml")
    zero = load("params/tiny.yaml", world={"recall_positions": 0.0})
    half = load("params/tiny.yaml", world={"recall_positions": 0.5})
    for stage in ("world", "backbones", "instruct"):
        assert stage_key(base, stage) == stage_key(zero, stage) != stage_key(half, stage)


NO_OPENING = {"opening_steps": 0, "opening_mixture": {}, "opening_schedule": "shared"}  # tiny before its opening


def test_no_opening_keeps_every_stage_key_and_an_opening_changes_its_stage_only():
    """instruct.opening_* came after stages were trained: unset, they stay out of every stage key (and
    out of the checkpoints' config, so a run trained before them resumes)."""
    from lynxlib.train import run_config

    base = load("params/tiny.yaml", instruct=NO_OPENING)
    opened = load("params/tiny.yaml", instruct={**NO_OPENING, "opening_steps": 800, "opening_mixture": {"vqa_ocr": 1}})
    for stage in ("pretrain_low", "pretrain_high"):
        assert stage_key(base, stage) == stage_key(opened, stage)
    assert stage_key(base, "instruct") != stage_key(opened, "instruct")
    assert "opening_steps" not in run_config(base.instruct, 0)["stage"]
    assert run_config(opened.instruct, 0)["stage"]["opening_mixture"] == {"vqa_ocr": 1.0}
    assert "opening_schedule" not in run_config(opened.instruct, 0)["stage"]  # "shared": as before the key
    restarted = load("params/tiny.yaml", instruct={"opening_steps": 800, "opening_mixture": {"vqa_ocr": 1}})
    assert restarted.instruct.opening_schedule == "restart"  # tiny's own
    assert stage_key(restarted, "instruct") not in (stage_key(opened, "instruct"), stage_key(base, "instruct"))
