"""Reading passages and look-up lines of the LM corpus (lynxlib.world.reading)."""
import re

import numpy as np
import pytest

from lynxlib.config import WorldConfig
from lynxlib.world import sample_scene, stream_rng, text_corpus
from lynxlib.world.language import location

CFG = WorldConfig()
SCENES = [sample_scene(stream_rng(0, "tasks", i), CFG) for i in range(20)]  # test_world_tasks.py's first 20


def test_reading_passages_ask_what_their_context_says():
    from lynxlib.world.reading import reading_passage
    from lynxlib.world.vocab import COLOURS, PLACES, SHAPES

    cfg = WorldConfig()
    passages = [reading_passage(np.random.default_rng(i), cfg) for i in range(300)]
    assert passages[7] == reading_passage(np.random.default_rng(7), cfg)
    checked = 0
    for p in passages:
        assert p.text == f"{p.context} Question: {p.question} Answer: {p.answer}."
        asked = re.search(r"\bthe (\w+)[?.]$", p.question)
        if p.answer in COLOURS and asked and asked.group(1) in SHAPES:
            # "what colour is the star?" -> the context names "a ... <answer> star"
            assert f"{p.answer} {asked.group(1)}" in p.context, p
            checked += 1
        if p.answer in PLACES:
            assert p.answer in p.context, p
            checked += 1
    assert checked > 20
    assert len({p.question for p in passages}) > 250  # varied questions and phrasings


@pytest.mark.parametrize("share", [0.0, 0.4, 1.0])
def test_reading_share_of_the_corpus(share):
    corpus = text_corpus(WorldConfig(text_corpus=400, reading_share=share), np.random.default_rng(0))
    # reading passages are the only lines with a description before "Question:" (Q&A prose starts with it)
    reading = sum(" Question: " in line and not line.startswith("Question:") for line in corpus) / len(corpus)
    assert abs(reading - share) < 0.07


def test_reading_passages_with_several_questions_ask_distinct_types_about_one_description():
    from lynxlib.world.reading import READING_QTYPES, _questions, reading_passage, reading_text
    from lynxlib.world.vocab import COLOURS, SHAPES

    one = WorldConfig(reading_questions=1)
    # one question: the passage of world v2, draw for draw (its stored worlds and stage keys stay valid)
    assert all(reading_text(np.random.default_rng(i), one) == reading_passage(np.random.default_rng(i), one).text
               for i in range(50))
    four = WorldConfig(reading_questions=4)
    checked = 0
    for i in range(200):
        context, *qas = reading_text(np.random.default_rng(i), four).split(" Question: ")
        assert len(qas) == 4 and all(" Answer: " in qa and qa.endswith(".") for qa in qas)
        for qa in qas:
            question, answer = qa[:-1].split(" Answer: ")
            asked = re.search(r"\bthe (\w+)[?.]$", question)
            if answer in COLOURS and asked and asked.group(1) in SHAPES:
                assert f"{answer} {asked.group(1)}" in context  # every question is about this description
                checked += 1
    assert checked > 20
    # more questions than a scene answers types: each answerable type once, and the draw ends
    for i in range(20):
        asked = [q for q, _, _ in _questions(np.random.default_rng(i), SCENES[i], CFG, 99)]
        assert len(set(asked)) == len(asked) and 5 <= len(asked) <= len(READING_QTYPES)


def test_recall_lines_look_up_what_their_list_says():
    from lynxlib.world.reading import LOOKUP_PROMPT, recall_line, recall_probe

    for i in range(100):
        line = recall_line(np.random.default_rng(i), CFG)
        probe = recall_probe(np.random.default_rng(i), CFG)  # the same line, up to its last answer
        assert f"{LOOKUP_PROMPT.format(context=probe.context, question=probe.question)} {probe.answer}." == line
        assert probe.qtype == ("lookup_shape" if " one is " in probe.question else "lookup_colour")
        listed, *lookups = line.split(". ")
        pairs = [item.lower().split() for item in listed.split(", ")]
        colour_of = dict((shape, colour) for colour, shape in pairs)
        assert 3 <= len(pairs) == len(colour_of) == len(lookups) <= 6  # distinct shapes, each looked up once
        for sentence in lookups:
            words = sentence.rstrip(".").lower().split()
            if words[2] == "one":  # "the blue one is a star": a colour that only that shape has
                assert colour_of[words[-1]] == words[1] and [c for c, _ in pairs].count(words[1]) == 1
            else:  # "the star is blue"
                assert colour_of[words[1]] == words[3]
    with_recall = text_corpus(WorldConfig(text_corpus=400, recall_share=0.3), np.random.default_rng(0))
    assert abs(sum(". The " in line and "Question:" not in line and line.count(", ") >= 2
                   for line in with_recall) / 400 - 0.3) < 0.07
    # at 0 no draw is made: the corpus of world v2, line for line
    assert text_corpus(WorldConfig(text_corpus=50), np.random.default_rng(3)) == \
        text_corpus(WorldConfig(text_corpus=50, recall_share=0.0), np.random.default_rng(3))



def test_position_lines_say_where_their_list_puts_each_shape():
    """world.recall_positions: that share of the look-up lines places 3-5 distinct shapes in distinct
    cells and looks each up once, by shape ("The star is" -> "at the top left") or by place; at 0 no
    draw is made, so the v3 corpus is unchanged line for line."""
    from lynxlib.world.reading import LOOKUP_PROMPT, position_probe, recall_line

    where = WorldConfig(recall_positions=1.0)
    places = {location(r, c, where.grid) for r in range(where.grid) for c in range(where.grid)}
    kinds = set()
    for i in range(100):
        probe = position_probe(np.random.default_rng(i), where)
        line = recall_line(np.random.default_rng(i), where)
        # recall_line draws its choice first, so its line is the probe of the generator one draw on
        rng = np.random.default_rng(i)
        rng.random()
        again = position_probe(rng, where)
        assert line == f"{LOOKUP_PROMPT.format(context=again.context, question=again.question)} {again.answer}."
        listed, *lookups = f"{probe.context} {probe.question} {probe.answer}".split(". ")
        place_of = {}
        for item in listed.split(", "):
            shape, place = item.lower().split(" ", 1)
            assert place in places and shape not in place_of
            place_of[shape] = place
        assert 3 <= len(place_of) == len(set(place_of.values())) == len(lookups) <= 5
        for sentence in lookups:
            words = sentence.rstrip(".").lower()
            if words.startswith("the one "):  # "the one at the top left is a star"
                place, shape = words[len("the one "):].rsplit(" is ", 1)
                assert place_of[shape.split()[-1]] == place
            else:  # "the star is at the top left"
                shape, place = words[len("the "):].split(" is ", 1)
                assert place_of[shape] == place
        kinds.add(probe.qtype)
    assert kinds == {"lookup_position", "lookup_at"}
    assert text_corpus(WorldConfig(text_corpus=60, recall_share=0.5), np.random.default_rng(4)) == \
        text_corpus(WorldConfig(text_corpus=60, recall_share=0.5, recall_positions=0.0), np.random.default_rng(4))
    mixed = text_corpus(WorldConfig(text_corpus=300, recall_share=1.0, recall_positions=0.5), np.random.default_rng(5))
    assert 0.35 < sum(" is at the " in x or " is in the " in x or " is on the " in x for x in mixed) / 300 < 0.65
