"""Forms answer every problem at once, beside its field, with every input kept (issue 12,
"Input"), through the one page-action helper `web.actions.act`."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from core.accounts.models import User
from core.errors import Invalid, Problems, ValidationFailed
from tests.web.conftest import csrf_from, sign_in
from tests.web.test_campaign_pages import FORM, make
from web.actions import problems_of

PAGES = Path(__file__).parents[2] / "web" / "pages"


@pytest.fixture
def marketer(make_user: Callable[..., User]) -> User:
    return make_user("marketer@example.com", ("marketer",), "Mia Marketer")


def field_errors(page: str) -> dict[str, str]:
    found = re.findall(r'<small class="field-error" id="f-([\w]+)-error">(.*?)</small>', page)
    return dict(found)


def test_every_problem_of_the_campaign_form_is_named_beside_its_field_and_input_kept(
    client: TestClient, marketer: User, db: Session
) -> None:
    sign_in(client, marketer.email)
    token = csrf_from(client, "/campaigns/new")
    bad = {
        **FORM,
        "name": "  ",
        "budget": "7,85",
        "line_media": "1.234,56",
        "starts_on": "2026-04-01",
        "ends_on": "2026-03-01",
        "target_region": "East China",
    }
    page = client.post("/campaigns", data={**bad, "csrf_token": token})
    assert page.status_code == 422
    errors = field_errors(page.text)
    # Parsing problems first (two amounts), all at once, each at its own field.
    assert set(errors) == {"budget", "line_media"}, errors
    assert "Did you mean 7.85?" in errors["budget"]
    assert "Did you mean 1,234.56?" in errors["line_media"]
    budget = re.search(r'<input name="budget" id="f-budget"[^>]*>', page.text)
    assert budget is not None and 'aria-invalid="true"' in budget[0] and 'value="7,85"' in budget[0]
    assert 'value="East China"' in page.text and 'value="2026-04-01"' in page.text
    # The first field with a problem takes the focus, and the summary links to each.
    assert (
        page.text.count(" autofocus") == 1
        and 'id="f-budget"' in page.text.split(" autofocus")[0].rsplit("<input", 1)[1]
    )
    assert '<a href="#f-budget">' in page.text and '<a href="#f-line_media">' in page.text

    # Amounts fixed: the service's own rules, all at once.
    again = client.post(
        "/campaigns", data={**bad, "budget": "100", "line_media": "", "csrf_token": token}
    )
    assert again.status_code == 422
    errors = field_errors(again.text)
    assert set(errors) == {"name", "ends_on"}, errors
    assert errors["ends_on"] == "The end date is before the start date."
    assert db.scalar(select(func.count()).select_from(Campaign)) == 0


def test_a_taken_code_is_a_conflict_shown_at_the_code_field(
    client: TestClient, marketer: User, db: Session
) -> None:
    make(db, marketer)
    db.commit()
    sign_in(client, marketer.email)
    token = csrf_from(client, "/campaigns/new")
    page = client.post("/campaigns", data={**FORM, "name": "Another", "csrf_token": token})
    assert page.status_code == 409
    assert field_errors(page.text) == {"code": "The code SPRING26 is already used by a campaign."}
    assert 'value="Another"' in page.text


def test_problems_collect_and_keep_the_first_code_for_api_clients() -> None:
    problems = Problems()
    assert problems.check("a", lambda: 1) == 1
    problems.check("b", lambda: (_ for _ in ()).throw(ValidationFailed("b.range", "B is big.")))
    problems.add("b", "second problem of b, not shown")
    problems.add("c", "C is missing.", "c.missing")
    with pytest.raises(Invalid) as raised:
        problems.raise_any()
    exc = raised.value
    assert exc.code == "b.range" and exc.fields == {"b": "B is big.", "c": "C is missing."}
    assert exc.details == {
        "fields": [
            {"field": "b", "code": "b.range", "message": "B is big."},
            {"field": "c", "code": "c.missing", "message": "C is missing."},
        ]
    }


def test_a_refusal_finds_its_field_by_code() -> None:
    names = ("amount", "orders")
    assert problems_of(ValidationFailed("revenue.amount", "m"), names) == {"amount": "m"}
    assert problems_of(ValidationFailed("amount.range", "m"), names) == {"amount": "m"}
    assert problems_of(ValidationFailed("period.closed", "m"), names) == {"": "m"}
    assert problems_of(
        ValidationFailed("period.closed", "m"), names, {"period.closed": "orders"}
    ) == {"orders": "m"}


def test_no_page_writes_its_own_commit_and_rollback_around_a_refusal() -> None:
    """One helper for the page action: a page that catches a refusal itself, rolls back and
    flashes is the hand-written copy issue 12 asked to remove."""
    copies = {
        path.name: path.read_text().count("db.rollback()")
        for path in PAGES.glob("*.py")
        if "db.rollback()" in path.read_text()
    }
    assert copies == {}, f"use web.actions.act instead: {copies}"
