"""What the evaluation harness asks: the world's evaluation sets as :class:`~lynxlib.inference.PromptItem`s.

Every item names a row of one split's visual arrays (``WorldStore.images(split, resolution)``):

* ``open_vqa_mini``: Open-VQA-mini records (image and video); record ``index`` k is row k of its kind;
* ``mme_mini``: MME-mini rows; image ``{k:05d}.png`` is row k;
* ``owleval_mini``: OwlEval-mini prompts; record ``index`` k is row k;
* ``eval``: held-out scenes, asked in held-out answer styles and in trained vs held-out phrasings
  (drawn here from seed streams of their own, so they never meet a training sample).

``uid`` names each item in ``predictions.jsonl``: ``openvqa/<kind>/<index>``, ``mme/<subtask>/<row>``,
``style/<style>/<k>``, ``phrasing/<train|held_out>/<k>``, ``owleval/<index>``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from lynxlib.data import ArrayVisuals
from lynxlib.inference import PromptItem

SPLIT_KINDS = {"open_vqa_mini": ("image", "video"), "mme_mini": ("image",), "owleval_mini": ("image",),
               "eval": ("image", "video")}
HELD_OUT_STYLES = ("short", "one_word", "explain")
PHRASING_SPLITS = {"train": "train", "held_out": "eval_held_out"}   # Sample.phrasing -> sampler split


def resolution_size(world, resolution: str | int) -> int:
    """Pixels of ``resolution`` ("low", "high" or a size) in the world's config."""
    if isinstance(resolution, int):
        return resolution
    if resolution not in ("low", "high"):
        raise ValueError(f"eval.resolution must be 'low' or 'high', got {resolution!r}")
    return getattr(world.config, f"image_size_{resolution}")


def eval_visuals(world, *, size: int, cache=None, tower=None) -> dict[str, ArrayVisuals]:
    """{split: ArrayVisuals} over the world's arrays at ``size`` px: images (N, H, W, 3), videos
    (M, F, H, W, 3). With a :class:`~lynxlib.features.FeatureCache` and the model's ``tower`` the tower's
    tokens are cached as ``<split>_images`` / ``<split>_videos`` (the names the pipeline uses)."""
    out = {}
    for split, kinds in SPLIT_KINDS.items():
        arrays = {"image": world.images(split, size), "video": world.videos(split, size) if "video" in kinds else None}
        names = {}
        if cache is not None and tower is not None:
            for kind, array in arrays.items():
                if array is not None:
                    names[kind] = f"{split}_{kind}s"
                    cache.ensure(names[kind], tower, array)
        out[split] = ArrayVisuals(images=arrays["image"], videos=arrays["video"], cache=cache if names else None,
                                  cache_names=names)
    return out


# ------------------------------------------------------------------------------------------ Open-VQA
def open_vqa_items(records: Sequence[Mapping[str, Any]], *, kind: str) -> list[PromptItem]:
    """One single-turn item per record; the visual is row ``record["index"]``."""
    return [PromptItem.ask(str(r["question"]), visual_kind=kind, visual_index=int(r["index"]),
                           uid=f"openvqa/{kind}/{r['index']}") for r in records]


# ------------------------------------------------------------------------------------------ MME
def mme_rows(world) -> dict[str, list[dict[str, str]]]:
    """{subtask: [{image, question, answer}, ...]} of MME-mini, two consecutive rows per image."""
    return {subtask: [{"image": r.image, "question": r.question, "answer": r.ground_truth} for r in world.mme(subtask)]
            for subtask in world.mme_subtasks()}


def mme_items(rows: Mapping[str, Sequence[Mapping[str, str]]]) -> list[PromptItem]:
    """Items of every subtask, in order; image ``00012.png`` is row 12 of the split's images."""
    return [PromptItem.ask(r["question"], visual_kind="image", visual_index=int(Path(r["image"]).stem),
                           uid=f"mme/{subtask}/{i}")
            for subtask, subtask_rows in rows.items() for i, r in enumerate(subtask_rows)]


# ------------------------------------------------------------------------------------------ instructions
def _vqa_tasks(world_cfg, style: str) -> list[str]:
    """The image Open-VQA tasks (one per category) whose questions can honour ``style``."""
    from lynxlib.world import CATEGORY_TASKS, tasks_for

    tasks = tasks_for(world_cfg)
    return [name for name in CATEGORY_TASKS["image"].values() if style in tasks[name].styles]


def _draw(world, *, stream: str, k: int, task: str, split: str, style: str):
    from lynxlib.world import sample_instruction, stream_rng

    return sample_instruction(rng=stream_rng(world.config.seed, stream, k), task_name=task,
                              scenes=world.scenes("eval"), clips=world.clips("eval"), prompt_mode="diverse",
                              split=split, style=style, cfg=world.config)


def style_samples(world, *, per_style: int) -> list:
    """``per_style`` Samples per held-out style ("short", "one_word", "explain") about held-out scenes,
    with held-out question phrasings and style wordings; tasks cycle over the image VQA categories."""
    out = []
    for style in HELD_OUT_STYLES:
        tasks = _vqa_tasks(world.config, style)
        out += [_draw(world, stream=f"harness-style-{style}", k=k, task=tasks[k % len(tasks)], split="eval_held_out",
                      style=style) for k in range(per_style)]
    return out


def phrasing_samples(world, *, pairs: int) -> list:
    """``pairs`` question pairs, plain style: the same scene and question (same seed) once in a trained
    phrasing and once in a held-out one (``Sample.phrasing`` says which)."""
    tasks = _vqa_tasks(world.config, "plain")
    return [_draw(world, stream="harness-phrasing", k=k, task=tasks[k % len(tasks)], split=split, style="plain")
            for k in range(pairs) for split in PHRASING_SPLITS.values()]


def sample_items(samples: Sequence, *, prefix: str, key: str) -> list[PromptItem]:
    """Items of world Samples; uid ``<prefix>/<getattr(sample, key)>/<position>``."""
    return [PromptItem(tuple(s.turns), s.visual_kind, s.visual_index, f"{prefix}/{getattr(s, key)}/{i}")
            for i, s in enumerate(samples)]


# ------------------------------------------------------------------------------------------ OwlEval
def owl_facts(scene: Mapping[str, Any]) -> dict[str, Any]:
    """A scene graph (``Scene.to_dict()``) as :mod:`lynxlib.evaluate.owleval` facts: place, objects
    (shape, colour, size; the counting group's items count as small objects), the group's count, the word."""
    objects = [{"shape": o["shape"], "colour": o["colour"], "size": o["size"]} for o in scene["objects"]]
    group = scene.get("group")
    if group:
        objects.append({"shape": group["shape"], "colour": group["colour"], "size": "small"})
    text = scene.get("text")
    return {"place": scene["place"], "objects": objects,
            "count": {"shape": group["shape"], "n": len(group["slots"])} if group else None,
            "text": text["word"] if text else None}


def owleval_items(records: Sequence[Mapping[str, Any]]) -> list[PromptItem]:
    return [PromptItem.ask(str(r["question"]), visual_kind="image", visual_index=int(r["index"]),
                           uid=f"owleval/{r['index']}") for r in records]
