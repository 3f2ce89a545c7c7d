"""`core.bounds.parse_whole`: the one strict reading of a whole number a person types in a
form (points, counts, limits, ranks). Written as people write numbers, or refused with a
message naming the field; never guessed at, never converted when absurdly long."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.bounds import MAX_BIG_ID, parse_whole
from core.errors import ValidationFailed


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", 0),
        ("42", 42),
        (" 42 ", 42),
        ("-7", -7),
        ("1,234", 1234),
        ("-1,234,567", -1234567),
        ("007", 7),
        (str(MAX_BIG_ID), MAX_BIG_ID),
        (f"-{MAX_BIG_ID}", -MAX_BIG_ID),
    ],
)
def test_whole_numbers_as_people_write_them(text: str, number: int) -> None:
    assert parse_whole(text, "Points") == number


@pytest.mark.parametrize("text", [None, "", "   "])
def test_nothing_typed_is_none(text: str | None) -> None:
    assert parse_whole(text, "Points") is None


@pytest.mark.parametrize(
    "text",
    [
        "1.0",  # a decimal, even a whole one
        "1.5",
        "1e3",  # an exponent
        "+5",  # a plus sign
        "1_000",  # Python's separator
        "1 000",  # a space inside
        "12,34",  # commas not between thousands
        "1,2345",
        ",123",
        "²",  # a digit to str.isdigit, not a number
        "١٢٣",  # Arabic-Indic digits
        "１２",  # full-width digits
        "0x10",
        "abc",
        "--1",
        "-",
        "NaN",
        "1\x00",
    ],
)
def test_anything_else_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_whole(text, "Per member", "per_member_limit")
    assert refused.value.code == "per_member_limit.invalid"
    assert refused.value.message.startswith("Per member: '")
    assert "is not a whole number; write it like 1234 or 1,234." in refused.value.message


def test_a_refusal_quotes_a_long_or_broken_input_safely() -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_whole("x" * 5000, "Count")
    assert len(refused.value.message) < 120 and "…" in refused.value.message
    with pytest.raises(ValidationFailed) as broken:
        parse_whole("1\ud800", "Count")
    broken.value.message.encode("utf-8")  # a lone surrogate is escaped, not carried along


@pytest.mark.parametrize(
    "text", [str(MAX_BIG_ID + 1), "9" * 19, "9" * 20, "1" * 5000, "-" + "9" * 4000]
)
def test_a_number_beyond_a_bigint_is_out_of_range_and_never_converted(text: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_whole(text, "Count", "count")
    assert refused.value.code == "count.range"
    assert refused.value.message == (
        f"Count must be a whole number from {-MAX_BIG_ID:,} to {MAX_BIG_ID:,}."
    )


def test_bounds_are_the_callers() -> None:
    assert parse_whole("10", "Days", low=1, high=10) == 10
    for text in ("0", "11", "-3"):
        with pytest.raises(ValidationFailed) as refused:
            parse_whole(text, "Days", "valid_days", low=1, high=10)
        assert refused.value.code == "valid_days.range"
        assert refused.value.message == "Days must be a whole number from 1 to 10."


@given(st.integers(min_value=-MAX_BIG_ID, max_value=MAX_BIG_ID))
def test_every_whole_number_reads_back_plain_and_grouped(number: int) -> None:
    assert parse_whole(str(number), "N") == number
    assert parse_whole(f"{number:,}", "N") == number
