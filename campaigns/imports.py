"""CSV imports for receipts, revenue records and exchange rates.

A file imports completely or not at all: every row is checked (each inside a savepoint, so
one bad row does not stop the others from being checked), and if any row is bad, ImportFailed
lists every bad row with its line number and the caller's transaction is rolled back.
Files are UTF-8, with or without the BOM that Excel writes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from campaigns import planning, rates, receipts, revenue
from campaigns.receipts import ReceiptInput
from core.audit import Actor
from core.errors import RetainError, ValidationFailed
from core.money import parse_amount
from core.text import N_

RECEIPT_COLUMNS = {
    "required": ["campaign_code", "vendor", "category", "amount", "currency", "expense_date"],
    "optional": ["description", "tax_amount", "invoice_number", "payment_mode", "reimburse_to"],
}
REVENUE_COLUMNS = {
    "required": ["campaign_code", "received_on", "amount", "currency"],
    "optional": ["reference", "orders"],
}
RATE_COLUMNS = {"required": ["date", "currency", "rate"], "optional": []}
MAX_ERRORS = 200


class ImportFailed(ValidationFailed):
    default_code = "import.failed"
    # Each bad row's refusal, in the order of `details`, so a page can say them in its
    # language (`details` holds the English, for the API and the CLI).
    row_errors: tuple[RetainError, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportResult:
    kind: str
    rows: int
    ids: tuple[int, ...] = ()  # what was created, in file order (receipts: drafts to submit)


def _rows(data: bytes, columns: dict[str, list[str]]) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFailed(
            "import.encoding",
            "The file is not UTF-8. In Excel choose “CSV UTF-8 (Comma delimited)” when saving.",
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in reader.fieldnames or []]
        missing = [c for c in columns["required"] if c not in header]
        if missing:
            raise ImportFailed(
                "import.columns",
                "Line 1: missing column(s) %(missing)s. Expected: %(expected)s.",
                missing=", ".join(missing),
                expected=", ".join(columns["required"] + columns["optional"]),
            )
        reader.fieldnames = header
        for raw in reader:
            row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            if any(row.values()):
                yield reader.line_num, row
    except csv.Error as exc:  # e.g. a field past the csv module's limit, a broken quote
        raise ImportFailed(
            "import.csv",
            "Line %(line)s cannot be read as CSV (%(error)s). Nothing was imported.",
            line=reader.line_num or 1,
            error=str(exc),
        ) from None


def _date(value: str, column: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            "import.date",
            "%(column)s '%(value)s' is not a date like 2026-03-31.",
            column=column,
            value=value,
        ) from None


def _amount(value: str, column: str, *, required: bool = True) -> Decimal:
    """An amount column, written "1234.56" or "1,234.56" (quoted in the CSV, as Excel does):
    `money.parse_amount`, the same as the forms; a refusal names the column."""
    if not value:
        if required:
            raise ValidationFailed("import.amount", "%(column)s is empty.", column=column)
        return Decimal(0)
    return parse_amount(value, column)


def _run(
    session: Session,
    kind: str,
    data: bytes,
    columns: dict[str, list[str]],
    handle: Callable[[dict[str, str]], Any],
) -> ImportResult:
    errors: list[dict[str, Any]] = []
    said: list[RetainError] = []
    count = 0
    for line, row in _rows(data, columns):
        count += 1
        blank = [c for c in columns["required"] if not row.get(c)]
        refusal: RetainError | None = None
        if blank:
            refusal = ValidationFailed(
                "import.blank", "Empty %(columns)s.", columns=", ".join(blank)
            )
        else:
            try:
                with session.begin_nested():
                    handle(row)
            except RetainError as exc:
                refusal = exc
        if refusal is not None:
            errors.append({"line": line, "message": refusal.message})
            said.append(refusal)
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        shown = "; ".join(f"line {e['line']}: {e['message']}" for e in errors[:5])
        failed = ImportFailed(
            "import.failed",
            N_("Nothing was imported: %(count)s bad row(s). %(rows)s (and %(more)s more)")
            if len(errors) > 5
            else N_("Nothing was imported: %(count)s bad row(s). %(rows)s"),
            errors,
            count=len(errors),
            rows=shown,
            more=len(errors) - 5,
        )
        failed.row_errors = tuple(said)
        raise failed
    if count == 0:
        raise ImportFailed("import.empty", "The file has a header but no rows.")
    return ImportResult(kind, count)


def import_receipts(session: Session, actor: Actor, data: bytes) -> ImportResult:
    actor.require(*receipts.ENTERERS, doing=N_("import receipts"))
    codes: dict[str, int] = {}
    created: list[int] = []

    def handle(row: dict[str, str]) -> None:
        code = row["campaign_code"].upper()
        if code not in codes:
            codes[code] = planning.by_code(session, code).id
        receipt = receipts.create(
            session,
            actor,
            ReceiptInput(
                campaign_id=codes[code],
                vendor=row["vendor"],
                category=row["category"].lower(),
                amount=_amount(row["amount"], "amount"),
                currency=row["currency"],
                expense_date=_date(row["expense_date"], "expense_date"),
                description=row.get("description", ""),
                tax_amount=_amount(row.get("tax_amount", ""), "tax_amount", required=False),
                invoice_number=row.get("invoice_number") or None,
                payment_mode=(row.get("payment_mode") or "company").lower(),
                reimburse_to=row.get("reimburse_to") or None,
            ),
        )
        created.append(receipt.id)

    # Imported receipts are drafts: whoever imported them still checks and submits each.
    result = _run(session, "receipts", data, RECEIPT_COLUMNS, handle)
    return replace(result, ids=tuple(created))


def import_revenue(session: Session, actor: Actor, data: bytes) -> ImportResult:
    actor.require("finance", doing=N_("import revenue"))

    def handle(row: dict[str, str]) -> None:
        orders = row.get("orders") or None
        if orders is not None and not (orders.isascii() and orders.isdigit()):
            raise ValidationFailed(
                "import.orders", "orders '%(value)s' is not a whole number.", value=orders
            )
        if orders is not None and len(orders) > len(str(revenue.MAX_ORDERS)):
            raise ValidationFailed(
                "import.orders",
                "orders must be at most %(max)s.",
                max=f"{revenue.MAX_ORDERS:,}",
            )
        revenue.record(
            session,
            actor,
            campaign_id=planning.by_code(session, row["campaign_code"]).id,
            received_on=_date(row["received_on"], "received_on"),
            amount=_amount(row["amount"], "amount"),
            currency=row["currency"],
            reference=row.get("reference", ""),
            orders=int(orders) if orders else None,
        )

    return _run(session, "revenue", data, REVENUE_COLUMNS, handle)


def import_rates(session: Session, actor: Actor, data: bytes, base: str) -> ImportResult:
    actor.require("finance", doing=N_("import exchange rates"))

    def handle(row: dict[str, str]) -> None:
        rates.set_rate(
            session,
            actor,
            row["currency"],
            _date(row["date"], "date"),
            _amount(row["rate"], "rate"),
            base,
        )

    return _run(session, "rates", data, RATE_COLUMNS, handle)
