"""The receipt workflow: every transition, its role check, closed months, duplicate flags."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import periods, receipts
from campaigns.models import Campaign, ReceiptStatus
from campaigns.receipts import ReceiptInput
from core.audit import AuditEntry
from core.errors import Conflict, PermissionDenied, ValidationFailed
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
