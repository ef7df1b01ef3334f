"""Reading passages and look-up lines of the LM corpus, and their held-out probes.

A *reading passage* is a scene's clean caption, then questions about it, each with its answer: the
skill a prefix-tuned MLLM leans on (answer about what is in the context). A *look-up line* is that
skill in its barest form: a list ("Green circle, blue star.", or where things are: "Star at the top
left, circle in the center.") and look-ups into it ("The star is blue. The one in the center is a
circle."). :func:`lynxlib.world.textdata.text_corpus` mixes them into the corpus by
``WorldConfig.reading_share``, ``recall_share`` and ``recall_positions``; each ``*_probe`` is a line up
to its last answer, for the stage-0 gates and ``benchmarks/lm_reading.py`` (docs/calibration.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lynxlib.config import WorldConfig
from lynxlib.world.language import article, clean_caption, location, pick
from lynxlib.world.prompts import POOLS
from lynxlib.world.questions import IMAGE_QTYPES
from lynxlib.world.scene import sample_scene, world_vocab


# image question types a clean caption answers (it names every object's size, colour, shape, place on
# the grid and motion, the group's count, the sign's word and the place); classification and captioning
# types are left out: they are not questions about the passage
READING_QTYPES = ("colour", "shape", "size", "exist", "count", "relation", "relation_yn", "grid_position", "ocr",
                  "place", "direction", "moving_yn", "more_than", "bigger", "same_colour")


READING_PROMPT = "{context} Question: {question} Answer:"  # a reading passage in the LM corpus, up to the answer


@dataclass(frozen=True)
class Reading:
    """A reading passage: a scene's description, a question about it (train phrasing) and the short answer."""

    context: str
    question: str
    answer: str
    qtype: str = ""  # the image question type asked (IMAGE_QTYPES)

    @property
    def text(self) -> str:
        return f"{READING_PROMPT.format(context=self.context, question=self.question)} {self.answer}."


def _questions(rng: np.random.Generator, scene, cfg: WorldConfig, n: int) -> list[tuple[str, str, str]]:
    """Up to ``n`` (qtype, question in a train phrasing, short answer) about ``scene``, of distinct types
    (fewer where the scene answers fewer types: one without motion has no direction question)."""
    v = world_vocab(cfg)
    out: list[tuple[str, str, str]] = []
    failed: set[str] = set()
    while len(out) < n:
        kinds = [q for q in READING_QTYPES if q not in {name for name, _, _ in out}]
        if not kinds or failed.issuperset(kinds):  # every type left has failed on this scene
            break
        qtype = IMAGE_QTYPES[pick(rng, kinds)]
        question = qtype.ask(rng, scene, v, None)
        if question is None:  # redraw (every scene has an object, a place and a count to ask about)
            failed.add(qtype.name)
            continue
        template = pick(rng, POOLS[qtype.name].phrasings("train", cfg.paraphrases))
        out.append((qtype.name, template.format(**question.slots), question.short))
    return out


def reading_passage(rng: np.random.Generator, cfg: WorldConfig) -> Reading:
    """A fresh scene's clean caption and one question about it, from the training phrasings."""
    scene = sample_scene(rng, cfg)
    context = clean_caption(scene, rng)
    (qtype, question, answer), = _questions(rng, scene, cfg, 1)
    return Reading(context, question, answer, qtype)


def reading_text(rng: np.random.Generator, cfg: WorldConfig) -> str:
    """A corpus line: a fresh scene's clean caption, then ``cfg.reading_questions`` questions of distinct
    types about it, each followed by its answer. With one question this is :func:`reading_passage`'s
    text, draw for draw; more questions per description put more of the corpus's tokens where the
    answer can only be read from the context (docs/calibration.md)."""
    scene = sample_scene(rng, cfg)
    text = clean_caption(scene, rng)
    for qtype, question, answer in _questions(rng, scene, cfg, cfg.reading_questions):
        text = Reading(text, question, answer, qtype).text  # each question reads all that came before it
    return text


LOOKUP_PROMPT = "{context} {question}"  # a look-up line up to its last answer


