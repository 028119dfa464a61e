"""Assistant intents: per-intent utterance templates, intent weights, confusable pairs."""

from __future__ import annotations

# --------------------------------------------------------------------------------------------
# Utterance templates. Syntax: "(a|b|)" picks one alternative (an empty one makes it optional);
# "{type}" is a slot filled by the generator of that name; "{type=gen}" labels the value `type`
# but draws it from generator `gen`; "{=gen}" inserts a generated value that is not a slot.
# A leading "!" marks an imperative, which may take a politeness prefix ("can you", "please").
# --------------------------------------------------------------------------------------------
TEMPLATES: dict[str, tuple[str, ...]] = {
    "alarm_set": (
        "!wake me (up|) at {time} (|{date})",
        "!wake me up {time=reltime}",
        "!set (an|the|my) alarm (for|at) {time} (|{date})",
        "!(set|create|make) an alarm {time=reltime}",
        "i need to (be up|get up|wake up) (at|by) {time} {date}",
        "alarm (for|at) {time} (|{date})",
        "!set an alarm (for|at) {time} to {event_name=reminder}",
        "!(set|put) (an|my) alarm for {date} (at|) {time}",
        "!(get|wake) me up (early|) {date} at {time}",
        "i want an alarm (at|for) {time} every {date=weekday}",
    ),
    "alarm_query": (
        "what time is my alarm (set for|) (|{date})",
        "(what|which) alarms do i have (|set) (|{date})",
        "!(show|list|tell) me my alarms (|for {date})",
        "is there an alarm (set|) for {time} (|{date})",
        "do i have (any|an) (alarms|alarm) (set|) (for|) {date}",
        "when does my (next|) alarm go off",
        "(how many|what) alarms (have i set|are set) (|for {date})",
        "did i set an alarm for {time}",
        "what's my {timeofday} alarm",
    ),
    "alarm_remove": (
        "!(cancel|delete|remove|turn off) (my|the) alarm (for|at) {time} (|{date})",
        "!(cancel|delete|remove|clear) all (my|the|) alarms (|for {date})",
        "!get rid of the {time} alarm",
        "i don't need (the|my) alarm (for|at) {time} (anymore|)",
        "!(switch|turn) off (my|the) {date} alarm",
        "!(remove|delete|cancel) my {timeofday} alarm (|for {date})",
        "!(disable|stop) (all|) (my|the) alarms",
        "no alarm (for|on) {date}",
    ),
    "weather_query": (
        "what's the weather (like|) (|in {place_name}) (|{date})",
        "is it going to {weather_descriptor=weather_verb} (|in {place_name}) (|{date})",
        "will it {weather_descriptor=weather_verb} (|in {place_name}) {date}",
        "will it be {weather_descriptor} (|in {place_name}) (|{date})",
        "(should i bring|should i wear|do i need) (a|my) {weather_descriptor=weather_gear}"
        " (|{date})",
        "!(tell|give) me the (weather|forecast) (for|in) {place_name} (|{date})",
        "how {weather_descriptor} (is it|will it be|is it going to be) (in {place_name}|outside)"
        " (|{date})",
        "what's the (temperature|forecast) (|in {place_name}|outside) (|{date}|{timeofday})",
        "weather (in|for) {place_name}",
        "(what's|how's) the weather (looking|going to be) {date}",
        "is it {weather_descriptor} (outside|out|in {place_name}) (right now|today|)",
    ),
    "play_music": (
        "!play (some|) {music_genre} (music|)",
        "!play {song_name} (|by {artist_name})",
        "!play (some|something|a song|songs|music) by {artist_name}",
        "!put on (some|) {artist_name}",
        "i want to (hear|listen to) {song_name} (|by {artist_name})",
        "i (want|would like) to (hear|listen to) (some|) {artist_name}",
        "!play the (song|track) {song_name}",
        "!play my {playlist_name} playlist",
        "!shuffle (my|the) {playlist_name} (playlist|)",
        "!play some {music_genre} (by {artist_name}|for {timeofday})",
        "i'm in the mood for (some|) {music_genre}",
        "!play (the|that) {artist_name} song {song_name}",
    ),
    "play_radio": (
        "!(turn on|put on|switch to|tune in to|tune to) {radio_name}",
        "!play (the|) {music_genre} (radio|station|radio station)",
        "!(turn|switch) on the radio",
        "!play (the|some) radio",
        "i want to listen to {radio_name} (on the radio|)",
        "!play {radio_name} (radio|on the radio|)",
        "!find (me|) a {music_genre} (station|radio station)",
        "what's on {radio_name} (right now|)",
    ),
    "play_podcasts": (
        "!play the (next|latest|last|new) episode of {podcast_name}",
        "!play (the|) {podcast_name} podcast",
        "!(resume|continue) (the podcast|) {podcast_name}",
        "i want to listen to (the|) {podcast_name} (podcast|)",
        "!play (a podcast|some podcasts|my podcasts|a podcast episode)",
        "!(start|put on) (the|) {podcast_name} (from the beginning|)",
        "!play {podcast_name} episode {=episode}",
    ),
    "audio_volume_up": (
        "!(turn|crank) (it|the volume|the music|the sound) up (|{change_amount=volume_amount})",
        "!(increase|raise|boost) the volume (|{change_amount=volume_amount})",
        "(louder|make it louder|a bit louder) (please|)",
        "i can't hear (it|the music|anything|you)",
        "volume up (|{change_amount=volume_amount})",
        "!turn up the (volume|music|sound) (|{change_amount=volume_amount})",
        "!pump up the volume",
    ),
    "audio_volume_down": (
        "!(turn|bring) (it|the volume|the music) down (|{change_amount=volume_amount})",
        "!(lower|decrease|reduce) the volume (|{change_amount=volume_amount})",
        "(it's|that's|this is) (too|way too|a bit) loud",
        "!make it (quieter|softer)",
        "volume down (|{change_amount=volume_amount})",
        "!turn down the (volume|music|sound) (|{change_amount=volume_amount})",
        "(quieter|softer) (please|)",
    ),
    "audio_volume_mute": (
        "!mute (it|the speaker|the volume|the sound|everything|yourself)",
        "(quiet|silence|be quiet|hush|shh)",
        "!(turn|switch) off the sound",
        "!mute (for|) {time=duration}",
        "!be quiet for {time=duration}",
        "!(pause|stop) (the|) (music|sound|audio) for {time=duration}",
        "go silent",
    ),
    "calendar_set": (
        "!(schedule|set up|book|add) (a|an|my) {event_name} (for|on) {date} (|at {time})",
        "!(add|put) (a|my|the) {event_name} (to|in|on) my calendar (|{date}) (|at {time})",
        "!remind me (about|of) (the|my) {event_name} {date}",
        "!(create|make) (an|a new) (event|meeting|appointment) with {person} (|{date}) at {time}",
        "i have (a|an) {event_name} {date} at {time} (|put it in my calendar)",
        "!schedule a (meeting|call|lunch) with {person} (|{date}) (|at {time})",
        "!set up a call with {person} (for|) {date}",
        "!(block|reserve) {time} {date} for (the|my|a) {event_name}",
        "!put (a|an) {event_name} with {person} on my calendar (|{date})",
    ),
    "calendar_query": (
        "what's on my (calendar|schedule|agenda) (for|) {date}",
        "(what|which) (meetings|events|appointments) do i have {date}",
        "do i have (any|) (meetings|events|plans|appointments) (|{date}|{timeofday})",
        "when is (my|the) {event_name}",
        "(am i free|am i busy|do i have time) {date} (|at {time})",
        "!(show|tell) me my (calendar|schedule) (for|) {date}",
        "when is my (meeting|lunch|call) with {person}",
        "what time is (my|the) {event_name} {date}",
        "is my {event_name} (still on|still happening) (|{date})",
    ),
    "calendar_remove": (
        "!(cancel|delete|remove|clear) (my|the) {event_name} (|{date})",
        "!(cancel|delete|remove) (my|the) (meeting|call|lunch) with {person} (|{date})",
        "!clear my (calendar|schedule) (for|) {date}",
        "!(remove|take) (the|my) {event_name} (off|from) my calendar",
        "i can't make (it to|) (the|my) {event_name} (|{date}) (please|) cancel it",
        "!(delete|remove) all (my|the) events (for|on|) {date}",
        "!call off (the|my) {event_name} (|{date})",
    ),
    "iot_hue_lighton": (
        "!(turn|switch) on the (light|lights) (|in the {house_place})",
        "!(turn|switch) the (light|lights) on (|in the {house_place})",
        "lights on (|in the {house_place})",
        "it's (too|so|really) dark in (here|the {house_place})",
        "!(i need|give me) some light (|in the {house_place})",
        "!light up the {house_place}",
        "!(turn|switch) on the {house_place} (light|lights)",
    ),
    "iot_hue_lightoff": (
        "!(turn|switch) off the (light|lights) (|in the {house_place})",
        "!(turn|switch) the (light|lights) off (|in the {house_place})",
        "lights off (|in the {house_place})",
        "!kill the lights (|in the {house_place})",
        "time to sleep (|turn off the lights)",
        "!(shut|turn) off all the lights (|in the {house_place})",
        "!(turn|switch) the {house_place} (light|lights) off",
        "it's too bright in (here|the {house_place})",
    ),
    "iot_hue_lightchange": (
        "!(change|set|make|turn) the (light|lights) (|in the {house_place}) (to|) {color_type}",
        "!(dim|brighten) the lights (|in the {house_place}) {change_amount}",
        "!set the (brightness|lights) (|in the {house_place}) {change_amount}",
        "i want {color_type} (light|lights|lighting) (|in the {house_place})",
        "!make the {house_place} (lights|) more {color_type}",
        "!(dim|brighten) the {house_place} (lights|)",
        "!change the (light|lights|lighting) color (|in the {house_place}) to {color_type}",
    ),
    "iot_cleaning": (
        "!(start|run|turn on) the {device_type=vacuum}",
        "!(vacuum|hoover|clean|mop) the {house_place} (|{date}|at {time})",
        "the {house_place} (is dirty|needs cleaning|needs to be cleaned|is a mess)",
        "!have the {device_type=vacuum} clean the {house_place}",
        "!send the {device_type=vacuum} to the {house_place}",
        "!start cleaning (|the {house_place})",
    ),
    "iot_wemo_on": (
        "!(turn|switch) on the {device_type} (|in the {house_place})",
        "!(turn|switch) the {device_type} on",
        "!(start|power on) the {device_type}",
        "i want the {device_type} on",
        "!(turn|switch) on the {house_place} {device_type}",
        "!plug in the {device_type}",
    ),
    "iot_wemo_off": (
        "!(turn|switch) off the {device_type} (|in the {house_place})",
        "!(turn|switch) the {device_type} off",
        "!(shut|power) (off|down) the {device_type}",
        "!unplug the {device_type}",
        "is the {device_type} (still|) on (|turn it off)",
        "!(turn|switch) off the {house_place} {device_type}",
    ),
    "lists_createoradd": (
        "!add {item} to (my|the) {list_name}",
        "!put {item} (|and {item}) on (my|the) {list_name}",
        "!(create|make|start) a (new|) {list_name}",
        "i need to buy {item} (|and {item})",
        "(we're|i'm) (out of|running low on) {item}",
        "!add {item} (and {item}|) to (my|the) {list_name}",
        "!(create|start) a list called {list_name}",
        "don't let me forget (to buy|) {item}",
    ),
    "lists_query": (
        "what's on (my|the) {list_name}",
        "!(read|show|tell) me (my|the) {list_name}",
        "is {item} on (my|the) {list_name}",
        "what lists do i have",
        "!(list|show) all (of|) my lists",
        "how many (items|things) are on my {list_name}",
        "do i need to buy {item}",
        "did i add {item} to (my|the) {list_name}",
    ),
    "lists_remove": (
        "!(remove|delete|take|cross) {item} (off|from) (my|the) {list_name}",
        "!(delete|clear|empty) (my|the) {list_name}",
        "i (already|just|) bought (the|) {item} (|take it off my {list_name})",
        "!(remove|delete) the last item (from|on) my {list_name}",
        "we don't need {item} anymore",
        "!get rid of my {list_name}",
    ),
    "news_query": (
        "what's the latest (news|) (on|about|in) {news_topic}",
        "!(give|tell) me the (latest|) {news_topic} news",
        "!(read|give) me the (headlines|news) (|from {media_type})",
        "what are the (top|latest|) headlines (|on {media_type})",
        "any (news|updates) (on|about) {news_topic} (|{date})",
        "!(play|read) (the|) news from {media_type}",
        "what did {media_type} say about {news_topic}",
        "what's (in|) the news (|{date})",
        "!(catch me up|update me) on {news_topic}",
    ),
    "transport_ticket": (
        "!book (a|me a) {transport_type=ticket_transport} ticket to {place_name} (|{date})"
        " (|at {time})",
        "!(get|buy|reserve) (me|) (a|two|) {transport_type=ticket_transport} (ticket|tickets)"
        " (|from {place_name}) to {place_name} (|{date})",
        "i need a {transport_type=ticket_transport} ticket to {place_name} (|{date})",
        "!(book|reserve) (me|) a (seat|ticket) on the {time} {transport_type=ticket_transport}"
        " to {place_name}",
        "!book (me|) a (flight|trip) to {place_name} (for|on|) {date}",
        "how much is a {transport_type=ticket_transport} ticket to {place_name}",
    ),
    "transport_query": (
        "when is the next {transport_type} to {place_name=local_place}",
        "what time does the (next|last|first) {transport_type} (|to {place_name=local_place})"
        " (leave|depart|arrive)",
        "is the {time} {transport_type} (|to {place_name}) (on time|delayed|running late)",
        "how long (does it|will it) take to get to {place_name=local_place} by {transport_type}",
        "are there any delays on the {transport_type} (|{date})",
        "how's the traffic (to|in|near) {place_name=local_place}",
        "which {transport_type} (goes|do i take) to {place_name=local_place}",
    ),
    "transport_taxi": (
        "!(book|get|call|order) (me|) a {transport_type=taxi} (|to {place_name=local_place})"
        " (|at {time}|{time=reltime})",
        "i need a {transport_type=taxi} (|to {place_name=local_place}) (|at {time})",
        "!send a {transport_type=taxi} to (my house|my place|{place_name=local_place})",
        "can i get a {transport_type=taxi} to {place_name=local_place}",
        "how far away is my {transport_type=taxi}",
        "!(book|schedule) a {transport_type=taxi} for {time} {date}",
    ),
}

