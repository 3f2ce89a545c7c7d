"""Campaigns: create, edit, change status. Marketers plan; the code is the campaign's handle."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import BudgetLine, Campaign, CampaignStatus, Channel, CostCategory
from campaigns.rates import currency_code
from core import audit, bounds
from core.accounts.models import User
from core.audit import Actor
from core.errors import Conflict, NotFound, Problems, ValidationFailed
from core.text import N_

_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,31}$")
PLANNERS = ("marketer", "admin")
# Free text kept in unbounded TEXT columns (a campaign's objective, target segment and notes,
# a receipt's description, a rejection reason): a few paragraphs, bounded by meaning.
LONG_TEXT = 4000
# The campaign's text fields and the column each is held to.
_TEXT_FIELDS: dict[str, tuple[int, str]] = {
    "objective": (LONG_TEXT, N_("The objective")),
    "target_segment": (LONG_TEXT, N_("The target segment")),
    "notes": (LONG_TEXT, N_("The notes")),
    "target_region": (bounds.length(Campaign.target_region), N_("The target region")),
    "target_age_band": (bounds.length(Campaign.target_age_band), N_("The target age band")),
    "target_occupation": (bounds.length(Campaign.target_occupation), N_("The target occupation")),
}
# Each cost category's budget line, as a refusal names it.
_LINE_LABELS: dict[str, str] = {
    CostCategory.MEDIA: N_("The media budget line"),
    CostCategory.CREATIVE: N_("The creative budget line"),
    CostCategory.GIFTS: N_("The gifts budget line"),
    CostCategory.EVENTS: N_("The events budget line"),
    CostCategory.STAFF: N_("The staff budget line"),
}


def snapshot(c: Campaign) -> dict[str, Any]:
    return {
        "code": c.code,
        "name": c.name,
        "status": c.status,
        "channel_id": c.channel_id,
        "owner_id": c.owner_id,
        "starts_on": str(c.starts_on),
        "ends_on": str(c.ends_on),
        "budget": f"{c.budget_amount} {c.currency}",
        "expected_revenue": None if c.expected_revenue is None else str(c.expected_revenue),
        "budget_lines": {b.category: str(b.amount) for b in c.budget_lines},
    }


def channel_by_code(session: Session, code: str) -> Channel:
    bounds.check_text(code, "channel", bounds.length(Channel.code), label=N_("The channel code"))
    channel = session.scalar(
        select(Channel).where(Channel.code == code.strip().lower(), Channel.active)
    )
    if channel is None:
        known = ", ".join(session.scalars(select(Channel.code).order_by(Channel.code)))
        raise ValidationFailed(
            "campaign.channel",
            "Unknown channel '%(value)s'; use one of %(known)s.",
            value=code,
            known=known,
        )
    return channel


def list_channels(session: Session, *, active_only: bool = False) -> list[Channel]:
    query = select(Channel).order_by(Channel.name)
    return list(session.scalars(query.where(Channel.active) if active_only else query))


def save_channel(
    session: Session, actor: Actor, *, code: str, name: str, active: bool = True
) -> Channel:
    """Add a channel, or rename / retire one (a retired channel stays on old campaigns)."""
    actor.require("admin", "marketer", doing=N_("configure channels"))
    code = code.strip().lower()
    if not re.match(r"^[a-z0-9_]{2,32}$", code) or not name.strip():
        raise ValidationFailed(
            "channel.code", "Give a code of 2 to 32 lower-case letters, digits or '_' and a name."
        )
    bounds.check_text(
        name.strip(), "channel.name", bounds.length(Channel.name), label=N_("The name")
    )
    channel = session.scalar(select(Channel).where(Channel.code == code))
    before = None if channel is None else {"name": channel.name, "active": channel.active}
    if channel is None:
        channel = Channel(code=code, name=name.strip(), active=active)
        session.add(channel)
    else:
        channel.name, channel.active = name.strip(), active
    session.flush()
    audit.record(
        session,
        actor,
        "channel.save",
        "channel",
        code,
        before=before,
        after={"name": channel.name, "active": channel.active},
    )
    return channel


def get(session: Session, campaign_id: int) -> Campaign:
    # An id out of the column's range names no campaign (and must not reach the database).
    campaign = session.get(Campaign, campaign_id) if 1 <= campaign_id <= bounds.MAX_ID else None
    if campaign is None:
        raise NotFound("campaign.not_found", "No campaign with id %(id)s.", id=campaign_id)
    return campaign


def referenced(session: Session, campaign_id: int) -> Campaign:
    """The campaign a document names in a field: an unknown one is a bad field (422), not a
    missing page (404)."""
    try:
        return get(session, campaign_id)
    except NotFound:
        raise ValidationFailed(
            "campaign.unknown",
            "No campaign with id %(id)s; choose an existing campaign.",
            id=campaign_id,
        ) from None


def by_code(session: Session, code: str) -> Campaign:
    bounds.check_text(code, "campaign_code", bounds.length(Campaign.code), label=N_("The code"))
    campaign = session.scalar(select(Campaign).where(Campaign.code == code.strip().upper()))
    if campaign is None:
        raise NotFound("campaign.not_found", "No campaign with code %(value)s.", value=code)
    return campaign


def validate(
    session: Session, problems: Problems, fields: dict[str, Any], campaign: Campaign | None = None
) -> None:
    """Note each problem of a campaign's `fields` (`create`'s keywords; for an edit of
    `campaign`, those that change) in `problems`, under the field's keyword name. A field
    that already has a problem (one the form could not read) keeps it and is not checked
    again, so a form shows its own problems and these at once."""
    if campaign is None:
        f = dict(fields)
        f["code"] = str(f.get("code", "")).strip().upper()
        f["budget_lines"] = {str(k): v for k, v in (f.get("budget_lines") or {}).items()}
        f.setdefault("expected_revenue", None)
        f.setdefault("status", CampaignStatus.DRAFT)
        for field, default in (("objective", ""), ("target_segment", ""), ("notes", "")):
            f.setdefault(field, default)
        for field in ("target_region", "target_age_band", "target_occupation"):
            f.setdefault(field, None)
    else:
        f = _merged(campaign, fields)
    _check(session, f, problems)


def _merged(campaign: Campaign, fields: dict[str, Any]) -> dict[str, Any]:
    """The campaign as an edit leaves it: its stored fields, with `fields` over them."""
    merged: dict[str, Any] = {
        "code": campaign.code,
        "name": campaign.name,
        "owner_id": campaign.owner_id,
        "starts_on": campaign.starts_on,
        "ends_on": campaign.ends_on,
        "budget": campaign.budget_amount,
        "expected_revenue": campaign.expected_revenue,
        "objective": campaign.objective,
        "target_segment": campaign.target_segment,
        "target_region": campaign.target_region,
        "target_age_band": campaign.target_age_band,
        "target_occupation": campaign.target_occupation,
        "notes": campaign.notes,
        "status": campaign.status,
        "budget_lines": {b.category: b.amount for b in campaign.budget_lines},
    }
    merged |= {k: v for k, v in fields.items() if k in merged}
    merged["code"] = str(merged["code"]).strip().upper()
    merged["budget_lines"] = {str(k): v for k, v in merged["budget_lines"].items()}
    return merged | {k: fields[k] for k in ("channel", "currency") if k in fields}


def _validate(session: Session, f: dict[str, Any]) -> None:
    """Every field of a campaign (as it will be stored) against its rule and its column;
    every problem is named at once, under the field's keyword name (`core.errors.Invalid`)."""
    problems = Problems()
    _check(session, f, problems)
    problems.raise_any()


