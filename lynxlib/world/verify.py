"""Verification questions: yes/no about one fact of the scene, often with an answer-format cue.

The task ``vqa_verify`` (the VQAv2 / GQA yes/no questions of the paper's instruction mixture) asks
whether an object has a colour or a shape, whether a group has a count, whether the picture was taken
at a place, whether a sign says a word, and the existence and relation questions again with a
format cue ("Answer yes or no."). Its point is MME: MME asks exactly such questions and appends
"Please answer yes or no."; a model trained only on open questions about attributes answers the
attribute ("blue") instead. MME's own wordings stay out of the training pools (tested).

Every asker follows :mod:`lynxlib.world.questions`' contract: ``answer`` "yes" keeps the true value,
"no" draws a wrong one from the world's vocabulary, and the reason states the truth either way.
"""
from __future__ import annotations

from lynxlib.world.language import PLACE_PREP, article, location, pick, refer
from lynxlib.world.question_types import YES_NO, QType, Question, refs
from lynxlib.world.questions import ask_exist, ask_relation_yn
from lynxlib.world.scene import Scene, WorldVocab
from lynxlib.world.vocab import number_word, plural


def _yes(rng, answer: str | None) -> bool:
    return (pick(rng, YES_NO) if answer is None else answer) == "yes"


def _other(rng, options, truth):
    return pick(rng, [o for o in options if o != truth])


def ask_colour_verify(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    if not scene.objects:
        return None
    o, yes = pick(rng, scene.objects), _yes(rng, answer)
    colour = o.colour if yes else _other(rng, v.colours, o.colour)
    return Question({"obj": refer(scene, o, hide="colour"), "colour": colour}, "yes" if yes else "no",
                    f"the {o.shape} {location(o.row, o.col, scene.grid)} is {o.colour}", refs("yes" if yes else "no"))


def ask_shape_verify(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    if not scene.objects:
        return None
    o, yes = pick(rng, scene.objects), _yes(rng, answer)
    shape = o.shape if yes else _other(rng, v.shapes, o.shape)
    return Question({"obj": refer(scene, o, hide="shape"), "a_shape": article(shape)}, "yes" if yes else "no",
                    f"the {o.colour} object {location(o.row, o.col, scene.grid)} is {article(o.shape)}",
                    refs("yes" if yes else "no"))


def ask_count_verify(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    """About the group (the scene's countable things): the true count, or another in 1..max_count."""
    g = scene.group
    if g is None:
        return None
    yes = _yes(rng, answer)
    n = scene.count if yes else _other(rng, range(1, v.max_count + 1), scene.count)
    colour = f"{g.colour} " if rng.random() < 0.5 else ""
    return Question({"plural": colour + plural(g.shape, 2), "n": number_word(n),
                     "how_many": f"{number_word(n)} {colour}{plural(g.shape, n)}"}, "yes" if yes else "no",
                    f"I count {number_word(scene.count)} {colour}{plural(g.shape, scene.count)}",
                    refs("yes" if yes else "no"))


def ask_place_verify(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    yes = _yes(rng, answer)
    place = scene.place if yes else _other(rng, v.places, scene.place)
    return Question({"where": PLACE_PREP[place]}, "yes" if yes else "no",
                    f"the picture was taken {PLACE_PREP[scene.place]}", refs("yes" if yes else "no"))


def ask_ocr_verify(rng, scene: Scene, v: WorldVocab, answer: str | None) -> Question | None:
    t = scene.text
    if t is None:
        return None
    yes = _yes(rng, answer)
    word = t.word if yes else _other(rng, v.words, t.word)
    return Question({"kind": t.kind, "word": word}, "yes" if yes else "no", f'the {t.kind} says "{t.word}"',
                    refs("yes" if yes else "no"))


def _yes_no(v: WorldVocab) -> tuple[str, ...]:
    return YES_NO


VERIFY_QTYPES: dict[str, QType] = {q.name: q for q in (
    QType("colour_verify", ask_colour_verify, _yes_no),
    QType("shape_verify", ask_shape_verify, _yes_no),
    QType("count_verify", ask_count_verify, _yes_no),
    QType("place_verify", ask_place_verify, _yes_no),
    QType("ocr_verify", ask_ocr_verify, _yes_no),
    QType("exist_verify", ask_exist, _yes_no),
    QType("relation_verify", ask_relation_yn, _yes_no),
)}
