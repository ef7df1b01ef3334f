"""Tasks, prompts, styles and answer balance."""
import re
from collections import Counter

import numpy as np
import pytest

from lynxlib.config import WorldConfig
from lynxlib.world import (POOLS, STYLE_WORDINGS, TASKS, Sample, answer_distribution, clean_caption, majority_baseline,
                           noisy_caption, sample_clip, sample_instruction, sample_scene, stream_rng, tasks_for,
                           text_corpus, text_instructions)
from lynxlib.world.language import location
from lynxlib.world.registry import TASK_SPECS
from lynxlib.world.tasks import Unanswerable

CFG = WorldConfig()
EXPECTED_TASKS = {"caption_pair", "caption_brief", "caption_detailed", "vqa_object", "vqa_color", "vqa_count",
                  "vqa_spatial", "vqa_ocr", "vqa_place", "vqa_action", "vqa_reasoning", "vqa_verify", "classify_place",
                  "classify_object", "dialogue", "video_caption", "video_action_yn", "video_qa", "text_instruction"}
SCENES = [sample_scene(stream_rng(0, "tasks", i), CFG) for i in range(500)]
CLIPS = [sample_clip(stream_rng(0, "tasks-clip", i), CFG) for i in range(120)]


def draw(task: str, n: int, seed: int = 0, **kwargs) -> list[Sample]:
    rng = np.random.default_rng(seed)
    return [sample_instruction(rng=rng, task_name=task, scenes=SCENES, clips=CLIPS, prompt_mode="diverse", **kwargs)
            for _ in range(n)]


def chi2_critical(df: int, z: float = 3.09) -> float:
    """Upper 0.1% point of chi-square (Wilson-Hilferty)."""
    return df * (1 - 2 / (9 * df) + z * (2 / (9 * df)) ** 0.5) ** 3


def pattern(template: str) -> re.Pattern:
    """A regex matching any filling of a prompt template's slots."""
    parts = re.split(r"\{[^}]+\}", template)
    return re.compile(".+?".join(re.escape(p) for p in parts) + r"$", re.S)


def test_registry_names_and_prompt_pools():
    assert set(TASKS) == EXPECTED_TASKS == set(TASK_SPECS)
    for task in TASKS.values():
        for pool in task.pools:
            assert len(pool.hand) >= 3 and len(pool.paraphrases) >= CFG.paraphrases, pool.name
            assert len(pool.held_out) >= 2
            train = set(pool.hand) | set(pool.paraphrases)
            assert not train & set(pool.held_out), pool.name
        assert len(task.prompts) >= 3 and len(task.paraphrases) >= CFG.paraphrases


def test_held_out_phrasings_never_appear_in_training_samples():
    held = [pattern(p) for pool in POOLS.values() for p in pool.held_out if p]
    held_styles = {w for s in STYLE_WORDINGS.values() for w in s["held_out"]}
    for name in TASKS:
        for sample in draw(name, 40, seed=3):
            assert sample.phrasing == "train"
            for user, _ in sample.turns:
                assert not any(h.match(user) for h in held), (name, user)
                assert not any(user.endswith(w) for w in held_styles)
    for sample in draw("vqa_color", 20, split="eval_held_out", style="short"):
        assert sample.phrasing == "held_out"
        wording = next(w for w in STYLE_WORDINGS["short"]["held_out"] if sample.question.endswith(w))
        question = sample.question[: -len(wording) - 1]
        assert any(pattern(p).match(question) for p in POOLS["colour"].held_out), question


def test_single_prompt_mode_uses_the_first_hand_written_prompt():
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = sample_instruction(rng=rng, task_name="vqa_place", scenes=SCENES, clips=CLIPS, prompt_mode="single",
                               style="plain")
        assert s.question == POOLS["place"].hand[0]
    questions = {s.question for s in draw("vqa_place", 60, style="plain")}
    assert len(questions) > 10


@pytest.mark.parametrize("task", ["vqa_object", "vqa_color", "vqa_count", "vqa_spatial", "vqa_ocr", "vqa_place",
                                  "vqa_action", "vqa_reasoning", "classify_place", "classify_object",
                                  "video_action_yn", "video_qa"])
def test_answers_are_balanced_within_each_question_type(task):
    samples = draw(task, 360, seed=7, style="plain")
    for key, counter in answer_distribution(samples, by="qtype").items():
        qtype = TASKS[task].qtype(key.split("/")[1])
        space = qtype.answers(TASKS[task].vocab)
        n = sum(counter.values())
        expected = n / len(space)
        chi2 = sum((counter.get(a, 0) - expected) ** 2 / expected for a in space)
        assert set(counter) <= set(space), key
        assert chi2 < chi2_critical(len(space) - 1), (key, dict(counter))


def test_majority_baselines_are_near_uniform():
    samples = [s for t in ("vqa_color", "vqa_count", "vqa_place", "vqa_reasoning") for s in draw(t, 300, seed=11)]
    base = majority_baseline(samples)
    assert base["Color"] < 0.2 and base["Counting"] < 0.16 and base["Place"] < 0.2 and base["Reasoning"] < 0.62
    with pytest.raises(ValueError, match="mix image and video"):
        majority_baseline(draw("vqa_object", 5) + draw("video_qa", 5))


