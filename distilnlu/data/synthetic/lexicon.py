"""Shared vocabulary of the demo data: word lists, numbers in words, seeded streams.

Spoken (lower case) lists used by both the assistant utterances and the written "public"
documents, plus the small helpers they share (:func:`spoken_number`, :func:`spoken_ordinal`,
:func:`written_ordinal`, :func:`seeded_rng`).
"""

from __future__ import annotations

import random


def word_list(s: str) -> tuple[str, ...]:
    """A compact way to write a vocabulary: comma-separated values."""
    return tuple(v.strip() for v in s.split(","))


# --------------------------------------------------------------------------------------------
# Numbers in words (spoken form). Small and fast; num2words is not needed for this range.
# --------------------------------------------------------------------------------------------
ONES = word_list(
    "zero, one, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve, "
    "thirteen, fourteen, fifteen, sixteen, seventeen, eighteen, nineteen"
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ORD_ONES = word_list(
    "zeroth, first, second, third, fourth, fifth, sixth, seventh, eighth, ninth, tenth, "
    "eleventh, twelfth, thirteenth, fourteenth, fifteenth, sixteenth, seventeenth, "
    "eighteenth, nineteenth"
)


def spoken_number(n: int) -> str:
    """Cardinal number in English words, 0 <= n < 1,000,000 ("forty two")."""
    if n < 20:
        return ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return _TENS[t] + (" " + ONES[o] if o else "")
    if n < 1000:
        h, r = divmod(n, 100)
        return ONES[h] + " hundred" + (" " + spoken_number(r) if r else "")
    k, r = divmod(n, 1000)
    return spoken_number(k) + " thousand" + (" " + spoken_number(r) if r else "")


def spoken_ordinal(n: int) -> str:
    """Ordinal in words, 1 <= n < 100 ("twenty first")."""
    if n < 20:
        return _ORD_ONES[n]
    t, o = divmod(n, 10)
    if o == 0:
        return _TENS[t][:-1] + "ieth"
    return _TENS[t] + " " + _ORD_ONES[o]


def written_ordinal(n: int) -> str:
    """Written ordinal ("3rd", "11th", "22nd")."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return str(n) + {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


# --------------------------------------------------------------------------------------------
# Shared vocabulary (spoken, lower case). Written forms are derived where needed.
# --------------------------------------------------------------------------------------------
CITIES = word_list(
    "paris, london, tokyo, berlin, madrid, rome, sydney, toronto, chicago, boston, "
    "seattle, denver, dallas, houston, atlanta, phoenix, miami, dublin, amsterdam, vienna, "
    "prague, warsaw, lisbon, athens, istanbul, moscow, beijing, shanghai, seoul, bangkok, "
    "singapore, jakarta, manila, melbourne, vancouver, montreal, oslo, stockholm, "
    "helsinki, copenhagen, zurich, cairo, nairobi, lagos, mumbai, delhi, lima, bogota, "
    "santiago, new york, los angeles, san francisco, mexico city, buenos aires, cape town, "
    "hong kong, las vegas, new orleans, rio de janeiro"
)
COUNTRIES = word_list(
    "France, Japan, Brazil, Canada, Germany, Spain, Italy, Mexico, India, China, Kenya, "
    "Nigeria, Egypt, Peru, Chile, Norway, Sweden, Finland, Poland, Greece, Turkey, "
    "Portugal, Ireland, Australia, Argentina, Thailand, Vietnam, Indonesia, Morocco, "
    "Austria"
)
LOCAL_PLACES = word_list(
    "the airport, the train station, the bus station, downtown, the city center, the mall, "
    "the office, the hospital, the stadium, the university, central station, the hotel, "
    "the harbor, the museum"
)
FIRST_NAMES = word_list(
    "john, mary, sarah, david, michael, emma, olivia, james, sophia, liam, noah, ava, mia, "
    "lucas, ethan, chloe, grace, daniel, anna, maria, jose, carlos, priya, raj, wei, mei, "
    "yuki, kenji, fatima, omar, ahmed, aisha, ivan, olga, pierre, sophie, hans, greta, "
    "lars, ingrid, kofi, amara, lucy, peter, rachel, tom, kevin, laura, nina, paul"
)
RELATIVES = word_list(
    "mom, dad, grandma, grandpa, my sister, my brother, my boss, my wife, my husband"
)
LAST_NAMES = word_list(
    "Smith, Johnson, Williams, Brown, Jones, Garcia, Miller, Davis, Martinez, Lopez, "
    "Wilson, Anderson, Thomas, Taylor, Moore, Martin, Lee, Clark, Lewis, Walker, Hall, "
    "Young, King, Wright, Scott, Green, Baker, Adams, Nelson, Hill, Campbell, Mitchell, "
    "Roberts, Carter, Phillips, Evans, Turner, Torres, Parker, Collins, Edwards, Stewart, "
    "Morris, Murphy, Cook, Rogers, Morgan, Cooper, Peterson, Kim, Tanaka, Singh, Chen, "
    "Nguyen, Okafor, Novak, Rossi, Dubois, Schmidt, Larsen"
)
# Written form; the spoken form is derived (lower case, letters and spaces only).
ARTISTS_W = word_list(
    "Taylor Swift, Miles Davis, The Beatles, Adele, Beyonce, Drake, Ed Sheeran, "
    "Bruno Mars, Rihanna, Coldplay, Queen, David Bowie, Elton John, Billie Eilish, "
    "Kendrick Lamar, Bob Dylan, Johnny Cash, Dolly Parton, Frank Sinatra, Ella Fitzgerald, "
    "John Coltrane, Norah Jones, Nina Simone, The Rolling Stones, Pink Floyd, Radiohead, "
    "Arctic Monkeys, Daft Punk, Lady Gaga, Madonna, Prince, Michael Jackson, "
    "Stevie Wonder, Aretha Franklin, Whitney Houston, Shakira, Bad Bunny, Arijit Singh, "
    "Ariana Grande, Harry Styles, Dua Lipa, The Weeknd, Post Malone, Eminem, Bob Marley, "
    "Louis Armstrong, Metallica, Fleetwood Mac, Abba, Nirvana, Led Zeppelin, "
    "Kacey Musgraves, Herbie Hancock, Chet Baker"
)
SONGS_W = word_list(
    "Bohemian Rhapsody, Hey Jude, Yesterday, Imagine, Billie Jean, Thriller, Purple Rain, "
    "Shake It Off, Blank Space, Rolling in the Deep, Someone Like You, Shape of You, "
    "Thinking Out Loud, Uptown Funk, Halo, Crazy in Love, Single Ladies, Bad Guy, "
    "Ocean Eyes, Blinding Lights, Levitating, Yellow, Fix You, Clocks, Hotel California, "
    "Wonderwall, Let It Be, Respect, My Way, Fly Me to the Moon, Take Five, So What, "
    "Dancing Queen, Africa, Stairway to Heaven, Smells Like Teen Spirit, Lose Yourself, "
    "No Woman No Cry, Three Little Birds, Redemption Song, Jolene, Hallelujah, Creep, "
    "As It Was, Watermelon Sugar, Bad Romance, Poker Face, Umbrella, Diamonds, "
    "Blue in Green, Moon River, Summertime, Here Comes the Sun, Sweet Caroline, Heroes"
)


def _spoken(w: str) -> str:
    return " ".join("".join(c for c in w.lower() if c.isalpha() or c in " '").split())


ARTISTS = tuple(_spoken(a) for a in ARTISTS_W)
SONGS = tuple(_spoken(t) for t in SONGS_W)
GENRES = word_list(
    "jazz, rock, pop, hip hop, classical, country, blues, reggae, metal, folk, soul, funk, "
    "disco, techno, house, indie, punk, r and b, latin, k pop, gospel, electronic, "
    "ambient, lo fi, bluegrass, salsa, opera, grunge"
)
PLAYLISTS = word_list(
    "workout, chill, road trip, dinner party, running, study, sleep, party, focus, "
    "summer hits, throwback, morning, rainy day, coffee shop, top forty, discover weekly, "
    "date night, cleaning, happy, sad songs, christmas, eighties, nineties"
)
RADIOS = word_list(
    "bbc radio one, bbc radio two, npr, jazz fm, classic fm, kiss fm, capital fm, "
    "magic fm, bbc world service, wnyc, heart radio, radio paris, absolute radio, "
    "smooth radio, kexp, radio x, virgin radio, hot ninety seven, z one hundred, the bay, "
    "kool fm, lbc, talk sport, radio swiss jazz"
)
PODCASTS = word_list(
    "the daily, serial, radiolab, this american life, planet money, freakonomics, "
    "hardcore history, stuff you should know, ted radio hour, crime junkie, the moth, "
    "reply all, science vs, how i built this, the rest is history, up first, "
    "no such thing as a fish, conan needs a friend, the history hour, song exploder, "
    "invisibilia, hidden brain, the infinite monkey cage, criminal, "
    "ninety nine percent invisible"
)
HOUSE_PLACES = word_list(
    "kitchen, bedroom, living room, bathroom, hall, hallway, office, garage, dining room, "
    "basement, attic, kids room, guest room, porch, garden, study, nursery, laundry room, "
    "master bedroom, lounge, den, playroom"
)
COLORS = word_list(
    "red, blue, green, warm white, cool white, purple, pink, orange, yellow, soft white, "
    "daylight, warm, cool, relaxing, bright, cozy, candle light, reading, turquoise, "
    "lavender, amber, sunset"
)
DEVICES = word_list(
    "tv, television, heater, fan, air conditioner, coffee maker, kettle, smart plug, "
    "socket, space heater, dehumidifier, humidifier, air purifier, electric blanket, "
    "speaker, printer, washing machine, dishwasher, oven, ceiling fan, sprinklers, "
    "christmas tree, toaster, radiator, hot tub"
)
VACUUMS = word_list(
    "vacuum, vacuum cleaner, robot vacuum, roomba, hoover, robot, mop, cleaning robot"
)
EVENTS = word_list(
    "team meeting, dentist appointment, doctor's appointment, yoga class, soccer practice, "
    "book club, dinner with friends, parent teacher conference, job interview, haircut, "
    "piano lesson, birthday party, conference call, gym session, date night, "
    "staff meeting, performance review, standup, car service, vet appointment, "
    "lunch meeting, budget review, football game, wedding, baby shower, swim lesson, "
    "board meeting, study group, hair appointment, flight"
)
REMINDERS = word_list(
    "take my medicine, pick up the kids, go to the gym, leave for work, call the bank, "
    "water the plants, feed the cat, walk the dog, take out the trash, check the oven, "
    "start dinner, pay the rent, go to bed, move the car, catch the train"
)
LISTS = word_list(
    "shopping list, grocery list, to do list, packing list, wish list, christmas list, "
    "reading list, chores list, party list, hardware list, work list, camping list, "
    "gift list, movie list, birthday list, costco list, weekend list, school list"
)
ITEMS = word_list(
    "milk, eggs, bread, butter, apples, bananas, coffee, tea, rice, pasta, cheese, "
    "chicken, tomatoes, onions, potatoes, yogurt, cereal, orange juice, toilet paper, "
    "dish soap, batteries, light bulbs, paper towels, olive oil, sugar, flour, garlic, "
    "spinach, carrots, salmon, peanut butter, ice cream, shampoo, toothpaste, dog food, "
    "cat food, avocados, lemons, strawberries, chocolate, honey, tortillas, beans, "
    "oranges, grapes, mushrooms, bacon, sparkling water"
)
NEWS_TOPICS = word_list(
    "sports, politics, technology, business, science, health, entertainment, "
    "the stock market, the election, football, basketball, the economy, climate change, "
    "world news, local news, space exploration, movies, celebrities, crypto, travel, "
    "baseball, tennis, the olympics, education, the housing market, "
    "artificial intelligence, the world cup, fashion"
)
MEDIA = word_list(
    "bbc, cnn, the new york times, reuters, the guardian, fox news, npr, al jazeera, "
    "the washington post, sky news, the wall street journal, abc news, associated press, "
    "the economist, bloomberg, the times, espn, usa today"
)
TICKET_TRANSPORT = word_list("train, bus, coach, ferry, plane, flight, boat")
TRANSIT = word_list("train, bus, subway, tram, ferry, metro, tube, shuttle, express")
TAXIS = ("taxi", "cab", "uber", "lyft", "ride", "car")
WEATHER_VERBS = word_list("rain, snow, hail, storm, drizzle, thunder, pour, freeze")
WEATHER_ADJ = word_list(
    "sunny, cloudy, windy, cold, hot, warm, humid, foggy, freezing, rainy, snowy, stormy, "
    "chilly, nice, dry"
)
WEATHER_GEAR = word_list(
    "umbrella, jacket, coat, sunscreen, sweater, scarf, raincoat, boots, gloves, hat, sunglasses"
)
TIMEOFDAY = word_list(
    "morning, afternoon, evening, tonight, night, this morning, this afternoon, "
    "this evening, lunchtime, midday"
)
WEEKDAYS = word_list("monday, tuesday, wednesday, thursday, friday, saturday, sunday")
MONTHS = word_list(
    "january, february, march, april, may, june, july, august, september, october, "
    "november, december"
)

RELATIVE_DATES = word_list(
    "today, tomorrow, tomorrow, the day after tomorrow, this weekend, next week, this week, "
    "next weekend, next month, tonight"
)
SPECIAL_DATES = word_list(
    "in two days, in three days, in a week, christmas eve, new year's day, valentine's day, "
    "my birthday"
)
AMOUNT_WORDS = word_list(
    "a little, a bit, a lot, a notch, to the max, slightly, all the way, halfway, to the minimum"
)


def seeded_rng(kind: str, seed: int) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`: stable across runs and platforms.
    return random.Random(f"distilnlu.synthetic.{kind}.{seed}")
