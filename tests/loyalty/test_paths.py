"""Every path a purchase can take writes the same rows: a differential test (hypothesis).

A random program (earn rate, tier ladder and multipliers, bonus rules of every kind, first
purchase, repeat and referral rewards, return window, expiry policy, tier metric), three
members (one in debt, one referred by another, some held out of the campaign: its bonus rules
skip them and its coupons are not given to them) and a random sequence of steps (purchases,
back-dated ones too, with channels, campaigns, category lines and coupons; retries; partial and
full refunds; reward redemptions; nightly job runs) are applied three ways, each in its own
savepoint of one transaction:

- `general`: the unit of work (`purchases.FAST_PATH` off);
- `fast`: `loyalty/posting.py` wherever it applies;
- `import`: every run of consecutive purchases a CSV can carry goes in as one file, its rows
  shuffled; the rest through the services.

The services post each run in time order, the order an import applies a file (see
`loyalty/history.py`). Afterwards every purchase is posted again, and every answer, replay,
ledger entry (with its full idempotency key), lot, draw, purchase, refund, tier move, referral,
coupon and member must be equal across the paths. Database ids differ between savepoints on
PostgreSQL, so ids are renamed to stable labels (a purchase by its external id, a lot by the
key of the entry that credited it) before comparing.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from campaigns.models import Campaign, Channel
from core.accounts import users
from core.audit import Actor
from core.errors import RetainError
from loyalty import audiences, coupons, imports, jobs, purchases, rewards
from loyalty import program as program_settings
from loyalty.models import (
    BonusRule,
    Coupon,
    LedgerEntry,
    Lot,
    LotDraw,
    Member,
    Purchase,
    Redemption,
    Referral,
    Refund,
    TierChange,
)
from loyalty.purchases import Line, PurchaseInput, RefundInput
from tests.campaigns.conftest import Staff, make_campaign
from tests.loyalty.conftest import ACTOR, BASE, T0, ZONE, Shop

PATHS = ("general", "fast", "import")
LABELS = ("A", "B", "C")  # B starts in debt; C was referred by A


@dataclass
class World:
    """What every path shares, committed in the test's outer transaction."""

    connection: Connection
    campaign_code: str
    batch_id: int
    reward_id: int


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    actors = {}
    for role in ("marketer", "finance", "admin"):
        user = users.create(
            session,
            Actor.system(),
            email=f"paths-{role}@example.com",
            name=role.title(),
            roles=[role],
            password="long-password-1",
        )
        actors[role] = Actor("user", user.email, user_id=user.id, roles=frozenset({role}))
    campaign = make_campaign(session, Staff(**actors), code="PATHS26")
    batch = coupons.create_batch(
        session,
        ACTOR,
        name="Ten off",
        campaign_id=campaign.id,  # a purchase using one counts for the campaign
        kind="fixed",
        currency=BASE,
        value=Decimal(10),
        valid_days=400,
    )
    reward = rewards.save(session, ACTOR, name="Mug", points_cost=150, batch_id=batch.id)
    session.commit()
    yield World(connection, campaign.code, batch.id, reward.id)
    session.close()
    outer.rollback()
    connection.close()


# ---------------------------------------------------------------- the random scenario


@dataclass(frozen=True)
class Buy:
    member: str | None
    hours: int  # after T0
    amount: Decimal
    channel: str | None = None
    campaign: bool = False
    lines: bool = False
    coupon: bool = False


@dataclass(frozen=True)
class Retry:
    of: int  # the nth purchase so far


@dataclass(frozen=True)
class RefundStep:
    of: int
    share: Decimal | None  # None: everything left
    hours_later: int


@dataclass(frozen=True)
class Redeem:
    member: str
    hours: int


@dataclass(frozen=True)
class Jobs:
    hours: int


Step = Buy | Retry | RefundStep | Redeem | Jobs


@dataclass
class Scenario:
    program: dict[str, Any]
    ladder: list[tuple[int, Decimal]]  # silver and gold: threshold, multiplier
    rules: list[dict[str, Any]]
    debt: int
    steps: list[Step]
    shuffle: int  # the seed an import shuffles its rows with
    held_out: tuple[str, ...] = ()  # members the campaign holds out (`loyalty.audiences`)


