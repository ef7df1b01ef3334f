"""Image question types: each asks about a scene graph and returns the answer in two registers.

``ask(rng, scene, vocab, answer)`` returns a :class:`Question` (prompt slots, the short answer, a
reason checked against the scene, acceptable references) or ``None`` when the scene cannot carry a
question with that answer. Passing the answer is how the task layer balances answers: it draws the
answer uniformly from ``answers(vocab)`` first and looks for a scene that supports it.

:class:`Question`, :class:`QType`, :func:`refs`, ``YES_NO`` and the style tuples are defined in
:mod:`lynxlib.world.question_types` (shared with the video askers) and importable from here.
"""
from __future__ import annotations

from lynxlib.world.language import (article, brief_caption, clean_caption, full_name, join, location, motion_phrase,
                                    pick, refer)
from lynxlib.world.question_types import NO_ONE_WORD, OPEN_ENDED, YES_NO, QType, Question, refs
from lynxlib.world.scene import Obj, Scene, WorldVocab, all_positions, position_name
from lynxlib.world.textures import PLACE_FEATURES
from lynxlib.world.vocab import NUMBER_WORDS, number_word, plural

RELATIONS = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}
TRAIL_SIDE = {"left": "on its right", "right": "on its left", "up": "below it", "down": "above it"}
DIRECTION_REFS = {"left": ("to the left", "leftward"), "right": ("to the right", "rightward"),
                  "up": ("upward", "upwards"), "down": ("downward", "downwards")}


def _where(scene: Scene, obj: Obj) -> str:
    return location(obj.row, obj.col, scene.grid)


