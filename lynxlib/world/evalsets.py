"""Evaluation sets from held-out seed streams: Open-VQA-mini, MME-mini, OwlEval-mini.

- *Open-VQA-mini* keeps the real set's categories in its proportions (image 302 = OCR 53, Counting 37,
  Reasoning 31, Place 22, Color 30, Spatial 15, Action 20, Others 94; video 148 = Action(Y/N) 108,
  Others 40) times ``eval_scale``, at least one item each. Answers are stratified: within a category
  the question types and their answers cycle through a shuffled plan, so every answer is equally
  frequent and the majority baseline is as low as the answer space allows.
- *MME-mini*: per subtask, images with one true and one false yes/no question each.
- *OwlEval-mini*: open-ended prompts with the scene graph and the facts a good answer mentions.

Every item draws its visual from its own generator (``stream_rng(seed, name, k)``), disjoint from the
training streams.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from lynxlib.config import WorldConfig
from lynxlib.formats import MMERow
from lynxlib.world.language import PLACE_PREP, article, pick, refer
from lynxlib.world.questions import RELATIONS
from lynxlib.world.registry import tasks_for
from lynxlib.world.scene import Scene, sample_scene, stream_rng, world_vocab
from lynxlib.world.tasks import Task, Unanswerable
from lynxlib.world.textures import PLACE_FEATURES
from lynxlib.world.video import Clip, sample_clip
from lynxlib.world.vocab import number_word, plural

OPEN_VQA_IMAGE = {"OCR": 53, "Counting": 37, "Reasoning": 31, "Place": 22, "Color": 30, "Spatial": 15,
                  "Action": 20, "Others": 94}
OPEN_VQA_VIDEO = {"Action(Y/N)": 108, "Others": 40}
CATEGORY_TASKS = {"image": {"OCR": "vqa_ocr", "Counting": "vqa_count", "Reasoning": "vqa_reasoning",
                            "Place": "vqa_place", "Color": "vqa_color", "Spatial": "vqa_spatial",
                            "Action": "vqa_action", "Others": "vqa_object"},
                  "video": {"Action(Y/N)": "video_action_yn", "Others": "video_qa"}}
MME_SUBTASKS = ("existence", "count", "position", "color", "OCR", "scene")
OWL_PROMPTS = {
    "describe": "Describe this image in as much detail as you can.",
    "story": "Write a short story inspired by this picture.",
    "advert": "Write a short advertisement for the place shown in this image.",
    "poem": "Write a short poem about this image.",
    "explain": "What is going on in this picture? Mention everything you notice.",
    "list": "List every object in this image with its colour.",
}
MAX_TRIES = 5000


def category_sizes(cfg: WorldConfig, kind: str = "image") -> dict[str, int]:
    """Items per Open-VQA-mini category: the real count times ``eval_scale``, at least 1."""
    real = OPEN_VQA_IMAGE if kind == "image" else OPEN_VQA_VIDEO
    return {c: max(1, int(math.floor(n * cfg.eval_scale + 0.5))) for c, n in real.items()}


def _plan(rng: np.random.Generator, task: Task, n: int) -> list[tuple[str, str | None]]:
    """n (question type, answer) pairs: types cycle, answers cycle through shuffled answer spaces."""
    cycles: dict[str, list[str]] = {}
    plan = []
    for i in range(n):
        q = task.qtypes[i % len(task.qtypes)]
        if not cycles.get(q.name):
            space = list(q.answers(task.vocab))
            cycles[q.name] = [space[j] for j in rng.permutation(len(space))]
        plan.append((q.name, cycles[q.name].pop()))
    order = rng.permutation(n)
    return [plan[j] for j in order]


def _fit(rng: np.random.Generator, draw: Callable[[], Any], task: Task, index: int, qtype: str, answer: str):
    """Draw visuals until one carries (qtype, answer); returns (visual, sample)."""
    for _ in range(MAX_TRIES):
        visual = draw()
        try:
            return visual, task.make(rng=rng, visual=visual, visual_index=index, prompt_mode="diverse",
                                     split="eval", qtype=qtype, answer=answer)
        except Unanswerable:
            continue
    raise RuntimeError(f"{task.name}/{qtype}: no visual for answer {answer!r} in {MAX_TRIES} draws")


def _planned(cfg: WorldConfig, kind: str) -> list[tuple[str, Task, str, str | None]]:
    """Every Open-VQA-mini item of ``kind`` in order, as (category, task, question type, answer)."""
    tasks = tasks_for(cfg)
    items = []
    for category, n in category_sizes(cfg, kind).items():
        task = tasks[CATEGORY_TASKS[kind][category]]
        plan = _plan(stream_rng(cfg.seed, f"openvqa-{kind}-plan-{category}", 0), task, n)
        items += [(category, task, qtype, answer) for qtype, answer in plan]
    return items


def open_vqa_plan(cfg: WorldConfig, kind: str = "image") -> list[tuple[str, str, str | None]]:
    """(category, question type, planned answer) of each Open-VQA-mini item of ``kind`` (index k: item
    k), without drawing a visual: what splits a category's accuracy by what it asks (Spatial:
    relation, relation_yn, grid_position). The answer is None where a type's answers are free."""
    return [(category, qtype, answer) for category, _, qtype, answer in _planned(cfg, kind)]