def _rule(n: int) -> st.SearchStrategy[dict[str, Any]]:
    day = st.integers(-3, 20).map(lambda d: date(2026, 3, 2) + timedelta(days=d))
    return st.fixed_dictionaries(
        {
            "name": st.just(f"Rule {n}"),
            "priority": st.integers(1, 4),
            "channel": st.sampled_from([None, "in_store", "wechat"]),
            "campaign": st.booleans(),
            "category": st.sampled_from([None, None, "tea"]),
            "min_spend": st.sampled_from([None, Decimal(50), Decimal(200)]),
            "multiplier": st.sampled_from([None, Decimal("1.5"), Decimal(2), Decimal(3)]),
            "fixed_points": st.sampled_from([10, 55, 200]),
            "stop_further": st.booleans(),
            "dates": st.one_of(st.none(), st.tuples(day, day).map(sorted)),
        }
    )


_buy = st.builds(
    Buy,
    member=st.sampled_from(["A", "A", "B", "C", None]),
    # Whole days often, so purchases fall exactly on a window's edge; mostly within a
    # fortnight, so repeat windows and tiers come into play.
    hours=st.one_of(st.integers(0, 14).map(lambda d: d * 24), st.integers(0, 24 * 40)),
    amount=st.integers(500, 150_000).map(lambda c: Decimal(c).scaleb(-2)),
    channel=st.sampled_from([None, "in_store", "wechat"]),
    campaign=st.booleans(),
    lines=st.sampled_from([False, False, True]),
    coupon=st.sampled_from([False, False, False, True]),
)
_other = st.one_of(
    st.builds(Retry, of=st.integers(0, 30)),
    st.builds(
        RefundStep,
        of=st.integers(0, 30),
        share=st.sampled_from([None, Decimal("0.3"), Decimal("0.5")]),
        hours_later=st.integers(1, 24 * 5),
    ),
    st.builds(Redeem, member=st.sampled_from(LABELS), hours=st.integers(0, 24 * 40)),
    st.builds(
        Jobs, hours=st.one_of(st.integers(0, 20).map(lambda d: d * 24), st.integers(0, 1200))
    ),
)
# Runs of purchases (what an import takes as one file) between other steps.
_steps = st.lists(
    st.tuples(st.lists(_buy, min_size=1, max_size=6), st.lists(_other, max_size=2)),
    min_size=1,
    max_size=4,
).map(lambda parts: [step for buys, others in parts for step in (*buys, *others)])
scenarios = st.builds(
    Scenario,
    program=st.fixed_dictionaries(
        {
            "earn_rate": st.sampled_from([Decimal(1), Decimal("0.5"), Decimal(2)]),
            "return_window_days": st.sampled_from([0, 0, 3, 7]),
            "tier_metric": st.sampled_from(["points", "spend"]),
            "expiry_policy": st.sampled_from(
                ["days_after_active", "end_of_month", "end_of_next_year", "never"]
            ),
            "expiry_n": st.sampled_from([0, 5, 20]),
            "first_purchase_bonus": st.sampled_from([0, 200, 200]),
            "repeat_count": st.sampled_from([2, 3]),
            "repeat_days": st.sampled_from([1, 7, 30]),
            "repeat_bonus": st.sampled_from([0, 300, 300]),
            "referral_min_amount": st.sampled_from([Decimal(0), Decimal(100)]),
            "referrer_points": st.sampled_from([0, 500]),
            "referee_points": st.sampled_from([0, 300]),
        }
    ),
    ladder=st.tuples(
        st.tuples(st.integers(200, 2000), st.sampled_from([Decimal(1), Decimal("1.25")])),
        st.tuples(st.integers(100, 3000), st.sampled_from([Decimal("1.5"), Decimal(2)])),
    ).map(lambda t: [t[0], (t[0][0] + t[1][0], t[1][1])]),
    rules=st.integers(0, 4).flatmap(lambda k: st.tuples(*[_rule(n) for n in range(k)])).map(list),
    debt=st.sampled_from([0, 150, 600]),
    steps=_steps,
    shuffle=st.integers(0, 1000),
    held_out=st.sampled_from([(), (), ("A",), ("B",), ("A", "C")]),
)


# ---------------------------------------------------------------- applying it


