"""Written-form "public" documents (encyclopedic / news sentences with digits and dates)."""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterator

from distilnlu.data.synthetic.lexicon import (
    ARTISTS_W,
    CITIES,
    COUNTRIES,
    EVENTS,
    FIRST_NAMES,
    GENRES,
    HOUSE_PLACES,
    LAST_NAMES,
    MEDIA,
    MONTHS,
    NEWS_TOPICS,
    PODCASTS,
    SONGS_W,
    WEEKDAYS,
    seeded_rng,
    word_list,
    written_ordinal,
)

_MONTHS_W = tuple(x.capitalize() for x in MONTHS)
_WEEKDAYS_W = tuple(x.capitalize() for x in WEEKDAYS)
_CITIES_W = tuple(" ".join(w.capitalize() for w in c.split()) for c in CITIES)
_FOODS = word_list(
    "bread, rice, pasta, cheese, coffee, tea, chocolate, olive oil, honey, potatoes, "
    "tomatoes, salmon, beans, noodles, dumplings, paella, sushi, curry, tortillas, yogurt, "
    "butter, eggs, apples, bananas, lemons, garlic, onions"
)
_PROFESSIONS = word_list(
    "painter, novelist, physicist, chemist, architect, engineer, journalist, composer, "
    "pianist, singer, athlete, economist, historian, politician, chef, photographer, "
    "film director, botanist, mathematician, poet, actor, runner"
)
_SUBJECTS = word_list(
    "medicine, law, economics, physics, music, history, architecture, biology, philosophy, "
    "engineering, literature, astronomy, agriculture, climate science"
)
_NATIONALITIES = word_list(
    "French, Japanese, Brazilian, Canadian, German, Spanish, Italian, Mexican, Indian, "
    "Chinese, Kenyan, Nigerian, Egyptian, Swedish, Irish, Australian, American, British, "
    "Polish, Greek"
)
_COMPANIES = word_list(
    "Northwind, Contoso, Globex, Initech, Umbrella Foods, Acme, Stark Industries, "
    "Wayne Enterprises, Blue Harbor Bank, Redwood Energy, Helios Air, Polar Telecom, "
    "Summit Motors, Orchid Pharma, Vertex Media"
)
_FESTIVALS = word_list(
    "Jazz, Film, Food, Book, Music, Arts, Science, Wine, Folk, Light, Flower, Comedy"
)
_INSTITUTIONS = ("Treaty", "Accord", "Convention", "Charter", "Agreement", "Declaration")
_MEDIA_W = tuple(
    " ".join(
        w.upper() if w in {"bbc", "cnn", "npr", "abc", "espn", "usa"} else w.capitalize()
        for w in m.split()
    )
    for m in MEDIA
)
_WEATHER_NOUNS = word_list(
    "rain, snow, hail, fog, sunshine, wind, thunderstorms, frost, drizzle, heat"
)


def _w_date(rng: random.Random) -> str:
    return f"{rng.choice(_MONTHS_W)} {rng.randint(1, 28)}, {rng.randint(1890, 2024)}"


def _w_time(rng: random.Random) -> str:
    h = rng.randint(1, 12)
    ampm = "am" if rng.random() < 0.5 else "pm"
    r = rng.random()
    if r < 0.6:
        return f"{h}:{rng.choice((0, 15, 30, 45, 10, 20, 40, 50)):02d} {ampm}"
    if r < 0.9:
        return f"{h} {ampm}"
    return f"{h}:{rng.randint(0, 59):02d}"


def _w_pct(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return f"{rng.randint(1, 99)}%"
    if r < 0.8:
        return f"{rng.randint(0, 40)}.{rng.randint(1, 9)}%"
    return f"{rng.randint(2, 90)} percent"


def _w_price(rng: random.Random) -> str:
    cur = rng.choice(("$", "$", "$", "£", "€"))
    if rng.random() < 0.7:
        return f"{cur}{rng.randint(1, 99)}.{rng.randint(0, 99):02d}"
    return f"{cur}{rng.randint(1, 900) * 5:,}"


def _w_fullname(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES).capitalize()} {rng.choice(LAST_NAMES)}"


