"""Words about scenes and clips: referring expressions, clean/brief/noisy captions, video captions.

Every sentence is computed from the scene graph, so a clean caption is correct by construction and
mentions every object (size, colour, shape, location, motion), the countable group, the place and the
word. Noisy captions (the COYO/DataComp analogue) corrupt them: keyword soup, web boilerplate,
truncation, wrong attributes, dropped objects.
"""
from __future__ import annotations

import numpy as np

from lynxlib.world.scene import Obj, Scene
from lynxlib.world.textures import PLACE_FEATURES
from lynxlib.world.video import Clip, Event
from lynxlib.world.vocab import ACTION_PHRASES, COLOURS, SHAPES, number_word, plural

PLACE_PREP = {
    "beach": "on a beach", "forest": "in a forest", "kitchen": "in a kitchen", "street": "on a street",
    "desert": "in a desert", "snowfield": "on a snowfield", "office": "in an office",
    "garden": "in a garden", "library": "in a library", "harbor": "at a harbor",
}
ACTION_BASE = {
    "move_left": "move to the left", "move_right": "move to the right", "move_up": "move up",
    "move_down": "move down", "approach": "move toward each other", "separate": "move apart",
    "appear": "appear", "disappear": "disappear",
}
BOILERPLATE = (
    "stock photo", "click here", "free download", "royalty free", "hd wallpaper", "best price",
    "image 3 of 12", "#art #design", "buy now", "vector illustration", "all rights reserved", "new",
)


def pick(rng: np.random.Generator, items):
    items = list(items)
    return items[int(rng.integers(len(items)))]


