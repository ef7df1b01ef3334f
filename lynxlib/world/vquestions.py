"""Video question types: action yes/no, what an object does, event order, attributes, captions.

Same contract as :mod:`lynxlib.world.questions`: ``ask(rng, clip, vocab, answer)`` returns a
:class:`Question` whose answer is read off the clip's events, or ``None`` when the clip cannot carry
that answer.
"""
from __future__ import annotations

from lynxlib.world.language import ACTION_BASE, clause, pick, subject, track_name, video_caption
from lynxlib.world.questions import NO_ONE_WORD, OPEN_ENDED, YES_NO, QType, Question, refs
from lynxlib.world.scene import WorldVocab
from lynxlib.world.video import PAIR_ACTIONS, Clip, Event
from lynxlib.world.vocab import ACTION_PHRASES, VIDEO_ACTIONS

SINGLE_ACTIONS = tuple(a for a in VIDEO_ACTIONS if a not in PAIR_ACTIONS)
STAYS = "stays still"
DOES = {**{a: ACTION_PHRASES[a] for a in SINGLE_ACTIONS}, "static": STAYS}  # what_action answers
DOES_REFS = {"move_left": ("moves left", "left", "it moves to the left"),
             "move_right": ("moves right", "right", "it moves to the right"),
             "move_up": ("up", "it moves up"), "move_down": ("down", "it moves down"),
             "appear": ("it appears", "appear"), "disappear": ("it disappears", "disappear", "vanishes"),
             "static": ("nothing", "it stays still", "stays", "does not move")}


def _verb_slots(clip: Clip, event: Event) -> dict[str, str]:
    aux = "Does" if len(event.subjects) == 1 else "Do"
    return {"Aux": aux, "aux": aux.lower(), "subject": subject(clip, event),
            "verb": ACTION_BASE[event.action], "verb_finite": clause(clip, event)[len(subject(clip, event)) + 1:]}


def _span(event: Event) -> str:
    return f"from frame {event.start + 1} to frame {event.end + 1}"


def _what_happens(clip: Clip, track: int) -> tuple[str, Event | None]:
    """(action key of DOES, its event) for one track; 'static' when it takes part in no event."""
    for e in clip.events:
        if track in e.subjects:
            return e.action, e
    return "static", None


def _false_statements(clip: Clip) -> list[Event]:
    """Action claims that did not happen: a track doing another single action, or a wrong pair action."""
    happened = {(e.action, e.subjects) for e in clip.events}
    claims = [Event(a, (i,), 0, clip.frames - 1) for i in range(len(clip.tracks)) for a in SINGLE_ACTIONS
              if (a, (i,)) not in happened]
    for e in clip.events:
        if e.action in PAIR_ACTIONS:
            other = PAIR_ACTIONS[1 - PAIR_ACTIONS.index(e.action)]
            claims.append(Event(other, e.subjects, e.start, e.end))
    return claims


def _truth(clip: Clip, track: int) -> str:
    """What a track really does, as a clause: 'the red circle moves to the left', '... stays still'."""
    _, event = _what_happens(clip, track)
    return clause(clip, event) if event else f"the {track_name(clip, track)} {STAYS}"


def ask_action_yn(rng, clip: Clip, v: WorldVocab, answer: str | None) -> Question:
    want = answer or pick(rng, YES_NO)
    if want == "yes":
        e = pick(rng, clip.events)
        return Question(_verb_slots(clip, e), "yes", f"{clause(clip, e)} {_span(e)}", refs("yes"))
    claim = pick(rng, _false_statements(clip))
    truths = dict.fromkeys(_truth(clip, i) for i in claim.subjects)
    return Question(_verb_slots(clip, claim), "no", " and ".join(truths), refs("no"))


def ask_what_action(rng, clip: Clip, v: WorldVocab, answer: str | None) -> Question | None:
    cands = []
    for i in range(len(clip.tracks)):
        action, event = _what_happens(clip, i)
        if action in DOES and answer in (None, DOES[action]):
            cands.append((i, action, event))
    if not cands:
        return None
    i, action, event = pick(rng, cands)
    reason = f"the {track_name(clip, i)} {DOES[action]} {_span(event)}" if event else \
        f"the {track_name(clip, i)} is in the same place in every frame"
    return Question({"obj": track_name(clip, i)}, DOES[action], reason, refs(DOES[action], *DOES_REFS[action]))


def ask_order(rng, clip: Clip, v: WorldVocab, answer: str | None) -> Question | None:
    if len(clip.events) < 2:
        return None
    first, second = sorted(clip.events, key=lambda e: e.start)[:2]
    want = answer or pick(rng, YES_NO)
    asked, other = (first, second) if want == "yes" else (second, first)
    slots = {**_verb_slots(clip, asked), "clause": clause(clip, other)}
    return Question(slots, want, f"first {clause(clip, first)}, then {clause(clip, second)}", refs(want))


def ask_video_colour(rng, clip: Clip, v: WorldVocab, answer: str | None) -> Question | None:
    cands = [e for e in clip.events if len(e.subjects) == 1 and answer in (None, clip.tracks[e.subjects[0]].colour)]
    if not cands:
        return None
    e = pick(rng, cands)
    t = clip.tracks[e.subjects[0]]
    finite = _verb_slots(clip, e)["verb_finite"]
    return Question({"shape": t.shape, "verb_finite": finite}, t.colour,
                    f"the {t.shape} that {finite} is {t.colour}", refs(t.colour))


def ask_video_caption(rng, clip: Clip, v: WorldVocab, answer: str | None) -> Question:
    caption = video_caption(clip, rng)
    return Question({}, caption, "", (caption,))


VIDEO_QTYPES: dict[str, QType] = {q.name: q for q in (
    QType("action_yn", ask_action_yn, lambda v: YES_NO),
    QType("what_action", ask_what_action, lambda v: tuple(DOES.values()), styles=NO_ONE_WORD),
    QType("order", ask_order, lambda v: YES_NO),
    QType("video_colour", ask_video_colour, lambda v: v.colours),
    QType("video_caption", ask_video_caption, None, styles=OPEN_ENDED),
)}