def _open_vqa_kind(cfg: WorldConfig, kind: str) -> tuple[list[dict], list[Any]]:
    records, visuals = [], []
    for category, task, qtype, answer in _planned(cfg, kind):
        k = len(records)
        rng = stream_rng(cfg.seed, f"openvqa-{kind}", k)
        draw = (lambda: sample_scene(rng, cfg)) if kind == "image" else (lambda: sample_clip(rng, cfg))
        visual, sample = _fit(rng, draw, task, k, qtype, answer)
        visuals.append(visual)
        name = f"images/{k:05d}.png" if kind == "image" else f"videos/{k:05d}.gif"
        records.append({"dataset": f"Open_VQA_mini_{kind}s", "question": sample.question,
                        "answer": list(sample.references), "index": k, kind: name,
                        "origin_dataset": "lynx-world", "class": category})
    return records, visuals


def open_vqa_mini(cfg: WorldConfig) -> tuple[list[dict], list[dict], list[Scene], list[Clip]]:
    """(image records, video records, scenes, clips); record k's visual is scenes[k] / clips[k]."""
    image_records, scenes = _open_vqa_kind(cfg, "image")
    video_records, clips = _open_vqa_kind(cfg, "video")
    return image_records, video_records, scenes, clips


def _mme_pair(rng: np.random.Generator, subtask: str, scene: Scene, cfg: WorldConfig) -> tuple[str, str] | None:
    """(true question, false question) about ``scene`` for one MME subtask, or None if it cannot."""
    v = world_vocab(cfg)
    if subtask == "existence":
        o = pick(rng, scene.objects)
        absent = [(c, s) for c in v.colours for s in v.shapes
                  if (c, s) not in {(x.colour, x.shape) for x in scene.objects}
                  and not (scene.group and (c, s) == (scene.group.colour, scene.group.shape))]
        c, s = pick(rng, absent)
        ask = "Is there {} in the image?"
        return ask.format(article(f"{o.colour} {o.shape}")), ask.format(article(f"{c} {s}"))
    if subtask == "count":
        if scene.group is None:
            return None
        g, wrong = scene.group, pick(rng, [n for n in range(1, v.max_count + 1) if n != scene.count])
        ask = "Is there a total of {} {} in the image?"
        return (ask.format(number_word(g.count), plural(g.shape, g.count)),
                ask.format(number_word(wrong), plural(g.shape, wrong)))
    if subtask == "position":
        pairs = [(a, b, r) for a in scene.objects for b in scene.objects if a is not b
                 for r, holds in (("left", a.col < b.col), ("above", a.row < b.row)) if holds]
        if not pairs:
            return None
        a, b, rel = pick(rng, pairs)
        other = {"left": "right", "above": "below"}[rel]
        na, nb = refer(scene, a), refer(scene, b)
        return (f"Is the {na} {RELATIONS[rel]} the {nb}?", f"Is the {na} {RELATIONS[other]} the {nb}?")
    if subtask == "color":
        o = pick(rng, scene.objects)
        name = refer(scene, o, hide="colour")
        return f"Is the {name} {o.colour}?", f"Is the {name} {pick(rng, [c for c in v.colours if c != o.colour])}?"
    if subtask == "OCR":
        if scene.text is None:
            return None
        t, wrong = scene.text, pick(rng, [w for w in v.words if w != scene.text.word])
        return f'Is the word on the {t.kind} "{t.word}"?', f'Is the word on the {t.kind} "{wrong}"?'
    if subtask == "scene":
        other = pick(rng, [p for p in v.places if p != scene.place])
        return f"Is this picture taken {PLACE_PREP[scene.place]}?", f"Is this picture taken {PLACE_PREP[other]}?"
    raise ValueError(f"unknown MME subtask {subtask!r} (known: {', '.join(MME_SUBTASKS)})")


