"""Prompt formatting, label masking, padding and the mixture draw."""
import numpy as np
import pytest

from lynxlib.data import IGNORE, PromptFormatter, draw_tasks, mixture_kinds, pad_batch, pad_prompts
from lynxlib.tokenizer import IMAGE, train_tokenizer

TEMPLATE = "User: {question}\nBot:"


@pytest.fixture(scope="module")
def tok():
    texts = ["User: what colour is the circle?\nBot: red", "a blue square on the beach", "yes no one two"] * 30
    return train_tokenizer(texts, vocab_size=300)


def test_labels_cover_exactly_the_responses(tok):
    fmt = PromptFormatter(tokenizer=tok, template=TEMPLATE, num_image_tokens=4, max_len=256)
    enc = fmt.encode([("what colour is the circle?", "red"), ("and the square?", "blue")], has_visual=True)
    ids, labels = enc.input_ids, enc.labels
    assert ids[0] == tok.bos_token_id and ids[1:5] == [tok.convert_tokens_to_ids(IMAGE)] * 4
    targets = [t for t, l in zip(ids, labels) if l != IGNORE]
    assert tok.decode(targets) == " red</s> blue</s>"
    assert all(l in (IGNORE, t) for t, l in zip(ids, labels))
    # the generation prompt is the training sequence cut right before the last response
    prompt = fmt.encode_prompt([("what colour is the circle?", "red"), ("and the square?", "blue")], has_visual=True)
    assert ids[: len(prompt)] == prompt and labels[len(prompt)] != IGNORE


def test_no_placeholders_without_visual_or_for_cross_attention(tok):
    image = tok.convert_tokens_to_ids(IMAGE)
    fmt = PromptFormatter(tokenizer=tok, template=TEMPLATE, num_image_tokens=4, max_len=256)
    assert image not in fmt.encode([("q?", "a")], has_visual=False).input_ids
    ca = PromptFormatter(tokenizer=tok, template=TEMPLATE, num_image_tokens=0, max_len=256)
    assert image not in ca.encode([("q?", "a")], has_visual=True).input_ids


def test_empty_instruction_is_plain_captioning(tok):
    fmt = PromptFormatter(tokenizer=tok, template=TEMPLATE, num_image_tokens=2, max_len=256)
    enc = fmt.encode([("", "a blue square on the beach")], has_visual=True)
    assert "User" not in tok.decode(enc.input_ids)
    assert tok.decode([t for t, l in zip(enc.input_ids, enc.labels) if l != IGNORE]) == "a blue square on the beach</s>"


def test_truncation_keeps_the_image_head(tok):
    fmt = PromptFormatter(tokenizer=tok, template=TEMPLATE, num_image_tokens=4, max_len=8)
    enc = fmt.encode([("what colour is the circle?", "red")], has_visual=True)
    assert len(enc.input_ids) == 8 and enc.input_ids[1:5] == [tok.convert_tokens_to_ids(IMAGE)] * 4


def test_padding_sides(tok):
    fmt = PromptFormatter(tokenizer=tok, template=TEMPLATE, num_image_tokens=0, max_len=64)
    rows = [fmt.encode([("q?", "red")], has_visual=False), fmt.encode([("a longer question?", "blue")], has_visual=False)]
    right = pad_batch(rows, pad_id=tok.pad_token_id)
    assert right["attention_mask"][0, 0] == 1 and right["attention_mask"][0, -1] == 0
    assert (right["labels"][right["attention_mask"] == 0] == IGNORE).all()
    left = pad_prompts([r.input_ids for r in rows], pad_id=tok.pad_token_id)
    assert left["attention_mask"][:, -1].all() and left["attention_mask"][0, 0] == 0


def test_mixture_draw_matches_weights():
    kinds = {"a": "image", "b": "image", "v": "video", "t": "none"}
    groups = mixture_kinds({"a": 3, "b": 1, "v": 2, "t": 2, }, kinds)
    rng = np.random.default_rng(0)
    counts = {k: 0 for k in kinds}
    for _ in range(4000):
        kind, tasks = draw_tasks(rng, groups, 1)
        counts[tasks[0]] += 1
    shares = {k: v / 4000 for k, v in counts.items()}
    assert shares == pytest.approx({"a": 3 / 8, "b": 1 / 8, "v": 2 / 8, "t": 2 / 8}, abs=0.03)
    with pytest.raises(KeyError, match="not a world task"):
        mixture_kinds({"nope": 1}, kinds)
    kind, tasks = draw_tasks(rng, groups, 16)
    assert len({kinds[t] for t in tasks}) == 1  # one visual kind per micro-batch


def test_an_opening_draws_its_own_mixture_then_the_stage_mixture():
    """instruct.opening_steps: the first steps see only the opening's tasks (a slow task's onset before
    the mixture dilutes it); every later step draws the stage's whole mixture again."""
    from lynxlib.config import load
    from lynxlib.data import MixtureBatches
    from lynxlib.world import sample_clip, sample_scene

    cfg = load("params/smoke.yaml", instruct={"steps": 40, "opening_steps": 10, "opening_mixture": {"vqa_ocr": 1}})
    rng = np.random.default_rng(0)
    scenes = [sample_scene(rng, cfg.world) for _ in range(16)]
    clips = [sample_clip(rng, cfg.world) for _ in range(4)]
    source = MixtureBatches(world_cfg=cfg.world, scenes=scenes, clips=clips, visuals=None, formatter=None,
                            stage=cfg.instruct, seed=0, sees_images=True, pass_has_visual=False)

    def tasks(step: int) -> set[str]:
        return {s.task for s in source.samples(np.random.default_rng([0, step]), step)[1]}

    assert set().union(*(tasks(step) for step in range(10))) == {"vqa_ocr"}
    later = set().union(*(tasks(step) for step in range(10, 40)))
    assert len(later) > 3 and later <= set(cfg.instruct.mixture)


def test_the_mixture_table_shows_an_openings_shares_beside_the_stages():
    from lynxlib.config import load
    from lynxlib.reports import mixture_table

    plain = mixture_table(load("params/tiny.yaml", instruct={"opening_steps": 0, "opening_mixture": {},
                                                             "opening_schedule": "shared"}).instruct)
    assert list(plain.columns) == ["kind", "category", "weight", "share"]
    assert plain["share"].sum() == pytest.approx(1.0, abs=1e-2)
    opened = mixture_table(load("params/tiny.yaml", instruct={"opening_steps": 800,
                                                              "opening_mixture": {"vqa_ocr": 3, "vqa_color": 1}}).instruct)
    opening = opened["opening share"]
    assert opening.to_dict() == {**{t: 0.0 for t in plain.index}, "vqa_ocr": 0.75, "vqa_color": 0.25}
    assert (opened["share"] == plain["share"]).all() and opened.index.name == "task"
