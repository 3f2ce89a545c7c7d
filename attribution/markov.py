"""Markov attribution, orders 1 to 3, solved exactly: no simulation, same digits every run.

**The chain.** Transient states are `(start)` and, for order k, the tuples of the last k
units (shorter at the start of a path: "a > b > c" at order 2 walks (start) → (a) →
(a, b) → (b, c)); absorbing states are `(conversion)` and `(null)`. Each path of the
statistics, weighted by its conversions + nulls, adds one count to every transition it
makes; its last state goes to `(conversion)` `conversions` times and to `(null)` `nulls`
times. Probabilities are counts over the state's outgoing total (maximum likelihood).

**P(conversion).** With Q the transient-to-transient block and r the column into
`(conversion)`, the fundamental matrix N = (I − Q)⁻¹ gives the expected visits to each
state from `(start)`: x = Nᵀe_start, found by one sparse LU solve of (I − Qᵀ)x = e_start
(`scipy.sparse.linalg.spsolve`, SuperLU, never UMFPACK, never an explicit inverse). Then
P(conversion) = Σ_j x_j r_j, summed with `math.fsum` so the order of terms cannot matter.

**Removal effect** of unit c = 1 − P(conversion with c removed) / P(conversion), where
removing c sends every state *containing* c to `(null)`: those states are dropped from the
system and the probability that led into them is lost. Clamped to [0, 1] against the last
ulp of rounding. **Conversion credits** are the removal effects normalised to the total
conversions.

**Value credits.** A conversion's value depends on how the journey ends, so the value
arriving with a conversion is tied to the last unit before it: v̄(u) = value of the
conversions whose path ends in u ÷ their number (what ChannelAttribution's simulation does
by drawing values per last channel). The expected value of a journey is then
E = Σ_j x_j r_j v̄(last unit of j); the value removal effect is 1 − E(c removed) / E, and
value credits are those effects normalised to the total value. So a unit that tends to
close big purchases, or lead to the units that do, earns more value than conversions;
when every conversion is worth the same the two sets of effects coincide. (With nothing
removed the chain reproduces the data: x_j r_j is exactly the share of journeys converting
from j, so E is the mean value per journey.)

**Deterministic.** States are indexed in sorted order, the matrix is built from integer
counts in that order, SuperLU runs single-threaded on it and sums use `fsum`: the same
statistics give the same floats, and so (via `Attribution.from_shares`) the same credits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.linalg import spsolve

from attribution.credits import CONVERSION_PLACES, Attribution
from attribution.stats import PathStats

MAX_ORDER = 3
START_LABEL = "(start)"
CONVERSION_LABEL = "(conversion)"
NULL_LABEL = "(null)"
STATE_SEPARATOR = " > "

State = tuple[str, ...]
START: State = ()


def states_of(path: tuple[str, ...], order: int) -> list[State]:
    """The transient states a path walks through at `order` (after `(start)`)."""
    return [path[max(0, i - order + 1) : i + 1] for i in range(len(path))]


def state_label(state: State) -> str:
    return START_LABEL if state == START else STATE_SEPARATOR.join(state)


@dataclass(frozen=True)
class MarkovResult:
    """Credits, the removal effects behind them, and the chain for display."""

    order: int
    attribution: Attribution
    removal_effects: Mapping[str, float]
    value_removal_effects: Mapping[str, float]
    p_conversion: float
    expected_value: float  # per journey, in the value's currency
    transitions: pd.DataFrame  # from, to, count, probability


class _Chain:
    """The absorbing chain of one order, with its counts in sorted state order."""

    def __init__(self, stats: PathStats, order: int) -> None:
        moves: dict[tuple[State, State], int] = {}
        to_conversion: dict[State, int] = {}
        to_null: dict[State, int] = {}
        last_count: dict[str, int] = {}
        last_value: dict[str, Decimal] = {}
        for path, counts in stats.items():
            weight = counts.conversions + counts.nulls
            if weight == 0:
                continue
            previous = START
            for state in states_of(path, order):
                moves[previous, state] = moves.get((previous, state), 0) + weight
                previous = state
            to_conversion[previous] = to_conversion.get(previous, 0) + counts.conversions
            to_null[previous] = to_null.get(previous, 0) + counts.nulls
            if counts.conversions:
                last = path[-1]
                last_count[last] = last_count.get(last, 0) + counts.conversions
                last_value[last] = last_value.get(last, Decimal(0)) + counts.value

        self.states: list[State] = sorted({START} | {s for pair in moves for s in pair})
        self.index = {state: i for i, state in enumerate(self.states)}
        size = len(self.states)
        outgoing = np.zeros(size, dtype=np.int64)
        for (source, _), count in moves.items():
            outgoing[self.index[source]] += count
        for state, count in to_conversion.items():
            outgoing[self.index[state]] += count
        for state, count in to_null.items():
            outgoing[self.index[state]] += count
        self.outgoing = outgoing
        self.moves = sorted((self.index[a], self.index[b], n) for (a, b), n in moves.items())
        self.to_conversion = to_conversion
        self.to_null = to_null
        self.r = np.zeros(size)
        self.closing_value = np.zeros(size)  # r_j × v̄(last unit of j)
        for state, count in to_conversion.items():
            if count:
                i = self.index[state]
                self.r[i] = count / outgoing[i]
                mean = float(last_value[state[-1]]) / last_count[state[-1]]
                self.closing_value[i] = self.r[i] * mean

    def solve(self, removed: str | None = None) -> tuple[float, float]:
        """(P(conversion), expected value) with `removed`'s states sent to `(null)`."""
        keep = [i for i, s in enumerate(self.states) if removed is None or removed not in s]
        position = np.full(len(self.states), -1, dtype=np.int64)
        position[keep] = np.arange(len(keep))
        rows: list[int] = []
        cols: list[int] = []
        data: list[float] = []
        for source, target, count in self.moves:
            a, b = position[source], position[target]
            if a < 0 or b < 0:
                continue
            # (I − Qᵀ): the move source → target sits at row target, column source.
            rows.append(int(b))
            cols.append(int(a))
            data.append(-count / self.outgoing[source])
        n = len(keep)
        rows.extend(range(n))
        cols.extend(range(n))
        data.extend([1.0] * n)
        matrix = sparse.coo_array((np.array(data), (np.array(rows), np.array(cols))), shape=(n, n))
        rhs = np.zeros(n)
        rhs[0] = 1.0  # (start) is index 0 in both: () sorts first and is never removed
        visits = np.atleast_1d(spsolve(matrix.tocsc(), rhs, use_umfpack=False))
        r = self.r[keep]
        closing = self.closing_value[keep]
        p = math.fsum((visits * r).tolist())
        value = math.fsum((visits * closing).tolist())
        return p, value

    def transitions(self) -> pd.DataFrame:
        rows: list[tuple[str, str, int, float]] = []
        for source, target, count in self.moves:
            rows.append(
                (
                    state_label(self.states[source]),
                    state_label(self.states[target]),
                    count,
                    count / int(self.outgoing[source]),
                )
            )
        for state in self.states:
            i = self.index[state]
            for label, table in (
                (CONVERSION_LABEL, self.to_conversion),
                (NULL_LABEL, self.to_null),
            ):
                count = table.get(state, 0)
                if count:
                    rows.append((state_label(state), label, count, count / int(self.outgoing[i])))
        order = {state_label(s): i for i, s in enumerate(self.states)}
        order.update({CONVERSION_LABEL: len(order), NULL_LABEL: len(order) + 1})
        rows.sort(key=lambda row: (order[row[0]], order[row[1]]))
        return pd.DataFrame(rows, columns=["from", "to", "count", "probability"])