@dataclass
class Run:
    """One path's run: its session, members and what each step answered."""

    db: Session
    world: World
    path: str
    members: dict[str, Member] = field(default_factory=dict)
    coupons: dict[str, list[str]] = field(default_factory=dict)
    answers: list[Any] = field(default_factory=list)
    bought: list[tuple[Buy, PurchaseInput]] = field(default_factory=list)
    written: dict[str, Any] = field(default_factory=dict)


def _setup(run: Run, scenario: Scenario) -> None:
    db, shop = run.db, Shop(run.db)
    shop.program(**scenario.program)
    # The higher tiers out of the way first, so the ladder stays in order after every step.
    top = ("platinum", "Platinum", 3)
    (silver, silver_x), (gold, gold_x) = scenario.ladder
    for (code, name, rank), threshold, multiplier in (
        (top, 10**12, Decimal(2)),
        (("gold", "Gold", 2), 10**11, gold_x),
        (("silver", "Silver", 1), silver, silver_x),
        (("gold", "Gold", 2), gold, gold_x),
        (top, gold + 4000, Decimal(2)),
    ):
        program_settings.save_tier(
            db, ACTOR, code=code, name=name, rank=rank, threshold=threshold, multiplier=multiplier
        )
    campaign = db.scalar(select(Campaign).where(Campaign.code == run.world.campaign_code))
    assert campaign is not None
    channels = dict(db.execute(select(Channel.code, Channel.id)).all())
    for rule in scenario.rules:
        dates = rule["dates"] or (None, None)
        program_settings.save_rule(
            db,
            ACTOR,
            name=rule["name"],
            priority=rule["priority"],
            channel_id=channels[rule["channel"]] if rule["channel"] else None,
            campaign_id=campaign.id if rule["campaign"] else None,
            category=rule["category"],
            min_spend=rule["min_spend"],
            multiplier=rule["multiplier"],
            fixed_points=None if rule["multiplier"] else rule["fixed_points"],
            stop_further=rule["stop_further"],
            starts_on=dates[0],
            ends_on=dates[1],
        )
    joined = T0 - timedelta(days=30)
    run.members["A"] = shop.join("Alpha", phone="13900000001", at=joined)
    run.members["B"] = shop.join("Beta", phone="13900000002", at=joined)
    run.members["C"] = shop.join(
        "Gamma", phone="13900000003", at=joined, referral=run.members["A"].referral_code
    )
    if scenario.debt:
        rewards.adjust(
            db,
            ACTOR,
            run.members["B"].id,
            -scenario.debt,
            reason="Correction",
            key="debt",
            at=joined,
            zone=ZONE,
        )
    # The campaign's audience, frozen with its holdout: every path reads it as a fact.
    audiences.freeze(
        db,
        campaign.id,
        [m.id for m in run.members.values()],
        [label in scenario.held_out for label in run.members],
    )
    for label, member in run.members.items():
        if label in scenario.held_out:  # held out: not given the campaign's coupons
            continue
        run.coupons[label] = [
            coupons.issue(db, ACTOR, run.world.batch_id, member, reason="Mailing", at=joined).code
            for _ in range(2)
        ]
    db.flush()


def _input(run: Run, buy: Buy, n: int) -> PurchaseInput:
    member = run.members[buy.member] if buy.member else None
    codes: tuple[str, ...] = ()
    if buy.coupon:
        # The first of the member's coupons not used by an earlier purchase in the scenario.
        used = {c for _, data in run.bought for c in data.coupon_codes}
        mine = run.coupons.get(buy.member or "", [])
        free = [c for c in mine if c not in used]
        codes = tuple(free[:1])
    lines: tuple[Line, ...] = ()
    if buy.lines:
        tea = (buy.amount * Decimal("0.6")).quantize(Decimal("0.01"))
        lines = (Line("TEA-1", 1, tea, "Tea"), Line("CUP-1", 2, Decimal("5.00"), "cups"))
    return PurchaseInput(
        source="pos",
        external_id=f"P{n}",
        occurred_at=T0 + timedelta(hours=buy.hours),
        amount=buy.amount,
        currency=BASE,
        member_id=member.id if member else None,
        channel=buy.channel,
        campaign_code=run.world.campaign_code if buy.campaign else None,
        coupon_codes=codes,
        lines=lines,
    )


