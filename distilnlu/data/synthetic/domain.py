"""Spoken assistant utterances: slot-value generators, template rendering, labeled examples."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from distilnlu.data.synthetic.lexicon import (
    AMOUNT_WORDS,
    ARTISTS,
    CITIES,
    COLORS,
    DEVICES,
    EVENTS,
    FIRST_NAMES,
    GENRES,
    HOUSE_PLACES,
    ITEMS,
    LAST_NAMES,
    LISTS,
    LOCAL_PLACES,
    MEDIA,
    MONTHS,
    NEWS_TOPICS,
    ONES,
    PLAYLISTS,
    PODCASTS,
    RADIOS,
    RELATIVE_DATES,
    RELATIVES,
    REMINDERS,
    SONGS,
    SPECIAL_DATES,
    TAXIS,
    TICKET_TRANSPORT,
    TIMEOFDAY,
    TRANSIT,
    VACUUMS,
    WEATHER_ADJ,
    WEATHER_GEAR,
    WEATHER_VERBS,
    WEEKDAYS,
    seeded_rng,
    spoken_number,
    spoken_ordinal,
    word_list,
)
from distilnlu.data.synthetic.templates import (
    AMBIGUOUS_PAIRS,
    INTENT_WEIGHTS,
    INTENTS,
    TEMPLATES,
    scenario_of,
)

#: Share of labeled/domain utterances drawn from a phrasing shared by a confusable intent pair.
AMBIGUOUS_RATE = 0.03

# --------------------------------------------------------------------------------------------
# Spoken slot-value generators. Each returns a value, or (literal_prefix, value) when the value
# needs a preposition that is not part of the slot ("on" + "friday").
# --------------------------------------------------------------------------------------------
Gen = Callable[[random.Random], "str | tuple[str, str]"]


def _pick(values: tuple[str, ...] | list[str]) -> Gen:
    def gen(rng: random.Random) -> str:
        return values[int(rng.random() * len(values))]

    return gen


def _g_time(rng: random.Random) -> str:
    r = rng.random()
    h = rng.randint(1, 12)
    if r < 0.05:
        return "noon" if rng.random() < 0.5 else "midnight"
    if r < 0.15:
        form = rng.choice(("half past", "quarter past", "quarter to", "ten past", "twenty to"))
        return f"{form} {ONES[h]}"
    m = (
        rng.choice((0, 0, 0, 0, 15, 30, 30, 45, 10, 20, 40, 50, 5))
        if r < 0.9
        else rng.randint(1, 59)
    )
    base = ONES[h]
    if m:
        base += " oh " + ONES[m] if m < 10 else " " + spoken_number(m)
    s = rng.random()
    if s < 0.35:
        return base + " am"
    if s < 0.65:
        return base + " pm"
    if s < 0.72 and 5 <= h <= 11:
        return base + " in the morning"
    if s < 0.78 and 4 <= h <= 10:
        return base + " in the evening"
    if s < 0.81 and 8 <= h <= 11:
        return base + " at night"
    if m == 0 and s < 0.9:
        return base + " o'clock"
    return base


def _g_reltime(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.15:
        return rng.choice(("in an hour", "in half an hour", "an hour from now", "in a minute"))
    if r < 0.6:
        m = rng.choice((5, 10, 15, 20, 25, 30, 40, 45, 50, 90))
        return rng.choice(("in {} minutes", "{} minutes from now")).format(spoken_number(m))
    hrs = rng.randint(2, 9)
    return rng.choice(("in {} hours", "{} hours from now")).format(ONES[hrs])


def _g_duration(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.2:
        return rng.choice(("an hour", "a minute", "half an hour", "a while", "the night"))
    if r < 0.75:
        return spoken_number(rng.choice((5, 10, 15, 20, 30, 45))) + " minutes"
    return spoken_number(rng.choice((10, 20, 30, 45))) + " seconds"


def _g_date(rng: random.Random) -> str | tuple[str, str]:
    r = rng.random()
    if r < 0.3:
        return rng.choice(RELATIVE_DATES)
    day = rng.choice(WEEKDAYS)
    if r < 0.45:
        return ("on", day)
    if r < 0.6:
        return rng.choice(("next ", "this ", "", "")) + day
    d = rng.randint(1, 31)
    month = rng.choice(MONTHS)
    if r < 0.72:
        return ("on", f"the {spoken_ordinal(d)} of {month}")
    if r < 0.84:
        return f"{month} {spoken_ordinal(d)}"
    if r < 0.9:
        return ("on", f"the {spoken_ordinal(d)}")
    special = rng.choice(SPECIAL_DATES)
    return special if special.startswith("in ") else ("on", special)


def _g_person(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.15:
        return rng.choice(RELATIVES)
    first = rng.choice(FIRST_NAMES)
    if r < 0.3:
        return first + " " + rng.choice(LAST_NAMES).lower()
    return first


def _g_place(rng: random.Random) -> str:
    return rng.choice(CITIES)


def _g_change_amount(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return f"to {spoken_number(rng.choice(range(10, 101, 10)))} percent"
    if r < 0.7:
        return f"by {spoken_number(rng.choice((5, 10, 15, 20, 25, 30, 50)))} percent"
    return rng.choice(AMOUNT_WORDS)


def _g_volume_amount(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return f"to {ONES[rng.randint(1, 10)]}"
    if r < 0.6:
        return f"by {spoken_number(rng.choice((5, 10, 20, 25)))} percent"
    return rng.choice(AMOUNT_WORDS[:6])


def _g_episode(rng: random.Random) -> str:
    return spoken_number(rng.randint(1, 120))


_SLOT_GENS: dict[str, Gen] = {
    "time": _g_time,
    "reltime": _g_reltime,
    "duration": _g_duration,
    "date": _g_date,
    "timeofday": _pick(TIMEOFDAY),
    "weekday": _pick(WEEKDAYS),
    "place_name": _g_place,
    "local_place": _pick(LOCAL_PLACES),
    "artist_name": _pick(ARTISTS),
    "song_name": _pick(SONGS),
    "music_genre": _pick(GENRES),
    "playlist_name": _pick(PLAYLISTS),
    "radio_name": _pick(RADIOS),
    "podcast_name": _pick(PODCASTS),
    "device_type": _pick(DEVICES),
    "vacuum": _pick(VACUUMS),
    "house_place": _pick(HOUSE_PLACES),
    "color_type": _pick(COLORS),
    "change_amount": _g_change_amount,
    "volume_amount": _g_volume_amount,
    "person": _g_person,
    "event_name": _pick(EVENTS),
    "reminder": _pick(REMINDERS),
    "list_name": _pick(LISTS),
    "item": _pick(ITEMS),
    "news_topic": _pick(NEWS_TOPICS),
    "media_type": _pick(MEDIA),
    "transport_type": _pick(TRANSIT),
    "ticket_transport": _pick(TICKET_TRANSPORT),
    "taxi": _pick(TAXIS),
    "weather_descriptor": _pick(WEATHER_ADJ),
    "weather_verb": _pick(WEATHER_VERBS),
    "weather_gear": _pick(WEATHER_GEAR),
    "episode": _g_episode,
}

# --------------------------------------------------------------------------------------------
# Template compilation and rendering.
# Compiled sequence: list of items; str = literal words, list = alternatives (each a sequence),
# tuple = (slot_label, generator).
# --------------------------------------------------------------------------------------------
_Seq = list[Any]


def _compile(template: str) -> _Seq:
    pos = 0
    n = len(template)

    def seq() -> _Seq:
        nonlocal pos
        items: _Seq = []
        buf: list[str] = []

        def flush() -> None:
            words = "".join(buf).split()
            if words:
                items.append(" ".join(words))
            buf.clear()

        while pos < n:
            c = template[pos]
            if c in "|)":
                break
            if c == "(":
                flush()
                pos += 1
                alts = [seq()]
                while pos < n and template[pos] == "|":
                    pos += 1
                    alts.append(seq())
                if pos >= n or template[pos] != ")":
                    raise ValueError(f"unbalanced '(' in template {template!r}")
                pos += 1
                items.append(alts)
            elif c == "{":
                flush()
                end = template.index("}", pos)
                spec = template[pos + 1 : end]
                label, _, gen_name = spec.partition("=")
                gen = _SLOT_GENS.get(gen_name or label)
                if gen is None:
                    raise ValueError(f"no generator for slot {spec!r} in template {template!r}")
                items.append((label, gen))
                pos = end + 1
            else:
                buf.append(c)
                pos += 1
        flush()
        return items

    out = seq()
    if pos != n:
        raise ValueError(f"unbalanced ')' or '|' in template {template!r}")
    return out


def _compile_all(templates: tuple[str, ...]) -> list[tuple[bool, _Seq]]:
    return [(t.startswith("!"), _compile(t.lstrip("!"))) for t in templates]


_COMPILED: dict[str, list[tuple[bool, _Seq]]] = {
    intent: _compile_all(ts) for intent, ts in TEMPLATES.items()
}
_COMPILED_AMBIGUOUS: list[tuple[tuple[str, str], list[tuple[bool, _Seq]]]] = [
    (pair, _compile_all(ts)) for pair, ts in AMBIGUOUS_PAIRS.items()
]
_INTENT_CUM: list[float] = []
_acc = 0.0
for _i in INTENTS:
    _acc += INTENT_WEIGHTS[_i]
    _INTENT_CUM.append(_acc)
_INTENT_TOTAL = _acc
del _acc, _i


def _walk(seq: _Seq) -> Iterator[tuple[str, Gen]]:
    for it in seq:
        if isinstance(it, list):
            for alt in it:
                yield from _walk(alt)
        elif isinstance(it, tuple):
            yield it


SLOT_TYPES: tuple[str, ...] = tuple(
    sorted(
        {
            label
            for compiled in [*_COMPILED.values(), *(c for _, c in _COMPILED_AMBIGUOUS)]
            for _, seq in compiled
            for label, _ in _walk(seq)
            if label
        }
    )
)


_PREPOSITIONS = frozenset({"for", "on", "at", "by", "in", "to", "from", "until"})


def _render(seq: _Seq, rng: random.Random, out: list[tuple[str, str | None]]) -> None:
    for it in seq:
        cls = it.__class__
        if cls is str:
            out.append((it, None))
        elif cls is list:
            _render(it[int(rng.random() * len(it))], rng, out)
        else:
            label, gen = it
            value = gen(rng)
            if value.__class__ is tuple:
                # ("on", "friday"): keep the preposition unless one precedes ("for friday")
                prev = out[-1] if out else None
                if (
                    prev is None
                    or prev[1] is not None
                    or prev[0].rpartition(" ")[2] not in _PREPOSITIONS
                ):
                    out.append((value[0], None))
                value = value[1]
            out.append((value, label or None))


_WAKE = word_list("olly, olly, hey olly, hey, okay, ok olly, alright")  # "olly" twice: weight
_POLITE = word_list(
    "please, can you, could you, would you, can you please, could you please, "
    "i want you to, i need you to, i'd like you to, would you please, go ahead and"
)
_SUFFIX_ANY = ("please", "thanks", "thank you", "olly", "olly please")
_SUFFIX_IMP = word_list("for me, now, right now, please, thanks, olly, when you can")
_FILLERS = ("uh", "um", "er", "hmm", "uhm", "like")


_VOWELS = frozenset("aeiou")


def _fix_articles(chunks: list[tuple[str, str | None]]) -> None:
    """'a' / 'an' agreeing with the next word ("an uber", "a book club"); literal chunks only."""
    for i in range(len(chunks) - 1):
        text, label = chunks[i]
        if label is not None or not (
            text == "a" or text == "an" or text[-2:] == " a" or text[-3:] == " an"
        ):
            continue
        head, _, article = text.rpartition(" ")
        want = "an" if chunks[i + 1][0][0] in _VOWELS else "a"
        if article != want:
            chunks[i] = (f"{head} {want}" if head else want, None)


def _utterance(
    rng: random.Random,
) -> tuple[list[tuple[str, str | None]], str, bool]:
    """One utterance as chunks (text, slot label or None), its intent, and whether ambiguous."""
    rand = rng.random
    if rand() < AMBIGUOUS_RATE:
        pair, compiled = _COMPILED_AMBIGUOUS[int(rand() * len(_COMPILED_AMBIGUOUS))]
        intent = pair[0] if rand() < 0.5 else pair[1]
        ambiguous = True
    else:
        x = rand() * _INTENT_TOTAL
        k = 0
        while _INTENT_CUM[k] < x:
            k += 1
        intent = INTENTS[k]
        compiled = _COMPILED[intent]
        ambiguous = False
    imperative, seq = compiled[int(rand() * len(compiled))]
    chunks: list[tuple[str, str | None]] = []
    _render(seq, rng, chunks)
    _fix_articles(chunks)

    if imperative and rand() < 0.25:
        chunks.insert(0, (_POLITE[int(rand() * len(_POLITE))], None))
    if rand() < 0.12:
        chunks.insert(0, (_WAKE[int(rand() * len(_WAKE))], None))
    if rand() < 0.12:
        pool = _SUFFIX_IMP if imperative else _SUFFIX_ANY
        chunks.append((pool[int(rand() * len(pool))], None))

    r = rand()
    if r < 0.05:  # filler word at a chunk boundary
        chunks.insert(
            int(rand() * (len(chunks) + 1)), (_FILLERS[int(rand() * len(_FILLERS))], None)
        )
    elif r < 0.08:  # a repeated word ("set set an alarm"), never inside a slot value
        literal = [i for i, (_, lab) in enumerate(chunks) if lab is None]
        if literal:
            i = literal[int(rand() * len(literal))]
            words = chunks[i][0].split(" ")
            j = int(rand() * len(words))
            words.insert(j, words[j])
            chunks[i] = (" ".join(words), None)
    return chunks, intent, ambiguous


def _join(chunks: list[tuple[str, str | None]]) -> tuple[str, list[dict[str, Any]]]:
    parts: list[str] = []
    slots: list[dict[str, Any]] = []
    pos = 0
    for text, label in chunks:
        if parts:
            pos += 1
        if label is not None:
            slots.append({"start": pos, "end": pos + len(text), "type": label})
        parts.append(text)
        pos += len(text)
    return " ".join(parts), slots


def iter_labeled(seed: int) -> Iterator[tuple[dict[str, Any], bool]]:
    """Endless labeled examples with an "ambiguous" flag (True for confusable-pair phrasings)."""
    rng = seeded_rng("labeled", seed)
    while True:
        chunks, intent, ambiguous = _utterance(rng)
        text, slots = _join(chunks)
        yield (
            {"text": text, "intent": intent, "scenario": scenario_of(intent), "slots": slots},
            ambiguous,
        )


def iter_domain(seed: int) -> Iterator[str]:
    rng = seeded_rng("domain", seed)
    while True:
        chunks, _, _ = _utterance(rng)
        yield " ".join(c[0] for c in chunks)
