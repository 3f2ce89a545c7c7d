"""The loyalty staff forms refuse bad input the way every form does (`web.actions.act`): all
problems at once, each beside its field, every input kept, nothing saved; and a good
submission says what was stored. Bonus rules, coupon batches, rewards, tiers, the program's
settings, a member's adjustment and status, generating codes."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts.models import User
from core.audit import Actor
from loyalty import coupons, members
from loyalty import program as program_settings
from loyalty.models import Batch, BonusRule, Coupon, LedgerEntry, Member, Reward, Tier
from tests.web.conftest import csrf_from, sign_in

ZONE = ZoneInfo("Asia/Shanghai")


def signed_in(client: TestClient, make_user: Callable[..., User], role: str = "admin") -> str:
    make_user(f"{role}@example.com", (role,))
    sign_in(client, f"{role}@example.com")
    return csrf_from(client, "/members")


def field_errors(page: str) -> dict[str, str]:
    """Each field's problem as the page shows it beside the field."""
    found = re.findall(r'<small class="field-error" id="f-([\w]+)-error">([^<]*)</small>', page)
    return dict(found)


def kept(page: str, name: str, value: str) -> bool:
    """Is `value` still in the field `name` (the field the problem is about, or another)?"""
    tag = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', page)
    return bool(tag) and f'value="{value}"' in tag.group(0)  # type: ignore[union-attr]


def count(db: Session, model: Any) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count(model.id))) or 0)


