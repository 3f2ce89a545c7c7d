"""Journeys: which touchpoints led to which conversion. Pure: frames in, plain objects out.

A **journey** is one member's touchpoints before one conversion, in time order, or a run of
touchpoints that led to none (a *null* journey: Markov needs the failures as much as the
successes). The rules, applied per member:

- Conversions split the member's timeline. A touch belongs to the first conversion at or
  after it (a touch at the very instant of a purchase, such as "coupon used", counts for
  that purchase), provided it lies in that conversion's lookback window; two conversions in
  a row with nothing between them give the second an empty journey.
- The lookback window of a conversion at time T is the closed interval [T - lookback, T]:
  a touch exactly on the edge counts. The lookback is `Lookback.acquisition` (30 days) for
  the acquisition kinds (sign-up, first purchase) and `Lookback.other` (90 days) otherwise.
- Touches between two conversions that fall outside the later one's window are not lost:
  they form a null journey (the member saw them and did not convert within the window).
  So do the touches after the member's last conversion. Null journeys are never split by
  time; the caller chooses the end of the data.
- A conversion with no touch in its window has an empty path: it is counted (see
  `PathStats.direct`) but no model can credit it to anyone.
- `collapse_repeats=True` merges consecutive touches of the same unit within a journey into
  one, keeping the latest time (the exposure nearest the conversion, which time decay
  weighs); the default keeps every touch, so "email > email > search" gives email two
  thirds under linear.

The **unit** is the channel or the campaign. In campaign mode a touch without a campaign
counts as `NO_CAMPAIGN`, so its share is visible instead of silently moved elsewhere.
Anonymous visitor ids are resolved to members before this step: the `member` column is
whatever id the journeys should be grouped by.

The aggregated format that ChannelAttribution users already have is read by
`parse_paths_csv` into `PathRecord`s (counts per path, no times: lookback does not apply and
time decay cannot run on it); `attribution.stats.PathStats.from_records` sums them.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.errors import ValidationFailed
from core.text import N_

Unit = Literal["channel", "campaign"]

NO_CAMPAIGN = "(no campaign)"
ACQUISITION_KINDS = frozenset({"signup", "first_purchase"})

TOUCH_COLUMNS = ("member", "channel", "at")
CONVERSION_COLUMNS = ("member", "at", "value", "kind")


@dataclass(frozen=True, slots=True)
class Touch:
    """One touchpoint in unit terms: the channel (or campaign) name and when it happened."""

    unit: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Journey:
    """A member's touches before a conversion (`converted`), or a run that led to none."""

    member: str
    touches: tuple[Touch, ...]
    converted: bool
    value: Decimal = Decimal(0)
    kind: str | None = None
    at: datetime | None = None  # the conversion's time; None for a null journey

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(t.unit for t in self.touches)


@dataclass(frozen=True, slots=True)
class Lookback:
    """How far back a conversion looks for its touches, by conversion kind."""

    acquisition: timedelta = timedelta(days=30)
    other: timedelta = timedelta(days=90)
    acquisition_kinds: frozenset[str] = field(default=ACQUISITION_KINDS)

    def __post_init__(self) -> None:
        if self.acquisition < timedelta(0) or self.other < timedelta(0):
            raise ValidationFailed("attribution.lookback_invalid", "A lookback cannot be negative.")

    def window(self, kind: str | None) -> timedelta:
        return self.acquisition if kind in self.acquisition_kinds else self.other


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationFailed(
            "attribution.frame_invalid",
            "The %(name)s frame lacks the column(s): %(missing)s.",
            name=name,
            missing=", ".join(missing),
        )


_NS_PER_US = 1000


