"""Task families and their one registry: short answers checkable by exact match, and the free-form ones.

Each family turns a ``random.Random`` into ``(instruction, response)`` pairs. The project's own
families answer in a dozen tokens at most with exactly one correct form, so an answer is scored by
*normalised exact match*: that is what lets the federation measure how often a pseudo-label is
right. A free-form family (its facts in :mod:`fedcofit_lite.tasks.freeform`) is a family of the same
type whose ``check`` judges content. Names are part of the API; ``data/DATA_CARD.md`` tables every family, its
answer form and examples.

:func:`generate_suite` builds the train / public / test splits; :func:`write_suite` writes them as a
``data.path`` folder (``data/generate.py`` writes ``data/tasks/``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from .capitals import CAPITALS
from .data import SUITE_FILES, Example, write_jsonl
from .freeform import CAPITAL_SENTENCE, COMPARE_NUMBERS, WEATHER_REPORT, FactModel

Sampler = Callable[[random.Random], tuple[str, str]]


@dataclass(frozen=True)
class TaskFamily:
    """A family of auto-checkable instructions (an entry of :data:`REGISTRY`).

    ``sample(rng) -> (instruction, response)`` draws one pair using only ``rng`` (generation is
    deterministic given the seed); ``capacity`` bounds the distinct instructions it can produce;
    ``check(prediction, reference) -> bool``, when given, judges answers by content (the free-form
    families); without one, :func:`fedcofit_lite.tasks.evaluate.exact_match` scores the family.
    ``facts`` (a free-form family's :class:`~fedcofit_lite.tasks.freeform.FactModel`) samples, checks
    and rephrases for it: ``sample`` and ``check`` default to its own.

    Examples
    --------
    >>> import random
    >>> get_family("arithmetic").generate(random.Random(0), 2)  # doctest: +SKIP
    [('What is 59 + 17?', '76'), ('Compute 88 - 21.', '67')]
    """

    name: str
    description: str
    sample: Sampler | None
    capacity: int
    check: Callable[[str, str], bool] | None = None
    facts: FactModel | None = None

    def __post_init__(self) -> None:
        if self.facts is not None:  # frozen: set through object.__setattr__
            object.__setattr__(self, "sample", self.sample or self.facts.sample)
            object.__setattr__(self, "check", self.check or self.facts.check)
        if self.sample is None:
            raise ValueError(f"family {self.name!r} needs sample(rng) -> (instruction, response), or facts.")

    def generate(self, rng: random.Random, n: int) -> list[tuple[str, str]]:
        """Draw ``n`` (0 to ``capacity``) pairs with pairwise distinct instructions from ``rng``, in draw order."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n > self.capacity:
            raise ValueError(
                f"family {self.name!r} has only {self.capacity} distinct instructions, cannot draw n={n}; lower the split sizes"
            )
        pairs: dict[str, str] = {}  # instruction -> its first response, in draw order
        # Rejection sampling; even at 2/3 of capacity this needs only ~2n draws.
        max_draws = 100 * n + 1000
        for _ in range(max_draws):
            if len(pairs) == n:
                break
            pairs.setdefault(*self.sample(rng))
        if len(pairs) < n:
            raise RuntimeError(
                f"family {self.name!r}: drew only {len(pairs)} distinct instructions out of {n} in {max_draws} tries"
            )
        return list(pairs.items())


# --- date_rewrite ----------------------------------------------------------
_DATE_TEMPLATES = (
    "Rewrite the date {iso} in day/month/year format.",
    "Convert the ISO date {iso} to DD/MM/YYYY.",
    "Write the date {iso} as DD/MM/YYYY.",
    "Express {iso} in day/month/year format.",
)
_DATE_FIRST = dt.date(1950, 1, 1)
_DATE_DAYS = (dt.date(2049, 12, 31) - _DATE_FIRST).days + 1


def _sample_date(rng: random.Random) -> tuple[str, str]:
    day = _DATE_FIRST + dt.timedelta(days=rng.randrange(_DATE_DAYS))
    return rng.choice(_DATE_TEMPLATES).format(iso=day.isoformat()), day.strftime("%d/%m/%Y")


# --- unit_conversion -------------------------------------------------------
# (singular, plural, target plural, target symbol, factor)
_UNITS = (
    ("kilometre", "kilometres", "metres", "m", 1000),
    ("metre", "metres", "centimetres", "cm", 100),
    ("centimetre", "centimetres", "millimetres", "mm", 10),
    ("kilogram", "kilograms", "grams", "g", 1000),
    ("litre", "litres", "millilitres", "mL", 1000),
    ("hour", "hours", "minutes", "min", 60),
    ("minute", "minutes", "seconds", "s", 60),
)
_UNIT_TEMPLATES = (
    "Convert {value} {unit} to {target}.",
    "How many {target} are in {value} {unit}?",
    "Express {value} {unit} in {target}.",
)
# Whole values 1..20 and one-decimal values 0.1..9.9 (not whole).
_UNIT_VALUES = tuple(Decimal(v) for v in range(1, 21)) + tuple(Decimal(v) / 10 for v in range(1, 100) if v % 10)


def _format_number(value: Decimal) -> str:
    """Canonical decimal: no exponent, no trailing zeros, no separators."""
    return format(value.normalize(), "f")


def _sample_unit(rng: random.Random) -> tuple[str, str]:
    singular, plural, target, symbol, factor = rng.choice(_UNITS)
    value = rng.choice(_UNIT_VALUES)
    unit = singular if value == 1 else plural
    instruction = rng.choice(_UNIT_TEMPLATES).format(value=_format_number(value), unit=unit, target=target)
    return instruction, f"{_format_number(value * factor)} {symbol}"


# --- number_to_words -------------------------------------------------------
_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve "
    "thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_WORDS_TEMPLATES = (
    "Write the number {n} in English words.",
    "Spell out the number {n} in words.",
    "How is {n} written in English words?",
    "Write {n} in words.",
)


