"""Staff pages for members: search, enrolment, a member's page (balance, purchases and
lifetime spend, ledger, tier history, coupons, referrals) and manual points adjustments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import planning
from campaigns.models import Campaign
from core import bounds
from core.accounts.models import Role, User
from core.errors import Problems, ValidationFailed
from core.money import format_amount
from core.settings import Settings
from core.timeutil import utcnow
from loyalty import coupons, ledger, members, program, referrals, rewards, spend
from loyalty.models import (
    MAX_BIG,
    NOTE_LENGTH,
    Batch,
    EntryType,
    LedgerEntry,
    Member,
    Tier,
    TierChange,
)
from web.actions import FORM, act
from web.deps import AppSettings, Db, actor_for, require_roles
from web.forms import FormFields, form_key
from web.i18n import STAFF, Formatter, translations
from web.pages.coupon_batches import offer
from web.portal.explain import Voice, lines
from web.rendering import N_, flash, language, render, say, t

router = APIRouter(prefix="/members")
Staff = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER, Role.FINANCE))]
Books = Annotated[User, Depends(require_roles(Role.ADMIN, Role.FINANCE))]
Planner = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MARKETER))]
PAGE = 50  # ledger entries per page


# Stored words the pages show translated (`{{ _(member.status) }}`): statuses, genders, and
# the states of coupons and referrals.
WORDS = (
    N_("active"),
    N_("suspended"),
    N_("closed"),
    N_("female"),
    N_("male"),
    N_("other"),
    N_("issued"),
    N_("redeemed"),
    N_("expired"),
    N_("void"),
    N_("pending"),
    N_("qualifying"),
    N_("completed"),
    N_("cancelled"),
)

# The ledger in staff's words: the member in the third person ("Points for a purchase", not
# "your purchase"). Which rule gets which sentence is `web.portal.explain`'s, shared with
# the portal; rules left out here show the reason as posted, which already names who and
# why ("Referral reward: member M00000042 joined", "Repeat bonus: 3 purchases in 30 days").
STAFF_VOICE = Voice(
    fixed={
        "base": N_("Points for a purchase"),
        "first_purchase": N_("First-purchase bonus"),
        "signup": N_("Welcome bonus"),
        "birthday": N_("Birthday points"),
        "expiry": N_("Points expired"),
        "refund": N_("Points taken back for a refund"),
    },
    types={
        "earn": N_("Earned"),
        "bonus": N_("Bonus"),
        "redeem": N_("Redeemed"),
        "reverse": N_("Reversed"),
        "expire": N_("Expired"),
        "adjust": N_("Adjusted"),
    },
    tier=N_("Tier bonus: %(reason)s"),
    bonus=N_("Bonus rule: %(name)s"),
    reward=N_("Redeemed for the reward %(name)s"),
    adjust=N_("Adjusted by staff: %(reason)s"),
    coupon=N_("Bought coupon %(code)s"),
    purchase=N_("Purchase %(ref)s of %(amount)s on %(date)s"),
)


@dataclass(frozen=True, slots=True)
class StaffFormatter(Formatter):
    """The staff pages' language for `web.portal.explain`: the staff catalog."""

    def gettext(self, message: str) -> str:
        return translations(self.language, STAFF).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return translations(self.language, STAFF).ngettext(singular, plural, n)


@router.get("")
def members_page(request: Request, user: Staff, db: Db, q: str = "") -> Response:
    status = 200
    try:
        found = members.search(db, q, limit=100)
    except ValidationFailed as exc:
        flash(request, say(request, exc), "error")
        found, q, status = [], "", 422
    tiers = {t.id: t.name for t in db.scalars(select(Tier))}
    return render(
        request,
        "loyalty/members.html",
        {
            "members": found,
            "q": q,
            "tiers": tiers,
            "max_search": bounds.MAX_SEARCH,
            "can_enrol": user.has_any(Role.ADMIN, Role.MARKETER),
        },
        status_code=status,
    )


# ---------------------------------------------------------------- enrolment

ENROL_FIELDS = (
    "name",
    "phone",
    "email",
    "birthday",
    "gender",
    "region",
    "city",
    "occupation",
    "industry",
    "marketing_consent",
    "join_channel_id",
    "join_campaign_id",
    "referral_code",
    "key",
)
# Refusals whose code does not name the field they are about.
ENROL_CODES = {
    "member.contact": "phone",
    "member.phone_taken": "phone",
    "member.email_taken": "email",
    "member.key": FORM,
    "referral.code": "referral_code",
    "referral.self": "referral_code",
    "referral.exists": "referral_code",
    "referral.not_new": "referral_code",
}


def _enrol_page(
    request: Request, db: Session, form: dict[str, str], errors: dict[str, str] | None = None
) -> Response:
    campaigns = db.execute(
        select(Campaign.id, Campaign.code, Campaign.name).order_by(Campaign.name)
    )
    return render(
        request,
        "loyalty/member_new.html",
        {
            "form": form,
            "errors": errors or {},
            "genders": members.GENDERS,
            "channels": planning.list_channels(db, active_only=True),
            "campaigns": campaigns.all(),
            "limits": members.LIMITS
            | {field: bounds.length(column) for field, (column, _) in members.TEXT_FIELDS.items()},
        },
    )