def _answer(outcome: purchases.Outcome) -> tuple[Any, ...]:
    move = outcome.tier_change
    return (
        [(e.points, e.reason, e.rule) for e in outcome.earned],
        outcome.points,
        outcome.pending_until,
        None if move is None else (move.from_tier, move.to_tier, move.reason),
        outcome.referral,
        outcome.balance,
        [(r.discount, r.currency) for r in outcome.coupons],
        outcome.purchase.base_amount,
    )


def _attempt(run: Run, action: Any) -> Any:
    """One business action in its own savepoint, as a request's transaction: an error
    leaves nothing behind and is part of the answer."""
    try:
        with run.db.begin_nested():
            return action()
    except RetainError as error:
        return ("error", error.code)


def _post(run: Run, data: PurchaseInput) -> Any:
    def post() -> Any:
        return _answer(purchases.record(run.db, ACTOR, data, base_currency=BASE, zone=ZONE))

    return _attempt(run, post)


def _csv(run: Run, rows: list[PurchaseInput], seed: int) -> bytes:
    numbers = {m.id: m.number for m in run.members.values()}
    lines = [
        "source,external_id,occurred_at,amount,currency,member_number,channel,"
        "campaign_code,coupon_codes"
    ]
    for data in _shuffled(rows, seed):
        lines.append(
            ",".join(
                [
                    data.source,
                    data.external_id,
                    data.occurred_at.isoformat(),
                    f"{data.amount}",
                    data.currency,
                    numbers[data.member_id] if data.member_id else "",
                    data.channel or "",
                    data.campaign_code or "",
                    ";".join(data.coupon_codes),
                ]
            )
        )
    return ("\n".join(lines) + "\n").encode()


def _shuffled(rows: list[PurchaseInput], seed: int) -> list[PurchaseInput]:
    """The order of the file's rows."""
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)  # noqa: S311 - test data, nothing secret
    return shuffled


def _groups(steps: list[Step]) -> Iterator[list[Step]]:
    """Runs of consecutive purchases a CSV row can carry (no lines), and single steps."""
    run: list[Step] = []
    for step in steps:
        if isinstance(step, Buy) and not step.lines:
            run.append(step)
            continue
        if run:
            yield run
            run = []
        yield [step]
    if run:
        yield run


def _import(run: Run, data: bytes) -> tuple[int, list[tuple[str, str]]]:
    connection = run.db.connection()

    def factory() -> Session:
        return Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    report = imports.import_purchases(factory, ACTOR, data, base=BASE, zone=ZONE)
    return report.imported, [(r["external_id"], r["code"]) for r in report.refused]


def _buys(run: Run, group: list[Buy], seed: int) -> None:
    start = len(run.bought)
    inputs = [_input(run, buy, start + n) for n, buy in enumerate(group)]
    run.bought += zip(group, inputs, strict=True)
    if run.path == "import" and not group[0].lines:
        body = _csv(run, inputs, seed)
        run.answers.append(("import", _attempt(run, partial(_import, run, body))))
        run.db.expire_all()
        return
    # In time order, ties in file order: the order an import applies a file.
    for data in sorted(_shuffled(inputs, seed), key=lambda d: d.occurred_at):
        run.answers.append((data.external_id, _post(run, data)))


def _refund(run: Run, step: RefundStep, n: int) -> Any:
    buy, data = run.bought[step.of % len(run.bought)]
    amount = None if step.share is None else (buy.amount * step.share).quantize(Decimal("0.01"))
    refund = RefundInput(
        source="pos",
        external_id=f"R{n}",
        purchase_source="pos",
        purchase_external_id=data.external_id,
        occurred_at=data.occurred_at + timedelta(hours=step.hours_later),
        amount=amount,
    )
    out = purchases.refund(run.db, ACTOR, refund, base_currency=BASE, zone=ZONE)
    return (out.points_reversed, out.coupon_restored, out.referral_cancelled)


def _redeem(run: Run, step: Redeem, n: int) -> Any:
    member = run.members[step.member]
    at = T0 + timedelta(hours=step.hours)
    done = rewards.redeem(run.db, ACTOR, member.id, run.world.reward_id, key=f"k{n}", at=at)
    return done.entry.points