def number_to_words(n: int) -> str:
    """English words for ``0 <= n <= 99``, hyphenated (``47 -> 'forty-seven'``)."""
    if not 0 <= n <= 99:
        raise ValueError(f"n must be in 0..99, got {n}")
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] if ones == 0 else f"{_TENS[tens]}-{_ONES[ones]}"


def _sample_words(rng: random.Random) -> tuple[str, str]:
    n = rng.randrange(100)
    return rng.choice(_WORDS_TEMPLATES).format(n=n), number_to_words(n)


# --- word_transform --------------------------------------------------------
_WORDS = (
    "apple bread chair dance earth field garden happy island jacket kitchen letter market night ocean paper "
    "queen river stone table umbrella valley window yellow zebra animal basket candle doctor engine forest "
    "guitar hammer insect jungle kettle lemon mirror number orange pencil rabbit silver ticket violin winter "
    "bottle cotton desert finger planet rocket summer thunder travel castle bridge butter camera circle cloud "
    "coffee flower friend golden honey horse house lamp light magic metal money monkey mountain music orbit "
    "piano pocket power puzzle quiet radio robot salad school season shadow simple smile spring square "
    "station story street sugar sunset teacher tiger tomato tower train village water whale wonder garlic "
    "harbor meadow pepper saddle tunnel velvet wallet"
).split()
_WORD_OPS: tuple[tuple[tuple[str, ...], Callable[[str], str]], ...] = (
    (("Write the word '{w}' in uppercase letters.", "Convert '{w}' to all capital letters."), str.upper),
    (
        ("What are the first three letters of the word '{w}'?", "Give the first three letters of '{w}'."),
        lambda w: w[:3],
    ),
    (("What are the last three letters of the word '{w}'?", "Give the last three letters of '{w}'."), lambda w: w[-3:]),
)


def _sample_word(rng: random.Random) -> tuple[str, str]:
    word = rng.choice(_WORDS)
    templates, op = rng.choice(_WORD_OPS)
    return rng.choice(templates).format(w=word), op(word)


# --- arithmetic ------------------------------------------------------------
_ARITH_TEMPLATES = (
    "What is {a} {op} {b}?",
    "Compute {a} {op} {b}.",
    "Calculate {a} {op} {b}. Answer with the number only.",
)


