"""Free-form task families: sentence answers with many right phrasings, checked by their content.

An exact-answer family has one correct string, so a majority vote over strings is already the best rule. Open-ended
generation is where *semantic* consensus is supposed to earn its name: two clients can both be right in different words.
These families make that measurable. Each is a :class:`~fedcofit_lite.tasks.families.TaskFamily` built on a small fact
model (:class:`FactModel`, its ``facts``): ``sample_facts(rng)`` draws an item's facts, ``instruction(facts, rng)`` asks
for them, ``render(facts, style)`` writes a right answer in one of several *styles* (training references draw their
style at random, so clients learn different wordings), ``facts_of(text)`` reads the facts a sentence states, and
``check(prediction, reference)`` is right when the prediction states the reference's facts and nothing contradicting
them. The three families (``capital_sentence``, ``compare_numbers``, ``weather_report``), with an instruction and some
right answers of each, are tabled in ``data/DATA_CARD.md``.

What a sentence embedder misses here (``82 is larger than 47`` and ``47 is larger than 82`` are near-identical vectors)
is the subject of notebook 09.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .capitals import CAPITALS

Facts = tuple[Any, ...]


@dataclass(frozen=True)
class FactModel:
    """A free-form family's facts: instructions, phrasings, a content checker, contradictions (see the module docstring)."""

    sample_facts: Callable[[random.Random], Facts]
    instruction: Callable[[Facts, random.Random], str]
    styles: tuple[str, ...]  # str.format templates over the named facts
    fact_names: tuple[str, ...]
    facts_of: Callable[[str], Facts | None]
    perturb: Callable[[Facts, random.Random], Facts]  # facts that contradict these (a wrong answer)
    check: Callable[[str, str], bool]  # (prediction, reference) -> right: states the facts and nothing contradicting
    full_facts: Callable[[Facts], Facts]  # what facts_of reads of a reference -> the facts that render it again
    capacity: int  # distinct instructions
    extras: Callable[[Facts], dict[str, Any]] = lambda facts: {}  # derived template fields

    def render(self, facts: Facts, style: int) -> str:
        """The answer stating ``facts`` in phrasing number ``style``."""
        return self.styles[style % len(self.styles)].format(**dict(zip(self.fact_names, facts)), **self.extras(facts))

    def sample(self, rng: random.Random) -> tuple[str, str]:
        """One ``(instruction, response)`` pair; the response's phrasing is drawn at random."""
        facts = self.sample_facts(rng)  # then the instruction, then the style: each draws from rng
        return self.instruction(facts, rng), self.render(facts, rng.randrange(len(self.styles)))

    def reference_facts(self, reference: str) -> Facts:
        """The full facts of a reference of this family (for re-rendering it in other words)."""
        try:
            return self.full_facts(self.facts_of(reference))
        except (TypeError, ValueError):  # None, a clash, two cities, a fraction: not one of this family's references
            raise ValueError(
                f"the reference {reference!r} states no facts this family can read; is it its family's?"
            ) from None

    def phrasings(self, reference: str) -> list[str]:
        """Every phrasing the family has of the facts in ``reference``: all right, none equal as strings."""
        facts = self.reference_facts(reference)
        return list(dict.fromkeys(self.render(facts, s) for s in range(len(self.styles))))

    def contradiction(self, reference: str, style: int = 0, seed: int = 0) -> str:
        """A wrong answer worded like a right one (another capital, the numbers swapped, another condition)."""
        return self.render(self.perturb(self.reference_facts(reference), random.Random(seed)), style)


def _no_facts(family: str, reference: str) -> ValueError:
    return ValueError(
        f"{family}: the reference {reference!r} states no facts this family can read; is it this family's?"
    )


# --- shared readers -----------------------------------------------------------------
def _alternation(words: list[str]) -> re.Pattern[str]:
    """A case-insensitive whole-word pattern over ``words``, longest first (``Mexico City`` before ``Mexico``)."""
    body = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z])({body})(?![A-Za-z])", re.IGNORECASE)


