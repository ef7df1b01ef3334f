"""The world's catalogues: every noun, adjective and answer the world can produce.

This is the shared vocabulary: the renderer draws these, the language module says them, the rule
judge and the OwlEval-mini scorer recognise them. Configs take prefixes of each list
(``WorldConfig.num_places`` etc.), so a smaller world is a subset of the bigger one.
"""
from __future__ import annotations

# Places: each is a distinct background texture (colour family + pattern).
PLACES: tuple[str, ...] = (
    "beach", "forest", "kitchen", "street", "desert", "snowfield", "office", "garden",
    "library", "harbor",
)

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "diamond", "heart", "ring")
SHAPE_PLURALS: dict[str, str] = {s: s + "s" for s in SHAPES} | {"cross": "crosses"}

# Saturated object colours (RGB). Backgrounds use muted tones so no place is confused with a colour.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (40, 70, 230),
    "yellow": (240, 220, 20),
    "purple": (150, 40, 200),
    "orange": (245, 130, 20),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
    "pink": (250, 120, 190),
    "cyan": (30, 220, 230),
}

SIZES: tuple[str, ...] = ("small", "large")

NUMBER_WORDS: tuple[str, ...] = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
)

# Words rendered as text on signs, book covers and posters (OCR questions). Three letters each,
# drawn from a compact alphabet so every letter is seen often enough to be learned.
WORDS: tuple[str, ...] = (
    "cat", "dog", "sun", "map", "cup", "hat", "box", "pen", "bus", "car", "egg", "fox",
    "jam", "key", "owl", "pig", "rat", "toy", "van", "web", "zoo", "ink", "mud", "net",
)
TEXT_KINDS: tuple[str, ...] = ("sign", "cover", "poster")

# Still-image motion (the "Action" category): an object drawn with a motion trail behind it.
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")

# Video actions over 5 frames.
VIDEO_ACTIONS: tuple[str, ...] = (
    "move_left", "move_right", "move_up", "move_down", "approach", "separate", "appear", "disappear",
)
ACTION_PHRASES: dict[str, str] = {
    "move_left": "moves to the left",
    "move_right": "moves to the right",
    "move_up": "moves up",
    "move_down": "moves down",
    "approach": "move toward each other",
    "separate": "move apart",
    "appear": "appears",
    "disappear": "disappears",
}

YES_NO: tuple[str, ...] = ("yes", "no")

# Synonyms the rule judge accepts as the same answer.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "square": ("box shape", "quadrilateral"),
    "circle": ("round", "disc", "disk"),
    "snowfield": ("snow", "snowy field"),
    "harbor": ("harbour", "port"),
    "purple": ("violet",),
    "grey": ("gray",),
    "street": ("road",),
    "yes": ("yeah", "correct", "true"),
    "no": ("nope", "false", "incorrect"),
}


def number_word(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def plural(shape: str, n: int) -> str:
    return shape if n == 1 else SHAPE_PLURALS[shape]