def _jobs(run: Run, step: Jobs) -> Any:
    at = T0 + timedelta(hours=step.hours)
    return {name: jobs.run(run.db, name, at, ZONE) for name in jobs.JOBS}


def _apply(run: Run, scenario: Scenario) -> None:
    for n, group in enumerate(_groups(scenario.steps)):
        first = group[0]
        if isinstance(first, Buy):
            _buys(run, group, scenario.shuffle)  # type: ignore[arg-type]
        elif isinstance(first, Retry) and run.bought:
            _, data = run.bought[first.of % len(run.bought)]
            run.answers.append(("retry", _post(run, data)))
        elif isinstance(first, RefundStep) and run.bought:
            run.answers.append(("refund", _attempt(run, partial(_refund, run, first, n))))
        elif isinstance(first, Redeem):
            run.answers.append(("redeem", _attempt(run, partial(_redeem, run, first, n))))
        elif isinstance(first, Jobs):
            run.answers.append(("jobs", _attempt(run, partial(_jobs, run, first))))
    # Every purchase again: each replays its first answer, whichever path wrote it.
    run.answers.append(("replays", [_post(run, data) for _, data in run.bought]))


# ---------------------------------------------------------------- what was written


class Names:
    """Stable labels for database ids (ids differ between savepoints on PostgreSQL)."""

    def __init__(self, db: Session, run: Run) -> None:
        self.member = {m.id: label for label, m in run.members.items()}
        self.numbers = {m.number: label for label, m in run.members.items()}
        self.purchase = dict(db.execute(select(Purchase.id, Purchase.external_id)).all())
        self.refund = dict(db.execute(select(Refund.id, Refund.external_id)).all())
        self.rule = dict(db.execute(select(BonusRule.id, BonusRule.name)).all())
        self.referral = {
            rid: self.member.get(referee, "?")
            for rid, referee in db.execute(select(Referral.id, Referral.referee_id)).all()
        }
        self.coupon = {
            code: f"{self.member.get(mid or 0, 'bearer')}:{n}"
            for n, (code, mid) in enumerate(
                db.execute(select(Coupon.code, Coupon.member_id).order_by(Coupon.id)).all()
            )
        }
        self.lot: dict[int, str] = {}

    def text(self, value: str | None) -> str | None:
        if value is None:
            return None
        subs = (
            (r"purchase:(\d+)", "purchase:", self.purchase),
            (r"refund:(\d+)", "refund:", self.refund),
            (r"referral:(\d+)", "referral:", self.referral),
            (r"bonus_rule:(\d+)", "bonus_rule:", self.rule),
            (r"signup:(\d+)", "signup:", self.member),
            (r"reward:(\d+):", "reward:", self.member),
            (r"expire:lot:(\d+)", "expire:lot:", self.lot),
        )
        for pattern, prefix, names in subs:
            tail = ":" if pattern.endswith(":") else ""

            def label(
                m: re.Match[str], n: dict[int, str] = names, p: str = prefix, t: str = tail
            ) -> str:
                return f"{p}{n[int(m[1])]}{t}"

            value = re.sub(pattern, label, value)
        for number, name in self.numbers.items():
            value = value.replace(number, name)
        for code, name in self.coupon.items():
            value = value.replace(code, name)
        return value

    def source(self, kind: str | None, value: int | None) -> Any:
        names: dict[str | None, dict[int, Any]] = {
            "purchase": self.purchase,
            "refund": self.refund,
            "referral": self.referral,
            "member": self.member,
            "adjustment": self.member,
            "lot": self.lot,
        }
        if value is None or kind not in names:
            return value
        return names[kind][value]