def _mentions(pattern: re.Pattern[str], text: str, canonical: dict[str, str]) -> tuple[set[str], str]:
    """The canonical names ``pattern`` finds in ``text``, and the text with those mentions blanked."""
    found = {canonical[m.group(1).lower()] for m in pattern.finditer(text)}
    return found, pattern.sub(" ", text)


# --- capital_sentence -----------------------------------------------------------------
_CAP_INSTRUCTIONS = (
    "In one sentence, what is the capital of {c}?", "Tell me in a full sentence which city is the capital of {c}.",
    "Write one sentence that names the capital of {c}.",
)  # fmt: skip
_CAP_STYLES = (
    "The capital of {country} is {city}.", "{city} is the capital of {country}.",
    "{country}'s capital city is {city}.", "{city} is {country}'s capital.",
)  # fmt: skip


def _cap_sample(rng: random.Random) -> Facts:
    country = rng.choice(sorted(CAPITALS))
    return country, CAPITALS[country]


def _cap_instruction(facts: Facts, rng: random.Random) -> str:
    return rng.choice(_CAP_INSTRUCTIONS).format(c=facts[0])


_CITY_RE, _CITY_NAMES = _alternation(list(CAPITALS.values())), {v.lower(): v for v in CAPITALS.values()}
_COUNTRY_RE, _COUNTRY_NAMES = _alternation(list(CAPITALS)), {k.lower(): k for k in CAPITALS}


def _cap_facts(text: str) -> Facts | None:
    cities, rest = _mentions(_CITY_RE, text, _CITY_NAMES)
    countries, _ = _mentions(_COUNTRY_RE, rest, _COUNTRY_NAMES)
    return (frozenset(cities), frozenset(countries)) if cities else None


_NEGATION = re.compile(r"\bnot\b|n't\b", re.IGNORECASE)


def _cap_check(prediction: str, reference: str) -> bool:
    """The reference's city and no other capital, no negation; a country, if named, must be the reference's."""
    want, got = _cap_facts(reference), _cap_facts(prediction)
    if want is None:
        raise _no_facts("capital_sentence", reference)
    return got is not None and got[0] == want[0] and got[1] <= want[1] and not _NEGATION.search(prediction)


def _cap_full(facts: Facts) -> Facts:
    (city,) = facts[0]
    return next(c for c, v in CAPITALS.items() if v == city), city


def _cap_perturb(facts: Facts, rng: random.Random) -> Facts:
    other = rng.choice(sorted(c for c in CAPITALS if c != facts[0]))
    return facts[0], CAPITALS[other]  # the right country with a wrong city


# --- compare_numbers ---------------------------------------------------------------------
_CMP_INSTRUCTIONS = (
    "Which is larger, {a} or {b}? Answer in one sentence.",
    "Compare {a} and {b}: which one is bigger? Reply with a sentence.",
    "Of {a} and {b}, which number is greater? Say it in one sentence.",
)
_CMP_STYLES = (
    "{hi} is larger than {lo}.", "{lo} is smaller than {hi}.", "The larger number is {hi}, not {lo}.",
    "{hi} is greater than {lo}.", "Between {lo} and {hi}, {hi} is the bigger one.",
)  # fmt: skip
_BIG = r"(?:larger|bigger|greater|higher|more)"
_SMALL = r"(?:smaller|less|lower|fewer)"
_BIGGEST = r"(?:larger|bigger|greater|higher|largest|biggest|greatest|highest)"
_SMALLEST = r"(?:smaller|lower|smallest|lowest)"
_N = r"(-?\d+(?:\.\d+)?)"
# (pattern, its group naming the larger number, its group naming the smaller; 0: not named)
_CMP_PATTERNS: tuple[tuple[re.Pattern[str], int, int], ...] = (
    (re.compile(rf"{_N} is (?:a )?{_BIG} (?:number )?than {_N}", re.I), 1, 2),
    (re.compile(rf"{_N} is (?:a )?{_SMALL} (?:number )?than {_N}", re.I), 2, 1),
    (re.compile(rf"{_BIGGEST}(?: number| one| value)?(?: of the two)? is {_N}", re.I), 1, 0),
    (re.compile(rf"{_SMALLEST}(?: number| one| value)?(?: of the two)? is {_N}", re.I), 0, 1),
    (re.compile(rf"{_N} is (?:the )?{_BIGGEST}(?! than)", re.I), 1, 0),
    (re.compile(rf"{_N} is (?:the )?{_SMALLEST}(?! than)", re.I), 0, 1),
)


