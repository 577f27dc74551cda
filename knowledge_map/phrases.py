"""Names for kinds of things, read from an article's first sentence.

An encyclopaedia article usually opens by saying what its subject is:
"Mali is a landlocked country in West Africa", "The tomato is a plant whose
fruit ...", "Algebra is a branch of mathematics".  The noun phrase after the
copula (*is/was/are/were a/an/the*) up to the first preposition, relative
pronoun, conjunction or punctuation is the article's *defining phrase*; its
last noun is the *head* ("country") and the word before it, if any, the
*modifier* ("landlocked").  Heads name the kind of thing an article is about,
which is what a region label should name.

No part-of-speech tagger is used (none ships with the workflow, and rules
must degrade quietly on text in other languages, where they simply find no
phrase).  Instead the corpus itself says which words are nouns: a word is
taken as a countable noun when its regular plural occurs in the corpus
("cities" makes "city" a noun; "spoken" has no "spokens").  The same test
decides whether a label is written in the plural ("Countries") or kept
singular because the corpus never uses a plural ("Mathematics", "Music").
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import lru_cache, wraps
from typing import NamedTuple

# Words that end a defining phrase: prepositions, relative pronouns,
# conjunctions and verbs that start a clause after the noun.
STOPPERS = frozenset(
    """of in on at by for from with within without into onto to as than that which who whom whose where when while
    and or but nor after before during under over between among across along around about against since until
    located situated based found known used called named consisting comprising born made spoken written given taken
    held seen grown native worn fought"""
    .split()
)

# Heads that only say "a kind of": "a species of bird" names a bird, "a branch
# of mathematics" names mathematics, so the phrase restarts after "of".
KIND_HEADS = frozenset(
    """type kind form species genus family subfamily member branch class group set series one any part variety
    style field area study collection category sort subset order suborder system body number range name term
    subgenus clade tribe""".split()
)

# Common adjectives with no adjective ending: never the head of a phrase.
NOT_HEADS = frozenset("large small big major minor great important first second third new old main".split())

DETERMINERS = frozenset("a an the any some one several many various two three four".split())
ADVERBS_AFTER_COPULA = frozenset(
    "also usually generally commonly typically often sometimes now still mainly mostly primarily widely".split()
)

IRREGULAR_PLURALS = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "foot": "feet",
    "tooth": "teeth",
    "mouse": "mice",
    "goose": "geese",
    "genus": "genera",
    "phenomenon": "phenomena",
    "criterion": "criteria",
    "medium": "media",
    "bacterium": "bacteria",
    "fungus": "fungi",
    "nucleus": "nuclei",
    "cactus": "cacti",
    "radius": "radii",
    "index": "indices",
    "appendix": "appendices",
    "axis": "axes",
    "crisis": "crises",
    "analysis": "analyses",
    "thesis": "theses",
    "hypothesis": "hypotheses",
    "leaf": "leaves",
    "wife": "wives",
    "life": "lives",
    "knife": "knives",
    "wolf": "wolves",
    "half": "halves",
    "shelf": "shelves",
    "calf": "calves",
    "ox": "oxen",
}
SAME_IN_PLURAL = frozenset("species series sheep deer fish aircraft means".split())

_COPULA = re.compile(r"\b(?:is|was|are|were)\s+(.{1,240})", re.IGNORECASE | re.DOTALL)
_TOKEN = re.compile(r"[^\W\d_][\w'\u2019-]*|[,;:()\[\]\"\u2013\u2014.]")
_WORD = re.compile(r"(?u)\b[^\W\d_]{3,}\b")


def first_sentence(text: str, max_chars: int = 400) -> str:
    """The text up to its first full stop followed by a space (at most ``max_chars`` characters)."""
    head = text[:max_chars]
    stop = head.find(". ")
    return head if stop < 0 else head[:stop]


def plural(word: str) -> str:
    """The English plural of a lower-case noun by the usual spelling rules."""
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word]
    if word in SAME_IN_PLURAL:
        return word
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def cached_per_vocabulary(func):
    """``func(word, vocabulary)``, memoised when ``vocabulary`` is a frozenset (hashable).

    :mod:`knowledge_map.labels` passes one frozenset for a whole corpus, whose
    words repeat; other collections are not hashable and are computed each time.
    The cache holds one vocabulary at a time: a new one clears it, so a lookup
    never compares two large equal sets element by element (a second corpus
    in one process took 13x longer before).
    """
    cached = lru_cache(maxsize=200_000)(func)
    current: list[frozenset | None] = [None]

    @wraps(func)
    def call(word: str, vocabulary: Collection[str]):
        if not isinstance(vocabulary, frozenset):
            return func(word, vocabulary)
        if vocabulary is not current[0]:
            cached.cache_clear()
            current[0] = vocabulary
        return cached(word, vocabulary)

    return call


@cached_per_vocabulary
def singular(word: str, vocabulary: Collection[str]) -> str:
    """The singular of a lower-case word when the corpus has it ("cities" -> "city"), else the word."""
    for stem in _singular_guesses(word):
        if stem in vocabulary and plural(stem) == word:
            return stem
    return word


def _singular_guesses(word: str) -> list[str]:
    guesses = [key for key, value in IRREGULAR_PLURALS.items() if value == word]
    if word.endswith("ies"):
        guesses.append(word[:-3] + "y")
    if word.endswith("es"):
        guesses.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss"):
        guesses.append(word[:-1])
    return guesses


def is_noun(word: str, vocabulary: Collection[str]) -> bool:
    """A countable noun by corpus evidence: its plural (a different word) occurs in ``vocabulary``."""
    if word in SAME_IN_PLURAL or word in IRREGULAR_PLURALS:
        return True
    form = plural(word)
    return form != word and form in vocabulary


def defining_phrase(text: str, vocabulary: Collection[str], max_words: int = 4) -> list[str]:
    """The surface words of the defining phrase of ``text`` ([] when there is none).

    ``vocabulary`` holds the lower-case words of the corpus (the noun test).
    Trailing words that are not nouns ("language spoken", "alloy consisting")
    are dropped, so the phrase ends on its head; at most ``max_words`` words
    before the head are kept.
    """
    return defining_parts(text, vocabulary, max_words)[0]


class DefiningParts(NamedTuple):
    """What an article's first sentence says it is (see :func:`defining_parts`)."""

    words: list[str]
    prep: str | None
    place: str | None
    indefinite: bool  # the phrase follows "a"/"an": its head is a countable noun


