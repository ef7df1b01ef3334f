"""Scenes, rendering, clips and the font: determinism, JSON round trips, and answers checked in pixels."""
from dataclasses import replace

import numpy as np
import pytest

from lynxlib.config import WorldConfig
from lynxlib.world import (Clip, Scene, render_clip, render_scene, render_scene_sizes, sample_clip, sample_scene,
                           stream_rng, text_box, world_vocab)
from lynxlib.world.font import GLYPHS, read_word
from lynxlib.world.language import refer
from lynxlib.world.questions import ask_count, ask_direction, ask_relation, ask_relation_yn
from lynxlib.world.render import reader_accuracy
from lynxlib.world.vocab import COLOURS, SHAPE_PLURALS, VIDEO_ACTIONS, WORDS

CFG = WorldConfig()
HIGH = CFG.image_size_high


def scenes(n: int, seed: int = 0, cfg: WorldConfig = CFG) -> list[Scene]:
    return [sample_scene(stream_rng(seed, "test", i), cfg) for i in range(n)]


def components(mask: np.ndarray) -> int:
    """4-connected components of a bool mask (flood fill; no scipy needed)."""
    seen = np.zeros_like(mask)
    count = 0
    for y, x in zip(*np.nonzero(mask)):
        if seen[y, x]:
            continue
        count += 1
        stack = [(y, x)]
        seen[y, x] = True
        while stack:
            cy, cx = stack.pop()
            for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
    return count


def drawn(scene: Scene, without: Scene) -> np.ndarray:
    """Pixels that differ between two renders (what the removed part drew)."""
    a, b = render_scene(scene, HIGH).astype(int), render_scene(without, HIGH).astype(int)
    return np.abs(a - b).max(-1) > 8


def centroid(scene: Scene, obj) -> tuple[float, float]:
    alone = replace(scene, objects=(replace(obj, motion=None),), text=None, group=None)
    ys, xs = np.nonzero(drawn(alone, replace(alone, objects=())))
    return xs.mean(), ys.mean()


def test_same_seed_same_bytes_and_different_seed_differs():
    a, b, c = scenes(6, seed=1), scenes(6, seed=1), scenes(6, seed=2)
    assert a == b and a != c
    for x, y in zip(a, b):
        assert render_scene(x, 64).tobytes() == render_scene(y, 64).tobytes()
    assert any(render_scene(x, 64).tobytes() != render_scene(z, 64).tobytes() for x, z in zip(a, c))
    clip1, clip2 = sample_clip(stream_rng(3, "c", 0), CFG), sample_clip(stream_rng(3, "c", 0), CFG)
    assert render_clip(clip1, 64).tobytes() == render_clip(clip2, 64).tobytes()


def test_json_round_trip_and_shapes():
    for scene in scenes(20):
        assert Scene.from_dict(scene.to_dict()) == scene
    clip = sample_clip(stream_rng(0, "c", 1), CFG)
    assert Clip.from_dict(clip.to_dict()) == clip
    images = render_scene_sizes(scenes(1)[0], (64, 128))
    assert images[64].shape == (64, 64, 3) and images[128].shape == (128, 128, 3) and images[64].dtype == np.uint8
    assert render_clip(clip, 64).shape == (CFG.frames, 64, 64, 3)


def test_scene_marginals_cover_the_vocabulary():
    batch = scenes(400)
    v = world_vocab(CFG)
    assert {s.place for s in batch} == set(v.places)
    assert {o.shape for s in batch for o in s.objects} == set(v.shapes)
    assert {o.colour for s in batch for o in s.objects} == set(v.colours)
    assert {s.count for s in batch} == set(range(CFG.max_count + 1))
    assert {o.motion for s in batch for o in s.objects} - {None} == {"left", "right", "up", "down"}
    for s in batch:  # the group's shape is never an object's; full names are unique
        assert s.group is None or s.group.shape not in {o.shape for o in s.objects}
        assert len({(o.shape, o.colour) for o in s.objects}) == len(s.objects)


def test_count_answers_equal_the_items_drawn():
    rng = np.random.default_rng(0)
    v = world_vocab(CFG)
    for scene in [s for s in scenes(60) if s.group is not None][:12]:
        assert components(drawn(scene, replace(scene, group=None))) == scene.count
        q = ask_count(rng, scene, v, None)
        *colour, noun = q.slots["plural"].split()
        shape = next(s for s, p in SHAPE_PLURALS.items() if p == noun)
        expected = scene.count if shape == scene.group.shape and colour in ([], [scene.group.colour]) else 0
        assert q.references[0] == ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")[expected]


