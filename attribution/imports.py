"""CSV import of touchpoints, all or nothing, like the other imports (`campaigns.imports`:
its reader, its error shape and its message).

Columns: `source`, `external_id`, `channel` (code), `kind`, `occurred_at` (ISO 8601 with its
offset, e.g. 2026-03-31T10:00:00+08:00) required; `member_number`, `visitor_id`,
`campaign_code` optional (a member number or a visitor id on every row). UTF-8, with or
without the BOM Excel writes.

Every row is checked first, by the same rules as an API batch (`touchpoints.prepare`:
bounds, known channel, campaign and member, a row repeated with other content); then rows
already stored with other content are refused. Any bad row fails the whole file: nothing is
written and `ImportFailed` lists every bad row with its line number. Rows already imported
with the same content are skipped, so a file can be imported again safely.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from attribution import touchpoints
from attribution.touchpoints import TouchInput
from campaigns.imports import MAX_ERRORS, ImportFailed, _rows
from core import audit
from core.audit import Actor
from core.errors import ValidationFailed
from core.text import N_

COLUMNS = {
    "required": ["source", "external_id", "channel", "kind", "occurred_at"],
    "optional": ["member_number", "visitor_id", "campaign_code"],
}
SHOWN = 5  # bad rows spelled out in the message (all are in `details`), as campaigns.imports


@dataclass(frozen=True, slots=True)
class TouchpointImport:
    rows: int
    created: int
    replayed: int  # rows imported before with the same content: skipped
    kind: str = "touchpoints"


def _time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        shown = value[:40].encode("utf-8", "backslashreplace").decode("utf-8")
        raise ValidationFailed(
            "import.time",
            "occurred_at '%(shown)s' is not a time like 2026-03-31T10:00:00+08:00.",
            shown=shown,
        ) from None


def _failed(errors: list[dict[str, Any]]) -> ImportFailed:
    errors = sorted(errors, key=lambda e: int(e["line"]))[:MAX_ERRORS]
    shown = "; ".join(f"line {e['line']}: {e['message']}" for e in errors[:SHOWN])
    return ImportFailed(
        "import.failed",
        N_("Nothing was imported: %(count)s bad row(s). %(rows)s (and %(more)s more)")
        if len(errors) > SHOWN
        else N_("Nothing was imported: %(count)s bad row(s). %(rows)s"),
        errors,
        count=len(errors),
        rows=shown,
        more=len(errors) - SHOWN,
    )


def import_touchpoints(
    session: Session, actor: Actor, data: bytes, *, now: datetime | None = None
) -> TouchpointImport:
    """Import a touchpoints CSV (module docstring). Flushes; the caller commits."""
    actor.require(*touchpoints.WRITERS, doing=N_("import touchpoints"))
    errors: list[dict[str, Any]] = []
    items: list[TouchInput] = []
    lines: list[int] = []
    for line, row in _rows(data, COLUMNS):
        blank = [c for c in COLUMNS["required"] if not row.get(c)]
        if blank:
            errors.append({"line": line, "message": f"Empty {', '.join(blank)}."})
        else:
            try:
                at = _time(row["occurred_at"])
            except ValidationFailed as exc:
                errors.append({"line": line, "message": exc.message})
            else:
                items.append(
                    TouchInput(
                        source=row["source"],
                        external_id=row["external_id"],
                        channel=row["channel"],
                        kind=row["kind"],
                        occurred_at=at,
                        member_number=row.get("member_number") or None,
                        visitor_id=row.get("visitor_id") or None,
                        campaign_code=row.get("campaign_code") or None,
                    )
                )
                lines.append(line)
        if len(errors) >= MAX_ERRORS:
            break
    prepared = touchpoints.prepare(session, items, now=now)
    errors += [{"line": lines[p.index], "message": p.message} for p in prepared.problems]
    if errors:
        raise _failed(errors)
    if not items:
        raise ImportFailed("import.empty", "The file has a header but no rows.")
    rows = [r for r in prepared.rows if r is not None]
    recorded, conflicts = touchpoints.store(session, rows)
    if conflicts:
        raise _failed(
            [
                {
                    "line": lines[i],
                    "message": f"{rows[i]['source']}/{rows[i]['external_id']} was imported "
                    "before with different content.",
                }
                for i in conflicts
            ]
        )
    result = TouchpointImport(
        rows=len(recorded),
        created=sum(1 for r in recorded if not r.replayed),
        replayed=sum(1 for r in recorded if r.replayed),
    )
    if result.created:
        audit.record(
            session,
            actor,
            "touchpoints.import",
            "touchpoint_batch",
            None,
            after={"created": result.created, "replayed": result.replayed},
        )
    return result
