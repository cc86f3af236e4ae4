"""Task families: determinism, distinctness, no leakage, answers re-computed."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections import Counter
from fractions import Fraction

import pytest

from fedcofit_lite.tasks.families import CAPITALS, FAMILIES, generate_suite, get_family, number_to_words

SMALL = dict(n_train=20, n_public=5, n_test=5)


@pytest.fixture(scope="module")
def suite():
    return generate_suite(seed=0)


def pairs_of(suite, family):
    return [
        (ex.instruction, ex.response)
        for split in ("train", "public", "test")
        for ex in suite[split]
        if ex.family == family
    ]


def test_at_least_six_named_families():
    required = {
        "date_rewrite", "unit_conversion", "number_to_words",
        "word_transform", "arithmetic", "capital",
    }  # fmt: skip
    assert required <= set(FAMILIES)
    assert len(FAMILIES) == len(set(FAMILIES))


def test_generation_is_deterministic_per_seed():
    a, b = generate_suite(seed=3, **SMALL), generate_suite(seed=3, **SMALL)
    assert a == b
    c = generate_suite(seed=4, **SMALL)
    assert [ex.instruction for ex in a["train"]] != [ex.instruction for ex in c["train"]]


def test_family_examples_do_not_depend_on_other_families():
    alone = generate_suite(seed=0, families=("capital",), **SMALL)
    everything = generate_suite(seed=0, **SMALL)
    for split in alone:
        assert alone[split] == [ex for ex in everything[split] if ex.family == "capital"]


@pytest.mark.parametrize("name", FAMILIES)
def test_family_generates_distinct_instructions(name):
    family = get_family(name)
    pairs = family.generate(random.Random(7), 265)
    instructions = [i for i, _ in pairs]
    assert len(set(instructions)) == 265
    # Several paraphrased templates are used.
    first_words = Counter(i.split()[0] for i in instructions)
    assert len(first_words) >= 2, first_words


@pytest.mark.parametrize("name", FAMILIES)
def test_answers_are_short_and_normalisation_stable(name, suite):
    for instruction, response in pairs_of(suite, name):
        assert response and response == response.strip()
        assert not response.endswith("."), (instruction, response)
        assert len(response.split()) <= 6 and len(response) <= 24, (instruction, response)


def test_split_sizes_ids_and_no_leakage(suite):
    for split, n in (("train", 200), ("public", 40), ("test", 25)):
        assert Counter(ex.family for ex in suite[split]) == dict.fromkeys(FAMILIES, n)
    ids = [ex.id for split in suite.values() for ex in split]
    assert len(ids) == len(set(ids))
    assert suite["train"][7].id == "date_rewrite-train-0007"
    train, public, test = ({ex.instruction for ex in suite[s]} for s in ("train", "public", "test"))
    assert not train & public and not train & test and not public & test
    # Public prompts keep their reference for the caller to store apart.
    assert all(ex.response for ex in suite["public"])


def test_date_rewrite_answers(suite):
    for instruction, response in pairs_of(suite, "date_rewrite"):
        (iso,) = re.findall(r"\d{4}-\d{2}-\d{2}", instruction)
        day = dt.datetime.strptime(iso, "%Y-%m-%d")
        assert response == f"{day.day:02d}/{day.month:02d}/{day.year}"


def test_arithmetic_answers(suite):
    for instruction, response in pairs_of(suite, "arithmetic"):
        a, op, b = re.search(r"(\d+) ([+-]) (\d+)", instruction).groups()
        assert 10 <= int(a) <= 99 and 10 <= int(b) <= 99
        expected = int(a) + int(b) if op == "+" else int(a) - int(b)
        assert expected >= 0 and response == str(expected)


def test_unit_conversion_answers(suite):
    factors = {
        ("kilometre", "m"): 1000, ("metre", "cm"): 100, ("centimetre", "mm"): 10,
        ("kilogram", "g"): 1000, ("litre", "mL"): 1000, ("hour", "min"): 60,
        ("minute", "s"): 60,
    }  # fmt: skip
    for instruction, response in pairs_of(suite, "unit_conversion"):
        value, unit = re.search(r"(\d+(?:\.\d+)?) ([a-z]+?)s?\b", instruction).groups()
        number, symbol = response.split(" ")
        assert re.fullmatch(r"\d+(\.\d+)?", number) and not number.endswith(".0"), response
        assert Fraction(value) * factors[unit, symbol] == Fraction(number), instruction


def test_number_to_words():
    known = {
        0: "zero",
        7: "seven",
        13: "thirteen",
        40: "forty",
        47: "forty-seven",
        99: "ninety-nine",
    }
    assert {n: number_to_words(n) for n in known} == known
    assert len({number_to_words(n) for n in range(100)}) == 100
    with pytest.raises(ValueError):
        number_to_words(100)


def test_number_to_words_answers(suite):
    for instruction, response in pairs_of(suite, "number_to_words"):
        (n,) = re.findall(r"\d+", instruction)
        assert response == number_to_words(int(n))


def test_word_transform_answers(suite):
    for instruction, response in pairs_of(suite, "word_transform"):
        (word,) = re.findall(r"'([a-z]+)'", instruction)
        if "first three" in instruction:
            assert response == word[:3]
        elif "last three" in instruction:
            assert response == word[-3:]
        else:
            assert response == word.upper()


def test_capital_table_and_answers(suite):
    assert len(CAPITALS) >= 60
    assert all(s.isascii() for pair in CAPITALS.items() for s in pair)
    for instruction, response in pairs_of(suite, "capital"):
        (country,) = [c for c in CAPITALS if re.search(rf"\b{c}\b", instruction)]
        assert response == CAPITALS[country]


def test_list_sort_answers(suite):
    for instruction, response in pairs_of(suite, "list_sort"):
        xs = [int(x) for x in re.findall(r"\d+", instruction)]
        descending = "descending" in instruction or "largest to smallest" in instruction
        assert response == ", ".join(map(str, sorted(xs, reverse=descending)))


def test_get_family_unknown_lists_names():
    with pytest.raises(ValueError, match="date_rewrite.*capital"):
        get_family("poetry")
    with pytest.raises(ValueError, match="poetry"):
        generate_suite(families=("poetry",), **SMALL)


def test_generate_rejects_more_than_capacity():
    family = get_family("number_to_words")
    with pytest.raises(ValueError, match="number_to_words"):
        family.generate(random.Random(0), family.capacity + 1)
    with pytest.raises(ValueError, match="n_test"):
        generate_suite(n_test=-1)