def test_object_colours_are_the_colours_drawn():
    for scene in scenes(15):
        image = render_scene(scene, HIGH).astype(int)
        for obj in scene.objects:
            x, y = centroid(scene, obj)
            if obj.shape == "ring":  # the ring's centre is a hole: sample the band
                x += 0.75 * (0.42 if obj.size == "large" else 0.26) / scene.grid * HIGH
            pixel = image[int(round(y)), int(round(x))]
            assert np.abs(pixel - np.array(COLOURS[obj.colour])).max() <= 3, (obj, pixel)


def test_spatial_answers_match_rendered_positions():
    rng = np.random.default_rng(1)
    v = world_vocab(CFG)
    checked = 0
    for scene in scenes(80):
        for ask in (ask_relation, ask_relation_yn):
            q = ask(rng, scene, v, None)
            if q is None:
                continue
            by_name = {refer(scene, o): o for o in scene.objects}
            (ax, ay), (bx, by) = centroid(scene, by_name[q.slots["obj"]]), centroid(scene, by_name[q.slots["obj2"]])
            rel = q.short if ask is ask_relation else {"to the left of": "left", "to the right of": "right"}.get(
                q.slots["rel"], q.slots["rel"])
            holds = {"left": ax < bx - 5, "right": ax > bx + 5, "above": ay < by - 5, "below": ay > by + 5}[rel]
            assert holds == (ask is ask_relation or q.short == "yes"), (q, scene)
            checked += 1
    assert checked > 40


def test_motion_trail_is_behind_the_moving_object():
    rng = np.random.default_rng(2)
    v = world_vocab(CFG)
    moving = [s for s in scenes(60) if any(o.motion for o in s.objects)][:10]
    assert moving
    for scene in moving:
        q = ask_direction(rng, scene, v, None)
        obj = next(o for o in scene.objects if o.motion)
        alone = replace(scene, objects=(obj,), text=None, group=None)
        trail = drawn(alone, replace(alone, objects=(replace(obj, motion=None),)))
        ys, xs = np.nonzero(trail)
        cx, cy = centroid(scene, obj)
        dx, dy = xs.mean() - cx, ys.mean() - cy
        side = {"left": dx > 3, "right": dx < -3, "up": dy > 3, "down": dy < -3}
        assert side[q.short], (q.short, dx, dy)


def test_ocr_word_is_readable_at_high_resolution_only():
    cfg = replace(CFG, text_prob=1.0)
    batch = scenes(60, seed=5, cfg=cfg)
    alphabet = "".join(sorted(set("".join(WORDS))))
    rendered = [render_scene_sizes(s, (64, 128)) for s in batch]
    for scene, images in zip(batch[:10], rendered):
        assert read_word(images[128], text_box(scene), 3, alphabet) == scene.text.word
    high = reader_accuracy(batch, [r[128] for r in rendered], alphabet)
    low = reader_accuracy(batch, [r[64] for r in rendered], alphabet)
    chance = 1 / len(alphabet)
    assert high > 0.9 and low < 0.3, (high, low, chance)
    words_low = np.mean([read_word(r[64], text_box(s), 3, alphabet) == s.text.word for s, r in zip(batch, rendered)])
    assert words_low < 0.1


def test_glyphs_are_distinct():
    bitmaps = {ch: g.tobytes() for ch, g in GLYPHS.items()}
    assert len(set(bitmaps.values())) == len(bitmaps)


def test_clip_events_are_visible_and_ordered():
    for i in range(30):
        clip = sample_clip(stream_rng(0, "clips", i), CFG)
        assert clip.events and all(e.action in VIDEO_ACTIONS for e in clip.events)
        events = sorted(clip.events, key=lambda e: e.start)
        assert all(a.end <= b.start for a, b in zip(events, events[1:]))
        for e in clip.events:
            t = clip.tracks[e.subjects[0]]
            if e.action == "move_left":
                assert t.xs[e.end] < t.xs[e.start]
            if e.action == "appear":
                assert t.alphas[e.start] == 0 and t.alphas[e.end] == 1
            if e.action in ("approach", "separate"):
                a, b = (clip.tracks[j] for j in e.subjects)
                gap = [abs(a.xs[f] - b.xs[f]) for f in (e.start, e.end)]
                assert (gap[1] < gap[0]) == (e.action == "approach")
    frames = render_clip(sample_clip(stream_rng(0, "clips", 0), CFG), 64)
    assert not np.array_equal(frames[0], frames[-1])


def test_impossible_world_config_is_rejected():
    with pytest.raises(ValueError, match="num_shapes"):
        world_vocab(replace(CFG, num_shapes=3, max_objects=3))
    with pytest.raises(ValueError, match="grid"):
        world_vocab(replace(CFG, grid=2))
