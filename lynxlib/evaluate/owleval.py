"""OwlEval-mini: automatic generation-quality scores against the scene graph.

The paper rates OwlEval answers by hand, correctness first, then richness (Sec. 3.2). In the
synthetic world every image comes with its facts, so both can be measured:

* the facts a text *states* are extracted with the world's vocabulary: a colour (and/or size) next
  to a shape ("a small red circle"), a number before a bare shape ("three stars"; a number before a
  qualified shape, "two red circles", only claims that such objects exist), bare shapes and
  colours, place words, and rendered words when quoted or introduced ('says "cat"');
* correctness = share of stated facts true of the scene (hallucinations lower it); None when the
  text states no fact (counted as ``n_undefined``);
* richness = share of the scene's facts (place, each object's colour+shape, the count, the text)
  the text states correctly;
* length in words and distinct-2 (distinct bigrams / bigrams).

Scene ``facts``: ``{"place": str, "objects": [{"shape", "colour", "size"}, ...],
"count": {"shape": str, "n": int} | None, "text": str | None}``.
"""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pandas as pd

from lynxlib.evaluate.text import distinct_2, word_count
from lynxlib.world import vocab

Fact = tuple  # ("place", p) | ("object", colour|None, shape, size|None) | ("shape", s) | ("colour", c)
#               | ("count", shape, n) | ("text", word)
_NUMBERS = {w: i for i, w in enumerate(vocab.NUMBER_WORDS)}
_SINGULAR = {p: s for s, p in vocab.SHAPE_PLURALS.items()} | {s: s for s in vocab.SHAPES}
_PLACES = {p: p for p in vocab.PLACES} | {alt: p for p in vocab.PLACES for alt in vocab.SYNONYMS.get(p, ())
                                          if " " not in alt}
_COLOURS = {c: c for c in vocab.COLOURS} | {alt: c for c in vocab.COLOURS for alt in vocab.SYNONYMS.get(c, ())}
_TOKEN = re.compile(r"[a-z]+|\d+")
_WORDS = "|".join(vocab.WORDS)
_QUOTED = re.compile(rf"[\"“'‘]({_WORDS})[\"”'’]", re.IGNORECASE)
_CUED = re.compile(rf"\b(?:says|reads|read|word|text|written|spells|spelled|labelled|labeled)\b\W+({_WORDS})\b",
                   re.IGNORECASE)


def _number(token: str) -> int | None:
    return int(token) if token.isdigit() else _NUMBERS.get(token)


def _object_phrase(tokens: list[str], i: int) -> tuple[int, str | None, str | None, str] | None:
    """(tokens used, colour, size, shape) for '[size] [colour] [size] shape' starting at ``i``."""
    colour = size = None
    j = i
    while j < len(tokens) and j - i < 2:
        tok = tokens[j]
        if tok in vocab.SIZES and size is None:
            size = tok
        elif tok in _COLOURS and colour is None:
            colour = _COLOURS[tok]
        else:
            break
        j += 1
    if j < len(tokens) and tokens[j] in _SINGULAR:
        return j + 1 - i, colour, size, _SINGULAR[tokens[j]]
    return None


def extract_facts(text: str) -> list[Fact]:
    """The facts ``text`` states, in order of first mention, without repeats."""
    tokens = _TOKEN.findall(str(text).lower())
    facts: list[Fact] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        n = _number(tok)
        phrase = _object_phrase(tokens, i + 1) if n is not None else _object_phrase(tokens, i)
        if n is not None and phrase:
            used, colour, size, shape = phrase   # a qualified count ('two red circles') only
            qualified = colour or size             # claims such objects exist
            facts.append(("object", colour, shape, size) if qualified else ("count", shape, n))
            i += 1 + used
            continue
        if phrase:
            used, colour, size, shape = phrase
            facts.append(("object", colour, shape, size) if (colour or size) else ("shape", shape))
            i += used
            continue
        if tok in _COLOURS:
            facts.append(("colour", _COLOURS[tok]))
        elif tok in _PLACES:
            facts.append(("place", _PLACES[tok]))
        i += 1
    for match in (*_QUOTED.finditer(str(text)), *_CUED.finditer(str(text))):
        facts.append(("text", match.group(1).lower()))
    return list(dict.fromkeys(facts))


