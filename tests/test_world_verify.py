"""vqa_verify: yes/no about one fact, answers equal to the scene graph, balanced, MME's wording held out."""
import collections

import numpy as np
import pytest

from lynxlib.config import WorldConfig
from lynxlib.world.language import PLACE_PREP, article, refer
from lynxlib.world.prompts import POOLS
from lynxlib.world.registry import TASK_SPECS, sample_instruction, tasks_for
from lynxlib.world.scene import sample_scene, stream_rng, world_vocab
from lynxlib.world.verify import VERIFY_QTYPES
from lynxlib.world.vocab import number_word

CFG = WorldConfig()
SCENES = [sample_scene(stream_rng(3, "verify", i), CFG) for i in range(300)]


def referred(scene, name, hide):
    (obj,) = [o for o in scene.objects if refer(scene, o, hide=hide) == name]
    return obj


def truth(qtype, scene, slots) -> bool:
    """Whether the asked fact holds, read from the scene graph (independently of the asker)."""
    if qtype == "colour_verify":
        return referred(scene, slots["obj"], "colour").colour == slots["colour"]
    if qtype == "shape_verify":
        return article(referred(scene, slots["obj"], "shape").shape) == slots["a_shape"]
    if qtype == "count_verify":
        return number_word(scene.count) == slots["n"]
    if qtype == "place_verify":
        return PLACE_PREP[scene.place] == slots["where"]
    if qtype == "ocr_verify":
        return scene.text.word == slots["word"]
    raise KeyError(qtype)


@pytest.mark.parametrize("qtype", ["colour_verify", "shape_verify", "count_verify", "place_verify", "ocr_verify"])
def test_answers_equal_the_scene_graph(qtype):
    v, rng, asked = world_vocab(CFG), np.random.default_rng(0), collections.Counter()
    for scene in SCENES:
        for answer in ("yes", "no"):
            q = VERIFY_QTYPES[qtype].ask(rng, scene, v, answer)
            if q is None:
                continue
            assert q.short == answer and truth(qtype, scene, q.slots) == (answer == "yes"), (q, scene)
            asked[answer] += 1
    assert asked["yes"] == asked["no"] > 50


def test_the_task_is_balanced_and_covers_every_type():
    rng = np.random.default_rng(1)
    drawn = [sample_instruction(rng=rng, task_name="vqa_verify", scenes=SCENES, clips=[], prompt_mode="diverse")
             for _ in range(700)]
    by_type = collections.Counter(s.qtype for s in drawn)
    assert set(by_type) == set(VERIFY_QTYPES) and min(by_type.values()) > 60
    yes = np.mean([s.turns[0][1].startswith("yes") for s in drawn])
    assert 0.44 < yes < 0.56, yes


def test_mme_wording_never_appears_in_training_prompts():
    n = tasks_for(CFG)["vqa_verify"].n_paraphrases
    train = [p for name in VERIFY_QTYPES for p in POOLS[name].phrasings("train", n)]
    assert train and not any("please answer yes or no" in p.lower() for p in train)
    assert not any(p.startswith("Is this picture taken") for p in POOLS["place_verify"].phrasings("train", n))


def test_verify_is_not_an_open_vqa_category():
    assert TASK_SPECS["vqa_verify"][0] is None  # MME-mini scores it; Open-VQA-mini's categories stay the paper's