def test_the_bonus_rule_form(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    token = signed_in(client, make_user, "marketer")
    typed = {
        "name": "Triple",
        "name_zh": "三倍" * 51,
        "priority": "1.5",
        "category": "tea",
        "min_spend": "7,85",
        "starts_on": "2026-05-10",
        "ends_on": "2026-05-01",
        "multiplier": "abc",
        "fixed_points": "",
    }
    refused = client.post("/loyalty/rules", data={**typed, "csrf_token": token})
    assert refused.status_code == 422
    problems = field_errors(refused.text)
    assert problems == {
        "name_zh": "The Chinese name is longer than 100 characters.",
        "priority": "Priority: &#39;1.5&#39; is not a whole number; write it like 1234 or 1,234.",
        "min_spend": "Minimum spend: &#39;7,85&#39; is not an amount: write it like 1234.56 or "
        "1,234.56 (a point before the decimals, commas only between thousands). "
        "Did you mean 7.85?",
        "ends_on": "The rule ends before it starts.",
        "multiplier": "Multiplier: &#39;abc&#39; is not an amount: write it like 1234.56 or "
        "1,234.56 (a point before the decimals, commas only between thousands).",
    }
    form = refused.text.split('action="/loyalty/rules"')[1].split("</form>")[0]
    for name, value in typed.items():
        if name != "fixed_points":
            assert kept(form, name, value), name
    assert count(db, BonusRule) == 0
    fixed = {**typed, "name_zh": "三倍积分", "priority": "10", "min_spend": "7.85"}
    fixed |= {"ends_on": "2026-05-31", "multiplier": "3"}
    done = client.post("/loyalty/rules", data={**fixed, "csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == "/loyalty/program#rules"
    rule = db.scalars(select(BonusRule).where(BonusRule.name == "Triple")).one()
    assert (rule.name_zh, rule.priority, rule.multiplier, rule.min_spend) == (
        "三倍积分",
        10,
        Decimal(3),
        Decimal("7.85"),
    )
    page = client.get(done.headers["location"]).text
    assert "Bonus rule Triple saved. Chinese name: 三倍积分." in page


def test_the_coupon_batch_form(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    token = signed_in(client, make_user, "marketer")
    before = count(db, Batch)
    typed = {
        "name": "Spring",
        "name_zh": "春\x00季",
        "kind": "percent",
        "value": "120",
        "max_discount": "1e5",
        "min_spend": "200",
        "currency": "CNY",
        "valid_from": "2026-02-30",
        "valid_days": "30",
        "total_limit": "0",
        "per_member_limit": "two",
        "public_code": "AB",
    }
    refused = client.post(
        "/loyalty/coupons", data={**typed, "eligible_tiers": ["gold", "nope"], "csrf_token": token}
    )
    assert refused.status_code == 422
    assert set(field_errors(refused.text)) == {
        "name_zh",
        "value",
        "max_discount",
        "valid_from",
        "total_limit",
        "per_member_limit",
        "public_code",
        "eligible_tiers",
    }
    assert "fix the 8 problems below" in refused.text
    for name in ("name", "value", "max_discount", "min_spend", "valid_days", "public_code"):
        assert kept(refused.text, name, typed[name]), name
    assert 'name="eligible_tiers" value="gold" checked' in refused.text
    assert count(db, Batch) == before
    good = {**typed, "name_zh": "春季", "value": "20", "max_discount": "50"}
    good |= {"valid_from": "", "total_limit": "", "per_member_limit": "1", "public_code": ""}
    done = client.post(
        "/loyalty/coupons", data={**good, "eligible_tiers": "gold", "csrf_token": token}
    )
    assert done.status_code == 303
    batch = db.scalars(select(Batch).where(Batch.name == "Spring")).one()
    assert done.headers["location"] == f"/loyalty/coupons/{batch.id}"
    assert (batch.name_zh, batch.value, batch.max_discount) == ("春季", Decimal(20), Decimal(50))
    assert (batch.per_member_limit, batch.eligible_tiers) == (1, ["gold"])
    page = client.get(done.headers["location"]).text
    assert "Batch Spring created: 20% off (up to 50.00 CNY), on 200.00 CNY or more." in page
    assert "Chinese name: 春季." in page


def test_generating_codes_keeps_the_count(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    token = signed_in(client, make_user, "marketer")
    batch = coupons.create_batch(
        db, Actor.cli(), name="Ten", kind="fixed", value=Decimal(10), currency="CNY", valid_days=9
    )
    db.commit()
    for typed, says in (
        ("1.5", "How many: &#39;1.5&#39; is not a whole number"),
        ("2000000", "Generate between 1 and 1,000,000 codes."),
        ("", "How many codes?"),
    ):
        refused = client.post(
            f"/loyalty/coupons/{batch.id}/generate", data={"count": typed, "csrf_token": token}
        )
        assert refused.status_code == 422, typed
        assert says in field_errors(refused.text)["count"], typed
        assert kept(refused.text, "count", typed)
    assert count(db, Coupon) == 0
    done = client.post(
        f"/loyalty/coupons/{batch.id}/generate", data={"count": "1,200", "csrf_token": token}
    )
    assert done.status_code == 303 and count(db, Coupon) == 1200
    assert "1,200 codes generated." in client.get(done.headers["location"]).text


def test_the_reward_form(client: TestClient, db: Session, make_user: Callable[..., User]) -> None:
    token = signed_in(client, make_user, "marketer")
    batch = coupons.create_batch(
        db, Actor.cli(), name="Ten", kind="fixed", value=Decimal(10), currency="CNY", valid_days=9
    )
    db.commit()
    typed = {"name": "", "name_zh": "代金券", "points_cost": "1e3", "description": "Ten off"}
    refused = client.post(
        "/loyalty/rewards", data={**typed, "batch_id": str(batch.id), "csrf_token": token}
    )
    assert refused.status_code == 422
    assert field_errors(refused.text) == {
        "name": "Give the reward a name.",
        "points_cost": "Points: &#39;1e3&#39; is not a whole number; write it like 1234 or 1,234.",
    }
    for name in ("name_zh", "points_cost", "description"):
        assert kept(refused.text, name, typed[name]), name
    assert f'<option value="{batch.id}" selected>' in refused.text
    assert count(db, Reward) == 0
    done = client.post(
        "/loyalty/rewards",
        data={**typed, "name": "Voucher", "points_cost": "1,000", "batch_id": str(batch.id),
              "csrf_token": token},
    )  # fmt: skip
    assert done.status_code == 303
    reward = db.scalars(select(Reward)).one()
    assert (reward.name, reward.name_zh, reward.points_cost) == ("Voucher", "代金券", 1000)
    assert (
        "Reward Voucher saved: 1,000 points. Chinese name: 代金券."
        in client.get(done.headers["location"]).text
    )


def test_a_tier_row_shows_its_problems_in_its_own_row(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    token = signed_in(client, make_user, "marketer")
    typed = {
        "code": "gold",
        "name": "",
        "name_zh": "金卡",
        "rank": "x",
        "threshold": "5,000",
        "multiplier": "1.5",
        "benefits": "+50% points",
    }
    refused = client.post("/loyalty/tiers", data={**typed, "csrf_token": token})
    assert refused.status_code == 422
    assert field_errors(refused.text) == {
        "name": "A tier needs a code and a name.",
        "rank": "The rank: &#39;x&#39; is not a whole number; write it like 1234 or 1,234.",
    }
    rows = {
        re.search(r'name="code" value="(\w+)"', row).group(1): row  # type: ignore[union-attr]
        for row in re.findall(r"<tr><form.*?</form></tr>", refused.text, re.S)
    }
    gold = rows["gold"]
    assert kept(gold, "name", "") and kept(gold, "name_zh", "金卡") and kept(gold, "rank", "x")
    assert 'id="f-name"' in gold and 'id="f-rank-error"' in gold
    for code in ("member", "silver", "platinum"):  # the other rows: stored values, no marks
        assert 'id="f-' not in rows[code] and "aria-invalid" not in rows[code]
    assert kept(rows["silver"], "name", "Silver")
    db.expire_all()
    assert db.scalar(select(Tier.name_zh).where(Tier.code == "gold")) is None
    done = client.post(
        "/loyalty/tiers", data={**typed, "name": "Gold", "rank": "2", "csrf_token": token}
    )
    assert done.status_code == 303
    tier = db.scalars(select(Tier).where(Tier.code == "gold")).one()
    assert (tier.name_zh, tier.threshold) == ("金卡", 5000)


def test_the_settings_form_names_every_setting_at_fault(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    token = signed_in(client, make_user, "admin")
    typed = {"return_window_days": "400", "signup_bonus": "lots", "earn_rate": "1.00001"}
    typed |= {"repeat_count": "1", "max_adjustment": ""}
    refused = client.post("/loyalty/program", data={**typed, "csrf_token": token})
    assert refused.status_code == 422
    assert set(field_errors(refused.text)) == set(typed)
    assert "Enter largest manual adjustment (points, each way)." in refused.text
    for name, value in typed.items():
        assert kept(refused.text, name, value), name
    db.expire_all()
    program = program_settings.get(db)
    assert (program.return_window_days, program.signup_bonus) == (7, 100)


def test_a_members_adjustment_and_status_keep_their_input(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    member = members.create(
        db, Actor.cli(), members.Profile(name="Li Lei", phone="13800005555"), zone=ZONE
    )
    db.commit()
    token = signed_in(client, make_user, "admin")
    page = client.get(f"/members/{member.number}").text
    key = re.search(r'name="key" value="([^"]+)"', page)
    assert key
    refused = client.post(
        f"/members/{member.number}/adjust",
        data={"points": "1.5", "reason": "", "key": key.group(1), "csrf_token": token},
    )
    assert refused.status_code == 422
    assert set(field_errors(refused.text)) == {"points", "reason"}
    assert kept(refused.text, "points", "1.5")
    assert f'name="key" value="{key.group(1)}"' in refused.text  # still the one key
    status = refused.text.split('action="/members/' + member.number + '/status"')[1]
    assert 'id="f-reason"' not in status.split("</form>")[0]  # only the adjust form is marked
    done = client.post(
        f"/members/{member.number}/adjust",
        data={"points": "-1,000", "reason": "Fix", "key": key.group(1), "csrf_token": token},
    )
    assert done.status_code == 303
    assert (
        "-1,000 points for Li Lei: Fix. Balance now -900."
        in client.get(done.headers["location"]).text
    )
    assert db.scalar(select(func.sum(LedgerEntry.points))) == -900
    blank = client.post(
        f"/members/{member.number}/status",
        data={"status": "suspended", "reason": "  ", "csrf_token": token},
    )
    assert blank.status_code == 422
    assert field_errors(blank.text) == {"reason": "Say why the status changes."}
    db.expire_all()
    assert db.get(Member, member.id).status == "active"  # type: ignore[union-attr]