def defining_parts(text: str, vocabulary: Collection[str], max_words: int = 4) -> DefiningParts:
    """The defining phrase, the place or domain right after its head, if any, and whether "a"/"an" led it.

    "Jodhpur is the second-largest city in the Indian state of Rajasthan" gives
    (["second-largest", "city"], "in", "Indian", False); "Louis XIV was King of
    France" gives (["King"], "of", "France", False); "Mali is a landlocked
    country" (["landlocked", "country"], None, None, True).  The place is one or
    two capitalised words after "in" or "of" (and an optional "the"), else None.
    An indefinite article is evidence that the head is countable ("a
    politician": "Politicians"); a mass noun follows "the", no article, or a
    kind word ("a form of music", where "a" belongs to "form").
    """
    match = _COPULA.search(first_sentence(text))
    if not match:
        return DefiningParts([], None, None, False)
    tokens: list[str] = []
    words: list[str] = []
    end = -1
    indefinite = False
    for position, found in enumerate(_TOKEN.finditer(match.group(1))):  # lazily: most phrases end within words
        token = found.group()
        tokens.append(token)
        lower = token.lower()
        if not words and (lower in DETERMINERS or lower in ADVERBS_AFTER_COPULA):
            indefinite = indefinite or lower in ("a", "an")
            continue
        if lower == "of" and words and words[-1].lower() in KIND_HEADS:
            words, indefinite = [], False  # "a species of bird": start again after "of"
            continue
        if lower in ("and", "or", ",") and words and not _noun_like(words[-1], vocabulary):
            continue  # "a Soviet and Russian author": coordinated modifiers, the noun is still to come
        if lower in STOPPERS or not token[0].isalpha():
            end = position
            break
        if lower.endswith("ed") and words and _noun_like(words[-1], vocabulary) and not is_noun(lower, vocabulary):
            end = position
            break  # "a timepiece carried by a person": a participle after the noun starts a clause
        words.append(token)
    trimmed = False
    while words and not _noun_like(words[-1], vocabulary):
        words.pop()
        trimmed = True
    if not words or words[-1].lower() in KIND_HEADS or (trimmed and words[-1][:1].isupper()):
        # a capitalised word left after trimming is a proper adjective ("American"), not a head
        return DefiningParts([], None, None, False)
    prep, place = None, None
    if not trimmed and end >= 0 and tokens[end].lower() in ("in", "of"):
        rest = _TOKEN.findall(match.group(1)[found.end() : found.end() + 60])[:3]
        if rest and rest[0].lower() == "the":
            rest = rest[1:]
        names = []
        for token in rest[:2]:
            if not (token[:1].isupper() and token.isalpha()):
                break
            names.append(token)
        if names:
            prep, place = tokens[end].lower(), " ".join(names)
    return DefiningParts(words[-max_words:], prep, place, indefinite)


