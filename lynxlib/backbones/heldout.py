"""Held-out data for the stage-0 gates: text instructions, scenes and reading passages drawn from seed
streams the world's training splits never use."""
from __future__ import annotations

import numpy as np

from lynxlib.config import Config


def heldout_instructions(cfg: Config, per_style: int | None = None) -> list:
    """Text instructions the Vicuna data never holds: every style, held-out phrasings and style
    wordings ("Reply with a single word." ...), from a seed stream of their own."""
    from lynxlib.world import STYLES, draw_samples, stream_rng

    per_style = per_style or max(8, cfg.backbones.probe_items // 8)
    out = []
    for k, style in enumerate(STYLES):
        out += draw_samples(rng=stream_rng(cfg.world.seed, f"backbones-style-{style}", k),
                            task_names=["text_instruction"], scenes=(), clips=(), per_task=per_style,
                            split="eval_held_out", style=style, cfg=cfg.world)
    return out


def heldout_scenes(cfg: Config, n: int | None = None) -> tuple[list, dict[int, np.ndarray], list[str]]:
    """``n`` (default ``probe_items``) fresh scenes from a seed stream the world's splits never use,
    rendered at both resolutions, with one clean caption each."""
    from lynxlib.world import clean_caption, render_scene_sizes, sample_scene, stream_rng

    n = n or cfg.backbones.probe_items
    sizes = tuple(sorted({cfg.world.image_size_low, cfg.world.image_size_high}))
    scenes = [sample_scene(stream_rng(cfg.world.seed, "backbones-probe", i), cfg.world) for i in range(n)]
    rendered = [render_scene_sizes(sc, sizes) for sc in scenes]
    images = {s: np.stack([r[s] for r in rendered]) for s in sizes}
    captions = [clean_caption(sc, stream_rng(cfg.world.seed, "backbones-probe-caption", i)) for i, sc in enumerate(scenes)]
    return scenes, images, captions


def heldout_reading(cfg: Config, n: int | None = None) -> list:
    """``n`` (default ``probe_items``) reading passages about fresh scenes, from a seed stream of their own."""
    from lynxlib.world import stream_rng
    from lynxlib.world.reading import reading_passage

    n = n or cfg.backbones.probe_items
    return [reading_passage(stream_rng(cfg.world.seed, "backbones-reading", i), cfg.world) for i in range(n)]


def heldout_lookups(cfg: Config, n: int | None = None) -> dict[str, list]:
    """``n`` held-out look-up lines of each kind, up to their last answer (score with
    ``template=LOOKUP_PROMPT``): "colour" (a colour by its shape, a shape by its colour) and "where"
    (where a shape is, which shape is there), each kind from a seed stream of its own."""
    from lynxlib.world import stream_rng
    from lynxlib.world.reading import position_probe, recall_probe

    n = n or cfg.backbones.probe_items
    return {"colour": [recall_probe(stream_rng(cfg.world.seed, "lm-reading-lookup", i), cfg.world) for i in range(n)],
            "where": [position_probe(stream_rng(cfg.world.seed, "lm-reading-where", i), cfg.world) for i in range(n)]}


def reading_template(cfg: Config) -> str:
    """A reading passage in the chat template, as the text instructions hold it (context, then question)."""
    from lynxlib.world.registry import READING_TURN

    return cfg.generation.template.format(question=READING_TURN)
