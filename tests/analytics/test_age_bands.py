from __future__ import annotations

from datetime import date, timedelta

import pytest

from analytics.age_bands import BANDS, UNKNOWN, age_on, band_of, birthdays

DAY = date(2026, 12, 1)


@pytest.mark.parametrize(
    ("birthday", "band"),
    [
        (date(2008, 12, 2), "under-18"),  # 17 until tomorrow
        (date(2008, 12, 1), "18-24"),  # 18 today
        (date(2001, 12, 2), "18-24"),
        (date(2001, 12, 1), "25-34"),
        (date(1961, 12, 1), "65-plus"),
        (None, UNKNOWN),
        (date(2027, 1, 1), UNKNOWN),
    ],
)
def test_a_birthday_falls_in_one_band(birthday: date | None, band: str) -> None:
    assert band_of(birthday, DAY) == band


def test_a_leap_day_birthday_turns_over_on_the_first_of_march() -> None:
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18


def test_the_sql_range_of_each_band_agrees_with_band_of() -> None:
    # Every birthday over 100 years: inside a band's range exactly when band_of says so.
    for code, _, _ in BANDS:
        after, by = birthdays(code, DAY)
        for offset in range(0, 366 * 100, 7):
            born = DAY - timedelta(days=offset)
            inside = (after is None or born > after) and (by is None or born <= by)
            assert inside == (band_of(born, DAY) == code), (code, born)
    with pytest.raises(ValueError):
        birthdays(UNKNOWN, DAY)