def _written(db: Session, run: Run) -> dict[str, Any]:
    db.expire_all()
    names = Names(db, run)
    entries = db.scalars(select(LedgerEntry).order_by(LedgerEntry.id)).all()
    for entry in entries:
        if entry.lot_id is not None and entry.lot_id not in names.lot:
            names.lot[entry.lot_id] = names.text(entry.idempotency_key.rsplit(":", 1)[0]) or ""
    by_id = {e.id: names.text(e.idempotency_key) for e in entries}
    inputs = {data.external_id: data for _, data in run.bought}
    members = {
        names.member[m.id]: (m.balance, m.pending_points, m.debt, m.tier_id, m.tier_since, m.status)
        for m in db.scalars(select(Member).where(Member.id.in_(names.member)))
    }
    for member in run.members.values():
        Shop(db).check(member)
    run.answers = _renamed(run.answers, names)
    return {
        "members": members,
        "entries": sorted(
            (
                by_id[e.id] or "",
                names.member[e.member_id],
                e.occurred_at,
                e.type,
                e.points,
                e.balance_after,
                names.text(e.reason),
                names.text(e.rule),
                names.rule.get(e.bonus_rule_id or 0),
                e.source_type,
                names.source(e.source_type, e.source_id),
                names.lot.get(e.lot_id or 0),
                (e.actor_kind, e.actor_label, e.actor_user_id),
            )
            for e in entries
        ),
        "lots": sorted(
            (
                names.lot[lot.id],
                names.member[lot.member_id],
                names.purchase.get(lot.purchase_id or 0),
                lot.points,
                lot.remaining,
                lot.state,
                lot.earned_at,
                lot.available_at,
                lot.expires_at,
            )
            for lot in db.scalars(select(Lot))
        ),
        "draws": sorted(
            (by_id[d.entry_id] or "", names.lot[d.lot_id], d.points)
            for d in db.scalars(select(LotDraw))
        ),
        "purchases": sorted(
            (
                p.external_id,
                names.member.get(p.member_id or 0),
                *(
                    getattr(p, c.key)
                    for c in Purchase.__table__.columns
                    if c.key not in ("id", "external_id", "member_id", "created_at", "fingerprint")
                ),
                # Coupon codes are random in each savepoint: the fingerprint is checked
                # against the path's own input instead.
                p.fingerprint == inputs[p.external_id].fingerprint(),
            )
            for p in db.scalars(select(Purchase))
        ),
        "refunds": sorted(
            (
                r.external_id,
                names.purchase[r.purchase_id],
                r.amount,
                r.base_amount,
                r.occurred_at,
                r.points_reversed,
                r.coupon_restored,
            )
            for r in db.scalars(select(Refund))
        ),
        "tiers": sorted(
            (
                names.member[t.member_id],
                t.changed_at,
                names.purchase.get(t.purchase_id or 0),
                t.from_tier_id,
                t.to_tier_id,
                t.reason,
                t.metric_value,
            )
            for t in db.scalars(select(TierChange).where(TierChange.member_id.in_(names.member)))
        ),
        "referrals": sorted(
            (
                names.member.get(r.referrer_id),
                names.member.get(r.referee_id),
                r.state,
                names.purchase.get(r.purchase_id or 0),
                r.completes_at,
                r.completed_at,
                r.referrer_rewarded,
                r.note,
            )
            for r in db.scalars(select(Referral).where(Referral.referee_id.in_(names.member)))
        ),
        "coupons": sorted(
            (names.coupon[c.code], c.state, c.redeemed_at, by_id.get(c.reward_entry_id or 0))
            for c in db.scalars(select(Coupon).where(Coupon.member_id.in_(names.member)))
        ),
        "redemptions": sorted(
            (
                names.text(r.idempotency_key),
                names.member.get(r.member_id or 0),
                names.purchase.get(r.purchase_id or 0),
                r.discount,
                r.redeemed_at,
                r.reversed_at,
            )
            for r in db.scalars(select(Redemption))
        ),
    }


def _renamed(value: Any, names: Names) -> Any:
    """Answers with database ids in their texts replaced by labels."""
    if isinstance(value, str):
        return names.text(value)
    if isinstance(value, list | tuple):
        return type(value)(_renamed(v, names) for v in value)
    if isinstance(value, dict):
        return {k: _renamed(v, names) for k, v in value.items()}
    return value