def _check(session: Session, f: dict[str, Any], problems: Problems) -> None:
    """Note the problem of each field of `f` that has none in `problems` yet: a field the
    form could not read has a stand-in value (or none), which its rule must not see."""
    code, name, status = f["code"], f["name"], f["status"]

    def check(field: str, run: Callable[[], object]) -> None:
        if field not in problems:
            problems.check(field, run)

    def check_code() -> None:
        bounds.check_text(code, "campaign.code", bounds.length(Campaign.code), label=N_("The code"))
        if not _CODE.match(code):
            raise ValidationFailed(
                "campaign.code",
                "Use 2 to 32 capital letters, digits, '-' or '_' for the code, e.g. SPRING26.",
            )

    def check_name() -> None:
        bounds.check_text(name, "campaign.name", bounds.length(Campaign.name), label=N_("The name"))
        if not name.strip():
            raise ValidationFailed("campaign.name", "Give the campaign a name.")

    def check_status() -> None:
        bounds.check_text(
            status, "campaign.status", bounds.length(Campaign.status), label=N_("The status")
        )
        if status not in set(CampaignStatus):
            known = ", ".join(s.value for s in CampaignStatus)
            raise ValidationFailed(
                "campaign.status",
                "Unknown status '%(value)s'; use %(known)s.",
                value=status,
                known=known,
            )

    check("code", check_code)
    check("name", check_name)
    check("status", check_status)
    check(
        "starts_on",
        lambda: bounds.check_day(f["starts_on"], "campaign.starts_on", label=N_("The start date")),
    )
    check(
        "ends_on",
        lambda: bounds.check_day(f["ends_on"], "campaign.ends_on", label=N_("The end date")),
    )
    dated = "starts_on" not in problems and "ends_on" not in problems
    if dated and f["ends_on"] < f["starts_on"]:
        problems.add("ends_on", "The end date is before the start date.", "campaign.dates")
    budget: Decimal = f["budget"]
    check("budget", lambda: bounds.check_amount(budget, "campaign.budget", label=N_("The budget")))
    if f["expected_revenue"] is not None:
        check(
            "expected_revenue",
            lambda: bounds.check_amount(
                f["expected_revenue"], "campaign.expected_revenue", label=N_("The expected revenue")
            ),
        )
    lines: dict[str, Decimal] = f["budget_lines"]
    line_fields = {"budget", "budget_lines", *(f"line_{c.value}" for c in CostCategory)}
    for category, amount in lines.items():
        field = f"line_{category}"
        if category not in set(CostCategory):
            known = ", ".join(c.value for c in CostCategory)
            check(
                "budget_lines",
                lambda category=category: bounds.check_text(  # type: ignore[misc]
                    category, "campaign.budget_line", 16, label=N_("A cost category")
                ),
            )
            problems.add(
                "budget_lines",
                "Unknown cost category '%(value)s'; use %(known)s.",
                "campaign.budget_line",
                value=category,
                known=known,
            )
            continue
        check(
            field,
            lambda amount=amount, category=category: bounds.check_amount(  # type: ignore[misc]
                amount, "campaign.budget_line", label=_LINE_LABELS[category]
            ),
        )
    # Only when the budget and every line are right (a line the form could not read is
    # missing from `lines`).
    lines_right = not any(field in problems for field in line_fields)
    if lines_right and sum(lines.values(), Decimal(0)) > budget:
        problems.add(
            "budget_lines",
            "The budget lines add up to more than the budget.",
            "campaign.budget_lines",
        )
    for field, (size, label) in _TEXT_FIELDS.items():
        if f[field] is not None:
            check(
                field,
                lambda field=field, size=size, label=label: bounds.check_text(  # type: ignore[misc]
                    f[field], f"campaign.{field}", size, label=label
                ),
            )
    if "channel" in f:
        check("channel", lambda: channel_by_code(session, f["channel"]))
    if "currency" in f:
        check("currency", lambda: currency_code(f["currency"]))
    owner_id: int = f["owner_id"]
    if "owner_id" in problems:
        return
    if not 1 <= owner_id <= bounds.MAX_ID or session.get(User, owner_id) is None:
        problems.add(
            "owner_id",
            "No staff member with id %(id)s; choose the campaign's owner.",
            "campaign.owner",
            id=owner_id,
        )