def article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def join(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def location(row: int, col: int, grid: int) -> str:
    """Where a grid cell is, as a prepositional phrase: 'at the top left', 'in the center'."""
    if grid == 3:
        names = {(1, 1): "in the center", (1, 0): "on the left", (1, 2): "on the right"}
        vert = ("top", "", "bottom")[row]
        horiz = ("left", "", "right")[col]
        return names.get((row, col), f"at the {' '.join(p for p in (vert, horiz) if p)}")
    if grid == 2:
        return f"at the {('top', 'bottom')[row]} {('left', 'right')[col]}"
    return f"in row {row + 1}, column {col + 1}"


def full_name(obj: Obj) -> str:
    """'red circle': unique within a scene (objects never share both shape and colour)."""
    return f"{obj.colour} {obj.shape}"


def refer(scene: Scene, obj: Obj, hide: str | None = None) -> str:
    """Shortest unique description of ``obj`` (no article) that does not reveal attribute ``hide``.

    Tries 'circle', 'red circle' / 'red object', 'large circle', then falls back to the location,
    which is always unique.
    """
    others = [(o.shape, o.colour, o.size) for o in scene.objects if o is not obj]
    if scene.group is not None:  # group items are small things of the group's shape and colour
        others.append((scene.group.shape, scene.group.colour, "small"))
    options = []
    if hide != "shape":
        options.append(((obj.shape,), obj.shape))
    if hide not in ("colour", "shape"):
        options.append(((obj.colour, obj.shape), full_name(obj)))
    if hide == "shape":
        options.append(((obj.colour,), f"{obj.colour} object"))
        options.append(((obj.size, obj.colour), f"{obj.size} {obj.colour} object"))
    if hide not in ("size", "shape"):
        options.append(((obj.size, obj.shape), f"{obj.size} {obj.shape}"))
    for attrs, phrase in options:
        if not any(all(a in other for a in attrs) for other in others):
            return phrase
    noun = "object" if hide == "shape" else obj.shape
    return f"{noun} {location(obj.row, obj.col, scene.grid)}"


def motion_phrase(direction: str) -> str:
    """'moving to the left', 'moving up'."""
    return f"moving to the {direction}" if direction in ("left", "right") else f"moving {direction}"


def object_phrase(obj: Obj, grid: int) -> str:
    """'a large red circle moving to the right at the top left'."""
    motion = f" {motion_phrase(obj.motion)}" if obj.motion else ""
    return f"{article(f'{obj.size} {obj.colour} {obj.shape}')}{motion} {location(obj.row, obj.col, grid)}"


def group_phrase(scene: Scene) -> str | None:
    if scene.group is None:
        return None
    g = scene.group
    return f"{number_word(g.count)} small {g.colour} {plural(g.shape, g.count)}"


def text_phrase(scene: Scene) -> str | None:
    if scene.text is None:
        return None
    t = scene.text
    return f'{article(t.kind)} {location(t.row, t.col, scene.grid)} that says "{t.word}"'


def _items(scene: Scene) -> list[str]:
    items = [object_phrase(o, scene.grid) for o in scene.objects]
    return items + [p for p in (group_phrase(scene), text_phrase(scene)) if p]


def clean_caption(scene: Scene, rng: np.random.Generator) -> str:
    """A fluent, correct caption naming every object, the group, the word and the place."""
    items = join(_items(scene))
    where = PLACE_PREP[scene.place]
    template = pick(rng, (
        "{Items}, {where}.",
        "A picture {where} with {items}.",
        "This image shows {items}, {where}.",
        "{Where}, there is {items}.",
    ))
    caption = template.format(items=items, Items=items[0].upper() + items[1:], where=where,
                              Where=where[0].upper() + where[1:])
    if rng.random() < 0.5:
        caption += f" The background shows {join(list(PLACE_FEATURES[scene.place]))}."
    return caption


def brief_caption(scene: Scene, rng: np.random.Generator) -> str:
    """One short sentence: the objects by colour and shape, the group, the place."""
    names = [article(full_name(o)) for o in scene.objects]
    if scene.group is not None:
        names.append(group_phrase(scene).replace(" small", ""))
    text = f'{article(scene.text.kind)} saying "{scene.text.word}"' if scene.text else None
    names += [text] if text else []
    sentence = f"{join(names)} {PLACE_PREP[scene.place]}."
    return sentence[0].upper() + sentence[1:]


def _wrong(rng: np.random.Generator, value: str, pool) -> str:
    return pick(rng, [p for p in pool if p != value])


def _corrupted_scene_words(scene: Scene, rng: np.random.Generator, p_wrong: float) -> list[str]:
    """Attribute words of (some of) the objects, each wrong with probability ``p_wrong``."""
    words = []
    for obj in scene.objects:
        if rng.random() < 0.3:  # dropped object
            continue
        colour = _wrong(rng, obj.colour, COLOURS) if rng.random() < p_wrong else obj.colour
        shape = _wrong(rng, obj.shape, SHAPES) if rng.random() < p_wrong else obj.shape
        words.append(f"{colour} {shape}")
    return words


def noisy_caption(scene: Scene, rng: np.random.Generator) -> str:
    """A web-style caption: keyword soup, or a truncated/wrong caption, plus boilerplate."""
    kind = pick(rng, ("soup", "wrong", "truncated"))
    if kind == "soup":
        words = _corrupted_scene_words(scene, rng, 0.3) + [scene.place, *PLACE_FEATURES[scene.place][:1]]
        words = " ".join(words).split()
        rng.shuffle(words)
        body = " ".join(words[: max(2, int(rng.integers(2, len(words) + 1)))])
    elif kind == "wrong":
        names = _corrupted_scene_words(scene, rng, 0.6) or [scene.place]
        body = f"{join(names)} {PLACE_PREP[_wrong(rng, scene.place, PLACE_PREP) if rng.random() < 0.3 else scene.place]}"
    else:
        words = clean_caption(scene, rng).split()
        body = " ".join(words[: int(rng.integers(2, max(3, len(words) // 2)))]) + "..."
    extras = [pick(rng, BOILERPLATE) for _ in range(int(rng.integers(1, 3)))]
    parts = [body, *extras] if rng.random() < 0.6 else [*extras, body]
    return pick(rng, (" | ", " - ", " ")).join(parts)


def track_name(clip: Clip, i: int) -> str:
    t = clip.tracks[i]
    return f"{t.colour} {t.shape}"


def subject(clip: Clip, event: Event) -> str:
    """'the red circle' or 'the red circle and the blue star'."""
    return " and ".join(f"the {track_name(clip, i)}" for i in event.subjects)


def clause(clip: Clip, event: Event, *, finite: bool = True) -> str:
    """'the red circle moves to the left' (finite) or 'the red circle move to the left' (after does/do)."""
    verb = ACTION_PHRASES[event.action] if finite and len(event.subjects) == 1 else ACTION_BASE[event.action]
    return f"{subject(clip, event)} {verb}"


def video_caption(clip: Clip, rng: np.random.Generator) -> str:
    """What happens, in order, where; static objects are mentioned as staying still."""
    events = sorted(clip.events, key=lambda e: e.start)
    story = clause(clip, events[0])
    for e in events[1:]:
        story += f", then {clause(clip, e)}"
    acting = {i for e in clip.events for i in e.subjects}
    still = [f"the {track_name(clip, i)}" for i in range(len(clip.tracks)) if i not in acting]
    where = PLACE_PREP[clip.place]
    sentence = pick(rng, ("{Where}, {story}.", "In this video {where}, {story}.", "{Story} {where}."))
    sentence = sentence.format(where=where, Where=where[0].upper() + where[1:], story=story,
                               Story=story[0].upper() + story[1:])
    if still:
        sentence += f" {join(still)[0].upper()}{join(still)[1:]} {'stays' if len(still) == 1 else 'stay'} still."
    return sentence
