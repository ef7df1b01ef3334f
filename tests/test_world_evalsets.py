"""Open-VQA-mini, MME-mini and OwlEval-mini: sizes, formats, balance, and answers equal to the graph."""
from collections import Counter
from dataclasses import replace

import pytest

from lynxlib.config import WorldConfig
from lynxlib.formats import validate_open_vqa
from lynxlib.world import (MME_SUBTASKS, OPEN_VQA_IMAGE, OPEN_VQA_VIDEO, category_sizes, majority_baseline, mme_mini,
                           open_vqa_mini, owleval_mini, sample_scene, stream_rng)
from lynxlib.world.evalsets import open_vqa_plan
from lynxlib.world.vocab import NUMBER_WORDS

CFG = WorldConfig(eval_scale=1.0)


@pytest.fixture(scope="module")
def open_vqa():
    return open_vqa_mini(CFG)


def test_category_sizes_follow_the_real_set():
    assert category_sizes(CFG) == OPEN_VQA_IMAGE and category_sizes(CFG, "video") == OPEN_VQA_VIDEO
    small = category_sizes(replace(CFG, eval_scale=0.1))
    assert small == {"OCR": 5, "Counting": 4, "Reasoning": 3, "Place": 2, "Color": 3, "Spatial": 2, "Action": 2,
                     "Others": 9}
    assert min(category_sizes(replace(CFG, eval_scale=0.001)).values()) == 1
    assert sum(category_sizes(replace(CFG, eval_scale=10.0)).values()) == 3020


def test_open_vqa_mini_records_and_balance(open_vqa):
    images, videos, scenes, clips = open_vqa
    assert len(images) == 302 == len(scenes) and len(videos) == 148 == len(clips)
    assert Counter(r["class"] for r in images) == Counter(OPEN_VQA_IMAGE)
    assert Counter(r["class"] for r in videos) == Counter(OPEN_VQA_VIDEO)
    for records, key in ((images, "image"), (videos, "video")):
        assert [r["index"] for r in records] == list(range(len(records)))
        for r in records:
            validate_open_vqa(r)
            assert r["origin_dataset"] == "lynx-world" and r[key].startswith(f"{key}s/")
    counts = Counter(r["answer"][0] for r in images if r["class"] == "Counting")
    assert max(counts.values()) - min(counts.values()) <= 1 and len(counts) == CFG.max_count + 1
    base = majority_baseline(images)
    assert base["Counting"] <= 0.11 and base["Reasoning"] <= 0.52 and base["Color"] <= 0.14
    assert majority_baseline(videos)["Action(Y/N)"] == 0.5


def test_open_vqa_answers_equal_the_scene_graph(open_vqa):
    images, _, scenes, _ = open_vqa
    for r in images:
        scene = scenes[r["index"]]
        if r["class"] == "Counting" and r["answer"][0] != "zero":
            assert NUMBER_WORDS.index(r["answer"][0]) == scene.count
        if r["class"] == "OCR":
            assert r["answer"][0] == scene.text.word
        if r["class"] == "Place":
            assert r["answer"][0] == scene.place
        if r["class"] == "Color":
            assert r["answer"][0] in {o.colour for o in scene.objects}


def test_open_vqa_plan_names_each_items_category_type_and_answer(open_vqa):
    """The plan replayed without visuals lines up with the drawn set item by item."""
    for kind, records in (("image", open_vqa[0]), ("video", open_vqa[1])):
        plan = open_vqa_plan(CFG, kind)
        assert [category for category, _, _ in plan] == [r["class"] for r in records]
        planned = [(answer, r["answer"]) for (_, _, answer), r in zip(plan, records) if answer is not None]
        assert len(planned) > len(records) // 2 and all(answer in refs for answer, refs in planned)
    spatial = Counter(qtype for category, qtype, _ in open_vqa_plan(CFG) if category == "Spatial")
    assert set(spatial) == {"relation", "relation_yn", "grid_position"} and max(spatial.values()) - min(spatial.values()) <= 1


def test_eval_streams_are_disjoint_from_training():
    _, _, scenes, _ = open_vqa_mini(replace(CFG, eval_scale=0.1))
    train = [sample_scene(stream_rng(CFG.seed, "train-scene", i), CFG) for i in range(200)]
    assert not {s.seed for s in scenes} & {s.seed for s in train}
    assert open_vqa_mini(replace(CFG, eval_scale=0.1))[0] == open_vqa_mini(replace(CFG, eval_scale=0.1))[0]


def test_mme_mini_has_one_yes_and_one_no_per_image():
    rows, scenes = mme_mini(replace(CFG, mme_images_per_subtask=6))
    assert set(rows) == set(MME_SUBTASKS) and len(scenes) == 6 * len(MME_SUBTASKS)
    for subtask, subtask_rows in rows.items():
        per_image: dict[str, list[str]] = {}
        for row in subtask_rows:
            assert row.question.endswith(" Please answer yes or no.")
            per_image.setdefault(row.image, []).append(row.ground_truth)
        assert len(per_image) == 6 and all(sorted(v) == ["No", "Yes"] for v in per_image.values())
    for row in rows["OCR"]:
        word = row.question.split('"')[1]
        assert (word == scenes[int(row.image[:5])].text.word) == (row.ground_truth == "Yes")
    for row in rows["count"]:
        n = NUMBER_WORDS.index(row.question.split("total of ")[1].split()[0])
        assert (n == scenes[int(row.image[:5])].count) == (row.ground_truth == "Yes")


def test_owleval_mini_keeps_the_scene_graph():
    records, scenes = owleval_mini(replace(CFG, owleval_items=12))
    assert len(records) == 12 and len({r["kind"] for r in records}) == 6
    for r, scene in zip(records, scenes):
        assert r["scene"] == scene.to_dict() and r["facts"]["place"] == scene.place
        assert r["facts"]["objects"] == [f"{o.colour} {o.shape}" for o in scene.objects]