def run_path(world: World, scenario: Scenario, path: str, monkeypatch: Any) -> Run:
    monkeypatch.setattr(purchases, "FAST_PATH", path != "general")
    savepoint = world.connection.begin_nested()
    db = Session(
        bind=world.connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    run = Run(db, world, path)
    try:
        _setup(run, scenario)
        _apply(run, scenario)
        run.written = _written(db, run)
    finally:
        db.close()
        savepoint.rollback()
    return run


def _answers(run: Run) -> list[Any]:
    """The answers every path gives (an import answers per file, the services per row)."""
    return [a for a in run.answers if a[0] in ("retry", "refund", "redeem", "jobs", "replays")]


def compare(world: World, scenario: Scenario, monkeypatch: Any) -> dict[str, Run]:
    runs = {path: run_path(world, scenario, path, monkeypatch) for path in PATHS}
    general = runs["general"]
    for path in ("fast", "import"):
        other = runs[path]
        for key, value in general.written.items():
            assert other.written[key] == value, f"{path} differs in {key}"
        assert _answers(other) == _answers(general), f"{path} answers differ"
    assert runs["fast"].answers == general.answers, "fast and general answer differently"
    refused = [(ext, a[1]) for ext, a in general.answers if ext.startswith("P") and a[0] == "error"]
    files = [a for kind, a in runs["import"].answers if kind == "import"]
    assert all(a[0] != "error" for a in files), files
    imported = [r for a in files for r in a[1]]
    assert sorted(imported) == sorted(refused), "the import refuses other rows"
    replays = general.answers[-1][1]
    firsts = dict(a for a in general.answers if isinstance(a[0], str) and a[0].startswith("P"))
    for (_, data), replay in zip(general.bought, replays, strict=True):
        if data.external_id in firsts and firsts[data.external_id][0] != "error":
            assert replay == firsts[data.external_id], f"{data.external_id} replays differently"
    return runs


EXAMPLES = int(os.environ.get("RETAIN_PATHS_EXAMPLES", "60"))
# RETAIN_PATHS_SHRINK=0 reports the first failing example as found (shrinking takes minutes).
PHASES = [Phase.explicit, Phase.reuse, Phase.generate]
if os.environ.get("RETAIN_PATHS_SHRINK", "1") != "0":
    PHASES.append(Phase.shrink)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=PHASES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios)