def create(
    session: Session,
    actor: Actor,
    *,
    code: str,
    name: str,
    channel: str,
    owner_id: int,
    starts_on: date,
    ends_on: date,
    budget: Decimal,
    currency: str,
    expected_revenue: Decimal | None = None,
    objective: str = "",
    target_segment: str = "",
    target_region: str | None = None,
    target_age_band: str | None = None,
    target_occupation: str | None = None,
    notes: str = "",
    status: str = CampaignStatus.DRAFT,
    budget_lines: dict[str, Decimal] | None = None,
) -> Campaign:
    actor.require(*PLANNERS, doing=N_("plan campaigns"))
    code = code.strip().upper()
    lines = {str(k): v for k, v in (budget_lines or {}).items()}
    fields: dict[str, Any] = {
        "code": code,
        "name": name,
        "owner_id": owner_id,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "budget": budget,
        "expected_revenue": expected_revenue,
        "objective": objective,
        "target_segment": target_segment,
        "target_region": target_region,
        "target_age_band": target_age_band,
        "target_occupation": target_occupation,
        "notes": notes,
        "status": status,
        "budget_lines": lines,
    }
    _validate(session, {**fields, "channel": channel, "currency": currency})
    if session.scalar(select(Campaign.id).where(Campaign.code == code)) is not None:
        raise Conflict(
            "campaign.code_taken", "The code %(value)s is already used by a campaign.", value=code
        )
    campaign = Campaign(
        code=code,
        name=name.strip(),
        channel_id=channel_by_code(session, channel).id,
        owner_id=owner_id,
        starts_on=starts_on,
        ends_on=ends_on,
        budget_amount=budget,
        currency=currency_code(currency),
        expected_revenue=expected_revenue,
        objective=objective,
        target_segment=target_segment,
        target_region=target_region,
        target_age_band=target_age_band,
        target_occupation=target_occupation,
        notes=notes,
        status=str(status),
    )
    campaign.budget_lines = [BudgetLine(category=k, amount=v) for k, v in sorted(lines.items())]
    session.add(campaign)
    session.flush()
    audit.record(
        session, actor, "campaign.create", "campaign", campaign.id, after=snapshot(campaign)
    )
    return campaign


