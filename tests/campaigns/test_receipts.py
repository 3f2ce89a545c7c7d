"""The receipt workflow: every transition, its role check, closed months, duplicate flags."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import periods, rates, receipts
from campaigns.models import Campaign, Receipt, ReceiptStatus
from campaigns.receipts import ReceiptInput
from core.audit import Actor, AuditEntry
from core.errors import Conflict, Invalid, PermissionDenied, ValidationFailed
from tests.campaigns.conftest import Staff


def receipt_input(campaign: Campaign, **extra: object) -> ReceiptInput:
    base = ReceiptInput(
        campaign_id=campaign.id,
        vendor="Tencent Ads",
        category="media",
        amount=Decimal("1200.00"),
        currency="CNY",
        expense_date=date(2026, 3, 10),
        invoice_number="INV-001",
    )
    return replace(base, **extra)  # type: ignore[arg-type]


def actions(db: Session, receipt_id: int) -> list[str]:
    rows = db.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.entity_type == "receipt", AuditEntry.entity_id == str(receipt_id))
        .order_by(AuditEntry.id)
    )
    return list(rows)


def test_the_happy_path_and_its_audit_trail(db: Session, staff: Staff, campaign: Campaign) -> None:
    r = receipts.create(db, staff.marketer, receipt_input(campaign))
    assert r.status == ReceiptStatus.DRAFT and r.amount == Decimal("1200.0000")
    receipts.transition(db, staff.marketer, r.id, "submit")
    receipts.transition(db, staff.finance, r.id, "approve")
    receipts.transition(db, staff.finance, r.id, "pay")
    assert r.status == ReceiptStatus.PAID
    assert r.decided_by_id == staff.finance.user_id and r.paid_by_id == staff.finance.user_id
    assert actions(db, r.id) == [
        "receipt.create",
        "receipt.submit",
        "receipt.approve",
        "receipt.pay",
    ]


def test_rejected_receipts_carry_a_reason_and_can_be_resubmitted(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    r = receipts.create(db, staff.marketer, receipt_input(campaign))
    receipts.transition(db, staff.marketer, r.id, "submit")
    with pytest.raises(ValidationFailed, match="Say why"):
        receipts.transition(db, staff.finance, r.id, "reject", reason="  ")
    receipts.transition(db, staff.finance, r.id, "reject", reason="Invoice is illegible")
    assert r.status == ReceiptStatus.REJECTED and r.rejection_reason == "Invoice is illegible"
    receipts.update(db, staff.marketer, r.id, receipt_input(campaign, invoice_number="INV-001b"))
    receipts.transition(db, staff.marketer, r.id, "submit")
    assert r.status == ReceiptStatus.SUBMITTED and r.rejection_reason is None


@pytest.mark.parametrize(
    ("action", "start", "wrong_role"),
    [
        ("submit", "draft", "admin"),
        ("approve", "submitted", "marketer"),
        ("reject", "submitted", "marketer"),
        ("pay", "approved", "marketer"),
    ],
)
def test_each_transition_checks_the_role(
    db: Session, staff: Staff, campaign: Campaign, action: str, start: str, wrong_role: str
) -> None:
    r = receipts.create(db, staff.marketer, receipt_input(campaign))
    path = {"draft": [], "submitted": ["submit"], "approved": ["submit", "approve"]}[start]
    for step in path:  # four eyes: the one who submits is not the one who approves
        receipts.transition(db, staff.marketer if step == "submit" else staff.finance, r.id, step)
    with pytest.raises(PermissionDenied, match="Only"):
        receipts.transition(db, getattr(staff, wrong_role), r.id, action, reason="x")
    assert r.status == start


@pytest.mark.parametrize(
    ("status_path", "action"),
    [
        ([], "approve"),
        ([], "pay"),
        (["submit"], "submit"),
        (["submit", "approve"], "approve"),
        (["submit", "approve", "pay"], "reject"),
    ],
)
def test_transitions_out_of_order_are_refused(
    db: Session, staff: Staff, campaign: Campaign, status_path: list[str], action: str
) -> None:
    r = receipts.create(db, staff.marketer, receipt_input(campaign))
    for step in status_path:
        receipts.transition(db, staff.marketer if step == "submit" else staff.finance, r.id, step)
    with pytest.raises(Conflict, match=f"Receipt #{r.id} is"):
        receipts.transition(db, staff.finance, r.id, action, reason="x")


def test_only_drafts_and_rejected_receipts_change(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    r = receipts.create(db, staff.marketer, receipt_input(campaign))
    receipts.transition(db, staff.marketer, r.id, "submit")
    with pytest.raises(Conflict, match="cannot be edited"):
        receipts.update(db, staff.marketer, r.id, receipt_input(campaign))
    with pytest.raises(Conflict, match="cannot be deleted"):
        receipts.delete(db, staff.marketer, r.id)


def test_a_closed_month_freezes_its_receipts(db: Session, staff: Staff, campaign: Campaign) -> None:
    submitted = receipts.create(db, staff.marketer, receipt_input(campaign))
    receipts.transition(db, staff.marketer, submitted.id, "submit")
    draft = receipts.create(db, staff.marketer, receipt_input(campaign, invoice_number="INV-2"))
    with pytest.raises(PermissionDenied):
        periods.close_month(db, staff.marketer, date(2026, 3, 1))
    # Not while a receipt dated in it awaits approval: the refusal lists it.
    with pytest.raises(Conflict, match="await approval") as refused:
        periods.close_month(db, staff.finance, date(2026, 3, 15))
    assert f"#{submitted.id} {submitted.vendor}" in refused.value.message
    assert refused.value.details[0]["url"] == f"/receipts/{submitted.id}"
    receipts.transition(db, staff.finance, submitted.id, "approve")
    periods.close_month(db, staff.finance, date(2026, 3, 15))

    with pytest.raises(Conflict, match="2026-03 is closed"):
        receipts.create(db, staff.marketer, receipt_input(campaign, invoice_number="INV-3"))
    with pytest.raises(Conflict, match="2026-03 is closed"):
        receipts.update(db, staff.marketer, draft.id, receipt_input(campaign, vendor="Other"))
    with pytest.raises(Conflict, match="2026-03 is closed"):
        receipts.transition(db, staff.marketer, draft.id, "submit")
    with pytest.raises(Conflict, match="2026-03 is closed"):
        receipts.delete(db, staff.marketer, draft.id)
    # Moving a receipt from an open month into the closed one is refused too.
    april = receipts.create(
        db,
        staff.marketer,
        receipt_input(campaign, expense_date=date(2026, 4, 2), invoice_number="A"),
    )
    with pytest.raises(Conflict, match="2026-03 is closed"):
        receipts.update(db, staff.marketer, april.id, receipt_input(campaign, invoice_number="A"))
    # The correction: a negative adjusting receipt in an open month.
    fix = receipts.create(
        db,
        staff.finance,
        receipt_input(
            campaign,
            amount=Decimal("-200"),
            expense_date=date(2026, 4, 3),
            adjusts_receipt_id=submitted.id,
            invoice_number="ADJ-1",
        ),
    )
    assert fix.amount == Decimal("-200")

    with pytest.raises(PermissionDenied, match="Only admin"):
        periods.reopen_month(db, staff.finance, date(2026, 3, 1))
    periods.reopen_month(db, staff.admin, date(2026, 3, 1))
    receipts.transition(db, staff.marketer, draft.id, "submit")
    logged = db.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "period"))
    assert list(logged) == ["period.close", "period.reopen"]


def test_negative_amounts_need_an_adjusted_receipt(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    with pytest.raises(ValidationFailed, match="adjusting receipt"):
        receipts.create(db, staff.marketer, receipt_input(campaign, amount=Decimal("-5")))


def test_duplicates_are_flagged_never_merged(db: Session, staff: Staff, campaign: Campaign) -> None:
    first = receipts.create(db, staff.marketer, receipt_input(campaign))
    same_invoice = receipts.create(
        db, staff.marketer, receipt_input(campaign, vendor=" tencent  ADS ", amount=Decimal("99"))
    )
    same_amount_date = receipts.create(
        db, staff.marketer, receipt_input(campaign, invoice_number=None)
    )
    unrelated = receipts.create(
        db, staff.marketer, receipt_input(campaign, vendor="Douyin", invoice_number="D-1")
    )
    assert [f["kind"] for f in same_invoice.duplicate_flags] == ["invoice"]
    assert same_invoice.duplicate_flags[0]["receipt_id"] == first.id
    assert [(f["kind"], f["receipt_id"]) for f in same_amount_date.duplicate_flags] == [
        ("amount_date", first.id)
    ]
    assert unrelated.duplicate_flags == []
    receipts.transition(db, staff.marketer, first.id, "submit")  # re-checked on submit
    assert {f["receipt_id"] for f in first.duplicate_flags} == {
        same_invoice.id,
        same_amount_date.id,
    }


def test_bad_input_gets_clear_messages(db: Session, staff: Staff, campaign: Campaign) -> None:
    with pytest.raises(ValidationFailed, match="Unknown category 'food'"):
        receipts.create(db, staff.marketer, receipt_input(campaign, category="food"))
    with pytest.raises(ValidationFailed, match="Name the employee"):
        receipts.create(db, staff.marketer, receipt_input(campaign, payment_mode="reimbursement"))
    with pytest.raises(ValidationFailed, match="not an ISO 4217 currency code"):
        receipts.create(db, staff.marketer, receipt_input(campaign, currency="RMB1"))


def test_campaigns_are_edited_with_the_same_rules(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    from campaigns import planning

    planning.update(
        db,
        staff.marketer,
        campaign.id,
        name="Spring sale II",
        budget=Decimal("12000"),
        budget_lines={"media": Decimal("5000")},
    )
    planning.update(
        db,
        staff.marketer,
        campaign.id,
        budget_lines={"media": Decimal("6000"), "events": Decimal("1000")},
    )
    assert {b.category: b.amount for b in campaign.budget_lines} == {
        "media": Decimal("6000"),
        "events": Decimal("1000"),
    }
    with pytest.raises(ValidationFailed, match="end date is before"):
        planning.update(db, staff.marketer, campaign.id, ends_on=date(2026, 1, 1))
    with pytest.raises(PermissionDenied):
        planning.update(db, staff.finance, campaign.id, name="Nope")
    logged = db.scalars(select(AuditEntry).where(AuditEntry.action == "campaign.update"))
    rows = list(logged)
    assert len(rows) == 2 and rows[0].before is not None and rows[0].after is not None
    assert rows[0].before["name"] == "Spring sale" and rows[0].after["name"] == "Spring sale II"


def test_every_field_problem_is_named_at_once(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    with pytest.raises(Invalid) as refused:
        receipts.create(
            db,
            staff.marketer,
            receipt_input(
                campaign,
                vendor=" ",
                category="food",
                amount=Decimal("-5"),
                currency="RMB",
                invoice_number="i" * 65,
            ),
        )
    assert list(refused.value.fields) == [
        "vendor",
        "category",
        "amount",
        "currency",
        "invoice_number",
    ]
    assert refused.value.fields["vendor"] == "Enter the vendor's name."
    assert refused.value.code == "receipt.vendor"  # a client reading one code reads the first
    assert db.scalar(select(Receipt.id)) is None


# --- Paying: the day and the reference --------------------------------------------------------

TODAY = date(2026, 3, 21)


def approved(db: Session, staff: Staff, campaign: Campaign, invoice: str = "INV-P") -> Receipt:
    r = receipts.create(db, staff.marketer, receipt_input(campaign, invoice_number=invoice))
    receipts.transition(db, staff.marketer, r.id, "submit")
    receipts.transition(db, staff.finance, r.id, "approve")
    return r


def pay_entry(db: Session, receipt_id: int) -> AuditEntry:
    return db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "receipt.pay", AuditEntry.entity_id == str(receipt_id)
        )
    ).one()


def test_paying_records_the_day_and_the_reference_and_audits_them(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    r = approved(db, staff, campaign)
    receipts.pay(
        db,
        staff.finance,
        r.id,
        paid_on=date(2026, 3, 20),
        payment_reference=" TT-0320 ",
        today=TODAY,
    )
    assert r.status == ReceiptStatus.PAID and r.paid_by_id == staff.finance.user_id
    assert (r.paid_on, r.payment_reference) == (date(2026, 3, 20), "TT-0320")
    entry = pay_entry(db, r.id)
    assert entry.actor_user_id == staff.finance.user_id
    assert entry.after is not None and entry.before is not None
    assert (entry.after["paid_on"], entry.after["payment_reference"]) == ("2026-03-20", "TT-0320")
    assert entry.after["status"] == "paid" and entry.before["status"] == "approved"
    assert "paid_on" not in entry.before


def test_a_payment_on_today_without_a_reference_is_fine(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    r = approved(db, staff, campaign)
    receipts.pay(db, staff.finance, r.id, paid_on=TODAY, payment_reference="  ", today=TODAY)
    assert (r.paid_on, r.payment_reference) == (TODAY, None)
    assert pay_entry(db, r.id).after == receipts.snapshot(r) | {"payment_reference": None}


@pytest.mark.parametrize(
    ("paid_on", "reference", "code", "message"),
    [
        (
            date(2026, 3, 22),
            None,
            "receipt.paid_on",
            "The payment date 2026-03-22 is in the future (today is 2026-03-21)",
        ),
        (
            date(1899, 12, 31),
            None,
            "receipt.paid_on.range",
            "The payment date must be between 1900-01-01 and 2199-12-31",
        ),
        (
            TODAY,
            "r" * 101,
            "receipt.payment_reference.invalid",
            "The payment reference is longer than 100 characters",
        ),
        (
            TODAY,
            "TT\x00",
            "receipt.payment_reference.invalid",
            "The payment reference must not contain control characters",
        ),
    ],
)
def test_a_payment_in_the_future_or_out_of_bounds_is_refused(
    db: Session,
    staff: Staff,
    campaign: Campaign,
    paid_on: date,
    reference: str | None,
    code: str,
    message: str,
) -> None:
    r = approved(db, staff, campaign)
    with pytest.raises(ValidationFailed) as refused:
        receipts.pay(
            db, staff.finance, r.id, paid_on=paid_on, payment_reference=reference, today=TODAY
        )
    assert refused.value.code == code and refused.value.message.startswith(message)
    assert r.status == ReceiptStatus.APPROVED and r.paid_on is None
    assert "receipt.pay" not in actions(db, r.id)


def test_the_payment_reference_is_bounded_like_its_column() -> None:
    assert Receipt.__table__.c.payment_reference.type.length == 100  # type: ignore[attr-defined]


def test_only_a_finance_person_pays_and_only_approved_receipts(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    r = approved(db, staff, campaign)
    with pytest.raises(PermissionDenied, match="Only"):
        receipts.pay(db, staff.marketer, r.id, paid_on=TODAY, today=TODAY)
    key = Actor("api_key", "till", roles=frozenset({"finance"}))
    with pytest.raises(PermissionDenied, match="An API key cannot pay"):
        receipts.pay(db, key, r.id, paid_on=TODAY, today=TODAY)
    receipts.pay(db, staff.finance, r.id, paid_on=TODAY, today=TODAY)
    with pytest.raises(Conflict, match=f"Receipt #{r.id} is paid"):
        receipts.pay(db, staff.finance, r.id, paid_on=TODAY, today=TODAY)


def test_a_closed_expense_month_can_still_be_paid(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    r = approved(db, staff, campaign)
    periods.close_month(db, staff.finance, date(2026, 3, 1))
    receipts.pay(db, staff.finance, r.id, paid_on=date(2026, 4, 2), today=date(2026, 4, 3))
    assert r.status == ReceiptStatus.PAID and r.paid_on == date(2026, 4, 2)


def test_transition_still_pays_for_scripts_dated_today(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    r = approved(db, staff, campaign)
    receipts.transition(db, staff.finance, r.id, "pay", today=TODAY)
    assert (r.status, r.paid_on, r.payment_reference) == (ReceiptStatus.PAID, TODAY, None)


def test_paying_in_bulk_checks_the_shared_date_first_then_each_receipt(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    a = approved(db, staff, campaign, "A")
    b = approved(db, staff, campaign, "B")
    waiting = receipts.create(db, staff.marketer, receipt_input(campaign, invoice_number="C"))
    receipts.transition(db, staff.marketer, waiting.id, "submit")
    with pytest.raises(ValidationFailed, match="in the future"):
        receipts.transition_many(
            db, staff.finance, [a.id, b.id], "pay", paid_on=date(2026, 3, 22), today=TODAY
        )
    assert a.status == b.status == ReceiptStatus.APPROVED  # nothing paid
    with pytest.raises(PermissionDenied):
        receipts.transition_many(db, staff.marketer, [a.id], "pay", paid_on=TODAY, today=TODAY)
    done = receipts.transition_many(
        db,
        staff.finance,
        [a.id, waiting.id, b.id, a.id],
        "pay",
        paid_on=date(2026, 3, 19),
        payment_reference="BATCH-7",
        today=TODAY,
    )
    assert done.done == [a.id, b.id]
    assert done.refused == [
        (waiting.id, f"Receipt #{waiting.id} is submitted; only an approved receipt can be paid.")
    ]
    for r in (a, b):
        assert (r.status, r.paid_on, r.payment_reference) == ("paid", date(2026, 3, 19), "BATCH-7")
    assert waiting.status == ReceiptStatus.SUBMITTED


# --- Amounts in the base currency: booked once, as the ROI report books them -----------------


def test_each_receipt_is_booked_once_in_the_base_currency(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    for currency, rate in (("USD", "7.1234"), ("GBP", "9.1234"), ("JPY", "0.125")):
        rates.set_rate(db, staff.finance, currency, date(2026, 3, 1), Decimal(rate), "CNY")
    made = [
        receipts.create(
            db,
            staff.marketer,
            receipt_input(
                campaign, amount=Decimal(amount), currency=currency, invoice_number=str(n)
            ),
        )
        for n, (amount, currency) in enumerate(
            [("1200", "CNY"), ("101.58", "USD"), ("101.58", "GBP"), ("1", "JPY")]
        )
    ]
    booked = receipts.booked(db, made, "CNY")
    # 101.58 × 7.1234 = 723.594972; × 9.1234 = 926.754972; 1 JPY × 0.125 = 0.125, half up.
    expected = [Decimal("1200.00"), Decimal("723.59"), Decimal("926.75"), Decimal("0.13")]
    assert [booked.amounts[r.id] for r in made] == expected
    assert booked.total(r.id for r in made) == Decimal("2850.47")
    assert booked.problem is None


def test_a_receipt_without_a_rate_has_no_amount_and_says_why(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    rates.set_rate(db, staff.finance, "USD", date(2026, 3, 1), Decimal("7"), "CNY")
    usd = receipts.create(
        db, staff.marketer, receipt_input(campaign, amount=Decimal(10), currency="USD")
    )
    eur = receipts.create(
        db,
        staff.marketer,
        receipt_input(campaign, amount=Decimal(10), currency="EUR", invoice_number="E"),
    )
    booked = receipts.booked(db, [usd, eur], "CNY")
    assert booked.amounts == {usd.id: Decimal("70.00"), eur.id: None}
    assert booked.problem is not None and booked.problem.code == "rate.missing"
    assert "No exchange rate for EUR on or before 2026-03-10" in booked.problem.message
    assert booked.total([usd.id, eur.id]) is None and booked.total([usd.id]) == Decimal("70.00")
    assert receipts.booked(db, [], "CNY").total([]) == Decimal("0.00")


# --- My receipts ------------------------------------------------------------------------------


def test_my_receipts_are_those_i_entered_or_submitted(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    entered = receipts.create(db, staff.marketer, receipt_input(campaign, invoice_number="1"))
    # Finance enters one and the marketer submits it; finance enters another, alone.
    submitted = receipts.create(db, staff.finance, receipt_input(campaign, invoice_number="2"))
    receipts.transition(db, staff.marketer, submitted.id, "submit")
    theirs = receipts.create(db, staff.finance, receipt_input(campaign, invoice_number="3"))
    later = receipts.create(db, staff.marketer, receipt_input(campaign, invoice_number="4"))
    receipts.transition(db, staff.marketer, later.id, "submit")
    receipts.transition(db, staff.finance, later.id, "reject", reason="Blurred")
    marketer = staff.marketer.user_id
    assert marketer is not None and staff.finance.user_id is not None

    def ids(**filters: object) -> list[int]:
        return [r.id for r in receipts.mine(db, marketer, **filters)]  # type: ignore[arg-type]

    assert sorted(ids()) == sorted([entered.id, submitted.id, later.id])
    assert ids(status="rejected") == [later.id]
    assert ids(status="submitted") == [submitted.id]
    assert ids(status="paid") == []
    assert ids(first_id=submitted.id, last_id=later.id) == [later.id, submitted.id]
    assert ids(limit=1, offset=0) + ids(limit=5, offset=1) == ids()
    assert receipts.mine_counts(db, marketer) == {
        "draft": 1,
        "submitted": 1,
        "approved": 0,
        "rejected": 1,
        "paid": 0,
    }
    finance = [r.id for r in receipts.mine(db, staff.finance.user_id)]
    assert sorted(finance) == sorted([submitted.id, theirs.id])  # what finance entered
