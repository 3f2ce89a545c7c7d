"""English left on the Chinese staff pages (the audit of the staff side in 简体中文): the ROI
report's status filter, who can fix a report error, the points liability journal, coupon
offers, the currency picker, the frame of a signed-in 404 and the ROI report's files.

Words the catalog translates already are checked in Chinese. Words new to the catalog are
checked with the `marked` catalog: the real Chinese one, with each word it lacks shown as
⟦word⟧. A word that reaches the page through the translator comes out translated or marked;
one that bypasses it comes out bare, which is what these tests refuse. (They keep passing
once the Chinese is added; `test_every_staff_string_has_a_chinese_translation` lists what is
still to translate.)
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from gettext import NullTranslations
from html import unescape
from typing import Any

import pytest
from babel.numbers import get_currency_name
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from campaigns.models import CampaignStatus
from core.accounts import sessions
from core.accounts.models import User
from loyalty import coupons, liability
from tests.campaigns import conftest as campaign_fixtures
from tests.campaigns.conftest import Staff, file_receipt, make_campaign
from tests.loyalty.conftest import ZONE, Shop
from tests.web.conftest import csrf_from, sign_in
from web.i18n import LANGUAGES, PORTAL, STAFF, translations
from web.pages import liability as liability_page

staff = campaign_fixtures.staff  # the fixture: marketer@, finance@ and admin@example.com
STAFF_PASSWORD = "long-password-1"  # theirs
CHINESE = {"Accept-Language": "zh-CN,zh;q=0.9"}


def zh(message: str) -> str:
    """`message` as the Chinese staff catalog has it (the English where it has none)."""
    return translations("zh", STAFF).gettext(message)


class Marked(NullTranslations):
    """The Chinese catalog, each word it lacks as ⟦word⟧."""

    def __init__(self, inner: NullTranslations) -> None:
        super().__init__()
        self.inner = inner

    def gettext(self, message: str) -> str:
        found = self.inner.gettext(message)
        return f"⟦{message}⟧" if found == message and message else found

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        found = self.inner.ngettext(singular, plural, n)
        return f"⟦{found}⟧" if found in (singular, plural) else found


@pytest.fixture
def marked(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Staff pages in Chinese translate through `Marked`; returns its gettext."""
    real = translations  # what web.rendering calls

    def chosen(language: str, domain: str = PORTAL) -> NullTranslations:
        catalog = real(language, domain)
        return Marked(catalog) if (language, domain) == ("zh", STAFF) else catalog

    monkeypatch.setattr("web.rendering.translations", chosen)
    return Marked(real("zh", STAFF)).gettext


def bare(html: str, english: str) -> int:
    """How often `english` shows on the page outside a ⟦…⟧ mark."""
    text = unescape(html)
    return len(re.findall(rf"(?<!⟦){re.escape(english)}", text))


def words(html: str) -> str:
    body = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


def options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}".*?</select>', html, flags=re.S)
    assert select, f"no select {name}"
    return [unescape(o).strip() for o in re.findall(r"<option[^>]*>([^<]*)</option>", select[0])]


def staff_client(client: TestClient, email: str) -> TestClient:
    """Signed in (campaign fixtures' staff), the browser asking for Chinese."""
    client.headers.update(CHINESE)
    sign_in(client, email, STAFF_PASSWORD)
    return client


# --- 1. The ROI report's status filter --------------------------------------------------------


def test_the_roi_status_filter_says_each_status_as_the_campaign_list_does(
    client: TestClient, staff: Staff
) -> None:
    staff_client(client, "marketer@example.com")
    report = options(client.get("/reports/roi").text, "status")
    listed = options(client.get("/campaigns").text, "status")
    expected = [zh("All"), *(zh(s.value) for s in CampaignStatus)]
    assert report == expected == listed
    assert zh("planned") != "planned"  # the catalog has them: Chinese, not English
    for english in ("Planned", "Ended", "Cancelled", "Active", "Draft"):
        assert english not in report


# --- 2. Who can fix a report error -----------------------------------------------------------