def update(session: Session, actor: Actor, campaign_id: int, **fields: Any) -> Campaign:
    """Edit a campaign; the same rules as create. The code changes only if it stays unique."""
    actor.require(*PLANNERS, doing=N_("edit campaigns"))
    campaign = get(session, campaign_id)
    merged = _merged(campaign, fields)
    code = merged["code"]
    _validate(session, merged)
    lines: dict[str, Decimal] = merged["budget_lines"]
    taken = session.scalar(
        select(Campaign.id).where(Campaign.code == code, Campaign.id != campaign.id)
    )
    if taken is not None:
        raise Conflict(
            "campaign.code_taken", "The code %(value)s is already used by a campaign.", value=code
        )
    before = snapshot(campaign)
    campaign.code, campaign.name = code, str(merged["name"]).strip()
    campaign.status = str(merged["status"])
    campaign.starts_on, campaign.ends_on = merged["starts_on"], merged["ends_on"]
    campaign.budget_amount = merged["budget"]
    if "channel" in fields:
        campaign.channel_id = channel_by_code(session, fields["channel"]).id
    if "currency" in fields:
        campaign.currency = currency_code(fields["currency"])
    for name_ in (
        "owner_id",
        "expected_revenue",
        "objective",
        "target_segment",
        "target_region",
        "target_age_band",
        "target_occupation",
        "notes",
    ):
        if name_ in fields:
            setattr(campaign, name_, fields[name_])
    current = {b.category: b for b in campaign.budget_lines}
    for category, amount in lines.items():  # update in place: one row per category
        if category in current:
            current[category].amount = amount
        else:
            campaign.budget_lines.append(BudgetLine(category=category, amount=amount))
    for category, line in current.items():
        if category not in lines:
            campaign.budget_lines.remove(line)
    session.flush()
    after = snapshot(campaign)
    if after != before:
        audit.record(
            session, actor, "campaign.update", "campaign", campaign.id, before=before, after=after
        )
    return campaign


def set_status(session: Session, actor: Actor, campaign_id: int, status: str) -> Campaign:
    actor.require(*PLANNERS, doing=N_("change a campaign's status"))
    campaign = get(session, campaign_id)
    bounds.check_text(
        status, "campaign.status", bounds.length(Campaign.status), label=N_("The status")
    )
    if status not in set(CampaignStatus):
        raise ValidationFailed("campaign.status", "Unknown status '%(value)s'.", value=status)
    if status != campaign.status:
        before = snapshot(campaign)
        campaign.status = status
        session.flush()
        audit.record(
            session,
            actor,
            "campaign.status",
            "campaign",
            campaign.id,
            before=before,
            after=snapshot(campaign),
        )
    return campaign
