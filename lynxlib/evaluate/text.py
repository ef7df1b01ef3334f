"""Text normalisation shared by the rule judge, the OwlEval-mini scorer and the instruction metrics.

Pure functions, no state: lower-casing, punctuation and article removal, number words to digits,
shape plurals to singulars, the world's synonyms to their canonical word, and the leading yes/no
verdict of an answer.
"""
from __future__ import annotations

import re

from lynxlib.world.vocab import NUMBER_WORDS, SHAPE_PLURALS, SYNONYMS

ARTICLES = frozenset({"a", "an", "the"})
YES_WORDS = frozenset({"yes", *SYNONYMS.get("yes", ())})
NO_WORDS = frozenset({"no", *SYNONYMS.get("no", ())})

_NUMBER_TO_DIGIT = {word: str(i) for i, word in enumerate(NUMBER_WORDS)}
_SINGULAR = {plural: shape for shape, plural in SHAPE_PLURALS.items()}
# Punctuation becomes a space; a '.' or ',' between two digits (2.5, 1,000) is kept.
_PUNCT = re.compile(r"(?<!\d)[.,]|[.,](?!\d)|[^\w\s.,]|_")
_WORD = re.compile(r"[^\W_]+(?:[.,]\d+)*")


def _synonym_phrases() -> list[tuple[tuple[str, ...], str]]:
    """(phrase tokens, canonical) for every non-yes/no synonym, longest phrase first."""
    pairs = []
    for canonical, alternatives in SYNONYMS.items():
        if canonical in ("yes", "no"):
            continue
        for alt in alternatives:
            pairs.append((tuple(alt.split()), canonical))
    return sorted(pairs, key=lambda pair: -len(pair[0]))


_PHRASES = _synonym_phrases()


def normalise(text: str) -> str:
    """Lower-case, punctuation to spaces, articles dropped, whitespace collapsed."""
    text = _PUNCT.sub(" ", str(text).lower().replace("’", "'"))
    return " ".join(word for word in text.split() if word not in ARTICLES)


def words(text: str) -> list[str]:
    """Word tokens of ``text`` (lower-cased, punctuation dropped, articles kept)."""
    return _WORD.findall(str(text).lower())


def word_count(text: str) -> int:
    """Words in ``text``: whitespace-separated chunks holding at least one letter or digit."""
    return sum(1 for chunk in str(text).split() if any(ch.isalnum() for ch in chunk))


def _replace_phrases(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for phrase, canonical in _PHRASES:
            if tuple(tokens[i:i + len(phrase)]) == phrase:
                out.append(canonical)
                i += len(phrase)
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


_VERTICAL = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}
_HORIZONTAL = frozenset({"left", "right"})


def _merge_corners(tokens: list[str]) -> list[str]:
    """'top left', 'upper-left', 'lower right' as one token ('top-left'): a corner is neither of its
    edges. Without it whole-phrase containment credits 'top left' wherever the answer is 'top' or 'left'."""
    out: list[str] = []
    for tok in tokens:
        if tok in _HORIZONTAL and out and out[-1] in _VERTICAL:
            out[-1] = f"{_VERTICAL[out[-1]]}-{tok}"
        else:
            out.append(tok)
    return out


def canonical_tokens(text: str, *, corners: bool = True) -> tuple[str, ...]:
    """Normalised tokens with number words as digits, shape plurals singular, synonyms canonical,
    corners one token (:func:`_merge_corners`; ``corners=False``: two, as rule-v1 read them).

    Yes/no synonyms are left alone here (``correct`` inside a sentence is not a verdict); see
    :func:`leading_verdict` for those.
    """
    tokens = [_NUMBER_TO_DIGIT.get(tok, tok) for tok in normalise(text).split()]
    tokens = [_SINGULAR.get(tok, tok) for tok in tokens]
    tokens = _replace_phrases(tokens)
    return tuple(_merge_corners(tokens) if corners else tokens)


def yes_no(word: str) -> str | None:
    """'yes' / 'no' if ``word`` (already normalised) is one of their synonyms, else None."""
    if word in YES_WORDS:
        return "yes"
    if word in NO_WORDS:
        return "no"
    return None


def leading_verdict(text: str) -> str | None:
    """The yes/no verdict an answer leads with ('Yes, there is...' -> 'yes'), else None."""
    tokens = normalise(text).split()
    return yes_no(tokens[0]) if tokens else None


def contains_phrase(tokens: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    """Whether ``phrase`` occurs in ``tokens`` as whole consecutive tokens."""
    n = len(phrase)
    if n == 0:
        return False
    return any(tokens[i:i + n] == phrase for i in range(len(tokens) - n + 1))


def bigrams(tokens: list[str]) -> list[tuple[str, str]]:
    return list(zip(tokens, tokens[1:]))


def distinct_2(text: str) -> float | None:
    """Distinct bigrams / bigrams over the word tokens; None when the text has fewer than 2 words."""
    grams = bigrams(words(text))
    return len(set(grams)) / len(grams) if grams else None