_PUBLIC_GENS: dict[str, Callable[[random.Random], str]] = {
    "city": lambda r: r.choice(_CITIES_W),
    "country": lambda r: r.choice(COUNTRIES),
    "fullname": _w_fullname,
    "first": lambda r: r.choice(FIRST_NAMES).capitalize(),
    "last": lambda r: r.choice(LAST_NAMES),
    "artist": lambda r: r.choice(ARTISTS_W),
    "song": lambda r: r.choice(SONGS_W),
    "genre": lambda r: r.choice(GENRES),
    "date": _w_date,
    "year": lambda r: str(r.randint(1850, 2024)),
    "time": _w_time,
    "pct": _w_pct,
    "price": _w_price,
    "ord": lambda r: written_ordinal(r.randint(1, 40)),
    "racetime": lambda r: f"{r.randint(2, 5)}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
    "oven": lambda r: str(r.randint(16, 24) * 10),
    "mid": lambda r: f"{r.randint(120, 9_900):,}",
    "bignum": lambda r: f"{r.randint(1_000, 9_000_000):,}",
    "num": lambda r: str(r.randint(2, 95)),
    "small": lambda r: str(r.randint(2, 9)),
    "dec": lambda r: f"{r.randint(0, 35)}.{r.randint(0, 9)}",
    "weekday": lambda r: r.choice(_WEEKDAYS_W),
    "month": lambda r: r.choice(_MONTHS_W),
    "food": lambda r: r.choice(_FOODS),
    "profession": lambda r: r.choice(_PROFESSIONS),
    "subject": lambda r: r.choice(_SUBJECTS),
    "nationality": lambda r: r.choice(_NATIONALITIES),
    "company": lambda r: r.choice(_COMPANIES),
    "festival": lambda r: r.choice(_FESTIVALS),
    "treaty": lambda r: r.choice(_INSTITUTIONS),
    "weather": lambda r: r.choice(_WEATHER_NOUNS),
    "severe": lambda r: r.choice(_WEATHER_NOUNS[:4]),
    "place": lambda r: r.choice(HOUSE_PLACES),
    "event": lambda r: r.choice(EVENTS),
    "flight": lambda r: (
        f"{r.choice(string.ascii_uppercase)}{r.choice(string.ascii_uppercase)}{r.randint(10, 999)}"
    ),
    "score": lambda r: f"{r.randint(0, 5)}-{r.randint(0, 5)}",
    "podcast": lambda r: r.choice(PODCASTS).title(),
    "media": lambda r: r.choice(_MEDIA_W),
    "topic": lambda r: r.choice(NEWS_TOPICS),
}