def test_styles_are_honoured():
    for task in ("vqa_color", "vqa_count", "vqa_ocr", "vqa_reasoning", "video_action_yn", "text_instruction"):
        for s in draw(task, 30, style="one_word"):
            assert len(s.answer.split()) == 1 and s.question.endswith(STYLE_WORDINGS["one_word"]["train"])
        for s in draw(task, 30, style="explain"):
            short, _, reason = s.answer.partition(": ")
            assert short == s.references[0] and len(reason.split()) >= 3, s.answer
        for s in draw(task, 30, style="short"):
            assert s.answer == s.references[0] and len(s.answer.split()) <= 5


def test_plain_style_mixes_both_registers_and_training_mixes_styles():
    answers = [s.answer for s in draw("vqa_color", 200, style="plain")]
    reasoned = sum(": " in a for a in answers)
    assert 40 < reasoned < 120
    styles = Counter(s.style for s in draw("vqa_count", 300))
    assert set(styles) == {"plain", "short", "one_word", "explain"}


def test_unanswerable_and_pinned_answers():
    task = TASKS["vqa_ocr"]
    no_text = next(s for s in SCENES if s.text is None)
    with pytest.raises(Unanswerable):
        task.make(rng=np.random.default_rng(0), visual=no_text, visual_index=0, prompt_mode="diverse")
    with_text = next(s for s in SCENES if s.text is not None)
    sample = task.make(rng=np.random.default_rng(0), visual=with_text, visual_index=3, prompt_mode="diverse",
                       style="one_word", answer=with_text.text.word)
    assert sample.answer == with_text.text.word and sample.visual_index == 3 and sample.category == "OCR"


def test_samples_round_trip_and_are_deterministic():
    a, b = draw("dialogue", 10, seed=5), draw("dialogue", 10, seed=5)
    assert a == b and a != draw("dialogue", 10, seed=6)
    for s in a + draw("video_qa", 5) + draw("text_instruction", 5):
        assert Sample.from_dict(s.to_dict()) == s
    assert all(2 <= len(s.turns) <= 3 for s in a)
    for s in draw("text_instruction", 5):
        assert s.visual_kind == "none" and s.visual_index == -1


def test_dialogue_and_video_answers_follow_the_graph():
    for s in draw("video_qa", 60, style="short"):
        clip = CLIPS[s.visual_index]
        if s.qtype == "video_colour":
            assert s.answer in {t.colour for t in clip.tracks}
        if s.qtype == "order":
            assert len(clip.events) == 2
    for s in draw("video_action_yn", 60, style="explain"):
        clip = CLIPS[s.visual_index]
        names = [f"the {t.colour} {t.shape}" for t in clip.tracks]
        assert any(n in s.answer for n in names)


def test_clean_and_noisy_captions():
    rng = np.random.default_rng(0)
    for scene in SCENES[:40]:
        caption = clean_caption(scene, rng)
        for o in scene.objects:
            assert f"{o.size} {o.colour} {o.shape}" in caption and location(o.row, o.col, scene.grid) in caption
        assert scene.text is None or f'"{scene.text.word}"' in caption
        assert scene.place in caption
    noisy = [noisy_caption(s, rng) for s in SCENES[:100]]
    clean = [clean_caption(s, rng) for s in SCENES[:100]]
    assert not set(noisy) & set(clean)
    boiler = sum(any(b in n for b in ("stock photo", "click here", "free download", "royalty free")) for n in noisy)
    assert boiler > 10


def test_noisy_pair_share_follows_the_multiplier():
    samples = draw("caption_pair", 300, captions="clean+noisy")
    noisy = sum(s.qtype == "noisy" for s in samples) / len(samples)
    assert abs(noisy - CFG.noisy_multiplier / (CFG.noisy_multiplier + 1)) < 0.08
    assert all(s.qtype == "clean" for s in draw("caption_pair", 30))
    assert sum(s.question == "" for s in draw("caption_pair", 100)) > 30


def test_text_corpus_and_instructions():
    cfg = WorldConfig(text_corpus=200, text_instructions=150)
    corpus = text_corpus(cfg, np.random.default_rng(0))
    assert len(corpus) == 200 and corpus == text_corpus(cfg, np.random.default_rng(0))
    instructions = text_instructions(cfg, np.random.default_rng(0))
    assert len(instructions) == 150 and {s.style for s in instructions} == {"plain", "short", "one_word", "explain"}
    for s in instructions:
        if s.style == "one_word":
            assert len(s.answer.split()) == 1
        if s.qtype == "arithmetic":
            a, b = re.findall(r"\b(zero|one|two|three|four|five|six|seven|eight|nine|ten)\b", s.question)[:2]
            words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
            assert s.references[0] == words[words.index(a) + words.index(b)]


def test_smaller_worlds_restrict_the_vocabulary():
    small = WorldConfig(num_places=3, num_colours=4, num_shapes=5, paraphrases=20)
    tasks = tasks_for(small)
    assert tasks["vqa_color"].qtypes[0].answers(tasks["vqa_color"].vocab) == ("red", "green", "blue", "yellow")
    assert len(tasks["vqa_color"].paraphrases) == 20
    scenes = [sample_scene(stream_rng(0, "small", i), small) for i in range(200)]
    rng = np.random.default_rng(0)
    places = {sample_instruction(rng=rng, task_name="vqa_place", scenes=scenes, clips=[], prompt_mode="diverse",
                                 style="short", cfg=small).answer for _ in range(60)}
    assert places == {"beach", "forest", "kitchen"}
    with pytest.raises(ValueError, match="paraphrases"):
        tasks_for(WorldConfig(paraphrases=500))
