"""The synthetic world: a deterministic procedural generator of scenes, clips, language and tasks.

Same seed, same bytes: every scene, image, caption and sample is a pure function of the
:class:`~lynxlib.config.WorldConfig` and the item's seed stream.

Modules: ``scene`` (scene graphs), ``render``/``shapes``/``textures``/``font`` (the numpy rasteriser),
``video`` (clips), ``language`` (captions), ``questions``/``vquestions``/``textdata`` (question types), ``reading`` (reading passages, look-up lines),
``prompts`` (prompt pools), ``tasks``/``registry`` (the task registry and mixture sampler), ``sample``
(the Sample record and answer statistics), ``evalsets`` (Open-VQA-mini, MME-mini, OwlEval-mini),
``store`` (the world on disk), ``figures`` (plots for the world notebook).
"""
from lynxlib.world.evalsets import (CATEGORY_TASKS, MME_SUBTASKS, OPEN_VQA_IMAGE, OPEN_VQA_VIDEO, category_sizes,
                                    mme_mini, open_vqa_mini, owleval_mini, scene_facts)
from lynxlib.world.font import match_word, read_word
from lynxlib.world.language import brief_caption, clean_caption, noisy_caption, video_caption
from lynxlib.world.prompts import POOLS, STYLE_WORDINGS, STYLES, PromptPool
from lynxlib.world.registry import TASKS, draw_samples, sample_instruction, tasks_for, text_instructions
from lynxlib.world.render import reader_accuracy, render_scene, render_scene_sizes, text_box
from lynxlib.world.sample import Sample, answer_distribution, majority_baseline
from lynxlib.world.scene import Group, Obj, Scene, TextItem, WorldVocab, sample_scene, stream_rng, world_vocab
from lynxlib.world.store import WorldStore, write_world
from lynxlib.world.tasks import Task, Unanswerable
from lynxlib.world.textdata import text_corpus
from lynxlib.world.video import Clip, Event, Track, render_clip, render_clip_sizes, sample_clip

__all__ = [
    "CATEGORY_TASKS", "MME_SUBTASKS", "OPEN_VQA_IMAGE", "OPEN_VQA_VIDEO", "POOLS", "STYLES", "STYLE_WORDINGS", "TASKS",
    "Clip", "Event", "Group", "Obj", "PromptPool", "Sample", "Scene", "Task", "TextItem", "Track", "Unanswerable",
    "WorldStore", "WorldVocab", "answer_distribution", "brief_caption", "category_sizes", "clean_caption", "draw_samples",
    "majority_baseline", "match_word", "mme_mini", "noisy_caption", "open_vqa_mini", "owleval_mini", "read_word", "reader_accuracy",
    "render_clip", "render_clip_sizes", "render_scene", "render_scene_sizes", "sample_clip", "sample_instruction",
    "sample_scene", "scene_facts", "stream_rng", "tasks_for", "text_box", "text_corpus", "text_instructions",
    "video_caption", "world_vocab", "write_world",
]
