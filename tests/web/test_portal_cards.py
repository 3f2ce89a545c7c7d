"""The member card on Home (the member number as a QR for the till), the referral link's copy
and share buttons and its QR, and a text alternative on every QR."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from loyalty.models import Member
from tests.web.conftest import member_sign_in

_SVG = re.compile(r"<svg[^>]*>")


def qr_labels(html: str) -> list[str]:
    tags = _SVG.findall(html)
    labels = [re.search(r'aria-label="([^"]*)"', tag) for tag in tags]
    assert all(tag.startswith('<svg role="img"') for tag in tags), tags
    assert all(labels), f"a QR without a text alternative: {tags}"
    return [label.group(1) for label in labels if label]


def test_home_shows_the_member_card_for_the_till(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member("mei@example.com")
    member_sign_in(client, "mei@example.com")
    page = client.get("/my").text
    assert f"QR code of member number {member.number}" in qr_labels(page)
    assert f'data-testid="member-number">{member.number}<' in page


def test_referrals_offer_copy_share_and_a_qr_of_the_link(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member("mei@example.com")
    member_sign_in(client, "mei@example.com")
    page = client.get("/my/referrals").text
    assert 'data-copy-from="link"' in page and 'data-copy-from="share"' in page
    assert f'data-share-url="http://testserver/join/{member.referral_code}"' in page
    assert qr_labels(page) == ["QR code of your invitation link"]
    assert '<script src="/static/portal.js" defer></script>' in page
    assert client.get("/static/portal.js").status_code == 200


def test_the_qr_labels_are_in_the_members_language(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    make_member("mei@example.com")
    token = member_sign_in(client, "mei@example.com")
    client.post("/my/language", data={"language": "zh", "csrf_token": token})
    labels = qr_labels(client.get("/my/referrals").text)
    assert labels and "QR code" not in labels[0]