@router.get("/new")
def new_member(request: Request, user: Planner, db: Db) -> Response:
    return _enrol_page(request, db, {"key": form_key()})


def _birthday(value: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(
            "member.birthday", "Give the birthday as a date (year-month-day)."
        ) from None


def _stored(request: Request, member: Member) -> str:
    """What was stored, for the confirmation: as the member page shows it, not as typed."""
    parts = [
        t(request, "phone %(phone)s", phone=member.phone) if member.phone else "",
        t(request, "email %(email)s", email=member.email) if member.email else "",
        t(request, "birthday %(day)s", day=member.birthday.isoformat()) if member.birthday else "",
    ]
    return "; ".join(p for p in parts if p)


@router.post("")
def enrol(
    request: Request, user: Planner, db: Db, settings: AppSettings, raw: FormFields
) -> Response:
    form = {k: str(raw.get(k, "")) for k in ENROL_FIELDS}
    problems = Problems()
    birthday = problems.check("birthday", lambda: _birthday(form["birthday"]))
    channel_id = problems.check(
        "join_channel_id", lambda: bounds.parse_id(form["join_channel_id"], "channel")
    )
    campaign_id = problems.check(
        "join_campaign_id", lambda: bounds.parse_id(form["join_campaign_id"], "campaign")
    )
    profile = members.Profile(
        name=form["name"],
        phone=form["phone"] or None,
        email=form["email"] or None,
        birthday=birthday,
        gender=form["gender"] or None,
        region=form["region"],
        city=form["city"],
        occupation=form["occupation"],
        industry=form["industry"],
        marketing_consent=form["marketing_consent"] == "on",
        join_channel_id=channel_id,
        join_campaign_id=campaign_id,
    )

    referral_code = form["referral_code"].strip() or None

    def create() -> Member:
        if problems:
            # Check the rest as well, so every problem shows at once; enrol nobody.
            members.validate(db, profile, referral_code=referral_code, problems=problems)
            problems.raise_any()
        return members.create(
            db,
            actor_for(request, user),
            profile,
            referral_code=referral_code,
            zone=settings.zone,
            key=form["key"] or form_key(),
        )

    return act(
        request,
        db,
        create,
        done=lambda m: " ".join(
            p
            for p in (
                t(request, "%(name)s is now member %(number)s.", name=m.name, number=m.number),
                _stored(request, m),
            )
            if p
        ),
        then=lambda m: f"/members/{m.number}",
        again=lambda errors: _enrol_page(request, db, form, errors),
        names=ENROL_FIELDS,
        codes=ENROL_CODES,
    )


# ---------------------------------------------------------------- a member's page


def _member_page(
    request: Request,
    db: Session,
    settings: Settings,
    user: User,
    member: Member,
    *,
    before_id: int | None = None,
    type: str = "",
    failed: str = "",
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    key: str | None = None,
) -> Response:
    """The member's page; after a refused action, with that form (`failed`) showing each
    problem beside its field and what was typed."""
    type = type if type in set(EntryType) else ""  # an unknown type shows every type
    types = (type,) if type else ()
    entries = ledger.history(db, member.id, before_id=before_id, types=types, limit=PAGE)
    tiers = {t.id: t for t in db.scalars(select(Tier))}
    history = db.scalars(
        select(TierChange).where(TierChange.member_id == member.id).order_by(TierChange.id.desc())
    ).all()
    fmt = StaffFormatter(language(request), settings.zone)
    # "Load more" swaps its own row (#more-row) for the next rows and the next "Load more".
    headers = request.headers
    more_rows = headers.get("HX-Request") == "true" and headers.get("HX-Target") == "more-row"
    return render(
        request,
        "loyalty/member.html",
        {
            "member": member,
            "tier": tiers[member.tier_id],
            "tiers": tiers,
            "summary": ledger.summary(db, member.id, utcnow()),
            "lines": lines(db, fmt, entries, STAFF_VOICE),
            "more": entries[-1].id if len(entries) == PAGE else None,
            "type": type,
            "types": {t.value: STAFF_VOICE.types[t.value] for t in EntryType},
            "history": history,
            "spend": spend.of_member(db, member.id),
            "money": format_amount,
            "wallet": [(c, b, offer(request, b)) for c, b in coupons.wallet(db, member.id)],
            "referrals": referrals.of_member(db, member.id),
            "can_adjust": user.has_any(Role.ADMIN, Role.FINANCE),
            "can_plan": user.has_any(Role.ADMIN, Role.MARKETER),
            "batches": db.scalars(
                select(Batch).where(Batch.active, Batch.public_code.is_(None)).order_by(Batch.name)
            ).all(),
            "adjust_key": key or form_key(),
            "failed": failed,
            "form": form or {},
            "errors": errors or {},
            "limits": {
                "adjustment": program.get(db).max_adjustment,
                "reason": bounds.length(LedgerEntry.reason),
                "note": NOTE_LENGTH,
            },
        },
        block="ledger_rows" if more_rows else None,
    )


@router.get("/{number}")
def member_page(
    request: Request,
    user: Staff,
    db: Db,
    settings: AppSettings,
    number: str,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_BIG)] = None,
    type: str = "",
) -> Response:
    member = members.by_number(db, number)
    return _member_page(request, db, settings, user, member, before_id=before_id, type=type)