def _effect(whole: float, without: float) -> float:
    if whole <= 0:
        return 0.0
    return min(1.0, max(0.0, 1.0 - without / whole))


def markov(
    stats: PathStats,
    order: int = 1,
    *,
    conversion_places: int = CONVERSION_PLACES,
    value_places: int | None = None,
) -> MarkovResult:
    """Exact Markov attribution of `stats` at `order` (1 to 3); see the module docstring."""
    if order not in range(1, MAX_ORDER + 1):
        raise ValueError(f"the Markov order must be 1 to {MAX_ORDER}, not {order}")
    chain = _Chain(stats, order)
    p, value = chain.solve()
    effects: dict[str, float] = {}
    value_effects: dict[str, float] = {}
    for channel in stats.channels:
        p_without, value_without = chain.solve(channel)
        effects[channel] = _effect(p, p_without)
        value_effects[channel] = _effect(value, value_without)
    attribution = Attribution.from_shares(
        f"markov_{order}",
        conversion_shares=effects,
        value_shares=value_effects,
        total_conversions=stats.total_conversions,
        total_value=stats.total_value,
        conversion_places=conversion_places,
        value_places=value_places,
    )
    return MarkovResult(
        order=order,
        attribution=attribution,
        removal_effects=effects,
        value_removal_effects=value_effects,
        p_conversion=p,
        expected_value=value,
        transitions=chain.transitions(),
    )
