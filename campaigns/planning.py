"""Campaigns: create, edit, change status. Marketers plan; the code is the campaign's handle."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import BudgetLine, Campaign, CampaignStatus, Channel, CostCategory
from core import audit
from core.audit import Actor
from core.errors import Conflict, NotFound, ValidationFailed
from core.money import normalise_currency

_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,31}$")
PLANNERS = ("marketer", "admin")


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
    channel = session.scalar(
        select(Channel).where(Channel.code == code.strip().lower(), Channel.active)
    )
    if channel is None:
        known = ", ".join(session.scalars(select(Channel.code).order_by(Channel.code)))
        raise ValidationFailed("campaign.channel", f"Unknown channel '{code}'; use one of {known}.")
    return channel


def list_channels(session: Session, *, active_only: bool = False) -> list[Channel]:
    query = select(Channel).order_by(Channel.name)
    return list(session.scalars(query.where(Channel.active) if active_only else query))


def save_channel(
    session: Session, actor: Actor, *, code: str, name: str, active: bool = True
) -> Channel:
    """Add a channel, or rename / retire one (a retired channel stays on old campaigns)."""
    actor.require("admin", "marketer", doing="configure channels")
    code = code.strip().lower()
    if not re.match(r"^[a-z0-9_]{2,32}$", code) or not name.strip():
        raise ValidationFailed(
            "channel.code", "Give a code of 2 to 32 lower-case letters, digits or '_' and a name."
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
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign.not_found", f"No campaign with id {campaign_id}.")
    return campaign


def by_code(session: Session, code: str) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.code == code.strip().upper()))
    if campaign is None:
        raise NotFound("campaign.not_found", f"No campaign with code {code}.")
    return campaign


def _validate(
    code: str,
    name: str,
    starts_on: date,
    ends_on: date,
    budget: Decimal,
    budget_lines: dict[str, Decimal],
) -> None:
    if not _CODE.match(code):
        raise ValidationFailed(
            "campaign.code",
            "Use 2 to 32 capital letters, digits, '-' or '_' for the code, e.g. SPRING26.",
        )
    if not name.strip():
        raise ValidationFailed("campaign.name", "Give the campaign a name.")
    if ends_on < starts_on:
        raise ValidationFailed("campaign.dates", "The end date is before the start date.")
    if budget < 0:
        raise ValidationFailed("campaign.budget", "The budget cannot be negative.")
    for category, amount in budget_lines.items():
        if category not in set(CostCategory):
            raise ValidationFailed("campaign.budget_line", f"Unknown cost category '{category}'.")
        if amount < 0:
            raise ValidationFailed("campaign.budget_line", "Budget lines cannot be negative.")
    if sum(budget_lines.values(), Decimal(0)) > budget:
        raise ValidationFailed(
            "campaign.budget_lines", "The budget lines add up to more than the budget."
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
    actor.require(*PLANNERS, doing="plan campaigns")
    code = code.strip().upper()
    lines = budget_lines or {}
    _validate(code, name, starts_on, ends_on, budget, lines)
    if session.scalar(select(Campaign.id).where(Campaign.code == code)) is not None:
        raise Conflict("campaign.code_taken", f"The code {code} is already used by a campaign.")
    if status not in set(CampaignStatus):
        raise ValidationFailed("campaign.status", f"Unknown status '{status}'.")
    campaign = Campaign(
        code=code,
        name=name.strip(),
        channel_id=channel_by_code(session, channel).id,
        owner_id=owner_id,
        starts_on=starts_on,
        ends_on=ends_on,
        budget_amount=budget,
        currency=normalise_currency(currency),
        expected_revenue=expected_revenue,
        objective=objective,
        target_segment=target_segment,
        target_region=target_region,
        target_age_band=target_age_band,
        target_occupation=target_occupation,
        notes=notes,
        status=status,
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
    actor.require(*PLANNERS, doing="edit campaigns")
    campaign = get(session, campaign_id)
    code = str(fields.get("code", campaign.code)).strip().upper()
    lines: dict[str, Decimal] = fields.get(
        "budget_lines", {b.category: b.amount for b in campaign.budget_lines}
    )
    starts_on = fields.get("starts_on", campaign.starts_on)
    ends_on = fields.get("ends_on", campaign.ends_on)
    budget = fields.get("budget", campaign.budget_amount)
    name = str(fields.get("name", campaign.name))
    _validate(code, name, starts_on, ends_on, budget, lines)
    taken = session.scalar(
        select(Campaign.id).where(Campaign.code == code, Campaign.id != campaign.id)
    )
    if taken is not None:
        raise Conflict("campaign.code_taken", f"The code {code} is already used by a campaign.")
    status = fields.get("status", campaign.status)
    if status not in set(CampaignStatus):
        raise ValidationFailed("campaign.status", f"Unknown status '{status}'.")
    before = snapshot(campaign)
    campaign.code, campaign.name, campaign.status = code, name.strip(), status
    campaign.starts_on, campaign.ends_on, campaign.budget_amount = starts_on, ends_on, budget
    if "channel" in fields:
        campaign.channel_id = channel_by_code(session, fields["channel"]).id
    if "currency" in fields:
        campaign.currency = normalise_currency(fields["currency"])
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
    actor.require(*PLANNERS, doing="change a campaign's status")
    campaign = get(session, campaign_id)
    if status not in set(CampaignStatus):
        raise ValidationFailed("campaign.status", f"Unknown status '{status}'.")
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