def _nanoseconds(delta: timedelta) -> int:
    return (delta // timedelta(microseconds=1)) * _NS_PER_US


def _times(series: pd.Series, name: str) -> npt.NDArray[np.int64]:
    """Aware times → int64 nanoseconds since the epoch (UTC)."""
    try:
        stamps = pd.to_datetime(series)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(
            "attribution.frame_invalid",
            "The %(name)s column 'at' holds something that is not a time, or mixes zones.",
            name=name,
        ) from exc
    if stamps.isna().any():
        raise ValidationFailed(
            "attribution.frame_invalid", "The %(name)s column 'at' has an empty time.", name=name
        )
    if getattr(stamps.dt, "tz", None) is None:
        raise ValidationFailed(
            "attribution.frame_invalid",
            "The %(name)s times must carry a time zone (UTC in the database).",
            name=name,
        )
    utc = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return utc.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def _coded(values: npt.NDArray[Any], what: str) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Codes into sorted names. Integer ids stay integers (sorted numerically, no text);
    otherwise only the distinct values are stripped, checked and sorted (millions of rows,
    far fewer names), and re-coded in case stripping merged two."""
    if values.dtype.kind in "iu":
        codes, uniques = pd.factorize(values, sort=True)
        return codes.astype(np.int64), [str(u) for u in uniques]
    raw_codes, raw_names = pd.factorize(values)
    if (raw_codes < 0).any():
        raise ValidationFailed(
            "attribution.frame_invalid", "Every row needs a %(what)s; one is empty.", what=what
        )
    stripped = [str(name).strip() for name in raw_names]
    if not all(stripped):
        raise ValidationFailed(
            "attribution.frame_invalid", "Every row needs a %(what)s; one is blank.", what=what
        )
    names = sorted(set(stripped))
    index = {name: i for i, name in enumerate(names)}
    remap = np.array([index[name] for name in stripped], dtype=np.int64)
    return remap[raw_codes], names


def _member_ids(touchpoints: pd.DataFrame, conversions: pd.DataFrame) -> npt.NDArray[Any]:
    """Both frames' member ids in one array: integers if both columns are integers."""
    touch, conv = touchpoints["member"], conversions["member"]
    if touch.dtype.kind in "iu" and conv.dtype.kind in "iu":
        return np.concatenate([touch.to_numpy(np.int64), conv.to_numpy(np.int64)])
    return np.concatenate([touch.to_numpy(dtype=object), conv.to_numpy(dtype=object)])


def _unit_values(touchpoints: pd.DataFrame, unit: Unit) -> npt.NDArray[np.object_]:
    if unit == "channel":
        return touchpoints["channel"].to_numpy(dtype=object)
    if "campaign" not in touchpoints.columns:
        raise ValidationFailed(
            "attribution.frame_invalid",
            "Campaign as the unit needs a 'campaign' column in the touchpoints.",
        )
    campaign = touchpoints["campaign"]
    text = campaign.astype(object).where(campaign.notna(), "").map(lambda v: str(v).strip())
    return text.where(text != "", NO_CAMPAIGN).to_numpy(dtype=object)


def _values(series: pd.Series) -> list[Decimal]:
    """Conversion values as Decimals (each distinct value parsed once)."""
    codes, uniques = pd.factorize(series.astype(object))
    if (codes < 0).any():
        raise ValidationFailed(
            "attribution.frame_invalid", "Every conversion needs a value; one is empty."
        )
    parsed: list[Decimal] = []
    for value in uniques:
        try:
            amount = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValidationFailed(
                "attribution.frame_invalid",
                "A conversion value is not a number: %(value)s.",
                value=repr(value),
            ) from exc
        if not amount.is_finite() or amount < 0:
            raise ValidationFailed(
                "attribution.frame_invalid",
                "A conversion value must be a number ≥ 0, not %(value)s.",
                value=repr(value),
            )
        parsed.append(amount)
    return [parsed[c] for c in codes.tolist()]


def _kinds(series: pd.Series) -> list[str | None]:
    missing = series.isna().tolist()
    return [None if gone else str(v) for v, gone in zip(series.tolist(), missing, strict=True)]


def _datetimes(nanoseconds: list[int]) -> list[datetime]:
    stamps = pd.to_datetime(pd.Series(nanoseconds, dtype="int64"), utc=True)
    return [stamp.to_pydatetime() for stamp in stamps]


@dataclass(frozen=True)
class JourneyTable:
    """Every journey of a pair of frames, in columns: where the journey rules are applied.

    Journeys are numbered 0..n−1 in (member, time) order. Journey j's touches are
    `touch_unit[starts[j]:ends[j]]` (codes into `units`) at `touch_ns[...]`; its conversion
    is `conversion[j]` (an index into the `conv_*` lists, in the same sorted order) or −1
    for a null journey. `build_journeys` and `attribution.stats.path_stats` both read this,
    so the rules exist once.
    """

    units: tuple[str, ...]
    members: tuple[str, ...]
    touch_unit: list[int]
    touch_ns: list[int]
    starts: list[int]
    ends: list[int]
    member: list[int]
    conversion: list[int]
    conv_ns: list[int]
    conv_value: list[Decimal]
    conv_kind: list[str | None]

    def __len__(self) -> int:
        return len(self.starts)

    def journeys(self) -> list[Journey]:
        """The table as `Journey` objects (with times, as time decay needs)."""
        touch_at = _datetimes(self.touch_ns)
        conv_at = _datetimes(self.conv_ns)
        out: list[Journey] = []
        for j in range(len(self)):
            touches = tuple(
                Touch(self.units[self.touch_unit[i]], touch_at[i])
                for i in range(self.starts[j], self.ends[j])
            )
            k = self.conversion[j]
            member = self.members[self.member[j]]
            if k < 0:
                out.append(Journey(member, touches, converted=False))
            else:
                out.append(
                    Journey(
                        member,
                        touches,
                        converted=True,
                        value=self.conv_value[k],
                        kind=self.conv_kind[k],
                        at=conv_at[k],
                    )
                )
        return out


def journey_table(
    touchpoints: pd.DataFrame,
    conversions: pd.DataFrame,
    *,
    unit: Unit = "channel",
    lookback: Lookback | None = None,
    collapse_repeats: bool = False,
) -> JourneyTable:
    """Apply the journey rules (module docstring) to whole frames at once.

    How, without a Python loop per touch: touches and conversions are sorted together by
    (member, time, touch first, row); each touch's next conversion is read off a running
    count of the conversions before it; that conversion's window decides whether
    the touch counts for it or joins the null journey before it; touches after a member's
    last conversion form the member's trailing null journey. A journey is identified by
    (member, slot): slot 2i is the null run before the member's i-th conversion, 2i + 1 the
    i-th conversion itself, 2n the trailing run; along the sorted touches the keys never
    decrease, so every journey is one contiguous slice.
    """
    lookback = lookback or Lookback()
    _require(touchpoints, TOUCH_COLUMNS, "touchpoints")
    _require(conversions, CONVERSION_COLUMNS, "conversions")

    touch_ns = _times(touchpoints["at"], "touchpoints")
    conv_ns = _times(conversions["at"], "conversions")
    conv_value = _values(conversions["value"])
    conv_kind = _kinds(conversions["kind"])
    acquisition = np.array([kind in lookback.acquisition_kinds for kind in conv_kind], dtype=bool)
    conv_window = np.where(
        acquisition, _nanoseconds(lookback.acquisition), _nanoseconds(lookback.other)
    ).astype(np.int64)

    member_codes, member_names = _coded(_member_ids(touchpoints, conversions), "member")
    n_touch = len(touchpoints)
    n_conv = len(conversions)
    unit_codes, unit_names = _coded(_unit_values(touchpoints, unit), unit)

    # One stream of events sorted by (member, time, touches before conversions, row): a
    # touch at a conversion's instant comes before it, ties keep row order. Each touch's
    # next conversion is the number of conversions sorted before it, if of its member.
    is_conv = np.concatenate([np.zeros(n_touch, dtype=np.int8), np.ones(n_conv, dtype=np.int8)])
    rows = np.concatenate([np.arange(n_touch), np.arange(n_conv)])
    event_ns = np.concatenate([touch_ns, conv_ns])
    order = np.lexsort((rows, is_conv, event_ns, member_codes))
    sorted_conv = is_conv[order].astype(bool)
    conversions_before = np.cumsum(sorted_conv) - sorted_conv
    t_order = rows[order[~sorted_conv]]
    c_order = rows[order[sorted_conv]]
    nxt = conversions_before[~sorted_conv]

    t_member = member_codes[:n_touch][t_order]
    t_ns, t_unit = touch_ns[t_order], unit_codes[t_order]
    c_member = member_codes[n_touch:][c_order]
    c_ns, c_window = conv_ns[c_order], conv_window[c_order]
    c_value = [conv_value[i] for i in c_order.tolist()]
    c_kind = [conv_kind[i] for i in c_order.tolist()]

    n_members = len(member_names)
    conv_count = np.bincount(c_member, minlength=n_members)
    conv_first = np.concatenate([[0], np.cumsum(conv_count)[:-1]]).astype(np.int64)
    conv_rank = np.arange(n_conv, dtype=np.int64) - conv_first[c_member]
    base = 2 * int(conv_count.max(initial=0)) + 1

    if n_conv:
        capped = np.minimum(nxt, n_conv - 1)
        has_next = (nxt < n_conv) & (c_member[capped] == t_member)
        counted = has_next & (t_ns >= c_ns[capped] - c_window[capped])
        slot = np.where(
            has_next, 2 * conv_rank[capped] + counted.astype(np.int64), 2 * conv_count[t_member]
        )
    else:
        slot = np.zeros(n_touch, dtype=np.int64)
    t_journey = t_member * base + slot

    if collapse_repeats and n_touch:
        # a touch is dropped when the next one is the same unit in the same journey, so each
        # run keeps its latest touch
        same_next = (t_journey[:-1] == t_journey[1:]) & (t_unit[:-1] == t_unit[1:])
        keep = np.concatenate([~same_next, [True]])
        t_journey, t_ns, t_unit = t_journey[keep], t_ns[keep], t_unit[keep]

    c_journey = c_member * base + 2 * conv_rank + 1
    # both are sorted already: a stable merge sort of the two runs, then drop repeats
    merged = np.sort(np.concatenate([t_journey, c_journey]), kind="stable")
    keys = merged[np.concatenate([[True], merged[1:] != merged[:-1]])] if len(merged) else merged
    starts = np.searchsorted(t_journey, keys, side="left")
    ends = np.searchsorted(t_journey, keys, side="right")
    journey_member = keys // base
    journey_slot = keys % base
    is_conversion = journey_slot % 2 == 1
    conversion = np.where(is_conversion, conv_first[journey_member] + (journey_slot - 1) // 2, -1)
    return JourneyTable(
        units=tuple(unit_names),
        members=tuple(member_names),
        touch_unit=t_unit.tolist(),
        touch_ns=t_ns.tolist(),
        starts=starts.tolist(),
        ends=ends.tolist(),
        member=journey_member.tolist(),
        conversion=conversion.tolist(),
        conv_ns=c_ns.tolist(),
        conv_value=c_value,
        conv_kind=c_kind,
    )


def build_journeys(
    touchpoints: pd.DataFrame,
    conversions: pd.DataFrame,
    *,
    unit: Unit = "channel",
    lookback: Lookback | None = None,
    collapse_repeats: bool = False,
) -> list[Journey]:
    """Every journey of every member in the frames (see the module docstring for the rules).

    `touchpoints`: `member`, `channel`, `at` (aware), and `campaign` for the campaign unit.
    `conversions`: `member`, `at` (aware), `value` (≥ 0), `kind` (e.g. ``signup``,
    ``first_purchase``, ``purchase``). Ties in time keep the frames' row order. Members come
    out sorted by id (numerically when both frames hold integer ids, which is also much
    faster on millions of rows), each member's journeys in time order: deterministic.
    """
    return journey_table(
        touchpoints,
        conversions,
        unit=unit,
        lookback=lookback,
        collapse_repeats=collapse_repeats,
    ).journeys()


# --- The aggregated format (ChannelAttribution's `path`, `total_conversions`, ...) ---------

PATH_COLUMNS = ("path", "total_conversions", "total_conversion_value", "total_null")
REQUIRED_PATH_COLUMNS = ("path", "total_conversions")
PATH_SEPARATOR = ">"
MAX_REPORTED_PROBLEMS = 20

_COUNT = re.compile(r"\d+(\.0*)?")
_AMOUNT = re.compile(r"\d+(\.\d+)?")


@dataclass(frozen=True, slots=True)
class PathRecord:
    """One line of an aggregated paths file: a path and its counts."""

    path: tuple[str, ...]
    conversions: int
    value: Decimal
    nulls: int
    line: int = 0


def detect_delimiter(header: str) -> str:
    """`;` or `,`: whichever splits the header into known column names.

    ChannelAttribution writes `;` (its sample data) and spreadsheets write `,`; a header has
    no other place for either, so the header alone decides.
    """
    for delimiter in (";", ","):
        names = [n.strip().strip('"').lower() for n in header.split(delimiter)]
        if len(names) > 1 and set(names) <= set(PATH_COLUMNS) and "path" in names:
            return delimiter
    raise ValidationFailed(
        "attribution.paths_header",
        "Line 1: the header must name the columns path and total_conversions (optionally "
        "total_conversion_value and total_null), separated by ';' or ','.",
    )


def _count(text: str, column: str) -> int:
    if not _COUNT.fullmatch(text):
        raise ValueError(f"{column} must be a whole number ≥ 0, not {text!r}")
    return int(Decimal(text))


def _amount(text: str) -> Decimal:
    if not _AMOUNT.fullmatch(text):
        raise ValueError(f"total_conversion_value must be a number ≥ 0 like 12.50, not {text!r}")
    return Decimal(text)


def split_path(text: str, separator: str = PATH_SEPARATOR) -> tuple[str, ...]:
    """ "email > search > email" → ("email", "search", "email"); empty steps are refused."""
    steps = tuple(step.strip() for step in text.split(separator))
    if not text.strip():
        raise ValueError("the path is empty")
    if any(not step for step in steps):
        raise ValueError(f"the path {text!r} has an empty step")
    return steps


def parse_paths_csv(text: str | bytes, *, separator: str = PATH_SEPARATOR) -> list[PathRecord]:
    """Strictly parse an aggregated paths file; every problem names its line.

    Columns: `path` and `total_conversions` required, `total_conversion_value` and
    `total_null` optional (0 when absent), nothing else. `;` or `,` separated (detected from
    the header), quotes allowed. Counts are whole numbers ≥ 0 ("3" or "3.0"); values plain
    decimals ≥ 0 with a point ("1234.56", no thousands separators: in a `,` file they would
    be ambiguous). A value without conversions is refused. Blank lines are skipped; repeated
    paths are allowed (they are summed later). All problems are reported at once
    (`details` lists `{line, message}`), up to `MAX_REPORTED_PROBLEMS`.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationFailed(
                "attribution.paths_encoding", "The paths file must be UTF-8 text."
            ) from exc
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ValidationFailed("attribution.paths_empty", "The paths file is empty.")
    delimiter = detect_delimiter(lines[0])
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ValidationFailed(
            "attribution.paths_invalid",
            "Line %(line)s: %(error)s.",
            line=reader.line_num,
            error=str(exc),
        ) from exc
    header = [name.strip().lower() for name in rows[0]]
    duplicated = sorted({n for n in header if header.count(n) > 1})
    if duplicated or not set(REQUIRED_PATH_COLUMNS) <= set(header):
        raise ValidationFailed(
            "attribution.paths_header",
            (
                "Line 1: the header must name path and total_conversions once each "
                "(found: %(header)s)."
            ),
            header=", ".join(header),
        )
    index = {name: header.index(name) for name in header}
    records: list[PathRecord] = []
    problems: list[dict[str, object]] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            if len(row) != len(header):
                raise ValueError(f"expected {len(header)} fields, found {len(row)}")
            cell = {name: row[i].strip() for name, i in index.items()}
            conversions = _count(cell["total_conversions"], "total_conversions")
            value = _amount(cell.get("total_conversion_value", "0") or "0")
            nulls = _count(cell.get("total_null", "0") or "0", "total_null")
            if value > 0 and conversions == 0:
                raise ValueError("a conversion value without conversions")
            records.append(
                PathRecord(split_path(cell["path"], separator), conversions, value, nulls, number)
            )
        except ValueError as exc:
            problems.append({"line": number, "message": str(exc)})
    if problems:
        shown = problems[:MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(shown)
        raise ValidationFailed(
            "attribution.paths_invalid",
            N_("%(list)s; and %(more)s more.") if more else N_("%(list)s."),
            {"problems": problems},
            list="; ".join(f"Line {p['line']}: {p['message']}" for p in shown),
            more=more,
        )
    return records
