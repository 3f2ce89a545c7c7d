"""Age bands of audience analysis and segments: the usual market-research cuts.

A member's age is counted from their birthday (with the year) on a given day; a member with
no birthday year on record is in ``unknown``. Bands are closed below and open above, so every
age falls in exactly one: ``18-24`` holds 18 up to (not including) 25.
"""

from __future__ import annotations

from datetime import date

UNKNOWN = "unknown"
# (code, lowest age, age of the next band or None)
BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("under-18", 0, 18),
    ("18-24", 18, 25),
    ("25-34", 25, 35),
    ("35-44", 35, 45),
    ("45-54", 45, 55),
    ("55-64", 55, 65),
    ("65-plus", 65, None),
)
CODES: tuple[str, ...] = (*(code for code, _, _ in BANDS), UNKNOWN)


def age_on(birthday: date, day: date) -> int:
    """Whole years from `birthday` to `day` (a 29 February birthday turns over on 1 March in
    other years)."""
    return day.year - birthday.year - ((day.month, day.day) < (birthday.month, birthday.day))


def band_of(birthday: date | None, day: date) -> str:
    if birthday is None:
        return UNKNOWN
    age = age_on(birthday, day)
    for code, low, high in BANDS:
        if age >= low and (high is None or age < high):
            return code
    return UNKNOWN  # born after `day`: no age yet


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def birthdays(code: str, day: date) -> tuple[date | None, date | None]:
    """The birthdays of band `code` on `day`, for a SQL filter: (born after, born on or
    before); None where the band is open. ValueError for ``unknown`` (filter on NULL) or an
    unknown code."""
    for band, low, high in BANDS:
        if band == code:
            born_by = _years_before(day, low)  # turned `low` by `day`
            born_after = _years_before(day, high) if high is not None else None
            return born_after, born_by
    raise ValueError(f"no age band {code!r}")
