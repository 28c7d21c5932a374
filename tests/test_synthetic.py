"""Synthetic tasks: their gold alignments say exactly which words carry which content."""

from __future__ import annotations

import datetime
import re

from attnviz.synthetic import (
    MONTHS,
    WEEKDAYS,
    SyntheticPair,
    date_in_words,
    date_pairs,
    reversal_pairs,
)

DATE = re.compile(r"^(\w+), (\d{1,2}) (\w+) (\d{4})$")


def test_reversal_gold_links_equal_words():
    for pair in reversal_pairs(50, seed=3):
        source, target = pair.source.split(), pair.target.split()
        assert target == source[::-1]
        assert sorted(t for _, t in pair.alignment) == list(range(len(target)))
        assert all(source[s] == target[t] for s, t in pair.alignment)


def test_dates_are_iso_forms_of_real_dates():
    for pair in date_pairs(200, seed=5):
        weekday, day, month, year = DATE.match(pair.source).groups()
        date = datetime.date(int(year), MONTHS.index(month) + 1, int(day))
        assert pair.target == date.isoformat()
        assert WEEKDAYS[date.weekday()] == weekday


def test_the_example_of_the_issue():
    pair = date_in_words(datetime.date(2009, 3, 3))
    assert pair == SyntheticPair("Tuesday, 3 March 2009", "2009-03-03", [(1, 0), (2, 0), (3, 0)])


def test_date_gold_links_day_month_and_year_to_the_iso_word():
    for pair in date_pairs(100, seed=6):
        source = pair.source.split()
        assert len(pair.target.split()) == 1
        assert sorted(pair.alignment) == [(1, 0), (2, 0), (3, 0)]  # the weekday: no link
        year, month, day = pair.target.split("-")
        assert source[3] == year
        assert MONTHS[int(month) - 1] == source[2]
        assert int(day) == int(source[1])


def test_generators_are_deterministic():
    assert date_pairs(20, seed=1) == date_pairs(20, seed=1)
    assert date_pairs(20, seed=1) != date_pairs(20, seed=2)
    assert reversal_pairs(20, seed=1) == reversal_pairs(20, seed=1)