ADJECTIVE_ENDINGS = ("ly", "ing", "ed", "al", "ic", "ous", "ive", "ful", "less", "able", "ible", "ian", "ese", "ish")


@cached_per_vocabulary
def _noun_like(word: str, vocabulary: Collection[str]) -> bool:
    """Could ``word`` end a noun phrase?  Countable nouns yes; adverb, participle or adjective endings no.

    Cached per word (:func:`cached_per_vocabulary`): this runs on every word of every first sentence.
    """
    lower = word.lower()
    if lower in NOT_HEADS:
        return False
    if is_noun(lower, vocabulary) or _is_plural_noun(lower, vocabulary):
        return True
    return not lower.endswith(ADJECTIVE_ENDINGS)


def _is_plural_noun(word: str, vocabulary: Collection[str]) -> bool:
    return singular(word, vocabulary) != word


def head_and_modifier(words: list[str], vocabulary: Collection[str]) -> tuple[str | None, str | None]:
    """Lower-case singular head of a defining phrase and the surface form of the word before it."""
    if not words:
        return None, None
    head = singular(words[-1].lower(), vocabulary)
    modifier = words[-2] if len(words) > 1 else None
    return head, modifier


def display_noun(word: str, vocabulary: Collection[str]) -> str:
    """A lower-case singular noun as a label writes it: plural when the corpus uses its plural."""
    return plural(word) if is_noun(word, vocabulary) else word


def sentence_case(text: str) -> str:
    """Upper-case the first letter only ("landlocked countries" -> "Landlocked countries")."""
    return text[:1].upper() + text[1:] if text else text


def lower_words(texts: list[str]) -> set[str]:
    """Words of 3+ letters written in lower case somewhere in ``texts`` (evidence that a word is not a proper name)."""
    tokens: set[str] = set()
    for start in range(0, len(texts), 10_000):  # whitespace split in blocks: C speed; the regex runs on unique tokens
        tokens.update(" ".join(texts[start : start + 10_000]).split())
    return {w for token in tokens if any(c.islower() for c in token) for w in _WORD.findall(token) if w.islower()}


def writes_lower(word: str, text: str, times: int = 2) -> bool:
    """Does ``text`` write ``word`` (lower case) as a whole word at least ``times`` times?

    An article that writes its own title word in lower case ("Cholesterol is
    ... cholesterol ... cholesterol") names a thing, not a proper name, though
    no first sentence of the corpus happens to write it so (:func:`lower_words`).
    Twice, because a name's article may quote it once in lower case ("the
    Sumerian transliteration elam(a)").
    """
    found, start = 0, text.find(word)
    while start >= 0:
        end = start + len(word)
        if (start == 0 or not (text[start - 1].isalpha() or text[start - 1] == "-")) and \
                (end == len(text) or not (text[end].isalpha() or text[end] == "-")):
            found += 1
            if found >= times:
                return True
        start = text.find(word, start + 1)
    return False