def test_who_can_fix_a_missing_rate_is_named_in_chinese_on_the_dashboard_and_the_report(
    client: TestClient, staff: Staff, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("web.pages.dashboard.today", lambda settings: date(2026, 5, 20))
    campaign = make_campaign(db, staff, starts_on=date(2026, 5, 1), ends_on=date(2026, 5, 31))
    file_receipt(db, campaign.id, "10", currency="USD", day=date(2026, 5, 9), steps=("submit",))
    db.commit()
    staff_client(client, "marketer@example.com")
    who = zh("Who can fix it: %(who)s.") % {"who": zh("finance")}
    assert zh("finance") != "finance"
    for path in ("/dashboard", "/reports/roi"):
        shown = words(client.get(path).text)
        assert who in shown, path
        raw = zh("Who can fix it: %(who)s.") % {"who": "finance"}
        assert raw not in shown, path


# --- 3. The points liability journal ---------------------------------------------------------

JOURNAL_WORDS = (
    "Points issued: the part of the price allocated to them is deferred",
    "Points redeemed: revenue recognised",
)


def test_the_journal_descriptions_are_marked_words() -> None:
    """Every description the journal can carry is a catalog word (`N_` at its definition)."""
    import ast
    import inspect

    source = inspect.getsource(liability.journal_lines)
    marked_words = {
        node.args[0].value
        for node in ast.walk(ast.parse(source.strip()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "N_"
        and isinstance(node.args[0], ast.Constant)
    }
    assert set(JOURNAL_WORDS) <= marked_words and len(marked_words) == 5


def test_the_journal_descriptions_on_the_page_follow_the_reader(
    app: FastAPI,
    client: TestClient,
    db: Session,
    make_user: Callable[..., User],
    marked: Callable[[str], str],
) -> None:
    app.dependency_overrides[liability_page.clock] = lambda: datetime(2026, 4, 15, 12, tzinfo=ZONE)
    shop = Shop(db)
    shop.program(expiry_policy="days_after_active", expiry_n=90)
    ann = shop.join("Ann", at=datetime(2026, 3, 2, 4, tzinfo=UTC))
    shop.buy(ann, "300", at=datetime(2026, 3, 3, 4, tzinfo=UTC), ext="A1")
    db.commit()
    make_user("fei@example.com", ("finance",), "Fei")
    client.headers.update(CHINESE)
    sign_in(client, "fei@example.com")
    html = client.get("/finance/liability", params={"month": "2026-03"}).text
    journal = html[html.index('id="liability-journal-lines"') :]
    journal = journal[: journal.index("</table>")]
    issued = JOURNAL_WORDS[0]
    assert marked(issued) in unescape(journal)
    assert bare(journal, issued) == 0
    # The files stay English, as their headers and title block are.
    rows = list(csv.reader(io.StringIO(client.get("/finance/liability/journal.csv").text)))
    assert issued in {row[-1] for row in rows[1:]}


# --- 4. Coupon offers on the staff pages -------------------------------------------------------


def test_coupon_offers_are_said_in_the_readers_language(
    client: TestClient,
    db: Session,
    make_user: Callable[..., User],
    marked: Callable[[str], str],
) -> None:
    made = {
        "20.00 CNY off, on 200.00 CNY or more": dict(
            name="Twenty off", kind="fixed", value=Decimal(20), min_spend=Decimal(200)
        ),
        "15% off (up to 50.00 CNY)": dict(
            name="Fifteen percent", kind="percent", value=Decimal(15), max_discount=Decimal(50)
        ),
        "Gift: A cup of coffee": dict(name="Coffee", kind="gift", gift="A cup of coffee"),
    }
    batches = {}
    for english, extra in made.items():
        batch = coupons.create_batch(
            db,
            campaign_fixtures.ANYONE,
            currency="CNY",
            valid_days=30,
            **extra,  # type: ignore[arg-type]
        )
        assert coupons.offer(batch) == english  # the English is as it was
        batches[english] = batch
    db.commit()
    make_user("mark@example.com", ("marketer",), "Mark")
    client.headers.update(CHINESE)
    sign_in(client, "mark@example.com")
    listing = client.get("/loyalty/coupons").text
    rewards = client.get("/loyalty/rewards").text
    for english, batch in batches.items():
        template, params = coupons.offer_wording(batch)
        said = marked(template) % params
        assert said != english
        one = client.get(f"/loyalty/coupons/{batch.id}").text
        for path, html in (("list", listing), ("rewards", rewards), ("batch", one)):
            assert said in unescape(html), (path, english)
            assert bare(html, english) == 0, (path, english)


def test_every_offer_wording_is_a_catalog_template() -> None:
    for template in coupons.OFFER_TEMPLATES.values():
        assert isinstance(template, str) and "%(" in template


# --- 5. The currency picker -------------------------------------------------------------------


def test_the_currency_picker_names_currencies_in_the_pages_language(
    client: TestClient, staff: Staff
) -> None:
    chinese = str(get_currency_name("CLF", locale=LANGUAGES["zh"]))
    assert chinese != "Chilean Unit of Account (UF)"
    staff_client(client, "marketer@example.com")
    for path in ("/loyalty/coupons", "/campaigns/new"):
        html = unescape(client.get(path).text)
        assert f"CLF · {chinese}" in html, path
        assert "Chilean Unit of Account (UF)" not in html, path
    client.cookies.clear()
    client.headers["Accept-Language"] = "en"
    sign_in(client, "marketer@example.com", STAFF_PASSWORD)
    assert "CLF · Chilean Unit of Account (UF)" in unescape(client.get("/campaigns/new").text)


# --- 6. Error pages of a signed-in staff member ------------------------------------------------

NAV = 'class="nav-links"'


def test_a_signed_in_404_and_405_keep_the_frame(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("mark@example.com", ("marketer",), "Mark")
    stranger = client.get("/no-such-page")
    assert stranger.status_code == 404 and NAV not in stranger.text
    sign_in(client, "mark@example.com")
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert NAV in missing.text and 'href="/campaigns"' in missing.text
    assert "Back to the dashboard" in missing.text
    token = csrf_from(client, "/dashboard")
    refused = client.post("/dashboard", data={"csrf_token": token})
    assert refused.status_code == 405 and NAV in refused.text
    assert "GET" in refused.headers["allow"]


def test_a_signed_in_404_is_in_the_persons_language(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("mark@example.com", ("marketer",), "Mark")
    sign_in(client, "mark@example.com")
    token = csrf_from(client, "/dashboard")
    client.post("/language", data={"language": "zh", "next": "/dashboard", "csrf_token": token})
    # A new browser asking for English: only the person's own choice says Chinese.
    client.cookies.clear()
    sign_in(client, "mark@example.com")
    page = client.get("/no-such-page", headers={"Accept-Language": "en"})
    assert page.status_code == 404 and page.headers["content-language"] == "zh"
    assert zh("Page not found") in page.text and NAV in page.text


def test_a_failed_lookup_still_draws_the_error_page(
    client: TestClient, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user("mark@example.com", ("marketer",), "Mark")
    sign_in(client, "mark@example.com")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database is away")

    monkeypatch.setattr(sessions, "resolve", broken)
    page = client.get("/no-such-page")
    assert page.status_code == 404 and NAV not in page.text
    assert "There is nothing at this address." in page.text


# --- 7. The ROI report's files ----------------------------------------------------------------


def test_the_roi_files_follow_the_readers_language(
    client: TestClient, staff: Staff, db: Session, marked: Callable[[str], str]
) -> None:
    campaign = make_campaign(db, staff)
    file_receipt(db, campaign.id, "100", day=date(2026, 3, 5))
    db.commit()
    staff_client(client, "marketer@example.com")
    rows = list(csv.reader(io.StringIO(client.get("/reports/roi.csv").content.decode("utf-8-sig"))))
    header, total = rows[0], rows[-1]
    assert zh("Input-output ratio") == "投入产出比" and "投入产出比" in header
    assert "Input-output ratio" not in header and "Budget" not in header
    assert total[0] == marked("Total") != "Total"

    book = load_workbook(io.BytesIO(client.get("/reports/roi.xlsx?sort=revenue").content))
    sheet = book.active
    assert sheet is not None
    lines = [str(sheet.cell(n, 1).value) for n in range(1, 8)]
    assert lines[0] == marked("ROI report by campaign")
    assert lines[1] == marked("Period: %(period)s") % {"period": marked("all dates")}
    assert lines[2] == marked("Filters: none")
    assert any(line.startswith(marked("Sorted by %(order)s").split("%")[0]) for line in lines)
    shown = " ".join(lines)
    for english in ("ROI report by", "Period:", "Filters:", "Base currency:", "Generated at"):
        assert bare(shown, english) == 0, english
    heads = [[str(c.value) for c in row] for row in sheet.iter_rows(max_row=12)]
    assert any("投入产出比" in row for row in heads)
    assert not any("Input-output ratio" in row for row in heads)


def test_the_roi_files_of_an_english_reader_are_as_they_were(
    client: TestClient, staff: Staff, db: Session
) -> None:
    campaign = make_campaign(db, staff)
    file_receipt(db, campaign.id, "100", day=date(2026, 3, 5))
    db.commit()
    sign_in(client, "marketer@example.com", STAFF_PASSWORD)
    rows = list(csv.reader(io.StringIO(client.get("/reports/roi.csv").content.decode("utf-8-sig"))))
    assert "Input-output ratio" in rows[0] and rows[-1][0] == "Total"
    sheet = load_workbook(io.BytesIO(client.get("/reports/roi.xlsx").content)).active
    assert sheet is not None and sheet["A1"].value == "ROI report by campaign"
    assert sheet.title == "ROI by campaign"
