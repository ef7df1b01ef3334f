"""``TASKS`` (the names params' mixtures use) and the mixture sampler ``sample_instruction``.

``TASKS`` is built for the default :class:`WorldConfig`; ``tasks_for(cfg)`` builds the registry for
another world (its vocabulary subsets and paraphrase count). Pass ``cfg=`` to the samplers when the
world differs from the default.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from lynxlib.config import WorldConfig
from lynxlib.world.questions import IMAGE_QTYPES, OPEN_ENDED, QType, ask_caption_brief, ask_caption_detailed
from lynxlib.world.sample import Sample
from lynxlib.world.scene import WorldVocab, world_vocab
from lynxlib.world.tasks import TRAIN_STYLE_MIX, CaptionPairTask, DialogueTask, Task, make_uid
from lynxlib.world.reading import reading_passage
from lynxlib.world.textdata import TEXT_QTYPES
from lynxlib.world.verify import VERIFY_QTYPES
from lynxlib.world.vquestions import VIDEO_QTYPES

# task name: (Open-VQA category or None, visual kind, question types)
TASK_SPECS: dict[str, tuple[str | None, str, tuple[str, ...]]] = {
    "caption_pair": (None, "image", ("caption_pair",)),
    "caption_brief": (None, "image", ("caption_brief",)),
    "caption_detailed": (None, "image", ("caption_detailed",)),
    "vqa_object": ("Others", "image", ("shape", "exist", "size")),
    "vqa_color": ("Color", "image", ("colour",)),
    "vqa_count": ("Counting", "image", ("count",)),
    "vqa_spatial": ("Spatial", "image", ("relation", "relation_yn", "grid_position")),
    "vqa_ocr": ("OCR", "image", ("ocr",)),
    "vqa_place": ("Place", "image", ("place",)),
    "vqa_action": ("Action", "image", ("direction", "moving_yn")),
    "vqa_reasoning": ("Reasoning", "image", ("more_than", "bigger", "same_colour")),
    "vqa_verify": (None, "image", tuple(VERIFY_QTYPES)),  # yes/no about one fact (VQAv2/GQA-style; for MME)
    "classify_place": (None, "image", ("classify_place",)),
    "classify_object": (None, "image", ("classify_object",)),
    "dialogue": (None, "image", ("dialogue_open",)),
    "video_caption": (None, "video", ("video_caption",)),
    "video_action_yn": ("Action(Y/N)", "video", ("action_yn",)),
    "video_qa": ("Others", "video", ("what_action", "order", "video_colour")),
    "text_instruction": (None, "none", tuple(TEXT_QTYPES)),
}
EXTRA_QTYPES = {
    "caption_pair": QType("caption_pair", ask_caption_detailed, None, styles=OPEN_ENDED),
    "dialogue_open": QType("dialogue_open", ask_caption_brief, None, styles=OPEN_ENDED),
}
QTYPES: dict[str, QType] = {**IMAGE_QTYPES, **VIDEO_QTYPES, **TEXT_QTYPES, **VERIFY_QTYPES, **EXTRA_QTYPES}
TASK_CLASSES = {"caption_pair": CaptionPairTask, "dialogue": DialogueTask}


@lru_cache(maxsize=16)
def _build(vocab: WorldVocab, n_paraphrases: int) -> dict[str, Task]:
    tasks = {}
    for name, (category, kind, qtypes) in TASK_SPECS.items():
        cls = TASK_CLASSES.get(name, Task)
        tasks[name] = cls(name, category, kind, tuple(QTYPES[q] for q in qtypes), vocab, n_paraphrases)
    short = [t.name for t in tasks.values() for p in t.pools if len(p.paraphrases) < n_paraphrases]
    if short:
        raise ValueError(f"world.paraphrases={n_paraphrases}: tasks {sorted(set(short))} have fewer generated paraphrases")
    return tasks


def tasks_for(cfg: WorldConfig) -> dict[str, Task]:
    """The task registry for one world config."""
    return _build(world_vocab(cfg), cfg.paraphrases)


TASKS: dict[str, Task] = tasks_for(WorldConfig())


def draw_style(rng: np.random.Generator, task: Task) -> str:
    """A training style from ``TRAIN_STYLE_MIX`` among those the task can honour."""
    styles = [s for s in TRAIN_STYLE_MIX if s in task.styles]
    weights = np.array([TRAIN_STYLE_MIX[s] for s in styles])
    return styles[int(rng.choice(len(styles), p=weights / weights.sum()))]


def sample_instruction(*, rng: np.random.Generator, task_name: str, scenes: Sequence[Any], clips: Sequence[Any],
                       prompt_mode: str, split: str = "train", style: str | None = None, captions: str = "clean",
                       cfg: WorldConfig | None = None) -> Sample:
    """One sample of ``task_name`` about a random scene/clip from the lists (answers balanced).

    ``style=None`` draws a training style (``TRAIN_STYLE_MIX``) on the train split and "plain"
    otherwise. ``captions="clean+noisy"`` makes caption_pair draw from the union of the clean pool and
    the ``noisy_multiplier`` x larger noisy pool (the noisy-data ablation).
    """
    cfg = cfg or WorldConfig()
    tasks = tasks_for(cfg)
    if task_name not in tasks:
        raise KeyError(f"unknown task {task_name!r} (known: {', '.join(tasks)})")
    task = tasks[task_name]
    if style is None:
        style = draw_style(rng, task) if split == "train" else "plain"
    if task_name == "caption_pair":
        if captions not in ("clean", "clean+noisy"):
            raise ValueError(f"captions must be 'clean' or 'clean+noisy', got {captions!r}")
        share = cfg.noisy_multiplier / (cfg.noisy_multiplier + 1) if captions == "clean+noisy" else 0.0
        i = int(rng.integers(len(scenes)))
        return task.make(rng=rng, visual=scenes[i], visual_index=i, prompt_mode=prompt_mode, split=split,
                         noisy=bool(rng.random() < share))
    visuals = {"image": scenes, "video": clips, "none": None}[task.visual_kind]
    return task.draw(rng=rng, visuals=visuals, prompt_mode=prompt_mode, style=style, split=split)


READING_TURN = "{context}\n{question}"  # a reading passage's user turn


def reading_instruction(rng: np.random.Generator, cfg: WorldConfig) -> Sample:
    """A reading passage as a text instruction: a scene's description and a question in the user turn,
    the short answer as the response (what the visual prefix will stand in for in stage 2)."""
    p = reading_passage(rng, cfg)
    return Sample(uid=make_uid(rng, "text_instruction", "none", -1), task="text_instruction", category=None,
                  visual_kind="none", visual_index=-1,
                  turns=((READING_TURN.format(context=p.context, question=p.question), p.answer),),
                  references=(p.answer,), style="short", qtype="reading")


def text_instructions(cfg: WorldConfig, rng: np.random.Generator) -> list[Sample]:
    """``cfg.text_instructions`` text-only samples in all styles: the "Vicuna" instruction data
    (``cfg.reading_share`` of them reading passages)."""
    return [reading_instruction(rng, cfg) if rng.random() < cfg.reading_share
            else sample_instruction(rng=rng, task_name="text_instruction", scenes=(), clips=(), prompt_mode="diverse",
                                    cfg=cfg) for _ in range(cfg.text_instructions)]


def draw_samples(*, rng: np.random.Generator, task_names: Sequence[str], scenes: Sequence[Any], clips: Sequence[Any],
                 per_task: int, prompt_mode: str = "diverse", split: str = "train", style: str | None = None,
                 cfg: WorldConfig | None = None) -> list[Sample]:
    """``per_task`` samples of every task in ``task_names`` (in order): for statistics and previews."""
    return [sample_instruction(rng=rng, task_name=name, scenes=scenes, clips=clips, prompt_mode=prompt_mode,
                               split=split, style=style, cfg=cfg)
            for name in task_names for _ in range(per_task)]