def ask_colour(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    cands = [o for o in scene.objects if answer in (None, o.colour)]
    if not cands:
        return None
    o = pick(rng, cands)
    return Question({"obj": refer(scene, o, hide="colour")}, o.colour,
                    f"the {o.shape} {_where(scene, o)} is {o.colour}", refs(o.colour))


def ask_shape(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    cands = [o for o in scene.objects if answer in (None, o.shape)]
    if not cands:
        return None
    o = pick(rng, cands)
    return Question({"obj": refer(scene, o, hide="shape")}, o.shape,
                    f"the {o.colour} object {_where(scene, o)} is {article(o.shape)}", refs(o.shape))


def ask_size(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    cands = [o for o in scene.objects if answer in (None, o.size)]
    if not cands:
        return None
    o = pick(rng, cands)
    return Question({"obj": refer(scene, o, hide="size")}, o.size,
                    f"the {full_name(o)} {_where(scene, o)} is {o.size}", refs(o.size))


def ask_exist(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    """Yes: an object or the group's kind; no: an absent (colour, shape), often sharing one attribute."""
    present = {(o.colour, o.shape) for o in scene.objects}
    group = {(scene.group.colour, scene.group.shape)} if scene.group else set()
    if (answer or pick(rng, YES_NO)) == "yes":
        colour, shape = pick(rng, sorted(present | group))
        if (colour, shape) in group:
            reason = f"there {'is' if scene.count == 1 else 'are'} {number_word(scene.count)} small {colour} {plural(shape, scene.count)}"
        else:
            o = next(o for o in scene.objects if (o.colour, o.shape) == (colour, shape))
            reason = f"there is {article(full_name(o))} {_where(scene, o)}"
        return Question({"a_thing": article(f"{colour} {shape}")}, "yes", reason, refs("yes"))
    absent = [(c, s) for c in v.colours for s in v.shapes if (c, s) not in present | group]
    near = [(c, s) for c, s in absent if any(c == pc or s == ps for pc, ps in present)]
    colour, shape = pick(rng, near if near and rng.random() < 0.6 else absent)
    return Question({"a_thing": article(f"{colour} {shape}")}, "no",
                    f"there is no {colour} {shape} in the image", refs("no"))


def _noun(colour: str | None, shape: str, n: int) -> str:
    return f"{colour} {plural(shape, n)}" if colour else plural(shape, n)


def _counted(rng, scene: Scene, v: WorldVocab, target: int | None) -> tuple[str | None, str, int] | None:
    """(colour or None, shape, true count) of a kind of thing to count; ``target`` fixes the count.

    Positive counts are the group's; zero is an absent shape or the group's shape in another colour.
    """
    g = scene.group
    if g is not None and target in (None, g.count):
        return (g.colour if rng.random() < 0.5 else None), g.shape, g.count
    if target not in (None, 0):
        return None
    if g is not None and rng.random() < 0.5:
        return pick(rng, [c for c in v.colours if c != g.colour]), g.shape, 0
    shape = pick(rng, [s for s in v.shapes if s not in scene.shapes_present()])
    return (pick(rng, v.colours) if rng.random() < 0.5 else None), shape, 0


def ask_count(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    found = _counted(rng, scene, v, None if answer is None else NUMBER_WORDS.index(answer))
    if found is None:
        return None
    colour, shape, n = found
    reason = (f"there are no {_noun(colour, shape, 2)} in the image" if n == 0
              else f"I count {number_word(n)} {_noun(colour, shape, n)}")
    return Question({"plural": _noun(colour, shape, 2)}, number_word(n), reason, refs(number_word(n)))


def _pairs(scene: Scene) -> list[tuple[Obj, Obj]]:
    return [(a, b) for a in scene.objects for b in scene.objects if a is not b]


def _relation(a: Obj, b: Obj) -> str | None:
    """The one relation of a to b when they share a row or a column, else None."""
    if a.row == b.row:
        return "left" if a.col < b.col else "right"
    if a.col == b.col:
        return "above" if a.row < b.row else "below"
    return None


def ask_relation(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    cands = [(a, b) for a, b in _pairs(scene) if _relation(a, b) and answer in (None, _relation(a, b))]
    if not cands:
        return None
    a, b = pick(rng, cands)
    rel = _relation(a, b)
    na, nb = refer(scene, a), refer(scene, b)
    return Question({"obj": na, "obj2": nb}, rel, f"the {na} is {RELATIONS[rel]} the {nb}", refs(rel))


def _holds(a: Obj, b: Obj, rel: str) -> bool:
    return {"left": a.col < b.col, "right": a.col > b.col, "above": a.row < b.row, "below": a.row > b.row}[rel]


OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}


def ask_relation_yn(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    """'Is A left of B?' asked only when A and B differ along that axis, so 'no' means the opposite."""
    want = answer or pick(rng, YES_NO)
    cands = [(a, b, rel) for a, b in _pairs(scene) for rel in RELATIONS
             if _holds(a, b, rel if want == "yes" else OPPOSITE[rel])]
    if not cands:
        return None
    a, b, rel = pick(rng, cands)
    na, nb = refer(scene, a), refer(scene, b)
    true_rel = rel if want == "yes" else OPPOSITE[rel]
    return Question({"obj": na, "obj2": nb, "rel": RELATIONS[rel]}, want,
                    f"the {na} is {RELATIONS[true_rel]} the {nb}", refs(want))


def ask_grid_position(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    cands = [o for o in scene.objects if answer in (None, position_name(o.row, o.col, scene.grid))]
    if not cands:
        return None
    o = pick(rng, cands)
    name, where = position_name(o.row, o.col, scene.grid), _where(scene, o)
    extra = (where, name.replace("top", "upper").replace("bottom", "lower"), name.replace(" ", "-"))
    return Question({"obj": refer(scene, o)}, name, f"the {refer(scene, o)} is {where}", refs(name, *extra))


def ask_ocr(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    t = scene.text
    if t is None or answer not in (None, t.word):
        return None
    return Question({"kind": t.kind}, t.word, f'the {t.kind} {location(t.row, t.col, scene.grid)} says "{t.word}"',
                    refs(t.word, t.word.upper(), f'"{t.word}"'))


def ask_place(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    if answer not in (None, scene.place):
        return None
    return Question({}, scene.place, f"the background shows {join(list(PLACE_FEATURES[scene.place]))}",
                    refs(scene.place))


def ask_direction(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    cands = [o for o in scene.objects if o.motion and answer in (None, o.motion)]
    if not cands:
        return None
    o = pick(rng, cands)
    name = refer(scene, o)
    return Question({"obj": name}, o.motion, f"the {name} has a fading trail {TRAIL_SIDE[o.motion]}",
                    refs(o.motion, motion_phrase(o.motion), *DIRECTION_REFS[o.motion]))


def ask_moving_yn(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    want = answer or pick(rng, YES_NO)
    cands = [o for o in scene.objects if bool(o.motion) == (want == "yes")]
    if not cands:
        return None
    o = pick(rng, cands)
    name = refer(scene, o)
    reason = f"the {name} has a fading trail {TRAIL_SIDE[o.motion]}" if o.motion else f"the {name} has no motion trail"
    return Question({"obj": name}, want, reason, refs(want))


def ask_more_than(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    """'Are there more than n stars?' with n in 1..max_count-1 chosen so the answer is ``answer``."""
    want = answer or pick(rng, YES_NO)
    colour, shape, c = _counted(rng, scene, v, None)
    options = range(1, c) if want == "yes" else range(max(1, c), v.max_count)
    if not options:
        return None
    n = int(pick(rng, options))
    verdict = "more than" if c > n else "not more than"
    return Question({"n": number_word(n), "plural": _noun(colour, shape, 2)}, want,
                    f"there {'is' if c == 1 else 'are'} {number_word(c)} {_noun(colour, shape, c)}, "
                    f"which is {verdict} {number_word(n)}", refs(want))


def ask_bigger(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    want = answer or pick(rng, YES_NO)
    cands = [(a, b) for a, b in _pairs(scene) if a.size != b.size and (a.size == "large") == (want == "yes")]
    if not cands:
        return None
    a, b = pick(rng, cands)
    na, nb = refer(scene, a, hide="size"), refer(scene, b, hide="size")
    return Question({"obj": na, "obj2": nb}, want, f"the {na} is {a.size} and the {nb} is {b.size}", refs(want))


def ask_same_colour(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    want = answer or pick(rng, YES_NO)
    cands = [(a, b) for a, b in _pairs(scene) if (a.colour == b.colour) == (want == "yes")]
    if not cands:
        return None
    a, b = pick(rng, cands)
    na, nb = refer(scene, a, hide="colour"), refer(scene, b, hide="colour")
    return Question({"obj": na, "obj2": nb}, want, f"the {na} is {a.colour} and the {nb} is {b.colour}", refs(want))


def _options(rng, answer: str, pool: tuple[str, ...], k: int = 3) -> str:
    others = [p for p in pool if p != answer]
    chosen = [answer] + [others[i] for i in rng.choice(len(others), size=min(k - 1, len(others)), replace=False)]
    rng.shuffle(chosen)
    return join(chosen).replace(" and ", " or ")


def ask_classify_place(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    q = ask_place(rng, scene, v, answer)
    return q and Question({"options": _options(rng, scene.place, v.places)}, q.short, q.reason, q.references)


def ask_classify_object(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    q = ask_shape(rng, scene, v, answer)
    return q and Question({**q.slots, "options": _options(rng, q.short, v.shapes)}, q.short, q.reason, q.references)


def ask_caption_brief(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question:
    caption = brief_caption(scene, rng)
    return Question({}, caption, "", (caption,))


def ask_caption_detailed(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question:
    caption = clean_caption(scene, rng)
    return Question({}, caption, "", (caption,))


def _yes_no(v: WorldVocab) -> tuple[str, ...]:
    return YES_NO


IMAGE_QTYPES: dict[str, QType] = {q.name: q for q in (
    QType("colour", ask_colour, lambda v: v.colours),
    QType("shape", ask_shape, lambda v: v.shapes),
    QType("size", ask_size, lambda v: ("small", "large")),
    QType("exist", ask_exist, _yes_no),
    QType("count", ask_count, lambda v: NUMBER_WORDS[: v.max_count + 1]),
    QType("relation", ask_relation, lambda v: tuple(RELATIONS)),
    QType("relation_yn", ask_relation_yn, _yes_no),
    QType("grid_position", ask_grid_position, lambda v: all_positions(v.grid), styles=NO_ONE_WORD),
    QType("ocr", ask_ocr, lambda v: v.words),
    QType("place", ask_place, lambda v: v.places),
    QType("direction", ask_direction, lambda v: ("left", "right", "up", "down")),
    QType("moving_yn", ask_moving_yn, _yes_no),
    QType("more_than", ask_more_than, _yes_no),
    QType("bigger", ask_bigger, _yes_no),
    QType("same_colour", ask_same_colour, _yes_no),
    QType("classify_place", ask_classify_place, lambda v: v.places),
    QType("classify_object", ask_classify_object, lambda v: v.shapes),
    QType("caption_brief", ask_caption_brief, None, styles=OPEN_ENDED),
    QType("caption_detailed", ask_caption_detailed, None, styles=OPEN_ENDED),
)}