def test_every_path_writes_the_same_rows(
    world: World, scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    compare(world, scenario, monkeypatch)


def _plain(**program: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "earn_rate": Decimal(1),
        "return_window_days": 0,
        "tier_metric": "points",
        "expiry_policy": "end_of_next_year",
        "expiry_n": 0,
        "first_purchase_bonus": 200,
        "repeat_count": 3,
        "repeat_days": 30,
        "repeat_bonus": 300,
        "referral_min_amount": Decimal(100),
        "referrer_points": 500,
        "referee_points": 300,
    }
    return {**defaults, **program}


def _scenario(steps: list[Step], **program: Any) -> Scenario:
    """A hand-made scenario: the default ladder, no bonus rules."""
    return Scenario(
        _plain(**program),
        [(1000, Decimal("1.25")), (5000, Decimal("1.5"))],
        [],
        program.pop("debt", 0) if "debt" in program else 0,
        steps,
        0,
    )


SEPARATOR = Jobs(0)  # ends a run of purchases: what follows is another file


def _entries(run: Run, member: str) -> list[tuple[str, int]]:
    return [(e[0], e[4]) for e in run.written["entries"] if e[1] == member]


def test_a_zero_day_window_pays_back_debt_the_same_way(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B owes 150 points (a correction took more than the welcome bonus); a purchase of 300
    with a zero-day return window is active at once and pays the debt first: balance 150,
    debt 0, its lot has 150 left, whichever path posts it."""
    scenario = Scenario(
        _plain(first_purchase_bonus=0),
        [(1000, Decimal(1)), (5000, Decimal(2))],
        [],
        250,
        [Buy("B", 0, Decimal("300.00"))],
        0,
    )
    runs = compare(world, scenario, monkeypatch)
    for run in runs.values():
        balance, pending, debt = run.written["members"]["B"][:3]
        assert (balance, pending, debt) == (150, 0, 0)
        lot = next(lot for lot in run.written["lots"] if lot[2] == "P0")
        assert lot[3:5] == (300, 150)


def test_a_back_dated_import_counts_what_is_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database holds A's purchases on day 0 and day 20 (alone in its 7-day window: no
    bonus); a file brings day 5. Its window (day −2, day 5] holds day 0 and itself: the
    back-dated purchase earns the repeat bonus through the service and through the import
    alike, and the later day-20 purchase changes nothing."""
    scenario = Scenario(
        _plain(repeat_count=2, repeat_days=7, first_purchase_bonus=0),
        [(10000, Decimal(1)), (15000, Decimal(2))],
        [],
        0,
        [
            Buy("A", 0, Decimal("50.00")),
            SEPARATOR,
            Buy("A", 20 * 24, Decimal("50.00")),
            SEPARATOR,
            Buy("A", 5 * 24, Decimal("50.00")),
        ],
        0,
    )
    runs = compare(world, scenario, monkeypatch)
    for run in runs.values():
        bonuses = [key for key, _ in _entries(run, "A") if key.endswith("repeat_purchase")]
        assert bonuses == ["purchase:P2:repeat_purchase"]


def test_a_repeat_bonus_given_later_blocks_a_back_dated_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Day 18 and day 20 are recorded (day 20 earns the repeat bonus); a file then brings
    day 10 and day 15. Day 15 has 2 purchases in its window (day −15, day 15], but a repeat
    bonus was given after day −15 (on day 20): none is due, on every path."""
    scenario = Scenario(
        _plain(repeat_count=2, repeat_days=30, first_purchase_bonus=0),
        [(10000, Decimal(1)), (15000, Decimal(2))],
        [],
        0,
        [
            Buy("A", 18 * 24, Decimal("50.00")),
            Buy("A", 20 * 24, Decimal("50.00")),
            SEPARATOR,
            Buy("A", 10 * 24, Decimal("50.00")),
            Buy("A", 15 * 24, Decimal("50.00")),
        ],
        0,
    )
    runs = compare(world, scenario, monkeypatch)
    for run in runs.values():
        bonuses = [key for key, _ in _entries(run, "A") if key.endswith("repeat_purchase")]
        assert bonuses == ["purchase:P1:repeat_purchase"]


def test_a_purchase_exactly_a_window_earlier_is_outside_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repeat window is (t − D, t]: a purchase exactly 7 days earlier does not count."""
    steps: list[Step] = [
        Buy("A", 0, Decimal("50.00")),
        Buy("A", 7 * 24, Decimal("50.00")),
        SEPARATOR,
        Buy("B", 0, Decimal("50.00")),
        SEPARATOR,
        Buy("B", 7 * 24, Decimal("50.00")),
    ]
    scenario = Scenario(
        _plain(repeat_count=2, repeat_days=7, first_purchase_bonus=0),
        [(10000, Decimal(1)), (15000, Decimal(2))],
        [],
        0,
        steps,
        0,
    )
    runs = compare(world, scenario, monkeypatch)
    for run in runs.values():
        assert not [e for e in run.written["entries"] if e[0].endswith("repeat_purchase")]


def test_three_purchases_at_one_time(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ties in time: posted, and imported, in file order."""
    buy = Buy("A", 0, Decimal("5.00"))
    scenario = _scenario([buy, buy, buy], repeat_count=2, repeat_days=1, first_purchase_bonus=0)
    compare(world, scenario, monkeypatch)


def test_a_held_out_member_earns_no_campaign_bonus_on_any_path(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A and B buy under the campaign's code; the campaign's rule gives 100 points, but A is
    in its holdout: B gets them, A does not, whichever path posts the purchase (the rule
    without a campaign applies to both)."""
    rule = {
        "name": "Rule 0",
        "priority": 1,
        "channel": None,
        "campaign": True,
        "category": None,
        "min_spend": None,
        "multiplier": None,
        "fixed_points": 100,
        "stop_further": False,
        "dates": None,
    }
    everyone = rule | {"name": "Rule 1", "campaign": False, "fixed_points": 10}
    scenario = Scenario(
        _plain(first_purchase_bonus=0, repeat_bonus=0),
        [(10000, Decimal(1)), (15000, Decimal(2))],
        [rule, everyone],
        0,
        [
            Buy("A", 0, Decimal("50.00"), campaign=True),
            Buy("B", 0, Decimal("50.00"), campaign=True),
            SEPARATOR,
            Buy("A", 30, Decimal("60.00"), campaign=True),
        ],
        0,
        held_out=("A",),
    )
    runs = compare(world, scenario, monkeypatch)
    for run in runs.values():
        rules = {
            member: sorted(e[8] for e in run.written["entries"] if e[1] == member and e[8])
            for member in ("A", "B")
        }
        assert rules == {"A": ["Rule 1", "Rule 1"], "B": ["Rule 0", "Rule 1"]}, run.path