def _cmp_sample(rng: random.Random) -> Facts:
    a, b = rng.sample(range(10, 100), 2)
    return max(a, b), min(a, b)


def _cmp_instruction(facts: Facts, rng: random.Random) -> str:
    hi, lo = facts
    a, b = (hi, lo) if rng.random() < 0.5 else (lo, hi)  # the question names them in either order
    return rng.choice(_CMP_INSTRUCTIONS).format(a=a, b=b)


def _num(text: str) -> str:
    """A number's canonical form: ``82``, ``82.0`` and ``082`` are one number."""
    return format(float(text), "g")


def _cmp_facts(text: str, fill: bool = True) -> Facts | None:
    """``(larger, smaller)`` as the sentence claims them (a side unnamed: None), None if it claims nothing, ``("clash",)``
    if its claims contradict; ``fill`` (how references are read) takes an unnamed side from a two-number sentence."""
    claims = [(m, hi, lo) for pattern, hi, lo in _CMP_PATTERNS for m in pattern.finditer(text)]
    big = {_num(m.group(hi)) for m, hi, _ in claims if hi}
    small = {_num(m.group(lo)) for m, _, lo in claims if lo}
    if not big and not small:
        return None
    if len(big) > 1 or len(small) > 1 or big & small:
        return ("clash",)
    numbers = {_num(x) for x in re.findall(r"-?\d+(?:\.\d+)?", text)}
    others = numbers - (big | small)
    if fill and len(numbers) == 2 and len(others) == 1:
        (small if big else big).add(others.pop())
    return (next(iter(big), None), next(iter(small), None))


def _cmp_check(prediction: str, reference: str) -> bool:
    """Every side the prediction names (the larger, the smaller or both) is the reference's; no clash."""
    want, got = _cmp_facts(reference), _cmp_facts(prediction, fill=False)
    if want is None or None in want or want == ("clash",):
        raise _no_facts("compare_numbers", reference)
    if got is None or got == ("clash",):
        return False
    return all(g is None or g == w for g, w in zip(got, want))


def _cmp_full(facts: Facts) -> Facts:
    hi, lo = facts
    return int(hi), int(lo)


def _cmp_perturb(facts: Facts, rng: random.Random) -> Facts:
    return facts[1], facts[0]  # the same numbers, the larger and the smaller swapped


# --- weather_report ------------------------------------------------------------------------
# condition -> (adjective forms, noun forms); the instruction names the condition by its key.
_CONDITIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "rain": (("rainy", "wet"), ("rain", "showers")),
    "sun": (("sunny", "clear"), ("sunshine", "clear skies")),
    "clouds": (("cloudy", "overcast"), ("clouds", "grey skies")),
    "snow": (("snowy",), ("snow", "snowfall")),
    "fog": (("foggy", "misty"), ("fog", "mist")),
}
_WEATHER_CITIES = (
    "Oslo", "Lima", "Cairo", "Tokyo", "Madrid", "Nairobi", "Dublin", "Hanoi", "Quito", "Vienna",
    "Lisbon", "Seoul", "Accra", "Riga", "Dakar", "Manila", "Athens", "Prague", "Kabul", "Doha",
)  # fmt: skip
_W_INSTRUCTIONS = (
    "Report this weather reading in one sentence: {city}; {t} C; {cond}.",
    "Write one sentence describing the weather: city {city}, {t} degrees Celsius, {cond}.",
    "Turn this reading into a sentence: {city} / {t} C / {cond}.",
)
_W_STYLES = (
    "It is {t} degrees and {adj} in {city}.", "{city}: {noun}, {t} °C.",
    "The weather in {city} is {adj} at {t} degrees Celsius.", "In {city} right now: {noun} and {t} degrees.",
)  # fmt: skip
_COND_WORDS = {w: cond for cond, (adj, noun) in _CONDITIONS.items() for w in (cond, *adj, *noun)}  # the key too: "sun"
_COND_WORDS |= {"raining": "rain", "snowing": "snow", "cloud": "clouds", "sunshine": "sun"}
_COND_RE = _alternation(list(_COND_WORDS))
_WCITY_RE = _alternation(list(_WEATHER_CITIES))
_TEMP_RE = re.compile(r"(?<![\d.])(-?\d+)(?!\d|\.\d)")  # "12." ends a sentence, "12.5" is not 12


