"""RFM: recency, frequency and monetary scores 1–5 by quintiles, the published segment map,
the migration matrix between two dates and the members of any cell.

**Input.** One row per member (`REQUIRED_COLUMNS`), for a window that ends on the as-of date
(SQL does the aggregation):

==================  =============================================================================
column              meaning
==================  =============================================================================
``member_id``       the member; unique
``last_purchase``   the day of the member's last purchase on or before the as-of date (a date,
                    a datetime, which counts on its own day, or ISO text); empty (None/NaT)
                    when the member has never bought
``purchases``       the number of purchases in the window (a whole number ≥ 0)
``monetary``        the member's spend in the window (net of refunds; any finite number)
==================  =============================================================================

**Scores.** Recency is the whole days from ``last_purchase`` to the as-of date; fewer days is
better. Frequency is ``purchases`` and monetary is ``monetary``; more is better. Each is
scored over the *scored* members (below) by one rule that treats ties consistently::

    score = 1 + ⌊5 · below / n⌋

where n is the number of scored members and ``below`` the number of them whose value is
strictly worse (for recency: strictly more days ago). That is a rank with ``method="min"``
cut into fifths: a member scores 5 when at least four fifths of the others are strictly
worse, and so on down to 1. Equal values always get the same score (a tied block takes the
score of its lowest place, so ties never push members up); a better value never gets a lower
score; with n distinct values the members split into fifths as evenly as n allows (n = 5 gives
1, 2, 3, 4, 5). When every value is equal, or there is a single member, everybody scores 1:
nobody is better than anybody else. Heavy ties leave some scores empty (if 60% bought once,
they all score 1 on frequency and the next value scores 4).

**Members with no purchase.** A member with no ``last_purchase`` has never bought: recency is
undefined, so such members are left out of the quintiles (they would otherwise crowd the
lowest fifths and shift everybody's cuts), get the scores 0, 0, 0 ("not scored", never a
quintile) and the segment `NO_PURCHASE`. A member who bought before the window but not in it
has a ``last_purchase`` and ``purchases`` = 0: they are scored like everybody else (old
recency, frequency 0, their window spend). ``purchases`` > 0 without a ``last_purchase``, a
``last_purchase`` after the as-of date, a negative or fractional count and an empty or
infinite spend are refused (ValidationFailed).

**Segments.** The 11-segment map of R-F-M codes that is widely reproduced in RFM tutorials
and case studies (e.g. the "Segmentation" sheet of the e-commerce retail case study, and
many SQL/pandas write-ups of the Online Retail data); its 11 segment names are commonly
credited to Putler's RFM analysis guide, which draws them as a grid. It assigns each of the
125 codes (R, F, M each 1–5) to exactly one segment; `SEGMENT_CODES` is that table, copied
code for code. Two versions of the table circulate; they differ only in 231, 241 and 251,
which this module places in About To Sleep (the other version has them in Hibernating).

=====================  ======================================================================
segment                R-F-M codes
=====================  ======================================================================
Champions              555 554 544 545 454 455 445
Loyal Customers        543 444 435 355 354 345 344 335
Potential Loyalist     553 551 552 541 542 533 532 531 452 451 442 441 431 453 433 432 423
                       353 352 351 342 341 333 323
New Customers          512 511 422 421 412 411 311
Promising              525 524 523 522 521 515 514 513 425 424 413 414 415 315 314 313
Need Attention         535 534 443 434 343 334 325 324
About To Sleep         331 321 312 221 213 231 241 251
At Risk                255 254 245 244 253 252 243 242 235 234 225 224 153 152 145 143 142
                       135 134 133 125 124
Can't Lose Them        155 154 144 214 215 115 114 113
Hibernating            332 322 233 232 223 222 132 123 122 212 211
Lost                   111 112 121 131 141 151
=====================  ======================================================================

**Migration.** `migration` counts members by (segment at the first date, segment at the
second): rows are the first date's segments plus ``new`` (members only at the second date),
columns the second date's plus ``gone`` (members only at the first). Every segment (and No
Purchase) is always a row and a column, in `SEGMENTS` order, so two matrices line up.
`transition_matrix` is the same count for any states (the pyramid's layers use it).

Everything is vectorised (one sort per score, a table lookup for the segment).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics.summaries import DateLike, to_day
from core.errors import ValidationFailed
from core.text import N_

REQUIRED_COLUMNS = ("member_id", "last_purchase", "purchases", "monetary")
SCORE_COLUMNS = ("recency_days", "frequency", "monetary", "r", "f", "m", "segment")
NEW = "new"
GONE = "gone"
NO_PURCHASE = "No Purchase"

CHAMPIONS = "Champions"
LOYAL = "Loyal Customers"
POTENTIAL_LOYALIST = "Potential Loyalist"
NEW_CUSTOMERS = "New Customers"
PROMISING = "Promising"
NEED_ATTENTION = "Need Attention"
ABOUT_TO_SLEEP = "About To Sleep"
AT_RISK = "At Risk"
CANT_LOSE = "Can't Lose Them"
HIBERNATING = "Hibernating"
LOST = "Lost"


def _codes(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# The published table (see the module docstring), code for code: segment -> "RFM" codes.
SEGMENT_CODES: dict[str, tuple[str, ...]] = {
    CHAMPIONS: _codes("555 554 544 545 454 455 445"),
    LOYAL: _codes("543 444 435 355 354 345 344 335"),
    POTENTIAL_LOYALIST: _codes(
        "553 551 552 541 542 533 532 531 452 451 442 441 "
        "431 453 433 432 423 353 352 351 342 341 333 323"
    ),
    NEW_CUSTOMERS: _codes("512 511 422 421 412 411 311"),
    PROMISING: _codes("525 524 523 522 521 515 514 513 425 424 413 414 415 315 314 313"),
    NEED_ATTENTION: _codes("535 534 443 434 343 334 325 324"),
    ABOUT_TO_SLEEP: _codes("331 321 312 221 213 231 241 251"),
    AT_RISK: _codes(
        "255 254 245 244 253 252 243 242 235 234 225 224 153 152 145 143 142 135 134 133 125 124"
    ),
    CANT_LOSE: _codes("155 154 144 214 215 115 114 113"),
    HIBERNATING: _codes("332 322 233 232 223 222 132 123 122 212 211"),
    LOST: _codes("111 112 121 131 141 151"),
}
# Every segment a member can have, in display order (best first, No Purchase last).
SEGMENTS: tuple[str, ...] = (*SEGMENT_CODES, NO_PURCHASE)

IntArray = npt.NDArray[np.int64]


def _lookup_table() -> npt.NDArray[np.intp]:
    """table[r, f, m] = the index in SEGMENTS of the segment of (r, f, m); [0, 0, 0] is No
    Purchase. Checks that the published table gives each of the 125 codes exactly once."""
    table = np.full((6, 6, 6), -1, dtype=np.intp)
    table[0, 0, 0] = SEGMENTS.index(NO_PURCHASE)
    for index, codes in enumerate(SEGMENT_CODES.values()):
        for code in codes:
            r, f, m = (int(ch) for ch in code)
            if table[r, f, m] != -1:
                raise RuntimeError(f"RFM code {code} is in two segments")
            table[r, f, m] = index
    if int((table[1:, 1:, 1:] == -1).sum()) != 0:
        raise RuntimeError("The RFM segment table misses a code")
    return table


_SEGMENT_OF = _lookup_table()


def segment_of(r: int, f: int, m: int) -> str:
    """The segment of one (R, F, M) score triple: 1–5 each, or 0, 0, 0 for No Purchase."""
    if (r, f, m) != (0, 0, 0) and not all(1 <= s <= 5 for s in (r, f, m)):
        raise ValidationFailed(
            "value.rfm_score",
            "RFM scores are 1–5 each (or 0, 0, 0), not %(scores)s.",
            scores=f"{r}{f}{m}",
        )
    return SEGMENTS[int(_SEGMENT_OF[r, f, m])]


def quintile_scores(values: npt.ArrayLike) -> IntArray:
    """Scores 1–5 of finite values, higher = better: 1 + ⌊5 · (values strictly lower) / n⌋.
    Equal values get equal scores; a larger value never gets a smaller score."""
    array = np.asarray(values, dtype=np.float64)
    n = len(array)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.isfinite(array).all():
        raise ValidationFailed("value.rfm_value", "Scores need finite values.")
    below = np.searchsorted(np.sort(array, kind="stable"), array, side="left").astype(np.int64)
    return 1 + (5 * below) // n


def empty_scores() -> pd.DataFrame:
    """The frame `score` returns when there are no members."""
    frame = pd.DataFrame(
        {
            "recency_days": pd.Series([], dtype=np.float64),
            "frequency": pd.Series([], dtype=np.int64),
            "monetary": pd.Series([], dtype=np.float64),
            "r": pd.Series([], dtype=np.int64),
            "f": pd.Series([], dtype=np.int64),
            "m": pd.Series([], dtype=np.int64),
            "segment": pd.Series([], dtype=object),
        }
    )
    frame.index.name = "member_id"
    return frame


def _last_days(values: pd.Series) -> npt.NDArray[np.float64]:
    """Days since 1970-01-01 of each last purchase (its own wall-clock day), NaN when empty."""
    try:
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            stamps = values
        else:
            stamps = pd.to_datetime(values)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValidationFailed(
            "value.last_purchase",
            "last_purchase holds a value that is not a date: %(error)s",
            error=str(exc),
        ) from None
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    missing = stamps.isna().to_numpy()
    days = np.full(len(stamps), np.nan)
    known = stamps[~missing].dt.normalize().to_numpy(dtype="datetime64[D]").astype(np.int64)
    days[~missing] = known
    return days


def score(members: pd.DataFrame, as_of: DateLike) -> pd.DataFrame:
    """RFM scores and segment per member, indexed by ``member_id`` (sorted): ``recency_days``
    (float, NaN for No Purchase), ``frequency``, ``monetary``, the scores ``r``, ``f``, ``m``
    (1–5; 0 for No Purchase) and ``segment``. See the module docstring for the rules; raises
    ValidationFailed on a missing column or a value it cannot score."""
    missing = [c for c in REQUIRED_COLUMNS if c not in members.columns]
    if missing:
        raise ValidationFailed(
            "value.columns",
            "The members lack column(s) %(missing)s; expected %(required_columns)s.",
            missing=", ".join(missing),
            required_columns=", ".join(REQUIRED_COLUMNS),
        )
    if members.empty:
        return empty_scores()
    ids = members["member_id"]
    if ids.isna().any():
        raise ValidationFailed("value.member_id", "Every row needs a member id; one is empty.")
    if ids.duplicated().any():
        raise ValidationFailed(
            "value.member_id", "A member appears twice; give one row per member."
        )
    as_of_day = int(np.datetime64(to_day(as_of, N_("The as-of date")), "D").astype(np.int64))

    last = _last_days(members["last_purchase"])
    try:
        counts = members["purchases"].to_numpy(dtype=np.float64, na_value=np.nan)
        spend = members["monetary"].to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(
            "value.number",
            "purchases/monetary hold a value that is not a number: %(error)s",
            error=str(exc),
        ) from None
    if not np.isfinite(counts).all() or (counts < 0).any() or (counts != np.floor(counts)).any():
        raise ValidationFailed(
            "value.purchases", "purchases must be a whole number ≥ 0 for every member."
        )
    if not np.isfinite(spend).all():
        raise ValidationFailed(
            "value.monetary", "monetary must be a finite number for every member."
        )
    bought = ~np.isnan(last)
    if (counts[~bought] > 0).any():
        raise ValidationFailed(
            "value.last_purchase", "A member with purchases needs a last_purchase date."
        )
    recency = as_of_day - last
    if (recency[bought] < 0).any():
        raise ValidationFailed("value.last_purchase", "A last_purchase is after the as-of date.")

    r = np.zeros(len(members), dtype=np.int64)
    f = np.zeros(len(members), dtype=np.int64)
    m = np.zeros(len(members), dtype=np.int64)
    r[bought] = quintile_scores(-recency[bought])  # fewer days ago = better
    f[bought] = quintile_scores(counts[bought])
    m[bought] = quintile_scores(spend[bought])
    segment = np.asarray(SEGMENTS, dtype=object)[_SEGMENT_OF[r, f, m]]
    result = pd.DataFrame(
        {
            "recency_days": recency,
            "frequency": counts.astype(np.int64),
            "monetary": spend,
            "r": r,
            "f": f,
            "m": m,
            "segment": segment,
        },
        index=pd.Index(ids.to_numpy(), name="member_id"),
    )
    return result.sort_index(kind="stable")


def transition_matrix(before: pd.Series, after: pd.Series, states: Sequence[str]) -> pd.DataFrame:
    """Counts of members by (state in `before`, state in `after`), both indexed by member id.
    Rows: `states` then ``new`` (members only in `after`); columns: `states` then ``gone``
    (members only in `before`). Every state is a row and a column; a state outside `states`
    is refused."""
    for label, series in ((N_("first"), before), (N_("second"), after)):
        if series.index.has_duplicates:
            raise ValidationFailed(
                "value.member_id", "A member appears twice at the %(label)s date.", label=label
            )
        unknown = set(series.dropna().unique()) - set(states)
        if unknown or series.isna().any():
            raise ValidationFailed(
                "value.state",
                "Unknown state(s) at the %(label)s date: %(states)s.",
                label=label,
                states=str(sorted(map(str, unknown))),
            )
    rows = [*states, NEW]
    columns = [*states, GONE]
    joined = pd.concat([before.rename("before"), after.rename("after")], axis=1, join="outer")
    row_codes = pd.Categorical(joined["before"].fillna(NEW), categories=rows).codes
    column_codes = pd.Categorical(joined["after"].fillna(GONE), categories=columns).codes
    counts = np.zeros((len(rows), len(columns)), dtype=np.int64)
    np.add.at(counts, (row_codes, column_codes), 1)
    matrix = pd.DataFrame(counts, index=pd.Index(rows), columns=pd.Index(columns))
    matrix.index.name = "from"
    matrix.columns.name = "to"
    return matrix


def migration(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """The segment migration matrix between two `score` results (two as-of dates): counts of
    members by (segment at the first, segment at the second), with ``new``/``gone``."""
    return transition_matrix(first["segment"], second["segment"], SEGMENTS)


def members_of(
    scored: pd.DataFrame,
    *,
    r: int | None = None,
    f: int | None = None,
    m: int | None = None,
    segment: str | None = None,
) -> pd.DataFrame:
    """The rows of a `score` result in one cell, for listing and export: every given criterion
    must hold (a score 0–5, 0 being No Purchase; a segment from `SEGMENTS`); none given means
    everybody. Sorted by member id."""
    keep = np.ones(len(scored), dtype=bool)
    for column, wanted in (("r", r), ("f", f), ("m", m)):
        if wanted is None:
            continue
        if not 0 <= wanted <= 5:
            raise ValidationFailed(
                "value.rfm_score", "An RFM score is 0–5, not %(wanted)s.", wanted=wanted
            )
        keep &= scored[column].to_numpy() == wanted
    if segment is not None:
        if segment not in SEGMENTS:
            raise ValidationFailed(
                "value.segment", "Unknown RFM segment %(segment)s.", segment=repr(segment)
            )
        keep &= scored["segment"].to_numpy() == segment
    return scored[keep].sort_index(kind="stable")
