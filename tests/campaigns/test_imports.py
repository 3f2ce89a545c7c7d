"""CSV imports: all or nothing, every bad row reported with its line number."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import imports
from campaigns.imports import ImportFailed
from campaigns.models import Campaign, ExchangeRate, Receipt, RevenueRecord
from core.errors import PermissionDenied
from tests.campaigns.conftest import Staff

HEADER = "campaign_code,vendor,category,amount,currency,expense_date,invoice_number\n"


def count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_good_receipts_import_with_a_bom_and_chinese_text(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    text = HEADER + 'spring26,腾讯广告,media,"1,200.50",CNY,2026-03-05,T-1\n'
    text += "SPRING26,Print shop,creative,300,cny,2026-03-06,\n\n"
    result = imports.import_receipts(db, staff.finance, ("\ufeff" + text).encode())
    assert result.rows == 2
    vendors = sorted(db.scalars(select(Receipt.vendor)))
    assert vendors == ["Print shop", "腾讯广告"]


def test_a_bad_row_imports_nothing_and_every_bad_row_is_named(
    db: Session, staff: Staff, campaign: Campaign
) -> None:
    text = (
        HEADER
        + "SPRING26,Good vendor,media,100,CNY,2026-03-05,G-1\n"  # line 2: fine
        + "NOPE,Vendor,media,100,CNY,2026-03-05,N-1\n"  # line 3: unknown campaign
        + "SPRING26,Vendor,food,100,CNY,2026-03-05,F-1\n"  # line 4: bad category
        + "SPRING26,Vendor,media,abc,CNY,2026-03-05,A-1\n"  # line 5: bad amount
        + "SPRING26,Vendor,media,100,CNY,31/03/2026,D-1\n"  # line 6: bad date
        + "SPRING26,,media,100,CNY,2026-03-05,E-1\n"  # line 7: empty vendor
    )
    with pytest.raises(ImportFailed) as failure:
        imports.import_receipts(db, staff.finance, text.encode())
    errors = failure.value.details
    assert [e["line"] for e in errors] == [3, 4, 5, 6, 7]
    assert "No campaign with code NOPE" in errors[0]["message"]
    assert "Unknown category 'food'" in errors[1]["message"]
    assert "'abc' is not an amount" in errors[2]["message"]
    assert "31/03/2026" in errors[3]["message"]
    assert "Empty vendor" in errors[4]["message"]
    assert "Nothing was imported: 5 bad row(s)" in failure.value.message
    db.rollback()
    assert count(db, Receipt) == 0


def test_wrong_columns_and_encoding_are_explained(db: Session, staff: Staff) -> None:
    with pytest.raises(ImportFailed, match=r"missing column.*expense_date"):
        imports.import_receipts(db, staff.finance, b"campaign_code,vendor\nX,Y\n")
    with pytest.raises(ImportFailed, match="CSV UTF-8"):
        imports.import_receipts(db, staff.finance, HEADER.encode() + "广告".encode("gbk"))


def test_revenue_and_rates_import(db: Session, staff: Staff, campaign: Campaign) -> None:
    revenue_csv = "campaign_code,received_on,amount,currency,reference,orders\n"
    revenue_csv += "SPRING26,2026-03-10,5000,CNY,B2B-7,12\nSPRING26,2026-03-11,200,CNY,,\n"
    assert imports.import_revenue(db, staff.finance, revenue_csv.encode()).rows == 2
    assert count(db, RevenueRecord) == 2
    rates_csv = "date,currency,rate\n2026-03-01,USD,7.10\n2026-03-02,usd,7.12\n"
    assert imports.import_rates(db, staff.finance, rates_csv.encode(), "CNY").rows == 2
    stored = db.scalar(select(ExchangeRate).where(ExchangeRate.rate_date == date(2026, 3, 2)))
    assert stored is not None and str(stored.rate.normalize()) == "7.12"
    with pytest.raises(ImportFailed) as failure:
        imports.import_rates(db, staff.finance, b"date,currency,rate\n2026-03-03,CNY,1\n", "CNY")
    assert failure.value.details == [
        {"line": 2, "message": "CNY is the base currency; it needs no rate."}
    ]


def test_imports_check_the_role(db: Session, staff: Staff, campaign: Campaign) -> None:
    csv_text = "date,currency,rate\n2026-03-01,USD,7.10\n"
    with pytest.raises(PermissionDenied, match="Only finance staff can import"):
        imports.import_rates(db, staff.marketer, csv_text.encode(), "CNY")