#: Relative frequency of each intent (mildly skewed, as real traffic is).
INTENT_WEIGHTS: dict[str, float] = {
    "alarm_set": 3.0,
    "alarm_query": 1.2,
    "alarm_remove": 1.2,
    "weather_query": 3.0,
    "play_music": 3.5,
    "play_radio": 1.5,
    "play_podcasts": 1.2,
    "audio_volume_up": 1.0,
    "audio_volume_down": 1.0,
    "audio_volume_mute": 1.0,
    "calendar_set": 2.5,
    "calendar_query": 2.0,
    "calendar_remove": 1.0,
    "iot_hue_lighton": 1.2,
    "iot_hue_lightoff": 1.5,
    "iot_hue_lightchange": 1.2,
    "iot_cleaning": 0.8,
    "iot_wemo_on": 1.0,
    "iot_wemo_off": 1.0,
    "lists_createoradd": 1.8,
    "lists_query": 1.2,
    "lists_remove": 1.0,
    "news_query": 2.0,
    "transport_ticket": 1.2,
    "transport_query": 1.2,
    "transport_taxi": 1.0,
}

#: Phrasings shared by two confusable intents; an utterance drawn from one gets either label.
AMBIGUOUS_PAIRS: dict[tuple[str, str], tuple[str, ...]] = {
    ("alarm_set", "calendar_set"): (
        "!remind me to {event_name=reminder} (at {time}|{date} at {time})",
        "!set a reminder (for|at) {time} (|{date})",
        "!(remind|alert) me at {time} {date}",
    ),
    ("alarm_query", "calendar_query"): (
        "what do i have (set|) for {date}",
        "what's set for {time} {date}",
        "!check what's (on|set) (for|) {date} {timeofday}",
    ),
    ("play_music", "play_radio"): (
        "!put on (some|) {music_genre}",
        "!play something {music_genre}",
        "i want to hear (some|) {music_genre}",
    ),
    ("iot_hue_lightoff", "audio_volume_mute"): (
        "!(turn|shut|switch) it off",
        "!(turn|shut) everything off (|in the {house_place})",
        "(off|stop|enough) (please|)",
    ),
    ("news_query", "weather_query"): (
        "what's happening in {place_name} (|{date})",
        "what's going on (in|around) {place_name} (|{date})",
        "!(give|tell) me the update for {place_name} (|{date})",
    ),
    ("lists_query", "calendar_query"): (
        "what do i have to do {date}",
        "what's on my (plate|list) (for|) {date}",
        "what (else|) do i need to do {date}",
    ),
    ("audio_volume_up", "iot_hue_lightchange"): (
        "!turn it up (|{change_amount})",
        "!(turn|bring) it up (a bit|a little) (|in the {house_place})",
        "more please",
    ),
}

INTENTS: tuple[str, ...] = tuple(TEMPLATES)


def scenario_of(intent: str) -> str:
    """Scenario of an intent: the part before the first underscore ("iot_hue_lighton" -> "iot")."""
    return intent.split("_", 1)[0]


SCENARIOS: tuple[str, ...] = tuple(dict.fromkeys(scenario_of(i) for i in INTENTS))