_PUBLIC_TEMPLATES = (
    "{city} recorded {dec} mm of {weather} on {date}, the highest total since {year}.",
    "On {date}, temperatures in {city} reached {num} degrees, about {pct} above the seasonal "
    "average.",
    '{artist} released the single "{song}" in {year}; it sold {bignum} copies in its first week.',
    "The {ord} {city} {festival} Festival opened on {weekday}, {date}, at {time}.",
    "{fullname} (born {date}) is a {nationality} {profession} who studied {subject} in {city}.",
    "Shares of {company} rose {pct} to {price} on {weekday} after quarterly revenue of "
    "{mid} million.",
    "The {city} Symphony will perform at {time} on {weekday}; tickets start at {price}.",
    "A kilo of {food} in {city} cost {price} in {year}, compared with {price2} today.",
    "{fullname}, a {profession} from {city}, finished {ord} in the {city2} Marathon with a time "
    "of {racetime}.",
    "Heavy {severe} hit {city} and {city2} on {weekday}, closing {num} schools and delaying "
    "{num2} flights.",
    "According to the {year} census, {city} had a population of {bignum}, an increase of {pct}.",
    "The {treaty} of {city} was signed on {date} by {num} countries.",
    "Rail services between {city} and {city2} resumed at {time} on {date} after a {small}-hour "
    "delay.",
    '{artist} headlined the festival on {weekday} night, playing "{song}" to a crowd of {mid}.',
    "Unemployment in {country} fell to {pct} in {month}, the lowest level since {year}.",
    "The museum, founded in {year}, is open daily from {time} to {time2}; admission is {price}.",
    "{fullname} served as mayor of {city} from {year} to {year2}.",
    "The recipe uses {small} cups of flour, {small2} eggs and a little {food}, and bakes in {num} "
    "minutes at {oven} degrees.",
    "Average rainfall in {month} is {dec} inches, and humidity rarely exceeds {pct}.",
    "The bridge, completed on {date}, is {mid} metres long and cost {price} million.",
    'In {year}, {artist} won {small} awards, including one for the song "{song}".',
    "Flight {flight} from {city} to {city2} departs at {time} and arrives at {time2}.",
    "{city} won {score} on {weekday}, moving up to {ord} place with {num} points.",
    "Consumer prices rose {pct} in the year to {month}, driven mainly by {food} and energy.",
    "The {city} Public Library holds over {bignum} volumes and was renovated in {year}.",
    "The storm brought winds of up to {num}0 km/h to {city} on {date}, leaving {bignum} homes "
    "without power.",
    "The concert on {weekday}, {month} {num}, begins at {time}; doors open at {time2}.",
    "{city} lies {num}0 km from {city2} and has a mild climate, averaging {dec} degrees in July.",
    "{first} {last} was the {ord} person to reach the summit, on {date}.",
    "Dishes made with {food} are a staple of {nationality} cooking; a serving costs {price}.",
    "Dr. {last} told reporters in {city} that {pct} of patients recovered within {num} days.",
    "The {genre} band formed in {city} in {year} and released its {ord} album on {date}.",
    "The {podcast} podcast passed {bignum} downloads in {month}, a rise of {pct}.",
    "{media} reported on {weekday} that spending on {topic} grew by {pct} in {year}.",
    "The forecast for {city} calls for {weather} on {weekday}, with a high of {num} degrees and a "
    "low of {small}.",
    "The {event} is scheduled for {weekday}, {date}, at {time} in the {place} of the town hall.",
    "Tickets for the {ord} edition cost {price}, and {pct} of them sold out within {small} hours.",
    '{artist}\'s cover of "{song}" reached number {small} on the charts on {date}.',
    "The {company} plant in {city} employs {mid} people and opened on {date}.",
    "Born in {city} in {year}, {fullname} moved to {country} at the age of {num}.",
)


def _compile_public(template: str) -> list[tuple[str, Callable[[random.Random], str] | None]]:
    parts: list[tuple[str, Callable[[random.Random], str] | None]] = []
    for literal, field, _, _ in string.Formatter().parse(template):
        gen = None
        if field is not None:
            gen = _PUBLIC_GENS[field.rstrip("0123456789")]
        parts.append((literal, gen))
    return parts


_PUBLIC_COMPILED = [_compile_public(t) for t in _PUBLIC_TEMPLATES]


def _public_sentence(rng: random.Random) -> str:
    parts = _PUBLIC_COMPILED[int(rng.random() * len(_PUBLIC_COMPILED))]
    out = []
    for literal, gen in parts:
        out.append(literal)
        if gen is not None:
            out.append(gen(rng))
    s = "".join(out)
    return s[0].upper() + s[1:]


def iter_public(seed: int) -> Iterator[str]:
    rng = seeded_rng("public", seed)
    while True:
        r = rng.random()
        k = 1 if r < 0.4 else 2 if r < 0.8 else 3
        yield " ".join(_public_sentence(rng) for _ in range(k))