def _lookup_reading(listed: str, pairs: list[tuple[str, str]], *, by_attribute: str, by_shape: str) -> Reading:
    """The list and every (prompt, answer) look-up but the last as the context, the last prompt as the
    question; its qtype says which way it looks up ("The blue one is a" / "The star is")."""
    (prompt, answer), earlier = pairs[-1], pairs[:-1]
    context = " ".join([listed[0].upper() + listed[1:] + "."] + [f"{q} {a}." for q, a in earlier])
    return Reading(context, prompt, answer, by_attribute if " one " in prompt else by_shape)


def recall_probe(rng: np.random.Generator, cfg: WorldConfig) -> Reading:
    """A look-up line as a :class:`Reading` (score with ``template=LOOKUP_PROMPT``): 3-6 coloured shapes
    (distinct shapes) and all look-ups but the last as the context, the last look-up's prompt as the
    question. Each shape is looked up once, in a fresh order, by shape ("The star is" -> "blue") or,
    where its colour is unique in the list, by colour half of the time ("The blue one is a" -> "star")."""
    v = world_vocab(cfg)
    n = int(rng.integers(3, min(6, len(v.shapes)) + 1))
    shapes = [v.shapes[i] for i in rng.choice(len(v.shapes), size=n, replace=False)]
    colours = [pick(rng, v.colours) for _ in shapes]
    unique = {c for c in colours if colours.count(c) == 1}
    pairs = []
    for i in rng.permutation(n):
        if colours[i] in unique and rng.random() < 0.5:
            pairs.append(tuple(f"The {colours[i]} one is {article(shapes[i])}".rsplit(" ", 1)))
        else:
            pairs.append((f"The {shapes[i]} is", colours[i]))
    listed = ", ".join(f"{c} {s}" for c, s in zip(colours, shapes))
    return _lookup_reading(listed, pairs, by_attribute="lookup_shape", by_shape="lookup_colour")


def position_probe(rng: np.random.Generator, cfg: WorldConfig) -> Reading:
    """A look-up line about *where* things are, as a :class:`Reading` (``template=LOOKUP_PROMPT``): 3-5
    distinct shapes in distinct grid cells ("Star at the top left, circle in the center, cross on the
    right."), then each shape looked up once in a fresh order, by shape ("The star is" -> "at the top
    left", the where-question's look-up) or, half of the time, by its place ("The one at the top left
    is a" -> "star"). The relations a Spatial question asks follow from the places; the colour
    look-up lines never say where anything is."""
    v = world_vocab(cfg)
    n = int(rng.integers(3, min(5, len(v.shapes), cfg.grid * cfg.grid) + 1))
    shapes = [v.shapes[i] for i in rng.choice(len(v.shapes), size=n, replace=False)]
    cells = [divmod(int(c), cfg.grid) for c in rng.choice(cfg.grid * cfg.grid, size=n, replace=False)]
    places = [location(r, c, cfg.grid) for r, c in cells]
    pairs = []
    for i in rng.permutation(n):
        if rng.random() < 0.5:
            pairs.append(tuple(f"The one {places[i]} is {article(shapes[i])}".rsplit(" ", 1)))
        else:
            pairs.append((f"The {shapes[i]} is", places[i]))
    listed = ", ".join(f"{s} {p}" for s, p in zip(shapes, places))
    return _lookup_reading(listed, pairs, by_attribute="lookup_at", by_shape="lookup_position")


def recall_line(rng: np.random.Generator, cfg: WorldConfig) -> str:
    """A look-up line of the corpus: "Green circle, blue star, white cross. The star is blue. The white one
    is a cross. ..." The answer can only come from the list in front of it: the in-context look-up that
    a reading passage's "Which colour does the star have?" needs, in its barest form (real corpora teach
    it with tables, lists and repeated names). ``cfg.recall_positions`` of them are
    :func:`position_probe`'s lines instead: "Star at the top left, circle in the center. The star is at
    the top left. ..." """
    where = cfg.recall_positions and rng.random() < cfg.recall_positions  # no draw at 0: world v3's lines
    probe = position_probe(rng, cfg) if where else recall_probe(rng, cfg)
    return f"{LOOKUP_PROMPT.format(context=probe.context, question=probe.question)} {probe.answer}."
