"""Text-only data: the corpus that pretrains the tiny LM ("LLaMA") and the question types of the text
instructions that tune it ("Vicuna"): arithmetic, comparisons, counting, spelling, world facts, lists,
sentence writing. Answers honour styles: under "Answer in one word." the answer is one word.

The corpus also holds *reading* passages: a scene's clean caption, then a question about it and its
answer (``WorldConfig.reading_share`` of the lines). Real LLMs arrive able to answer questions about a
text in their context; a prefix-tuned MLLM leans on that skill, since stage 1 teaches the visual tokens
to carry what a caption says and stage 2 only has to ask about them. A tiny LM trained on captions and
isolated facts alone answered such questions no better with the description than without it
(docs/calibration.md, which also measures what the passages teach and what they do not).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lynxlib.config import WorldConfig
from lynxlib.world.language import (PLACE_PREP, article, brief_caption, clean_caption, join, location, pick,
                                    video_caption)
from lynxlib.world.prompts import POOLS
from lynxlib.world.questions import IMAGE_QTYPES, OPEN_ENDED, YES_NO, QType, Question, refs
from lynxlib.world.scene import WorldVocab, sample_scene, world_vocab
from lynxlib.world.textures import PLACE_FEATURES
from lynxlib.world.video import sample_clip
from lynxlib.world.vocab import NUMBER_WORDS, number_word

SIDES = {"triangle": 3, "square": 4, "diamond": 4, "star": 10}
PLACE_WORD = {"beach": "sand", "forest": "trees", "kitchen": "tiles", "street": "asphalt", "desert": "dunes",
              "snowfield": "snow", "office": "carpet", "garden": "flowers", "library": "books", "harbor": "water"}
MAX_NUMBER = 10


def _spellable(v: WorldVocab) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.words + v.shapes + v.colours + v.places))


def ask_arithmetic(rng, _, v: WorldVocab, answer: str | None) -> Question:
    total = NUMBER_WORDS.index(answer) if answer else int(rng.integers(MAX_NUMBER + 1))
    a = int(rng.integers(total + 1))
    slots = {"a": number_word(a), "b": number_word(total - a)}
    return Question(slots, number_word(total), f"{slots['a']} plus {slots['b']} makes {number_word(total)}",
                    refs(number_word(total)))


def ask_larger(rng, _, v: WorldVocab, answer: str | None) -> Question:
    big = NUMBER_WORDS.index(answer) if answer else int(rng.integers(1, MAX_NUMBER + 1))
    small = int(rng.integers(big))
    a, b = (big, small) if rng.random() < 0.5 else (small, big)
    return Question({"a": number_word(a), "b": number_word(b)}, number_word(big),
                    f"{number_word(big)} is more than {number_word(small)}", refs(number_word(big)))


def ask_after(rng, _, v: WorldVocab, answer: str | None) -> Question:
    n = NUMBER_WORDS.index(answer) if answer else int(rng.integers(1, MAX_NUMBER + 1))
    return Question({"a": number_word(n - 1)}, number_word(n), f"counting goes {number_word(n - 1)}, {number_word(n)}",
                    refs(number_word(n)))


def ask_more_yn(rng, _, v: WorldVocab, answer: str | None) -> Question:
    want = answer or pick(rng, YES_NO)
    x, y = (int(i) for i in rng.choice(MAX_NUMBER + 1, size=2, replace=False))
    a, b = (max(x, y), min(x, y)) if want == "yes" else (min(x, y), max(x, y))
    verdict = "more" if a > b else "less"
    return Question({"a": number_word(a), "b": number_word(b)}, want,
                    f"{number_word(a)} is {verdict} than {number_word(b)}", refs(want))


def ask_letters(rng, _, v: WorldVocab, answer: str | None) -> Question | None:
    words = [w for w in _spellable(v) if answer in (None, number_word(len(w)))]
    if not words:
        return None
    w = pick(rng, words)
    return Question({"w": w}, number_word(len(w)), f"{w} is spelled {' '.join(w)}", refs(number_word(len(w))))


def ask_first_letter(rng, _, v: WorldVocab, answer: str | None) -> Question | None:
    words = [w for w in _spellable(v) if answer in (None, w[0])]
    if not words:
        return None
    w = pick(rng, words)
    return Question({"w": w}, w[0], f"{w} is spelled {' '.join(w)}", refs(w[0], w[0].upper()))


def ask_sides(rng, _, v: WorldVocab, answer: str | None) -> Question:
    shape = pick(rng, [s for s in SIDES if s in v.shapes] or list(SIDES))
    n = number_word(SIDES[shape])
    reason = f"a star has five points and {n} edges" if shape == "star" else f"{article(shape)} has {n} straight sides"
    return Question({"shape": shape}, n, reason, refs(n))


def ask_place_fact(rng, _, v: WorldVocab, answer: str | None) -> Question | None:
    places = [p for p in v.places if answer in (None, PLACE_WORD[p])]
    if not places:
        return None
    place = pick(rng, places)
    return Question({"place": place}, PLACE_WORD[place], f"{article(place)} has {join(list(PLACE_FEATURES[place]))}",
                    refs(PLACE_WORD[place], *PLACE_FEATURES[place]))


def ask_list(rng, _, v: WorldVocab, answer: str | None) -> Question:
    things, pool = pick(rng, (("colours", v.colours), ("shapes", v.shapes), ("places", v.places)))
    n = int(rng.integers(2, 5))
    items = [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]
    listed = join(items)
    return Question({"n": number_word(n), "things": things}, listed, "", (listed,))


def ask_sentence(rng, _, v: WorldVocab, answer: str | None) -> Question:
    thing = f"{pick(rng, v.colours)} {pick(rng, v.shapes)}"
    where = PLACE_PREP[pick(rng, v.places)]
    sentence = pick(rng, ("There is {a} {w}.", "{A} sits {w}.", "You can see {a} {w}."))
    text = sentence.format(a=article(thing), A=article(thing).capitalize(), w=where)
    return Question({"thing": thing, "where": where}, text, "", (text,))


def _numbers(lo: int) -> tuple[str, ...]:
    return NUMBER_WORDS[lo: MAX_NUMBER + 1]


TEXT_QTYPES: dict[str, QType] = {q.name: q for q in (
    QType("arithmetic", ask_arithmetic, lambda v: _numbers(0)),
    QType("larger", ask_larger, lambda v: _numbers(1)),
    QType("after", ask_after, lambda v: _numbers(1)),
    QType("more_yn", ask_more_yn, lambda v: YES_NO),
    QType("letters", ask_letters, lambda v: tuple(sorted({number_word(len(w)) for w in _spellable(v)}))),
    QType("first_letter", ask_first_letter, lambda v: tuple(sorted({w[0] for w in _spellable(v)}))),
    QType("sides", ask_sides),
    QType("place_fact", ask_place_fact, lambda v: tuple(PLACE_WORD[p] for p in v.places)),
    QType("list", ask_list, styles=("plain", "short")),
    QType("sentence", ask_sentence, styles=OPEN_ENDED),
)}


def _facts(rng: np.random.Generator, v: WorldVocab) -> str:
    kind = int(rng.integers(6))
    if kind == 0:
        place = pick(rng, v.places)
        return f"{article(place).capitalize()} has {join(list(PLACE_FEATURES[place]))}."
    if kind == 1:
        shape = pick(rng, list(SIDES))
        return f"{article(shape).capitalize()} has {number_word(SIDES[shape])} sides."
    if kind == 2:
        return f"{pick(rng, v.colours).capitalize()} is a colour, and {pick(rng, v.shapes)} is a shape."
    if kind == 3:
        a, b = (int(i) for i in rng.integers(0, 6, size=2))
        return f"{number_word(a).capitalize()} plus {number_word(b)} is {number_word(a + b)}."
    if kind == 4:
        n = int(rng.integers(MAX_NUMBER))
        return f"After {number_word(n)} comes {number_word(n + 1)}, and {number_word(n + 1)} is more than {number_word(n)}."
    w = pick(rng, v.words)
    return f"The word {w} has {number_word(len(w))} letters: {', '.join(w)}."


def _qa_prose(rng: np.random.Generator, v: WorldVocab) -> str:
    q = pick(rng, list(TEXT_QTYPES.values()))
    question = q.ask(rng, None, v, None)
    return f"Question: {POOLS[q.name].hand[0].format(**question.slots)} Answer: {question.short}."


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
            pairs.append((f"The one {places[i]} is {article(shapes[i]).rsplit(' ', 1)[0]}", shapes[i]))
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


def text_corpus(cfg: WorldConfig, rng: np.random.Generator) -> list[str]:
    """``cfg.text_corpus`` sentences (or short paragraphs): scene and clip descriptions, facts, Q&A prose,
    (``cfg.reading_share`` of them) reading passages and (``cfg.recall_share``) look-up lines."""
    v = world_vocab(cfg)
    out = []
    for _ in range(cfg.text_corpus):
        if cfg.recall_share and rng.random() < cfg.recall_share:  # no draw at 0: the corpus of world v2
            out.append(recall_line(rng, cfg))
            continue
        if rng.random() < cfg.reading_share:
            out.append(reading_text(rng, cfg))
            continue
        kind = rng.random()
        if kind < 0.3:
            out.append(clean_caption(sample_scene(rng, cfg), rng))
        elif kind < 0.4:
            out.append(brief_caption(sample_scene(rng, cfg), rng))
        elif kind < 0.5:
            out.append(video_caption(sample_clip(rng, cfg), rng))
        elif kind < 0.8:
            out.append(_facts(rng, v))
        else:
            out.append(_qa_prose(rng, v))
    return out