def mme_mini(cfg: WorldConfig) -> tuple[dict[str, list[MMERow]], list[Scene]]:
    """({subtask: rows}, scenes): ``mme_images_per_subtask`` images per subtask, a Yes and a No question
    each, in MME's question format. Image ``{k:05d}.png`` is scenes[k]."""
    rows: dict[str, list[MMERow]] = {}
    scenes: list[Scene] = []
    for subtask in MME_SUBTASKS:
        rows[subtask] = []
        for _ in range(cfg.mme_images_per_subtask):
            k = len(scenes)
            rng = stream_rng(cfg.seed, "mme", k)
            for _ in range(MAX_TRIES):
                scene = sample_scene(rng, cfg)
                pair = _mme_pair(rng, subtask, scene, cfg)
                if pair is not None:
                    break
            else:
                raise RuntimeError(f"MME-mini {subtask}: no scene in {MAX_TRIES} draws")
            scenes.append(scene)
            for question, truth in zip(pair, ("Yes", "No")):
                rows[subtask].append(MMERow(f"{k:05d}.png", f"{question} Please answer yes or no.", truth))
    return rows, scenes


def scene_facts(scene: Scene) -> dict[str, Any]:
    """What a correct, rich description mentions: the place (and its features), every object by
    colour and shape, the group with its count, and the word."""
    facts: dict[str, Any] = {"place": scene.place, "place_features": list(PLACE_FEATURES[scene.place]),
                             "objects": [f"{o.colour} {o.shape}" for o in scene.objects],
                             "colours": sorted({o.colour for o in scene.objects}),
                             "shapes": sorted({o.shape for o in scene.objects})}
    if scene.group is not None:
        facts["group"] = f"{number_word(scene.count)} {scene.group.colour} {plural(scene.group.shape, scene.count)}"
    if scene.text is not None:
        facts["word"] = scene.text.word
    return facts


def owleval_mini(cfg: WorldConfig) -> tuple[list[dict], list[Scene]]:
    """(records, scenes): ``owleval_items`` open-ended prompts (kinds cycle), each with its scene graph
    and :func:`scene_facts` for scoring correctness and richness. Record k shows scenes[k]."""
    kinds = list(OWL_PROMPTS)
    records, scenes = [], []
    for k in range(cfg.owleval_items):
        rng = stream_rng(cfg.seed, "owleval", k)
        scene = sample_scene(rng, cfg)
        kind = kinds[k % len(kinds)]
        scenes.append(scene)
        records.append({"index": k, "image": f"images/{k:05d}.png", "kind": kind, "question": OWL_PROMPTS[kind],
                        "scene": scene.to_dict(), "facts": scene_facts(scene)})
    return records, scenes
