"""Issue 11, the campaigns side: every input held to its column or meaning in the services
(so pages, API and CSV imports share one check), four eyes on receipts, no API key approving
or paying. Each case here used to be stored, or answered with a 500."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from campaigns import imports, periods, planning, rates, receipts, report_data, revenue
from campaigns.models import Campaign, ExchangeRate, ReceiptStatus
from campaigns.receipts import ReceiptInput
from core.accounts import users
from core.audit import Actor
from core.errors import NotFound, PermissionDenied, ValidationFailed
from tests.campaigns.conftest import Staff, make_campaign

D = Decimal
LONG = "x" * 201


def receipt_input(campaign: Campaign, **extra: object) -> ReceiptInput:
    base = ReceiptInput(
        campaign_id=campaign.id,
        vendor="Tencent Ads",
        category="media",
        amount=D("1200.00"),
        currency="CNY",
        expense_date=date(2026, 3, 10),
    )
    return replace(base, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"amount": D("1e15")}, "amount must be less than 1,000,000,000,000"),
        ({"amount": D("1e30")}, "amount must be less than 1,000,000,000,000"),
        ({"amount": D("0.00001")}, "more than 4 decimal places"),
        ({"amount": D("NaN")}, "not a number"),
        ({"tax_amount": D("-1")}, "tax must not be negative"),
        ({"tax_amount": D("0.00001")}, "tax has more than 4 decimal places"),
        ({"vendor": "Ads\x00Inc"}, "vendor must not contain control characters"),
        ({"vendor": "Ads \ud800"}, "vendor is not valid text"),
        ({"vendor": LONG}, "vendor is longer than 200 characters"),
        ({"invoice_number": "I" * 65}, "invoice number is longer than 64 characters"),
        ({"description": "d" * 4001}, "description is longer than 4000 characters"),
        (
            {"payment_mode": "reimbursement", "reimburse_to": "R" * 201},
            "person to reimburse is longer than 200",
        ),
        ({"category": "media\x00"}, "category must not contain control characters"),
        ({"currency": "RMB"}, "the Chinese yuan's code is CNY"),
        ({"currency": "XYZ"}, "not an ISO 4217 currency code"),
        ({"currency": "\ud800"}, "currency is not valid text"),
        ({"expense_date": date(9999, 12, 31)}, "between 1900-01-01 and 2199-12-31"),
        ({"expense_date": date(1, 1, 1)}, "between 1900-01-01 and 2199-12-31"),
        ({"campaign_id": 2**31}, "campaign_id must be between 1 and 2147483647"),
        ({"campaign_id": 2**64}, "campaign_id must be between 1 and 2147483647"),
        ({"campaign_id": 2**31 - 1}, "No campaign with id 2147483647"),
        ({"amount": D("-5"), "adjusts_receipt_id": 2**40}, "adjusts_receipt_id must be between"),
        ({"amount": D("-5"), "adjusts_receipt_id": 99999}, "No receipt #99999 to adjust"),
    ],
)
def test_receipts_refuse_what_their_columns_cannot_hold(
    db: Session, staff: Staff, campaign: Campaign, extra: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message):
        receipts.create(db, staff.marketer, receipt_input(campaign, **extra))


def test_amounts_at_the_bounds_are_stored_exactly(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    big = receipts.create(
        db, staff.marketer, receipt_input(campaign, amount=D("999999999999.9999"))
    )
    small = receipts.create(db, staff.marketer, receipt_input(campaign, amount=D("0.0001")))
    db.expire_all()
    assert receipts.get(db, big.id).amount == D("999999999999.9999")
    assert receipts.get(db, small.id).amount == D("0.0001")


def test_an_adjusting_receipt_keeps_its_sign_when_edited(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    first = receipts.create(db, staff.marketer, receipt_input(campaign))
    fix = receipts.create(
        db,
        staff.finance,
        receipt_input(campaign, amount=D("-200"), adjusts_receipt_id=first.id),
    )
    # The edit form does not send adjusts_receipt_id: the receipt is still an adjustment.
    receipts.update(db, staff.finance, fix.id, receipt_input(campaign, amount=D("-250")))
    assert fix.amount == D("-250")
    with pytest.raises(ValidationFailed, match="only allowed on an adjusting receipt"):
        receipts.update(db, staff.marketer, first.id, receipt_input(campaign, amount=D("-1")))


def test_a_folded_vendor_key_fits_its_column(db: Session, staff: Staff, campaign: Campaign) -> None:
    # "ß" folds to "ss": 200 characters become 400 unless the key is cut to its column.
    r = receipts.create(db, staff.marketer, receipt_input(campaign, vendor="ß" * 200))
    db.flush()
    assert len(r.vendor) == 200 and r.vendor_key == "s" * 200


def test_out_of_range_ids_name_nothing(db: Session, staff: Staff) -> None:
    for bad in (0, 2**31, 2**63, 10**20):
        with pytest.raises(NotFound):
            receipts.get(db, bad)
        with pytest.raises(NotFound):
            planning.get(db, bad)
        with pytest.raises(NotFound):
            users.get(db, bad)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"budget": D("1e15")}, "budget must be less than 1,000,000,000,000"),
        ({"budget": D("-1")}, "budget must not be negative"),
        ({"budget": D("10.00001")}, "budget has more than 4 decimal places"),
        ({"budget_lines": {"media": D("0.00001")}}, "media budget line has more than 4"),
        ({"budget_lines": {"media": D("-1")}}, "media budget line must not be negative"),
        ({"budget_lines": {"food\ud800": D("1")}}, "cost category is not valid text"),
        ({"expected_revenue": D("1e30")}, "expected revenue must be less than"),
        ({"expected_revenue": D("-5")}, "expected revenue must not be negative"),
        ({"starts_on": date(1, 1, 1)}, "start date must be between 1900-01-01"),
        ({"ends_on": date(9999, 12, 31)}, "end date must be between 1900-01-01"),
        ({"name": "Spring\x00"}, "name must not contain control characters"),
        ({"name": "n" * 201}, "name is longer than 200 characters"),
        ({"notes": "n" * 4001}, "notes is longer than 4000 characters"),
        ({"target_age_band": "a" * 21}, "target age band is longer than 20"),
        ({"target_region": "\x1b[31m"}, "target region must not contain control"),
        ({"channel": "wechat\x00"}, "channel code must not contain control characters"),
        ({"channel": "c" * 33}, "channel code is longer than 32 characters"),
        ({"currency": "RMB"}, "not an ISO 4217 currency code"),
        ({"status": "live\ud800"}, "status is not valid text"),
        ({"owner_id": 2**40}, "No staff member with id 1099511627776"),
        ({"owner_id": 987654}, "No staff member with id 987654"),
    ],
)
def test_campaigns_refuse_what_their_columns_cannot_hold(
    db: Session, staff: Staff, extra: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message):
        make_campaign(db, staff, "BOUNDS1", **extra)


def test_campaign_edits_are_held_to_the_same_bounds(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    with pytest.raises(ValidationFailed, match="budget must be less than"):
        planning.update(db, staff.marketer, campaign.id, budget=D("1e30"))
    with pytest.raises(ValidationFailed, match="end date must be between"):
        planning.update(db, staff.marketer, campaign.id, ends_on=date(9999, 12, 31))
    with pytest.raises(ValidationFailed, match="No staff member"):
        planning.update(db, staff.marketer, campaign.id, owner_id=2**31 - 1)
    with pytest.raises(ValidationFailed, match="status must not contain"):
        planning.set_status(db, staff.marketer, campaign.id, "active\x00")
    assert campaign.budget_amount == D("10000")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"amount": D("1e15")}, "amount must be less than 1,000,000,000,000"),
        ({"amount": D("0.00001")}, "amount has more than 4 decimal places"),
        ({"received_on": date(9999, 12, 31)}, "date received must be between"),
        ({"reference": "r" * 101}, "reference is longer than 100 characters"),
        ({"reference": "POS\x00"}, "reference must not contain control characters"),
        ({"orders": 2**31}, "Orders must be at most 2,147,483,647"),
        ({"currency": "usd\x07"}, "currency must not contain control characters"),
        ({"campaign_id": 2**63}, "No campaign with id"),
    ],
)
def test_revenue_refuses_what_its_columns_cannot_hold(
    db: Session, staff: Staff, campaign: Campaign, extra: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {
        "campaign_id": campaign.id,
        "received_on": date(2026, 3, 10),
        "amount": D("500"),
        "currency": "CNY",
    }
    with pytest.raises(ValidationFailed, match=message):
        revenue.record(db, staff.finance, **(fields | extra))  # type: ignore[arg-type]


def test_a_negative_revenue_record_is_a_correction(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    row = revenue.record(
        db,
        staff.finance,
        campaign_id=campaign.id,
        received_on=date(2026, 3, 10),
        amount=D("-12.5"),
        currency="cny",
    )
    assert row.amount == D("-12.5") and row.currency == "CNY"


@pytest.mark.parametrize(
    ("rate", "day", "message"),
    [
        (D("1e30"), date(2026, 3, 1), "between 0.000001 and 1,000,000"),
        (D("0"), date(2026, 3, 1), "between 0.000001 and 1,000,000"),
        (D("0.0000001"), date(2026, 3, 1), "between 0.000001 and 1,000,000"),
        (D("7.123456789"), date(2026, 3, 1), "at most 8 decimal places"),
        (D("7.1"), date(9999, 12, 31), "rate's date must be between"),
        (D("7.1"), date(1, 1, 1), "rate's date must be between"),
    ],
)
def test_rates_refuse_what_their_column_cannot_hold(
    db: Session, staff: Staff, rate: Decimal, day: date, message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message):
        rates.set_rate(db, staff.finance, "USD", day, rate, "CNY")
    with pytest.raises(ValidationFailed, match="not an ISO 4217"):
        rates.set_rate(db, staff.finance, "XYZ", date(2026, 3, 1), D("7"), "CNY")


def test_a_rate_stored_before_the_bounds_is_named_not_a_500(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    if db.get_bind().dialect.name != "sqlite":
        pytest.skip("PostgreSQL's NUMERIC(18, 8) never held such a rate")
    db.add(ExchangeRate(currency="USD", rate_date=date(2026, 3, 1), rate=D("1e30")))
    db.flush()
    frame = pd.DataFrame(
        {"amount": [D("999999999999")], "currency": ["USD"], "day": [date(2026, 3, 5)]}
    )
    table = rates.rates_frame(db, {"USD"})
    with pytest.raises(ValidationFailed, match="exchange rate for USD on or before 2026-03-05"):
        rates.convert(frame, table, "CNY")
    with pytest.raises(ValidationFailed, match="exchange rate for USD"):
        rates.to_base(db, D("999999999999"), "USD", date(2026, 3, 5), "CNY")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0001-01", "month must be between 1900-01-01"),
        ("9999-12", "month must be between 1900-01-01"),
        ("2026-13", "'2026-13' is not a month like 2026-03"),
        ("２０２６-03", "not a month like 2026-03"),
        ("2026-03\x00", "That is not a month like 2026-03"),
    ],
)
def test_months_are_parsed_strictly(value: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        periods.parse_month(value)


def test_months_outside_the_bounds_are_not_closed(db: Session, staff: Staff) -> None:
    with pytest.raises(ValidationFailed, match="month must be between"):
        periods.close_month(db, staff.finance, date(1, 1, 1))
    with pytest.raises(ValidationFailed, match="month must be between"):
        periods.reopen_month(db, staff.admin, date(9999, 12, 1))
    assert periods.parse_month(" 2026-03 ") == date(2026, 3, 1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"start": date(1, 1, 1)}, "start of the period must be between"),
        ({"end": date(9999, 12, 31)}, "end of the period must be between"),
        ({"owner_id": 2**63}, "owner_id must be between 1 and"),
        ({"channel": "wechat\x00"}, "channel must not contain control characters"),
        ({"status": "s" * 17}, "status is longer than 16 characters"),
        ({"statuses": ("active", "\ud800")}, "status is not valid text"),
    ],
)
def test_report_filters_are_held_to_their_bounds(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        report_data.ReportFilter(**fields)  # type: ignore[arg-type]


# --- CSV imports share the services' checks -------------------------------------------


def test_imports_report_bad_rows_instead_of_failing(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    header = "campaign_code,vendor,category,amount,currency,expense_date\n"
    rows = (
        "SPRING26,Ads,media,1000000000000000,CNY,2026-03-05\n"
        "SPRING26,Ads,media,0.00001,CNY,2026-03-05\n"
        "SPRING26,Ads,media,10,RMB,2026-03-05\n"
        "SPRING26,Ads,media,10,CNY,9999-12-31\n"
        "SPRING26,A\x00ds,media,10,CNY,2026-03-05\n"
        f"SPRING26,{LONG},media,10,CNY,2026-03-05\n"
        "SPRING\x0026,Ads,media,10,CNY,2026-03-05\n"
    )
    with pytest.raises(imports.ImportFailed) as caught:
        imports.import_receipts(db, staff.marketer, (header + rows).encode())
    lines = {e["line"]: e["message"] for e in caught.value.details}
    assert sorted(lines) == [2, 3, 4, 5, 6, 7, 8]
    assert "less than 1,000,000,000,000" in lines[2]
    assert "more than 4 decimal places" in lines[3]
    assert "CNY" in lines[4]
    assert "between 1900-01-01 and 2199-12-31" in lines[5]
    assert "control characters" in lines[6] and "control characters" in lines[8]
    assert "longer than 200 characters" in lines[7]


def test_imports_refuse_unreadable_csv_and_odd_digits(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    huge_field = b'date,currency,rate\n2026-03-01,USD,"' + b"7" * 200_000 + b'"\n'
    with pytest.raises(imports.ImportFailed, match="cannot be read as CSV"):
        imports.import_rates(db, staff.finance, huge_field, "CNY")
    body = "campaign_code,received_on,amount,currency,orders\n"
    for orders, message in [("²", "not a whole number"), ("9" * 5000, "at most 2,147,483,647")]:
        row = f"SPRING26,2026-03-05,10,CNY,{orders}\n"
        with pytest.raises(imports.ImportFailed, match=message):
            imports.import_revenue(db, staff.finance, (body + row).encode())
    rates_csv = b"date,currency,rate\n2026-03-01,USD,1e30\n2026-03-02,USD,7.123456789\n"
    with pytest.raises(imports.ImportFailed) as caught:
        imports.import_rates(db, staff.finance, rates_csv, "CNY")
    assert [e["line"] for e in caught.value.details] == [2, 3]


# --- Four eyes, and no API key deciding about money ----------------------------------


def person(db: Session, email: str, name: str, *roles: str) -> Actor:
    user = users.create(
        db, Actor.system(), email=email, name=name, roles=roles, password="long-password-1"
    )
    return Actor("user", email, user_id=user.id, roles=frozenset(roles))


def test_who_files_a_receipt_cannot_approve_it(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    other = person(db, "fei@example.com", "Wang Fei", "finance")
    # Entered and submitted by finance itself.
    own = receipts.create(db, staff.finance, receipt_input(campaign))
    receipts.transition(db, staff.finance, own.id, "submit")
    with pytest.raises(PermissionDenied, match="You entered or submitted receipt") as caught:
        receipts.transition(db, staff.finance, own.id, "approve")
    assert caught.value.code == "receipt.four_eyes"
    assert own.status == ReceiptStatus.SUBMITTED
    receipts.transition(db, other, own.id, "approve")
    assert own.status == ReceiptStatus.APPROVED and own.decided_by_id == other.user_id
    # Paying is a separate step: anyone in finance, but never a key (below).
    receipts.transition(db, staff.finance, own.id, "pay")


def test_who_submits_or_edits_a_receipt_cannot_approve_it(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    submitted = receipts.create(db, staff.marketer, receipt_input(campaign))
    receipts.transition(db, staff.finance, submitted.id, "submit")  # finance submits for them
    with pytest.raises(PermissionDenied, match=r"receipt #\d+, so you cannot approve it"):
        receipts.transition(db, staff.finance, submitted.id, "approve")

    edited = receipts.create(db, staff.marketer, receipt_input(campaign, vendor="Douyin"))
    receipts.update(db, staff.finance, edited.id, receipt_input(campaign, vendor="Douyin Ads"))
    receipts.transition(db, staff.marketer, edited.id, "submit")
    with pytest.raises(PermissionDenied, match="cannot approve it"):
        receipts.transition(db, staff.finance, edited.id, "approve")


def test_the_employee_reimbursed_cannot_approve_it(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    fei = person(db, "fei@example.com", "Wang Fei", "finance")
    r = receipts.create(
        db,
        staff.marketer,
        receipt_input(campaign, payment_mode="reimbursement", reimburse_to="  wang  FEI "),
    )
    receipts.transition(db, staff.marketer, r.id, "submit")
    assert r.reimburse_to == "wang  FEI"
    with pytest.raises(PermissionDenied, match="reimburses you") as caught:
        receipts.transition(db, fei, r.id, "approve")
    assert caught.value.code == "receipt.four_eyes"
    by_email = receipts.create(
        db,
        staff.marketer,
        receipt_input(
            campaign, payment_mode="reimbursement", reimburse_to="FEI@example.com", vendor="B"
        ),
    )
    receipts.transition(db, staff.marketer, by_email.id, "submit")
    assert receipts.four_eyes_problem(db, fei, by_email) is not None
    receipts.transition(db, staff.finance, r.id, "approve")  # someone else: fine


@pytest.mark.parametrize("action", ["approve", "pay"])
def test_an_api_key_cannot_approve_or_pay(
    db: Session, staff: Staff, campaign: Campaign, action: str
) -> None:
    key = Actor("api_key", "API key Books", api_key_id=1, roles=frozenset({"finance"}))
    r = receipts.create(db, staff.marketer, receipt_input(campaign))
    receipts.transition(db, staff.marketer, r.id, "submit")
    if action == "pay":
        receipts.transition(db, staff.finance, r.id, "approve")
    before = r.status
    with pytest.raises(PermissionDenied, match=f"An API key cannot {action} receipts") as caught:
        receipts.transition(db, key, r.id, action)
    assert caught.value.code == "receipt.person_only" and r.status == before


def test_a_rejection_reason_is_bounded(db: Session, staff: Staff, campaign: Campaign) -> None:
    r = receipts.create(db, staff.marketer, receipt_input(campaign))
    receipts.transition(db, staff.marketer, r.id, "submit")
    with pytest.raises(ValidationFailed, match="reason is longer than 4000"):
        receipts.transition(db, staff.finance, r.id, "reject", reason="r" * 4001)
    with pytest.raises(ValidationFailed, match="reason must not contain"):
        receipts.transition(db, staff.finance, r.id, "reject", reason="bad\x00")
    assert r.status == ReceiptStatus.SUBMITTED