def _w_sample(rng: random.Random) -> Facts:
    return rng.choice(_WEATHER_CITIES), rng.randrange(-10, 36), rng.choice(sorted(_CONDITIONS))


def _w_instruction(facts: Facts, rng: random.Random) -> str:
    city, t, cond = facts
    return rng.choice(_W_INSTRUCTIONS).format(city=city, t=t, cond=cond)


def _w_facts(text: str) -> Facts | None:
    cities, rest = _mentions(_WCITY_RE, text, {c.lower(): c for c in _WEATHER_CITIES})
    conds = {_COND_WORDS[m.group(1).lower()] for m in _COND_RE.finditer(rest)}
    temps = {int(x) for x in _TEMP_RE.findall(_COND_RE.sub(" ", rest))}
    return (frozenset(cities), frozenset(temps), frozenset(conds)) if cities or conds or temps else None


def _w_check(prediction: str, reference: str) -> bool:
    """The same city, temperature and condition (in any synonym), and no other."""
    want = _w_facts(reference)
    if want is None or not all(want):
        raise _no_facts("weather_report", reference)
    return _w_facts(prediction) == want and not _NEGATION.search(prediction)


def _w_perturb(facts: Facts, rng: random.Random) -> Facts:
    city, t, cond = facts
    return city, t, rng.choice(sorted(c for c in _CONDITIONS if c != cond))  # the wrong condition


def _w_full(facts: Facts) -> Facts:
    (city,), (t,), (cond,) = facts
    return city, t, cond


def _w_extras(facts: Facts) -> dict[str, Any]:
    """A weather condition's adjective and noun."""
    adj, noun = _CONDITIONS[facts[2]]
    pick = sum(map(ord, facts[0])) + facts[1]  # a stable synonym per item, not per call
    return {"adj": adj[pick % len(adj)], "noun": noun[pick % len(noun)]}


# --- the fact models of the three families (tasks.families.REGISTRY holds the families) ------------------
CAPITAL_SENTENCE = FactModel(
    _cap_sample, _cap_instruction, _CAP_STYLES, ("country", "city"), _cap_facts, _cap_perturb, _cap_check, _cap_full,
    capacity=102 * len(_CAP_INSTRUCTIONS),
)  # fmt: skip
COMPARE_NUMBERS = FactModel(
    _cmp_sample, _cmp_instruction, _CMP_STYLES, ("hi", "lo"), _cmp_facts, _cmp_perturb, _cmp_check, _cmp_full,
    capacity=90 * 89 * len(_CMP_INSTRUCTIONS),
)  # fmt: skip
WEATHER_REPORT = FactModel(
    _w_sample, _w_instruction, _W_STYLES, ("city", "t", "cond"), _w_facts, _w_perturb, _w_check, _w_full,
    capacity=len(_WEATHER_CITIES) * 46 * len(_CONDITIONS) * len(_W_INSTRUCTIONS), extras=_w_extras,
)  # fmt: skip