def _objects(facts: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(facts.get("objects") or [])


def _shape_count(facts: Mapping[str, Any], shape: str) -> int:
    count = facts.get("count")
    if count and count.get("shape") == shape:
        return int(count["n"])
    return sum(o.get("shape") == shape for o in _objects(facts))


def is_true(fact: Fact, facts: Mapping[str, Any]) -> bool:
    """Whether a stated fact holds in the scene."""
    kind = fact[0]
    if kind == "place":
        return fact[1] == facts.get("place")
    if kind == "text":
        return bool(facts.get("text")) and fact[1] == str(facts["text"]).lower()
    if kind == "count":
        return fact[2] == _shape_count(facts, fact[1])
    if kind == "shape":
        return _shape_count(facts, fact[1]) > 0 or any(o.get("shape") == fact[1] for o in _objects(facts))
    if kind == "colour":
        return any(o.get("colour") == fact[1] for o in _objects(facts))
    if kind == "object":
        _, colour, shape, size = fact
        return any(o.get("shape") == shape and colour in (None, o.get("colour")) and size in (None, o.get("size"))
                   for o in _objects(facts))
    raise ValueError(f"unknown fact {fact!r}")


def scene_facts(facts: Mapping[str, Any]) -> list[Fact]:
    """The scene's facts a rich answer should state: place, each colour+shape, the count, the text."""
    out: list[Fact] = [("place", facts["place"])] if facts.get("place") else []
    out += list(dict.fromkeys(("object", o.get("colour"), o.get("shape")) for o in _objects(facts)))
    if facts.get("count"):
        out.append(("count", facts["count"]["shape"], int(facts["count"]["n"])))
    if facts.get("text"):
        out.append(("text", str(facts["text"]).lower()))
    return out


def _mentioned(target: Fact, stated: list[Fact]) -> bool:
    if target[0] == "object":
        return any(f[0] == "object" and f[1] == target[1] and f[2] == target[2] for f in stated)
    return target in stated


@dataclass(frozen=True)
class OwlScore:
    correctness: float | None
    richness: float | None
    words: int
    distinct2: float | None
    n_stated: int
    n_true: int
    hallucinated: tuple[Fact, ...] = field(default_factory=tuple)


def score_text(text: str, facts: Mapping[str, Any]) -> OwlScore:
    """Score one generated text against its scene's ``facts``."""
    if "place" not in facts and "objects" not in facts:
        raise ValueError(f"facts need 'place' and/or 'objects' keys, got {sorted(facts)}")
    stated = extract_facts(text)
    truth = [is_true(f, facts) for f in stated]
    targets = scene_facts(facts)
    hits = sum(_mentioned(t, [f for f, ok in zip(stated, truth) if ok]) for t in targets)
    return OwlScore(correctness=sum(truth) / len(stated) if stated else None,
                    richness=hits / len(targets) if targets else None,
                    words=word_count(text), distinct2=distinct_2(text), n_stated=len(stated), n_true=sum(truth),
                    hallucinated=tuple(f for f, ok in zip(stated, truth) if not ok))


def owleval_frame(texts: Sequence[str], facts: Sequence[Mapping[str, Any]], *,
                  item_ids: Sequence[Any] | None = None) -> pd.DataFrame:
    """Per item (the ``owleval.csv`` of an eval folder): correctness, richness, words, distinct2, counts."""
    if len(texts) != len(facts):
        raise ValueError(f"{len(texts)} texts for {len(facts)} scenes")
    ids = list(item_ids) if item_ids is not None else list(range(len(texts)))
    rows = []
    for item, text, scene in zip(ids, texts, facts):
        s = score_text(text, scene)
        rows.append({"item": item, "correctness": s.correctness, "richness": s.richness, "words": s.words,
                     "distinct2": s.distinct2, "n_stated": s.n_stated, "n_hallucinated": len(s.hallucinated)})
    return pd.DataFrame(rows)


def _mean(values: list[float | None]) -> float:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.fmean(present) if present else math.nan


def aggregate(scores_by_model: Mapping[str, Sequence[OwlScore]]) -> pd.DataFrame:
    """Per model: mean correctness (over texts stating a fact), ``n_undefined`` texts stating none,
    mean richness, words and distinct-2."""
    rows = []
    for model, scores in scores_by_model.items():
        rows.append({"model": model, "n": len(scores), "correctness": _mean([s.correctness for s in scores]),
                     "n_undefined": sum(s.correctness is None for s in scores),
                     "richness": _mean([s.richness for s in scores]), "words": _mean([s.words for s in scores]),
                     "distinct2": _mean([s.distinct2 for s in scores])})
    return pd.DataFrame(rows).set_index("model")
