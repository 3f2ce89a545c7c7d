"""A campaign's audience with a holdout: who is in the experiment, and who is held out.

When a marketer sets a campaign's target segment with a holdout share
(`analytics.segments.set_campaign_target`), the segment's members at that moment are
**frozen** here as the campaign's audience, each assigned to the treated arm or the holdout by
`attribution.holdout.assign` (a hash of campaign and member). Frozen, because a segment is
evaluated when used and its members change every day: the experiment's arms must not. A member
who joins the segment later is in neither arm; one who leaves it stays in theirs. Before the
campaign starts the target or the share may change, and the audience is frozen again; once it
has started that is refused (the arms would no longer be the ones the campaign reached).

Loyalty reads the audience to leave held-out members out of the campaign:

- coupons: `coupons.issue` refuses to give one of the campaign's coupons to a held-out member;
  `coupons.issue_to_members` and `coupons.plan_issue` skip them and count them;
- bonus rules: each purchase path loads the member's held-out campaigns with the purchase's
  facts (`history.Facts.held_out`), and `earning.rule_matches` skips a rule of a campaign that
  holds the member out, on every path alike.

This module only reads and writes the table (`loyalty.models.CampaignAudience`); who belongs
to the segment and who is held out is decided above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.orm import Session

from loyalty.models import CampaignAudience

_CHUNK = 10_000  # rows inserted per statement


@dataclass(frozen=True, slots=True)
class Arms:
    """How many members a campaign's frozen audience holds in each arm."""

    treated: int = 0
    held_out: int = 0

    @property
    def members(self) -> int:
        return self.treated + self.held_out


def freeze(
    session: Session,
    campaign_id: int,
    member_ids: Sequence[int],
    held_out_flags: Sequence[bool],
) -> Arms:
    """Replace the campaign's audience with `member_ids`, each held out where its flag (same
    position) is true. An empty list clears it. Flushes; never commits."""
    if len(member_ids) != len(held_out_flags):
        raise ValueError(
            f"{len(member_ids)} members but {len(held_out_flags)} held-out flags: one each"
        )
    if len(set(member_ids)) != len(member_ids):
        raise ValueError("a member is in a campaign's audience once")
    session.flush()
    session.execute(delete(CampaignAudience).where(CampaignAudience.campaign_id == campaign_id))
    rows = [
        {"campaign_id": campaign_id, "member_id": int(member), "held_out": bool(flag)}
        for member, flag in zip(member_ids, held_out_flags, strict=True)
    ]
    for start in range(0, len(rows), _CHUNK):
        session.execute(insert(CampaignAudience), rows[start : start + _CHUNK])
    held = sum(1 for flag in held_out_flags if flag)
    return Arms(treated=len(rows) - held, held_out=held)


def clear(session: Session, campaign_id: int) -> None:
    """Forget the campaign's audience (no holdout any more)."""
    freeze(session, campaign_id, [], [])


def held_out_ids(session: Session, campaign_id: int) -> Select[int]:
    """The ids of the members the campaign holds out, as a SELECT usable as a subquery."""
    del session  # for symmetry with the other readers: the query runs where it is used
    return select(CampaignAudience.member_id).where(
        CampaignAudience.campaign_id == campaign_id, CampaignAudience.held_out.is_(True)
    )


def treated_ids(session: Session, campaign_id: int) -> Select[int]:
    """The ids of the members of the campaign's frozen audience it reaches (not held out)."""
    del session
    return select(CampaignAudience.member_id).where(
        CampaignAudience.campaign_id == campaign_id, CampaignAudience.held_out.is_(False)
    )


def is_held_out(session: Session, campaign_id: int, member_id: int) -> bool:
    """Whether the campaign holds the member out."""
    found = session.scalar(
        select(CampaignAudience.held_out).where(
            CampaignAudience.campaign_id == campaign_id,
            CampaignAudience.member_id == member_id,
        )
    )
    return bool(found)


def arms(session: Session, campaign_id: int) -> Arms:
    """The members in each arm of the campaign's frozen audience (zeros: none frozen)."""
    counts = dict(
        session.execute(
            select(CampaignAudience.held_out, func.count())
            .where(CampaignAudience.campaign_id == campaign_id)
            .group_by(CampaignAudience.held_out)
        ).all()
    )
    return Arms(
        treated=int(counts.get(False, 0) or 0),
        held_out=int(counts.get(True, 0) or 0),
    )


def has_holdout(session: Session, campaign_id: int) -> bool:
    """Whether the campaign holds anybody out."""
    return session.scalar(select(held_out_ids(session, campaign_id).exists()).limit(1)) or False