def _again(
    request: Request,
    db: Session,
    settings: Settings,
    user: User,
    number: str,
    failed: str,
    form: dict[str, str],
    key: str | None = None,
) -> Any:
    """The member's page again with the `failed` form's problems and input."""

    def again(errors: dict[str, str]) -> Response:
        member = members.by_number(db, number)  # read again: the action was rolled back
        return _member_page(
            request, db, settings, user, member, failed=failed, form=form, errors=errors, key=key
        )

    return again


ADJUST_CODES = {
    "points.reason": "reason",
    "points.amount": "points",
    "points.amount.range": "points",
    "points.key": FORM,
    "points.key_reused": FORM,
}


@router.post("/{number}/adjust")
def adjust(
    request: Request,
    user: Books,
    db: Db,
    settings: AppSettings,
    number: str,
    raw: FormFields,
) -> Response:
    member = members.by_number(db, number)
    form = {k: str(raw.get(k, "")) for k in ("points", "reason", "key")}
    # The form carries a one-time key, so a double-click posts one adjustment. A refused
    # form keeps its key: nothing was written under it.
    key = form["key"] if form["key"] and len(form["key"]) <= rewards.KEY_LENGTH else form_key()
    problems = Problems()
    # Read as a whole number within one entry's bound; the program's own limit on an
    # adjustment is the service's to say (`rewards.adjust`).
    points = problems.check(
        "points",
        lambda: bounds.parse_whole(
            form["points"],
            N_("Points"),
            "points",
            low=-bounds.MAX_POINTS,
            high=bounds.MAX_POINTS,
        ),
    )
    if "points" not in problems and points is None:
        problems.add("points", "Enter the points to add (or, with a minus, take).")
    if not form["reason"].strip():
        problems.add("reason", "Say why the points change; the member sees it.")

    def run() -> LedgerEntry:
        assert points is not None  # problems.raise_any ran first
        return rewards.adjust(
            db,
            actor_for(request, user),
            member.id,
            points,
            reason=form["reason"],
            key=f"page:{key}",
            at=utcnow(),
            zone=settings.zone,
        )

    return act(
        request,
        db,
        run,
        errors=problems,
        done=lambda entry: t(
            request,
            "%(points)s points for %(name)s: %(reason)s. Balance now %(balance)s.",
            points=f"{entry.points:+,}",
            name=member.name,
            reason=entry.reason,
            balance=f"{entry.balance_after:,}",
        ),
        then=lambda entry: f"/members/{member.number}#ledger",
        again=_again(request, db, settings, user, member.number, "adjust", form, key),
        names=("points", "reason"),
        codes=ADJUST_CODES,
    )


@router.post("/{number}/coupons")
def give_coupon(
    request: Request, user: Planner, db: Db, settings: AppSettings, number: str, raw: FormFields
) -> Response:
    member = members.by_number(db, number)
    form = {"batch_id": str(raw.get("batch_id", ""))}
    problems = Problems()
    batch_id = problems.check("batch_id", lambda: bounds.parse_id(form["batch_id"], "batch"))
    if "batch_id" not in problems and batch_id is None:
        problems.add("batch_id", "Choose the coupon batch to give.")

    def run() -> Any:
        assert batch_id is not None  # problems.raise_any ran first
        return coupons.issue(
            db, actor_for(request, user), batch_id, member, reason="Given by staff", at=utcnow()
        )

    return act(
        request,
        db,
        run,
        errors=problems,
        done=lambda coupon: t(
            request, "Coupon %(code)s given to %(name)s.", code=coupon.code, name=member.name
        ),
        then=lambda coupon: f"/members/{member.number}#coupons",
        again=_again(request, db, settings, user, member.number, "coupon", form),
        names=("batch_id",),
        codes={"batch.not_found": "batch_id"},
    )


@router.post("/{number}/status")
def change_status(
    request: Request, user: Planner, db: Db, settings: AppSettings, number: str, raw: FormFields
) -> Response:
    member = members.by_number(db, number)
    form = {k: str(raw.get(k, "")) for k in ("status", "reason")}
    return act(
        request,
        db,
        lambda: members.set_status(
            db, actor_for(request, user), member.id, form["status"], form["reason"]
        ),
        done=lambda m: t(
            request, "%(name)s is now %(status)s.", name=m.name, status=t(request, m.status)
        ),
        then=lambda m: f"/members/{m.number}",
        again=_again(request, db, settings, user, member.number, "status", form),
        names=("status", "reason"),
        codes={"member.status": FORM},
    )
