"""Text-only data: the corpus that pretrains the tiny LM ("LLaMA") and the question types of the text
instructions that tune it ("Vicuna"): arithmetic, comparisons, counting, spelling, world facts, lists,
sentence writing. Answers honour styles: under "Answer in one word." the answer is one word.

The corpus also holds *reading* passages: a scene's clean caption, then a question about it and its
answer (``WorldConfig.reading_share`` of the lines). Real LLMs arrive able to answer questions about a
text in their context; a prefix-tuned MLLM leans on that skill, since stage 1 teaches the visual tokens
to carry what a caption says and stage 2 only has to ask about them. A tiny LM trained on captions and
isolated facts alone answered such questions no better with the description than without it
(docs/calibration.md, which also measures what the passages teach and what they do not). The passages
and the look-up lines are built in :mod:`lynxlib.world.reading`.
"""
from __future__ import annotations

import numpy as np

from lynxlib.config import WorldConfig
from lynxlib.world.language import PLACE_PREP, article, brief_caption, clean_caption, join, pick, video_caption
from lynxlib.world.prompts import POOLS
from lynxlib.world.reading import reading_text, recall_line
from lynxlib.world.questions import OPEN_ENDED, YES_NO, QType, Question, refs
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