def _sample_arithmetic(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    if rng.random() < 0.5:
        op, result = "+", a + b
    else:
        a, b = max(a, b), min(a, b)  # keep results non-negative
        op, result = "-", a - b
    return rng.choice(_ARITH_TEMPLATES).format(a=a, op=op, b=b), str(result)


# --- capital ---------------------------------------------------------------
_COUNTRIES = tuple(CAPITALS)
_CAPITAL_TEMPLATES = (
    "What is the capital of {c}?",
    "Name the capital city of {c}.",
    "Which city is the capital of {c}?",
    "What city is the capital of {c}? Give the city name only.",
)


def _sample_capital(rng: random.Random) -> tuple[str, str]:
    country = rng.choice(_COUNTRIES)
    return rng.choice(_CAPITAL_TEMPLATES).format(c=country), CAPITALS[country]


# --- list_sort -------------------------------------------------------------
_SORT_TEMPLATES = (
    ("Sort {xs} in ascending order.", False),
    ("Order these numbers from smallest to largest: {xs}.", False),
    ("Sort {xs} in descending order.", True),
    ("Order these numbers from largest to smallest: {xs}.", True),
)


def _sample_sort(rng: random.Random) -> tuple[str, str]:
    # Four distinct numbers keep the answer near a dozen tokens.
    xs = rng.sample(range(1, 60), 4)
    template, descending = rng.choice(_SORT_TEMPLATES)
    return template.format(xs=", ".join(map(str, xs))), ", ".join(map(str, sorted(xs, reverse=descending)))


# --- registry --------------------------------------------------------------
# The one registry of task families: generation, scoring (tasks.evaluate.correct) and config checks read it.
# To add a family: REGISTRY[f.name] = TaskFamily(...), with a ``check`` when right answers differ in wording.
REGISTRY: dict[str, TaskFamily] = {
    f.name: f
    for f in (
        TaskFamily(
            "date_rewrite",
            "ISO date (YYYY-MM-DD, 1950-2049) rewritten as DD/MM/YYYY.",
            _sample_date,
            _DATE_DAYS * len(_DATE_TEMPLATES),
        ),
        # singular/plural wording depends on the value only: every (unit, value, template) is a distinct instruction
        TaskFamily(
            "unit_conversion",
            "Metric length/mass/volume and time conversions; answer 'number symbol'.",
            _sample_unit,
            len(_UNITS) * len(_UNIT_VALUES) * len(_UNIT_TEMPLATES),
        ),
        TaskFamily(
            "number_to_words",
            "Integer 0..99 spelled out in English words, hyphenated.",
            _sample_words,
            100 * len(_WORDS_TEMPLATES),
        ),
        TaskFamily(
            "word_transform",
            "Common English word: uppercase, first three or last three letters.",
            _sample_word,
            len(_WORDS) * sum(len(t) for t, _ in _WORD_OPS),
        ),
        # a + b: 90*90 ordered pairs; a - b with a >= b: 90*91/2 pairs
        TaskFamily(
            "arithmetic",
            "Addition or non-negative subtraction of two two-digit numbers.",
            _sample_arithmetic,
            (90 * 90 + 90 * 91 // 2) * len(_ARITH_TEMPLATES),
        ),
        TaskFamily(
            "capital",
            f"Capital city of one of {len(CAPITALS)} well-known countries.",
            _sample_capital,
            len(CAPITALS) * len(_CAPITAL_TEMPLATES),
        ),
        # ordered 4-tuples of distinct values times the templates
        TaskFamily(
            "list_sort",
            "Four distinct numbers 1..59 sorted ascending or descending.",
            _sample_sort,
            59 * 58 * 57 * 56 * len(_SORT_TEMPLATES),
        ),
    )
}

FAMILIES: tuple[str, ...] = tuple(REGISTRY)  # the exact-answer families of data/tasks/
FREEFORM_FAMILIES: tuple[str, ...] = ("capital_sentence", "compare_numbers", "weather_report")  # data/freeform/
REGISTRY |= {
    name: TaskFamily(name, description, None, facts.capacity, facts=facts)
    for name, description, facts in (
        ("capital_sentence", "The capital of a country, stated in one sentence (several phrasings).", CAPITAL_SENTENCE),
        (
            "compare_numbers",
            "Which of two numbers 10..99 is larger, in one sentence (either side may be named).",
            COMPARE_NUMBERS,
        ),
        (
            "weather_report",
            "A weather reading (city, temperature, condition) as one sentence, conditions in synonyms.",
            WEATHER_REPORT,
        ),
    )
}


def get_family(name: str) -> TaskFamily:
    """Return the task family called ``name`` (a ``ValueError`` lists the existing names)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown task family {name!r}; choose from {', '.join(REGISTRY)}") from None


def _facts(family: str) -> FactModel:
    facts = get_family(family).facts
    if facts is None:
        free = [n for n, f in REGISTRY.items() if f.facts is not None]
        raise ValueError(f"{family!r} is not a free-form family; choose from {', '.join(free)}")
    return facts


def phrasings(family: str, reference: str) -> list[str]:
    """Every phrasing a free-form family has of the facts in ``reference``: all right, none equal as strings."""
    return _facts(family).phrasings(reference)


def contradiction(family: str, reference: str, style: int = 0, seed: int = 0) -> str:
    """A wrong answer worded like a right one: another capital, the numbers swapped, another condition."""
    return _facts(family).contradiction(reference, style, seed)


def generate_suite(
    seed: int = 0,
    n_train: int = 200,
    n_public: int = 40,
    n_test: int = 25,
    families: Sequence[str] = FAMILIES,
    extra_public: int = 0,
) -> dict[str, list[Example]]:
    """Generate the train / public / test splits of the task suite (keys ``train``, ``public``, ``test``).

    Each family draws from its own generator, seeded from ``(seed, family)``, so its examples do not
    depend on the other families; it draws ``n_train + n_public + n_test`` distinct instructions, cut in
    that order, so no instruction appears in two splits. Ids look like ``date_rewrite-public-0007``.
    Public examples keep their reference: strip it before showing them to clients (:func:`write_suite`).
    ``extra_public`` more public prompts per family are drawn after the test split and numbered on from
    ``n_public``: train, test and the first ``n_public`` public prompts are those of the suite without
    them, so a larger public pool (the public-budget sweep's) keeps the shipped suite's private and test data.

    Examples
    --------
    >>> suite = generate_suite(seed=0, n_train=2, n_public=1, n_test=1)
    >>> [len(suite[s]) for s in ("train", "public", "test")]
    [14, 7, 7]
    """
    sizes = {"train": n_train, "public": n_public, "test": n_test}
    for split, size in {**sizes, "extra_public": extra_public}.items():
        if size < 0:
            raise ValueError(f"n_{split} must be >= 0, got {size}")
    if len(set(families)) != len(families):
        raise ValueError(f"families contains duplicates: {list(families)}")
    suite: dict[str, list[Example]] = {split: [] for split in sizes}
    # (split, index) of each pair a family draws, in draw order; the extra public prompts last
    slots = [(s, i) for s in sizes for i in range(sizes[s])] + [("public", n_public + i) for i in range(extra_public)]
    for name in families:
        # str seeds are hashed with SHA-512 by random.seed: stable across runs.
        pairs = get_family(name).generate(random.Random(f"{seed}-{name}"), len(slots))
        for (split, i), (instruction, response) in zip(slots, pairs, strict=True):
            suite[split].append(Example(f"{name}-{split}-{i:04d}", name, instruction, response=response))
    return suite


def write_suite(
    out: str | Path,
    seed: int = 0,
    n_train: int = 200,
    n_public: int = 40,
    n_test: int = 25,
    families: Sequence[str] = FAMILIES,
    extra_public: int = 0,
) -> dict[str, int]:
    """Generate a suite (:func:`generate_suite`) and write its four files into ``out`` (a ``data.path``), the public
    prompts without their responses (those go to the hidden references); lines per file."""
    suite = generate_suite(seed, n_train, n_public, n_test, families, extra_public)
    records = {
        "train": suite["train"],
        "public": [dataclasses.replace(ex, response="") for ex in suite["public"]],
        "public_references": [{"id": ex.id, "response": ex.response} for ex in suite["public"]],
        "test": suite["test"],
    }
    for key, rows in records.items():
        write_jsonl(Path(out) / SUITE_FILES[key], rows)
    return {SUITE_FILES[key]: len(rows) for key, rows in records.items()}
