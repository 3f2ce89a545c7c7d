"""The outbox: queued with the business change, delivered later."""

from __future__ import annotations

import smtplib

from sqlalchemy.orm import Session

from core import outbox
from core.outbox import OutboxMessage


class FakeSender:
    channel = "email"

    def __init__(self, fail_for: str = "") -> None:
        self.sent: list[str] = []
        self.fail_for = fail_for

    def send(self, message: OutboxMessage) -> None:
        if message.recipient == self.fail_for:
            raise smtplib.SMTPRecipientsRefused({message.recipient: (550, b"no such user")})
        self.sent.append(message.recipient)


def test_deliver_sends_email_keeps_failures_queued_and_drops_sent_bodies(db: Session) -> None:
    good = outbox.queue(db, to="a@example.com", subject="Hi", body="link https://x/my/reset/T1")
    bad = outbox.queue(db, to="b@example.com", subject="Hi", body="link")
    sms = outbox.queue(db, to="13800000000", subject="Hi", body="link")
    sender = FakeSender(fail_for="b@example.com")
    assert outbox.deliver(db, sender) == (1, 1)
    assert sender.sent == ["a@example.com"]
    assert good.sent_at is not None and "T1" not in good.body
    assert bad.sent_at is None and bad.error and "no such user" in bad.error
    assert sms.channel == "sms" and sms.sent_at is None  # an email sender leaves SMS alone
    assert outbox.deliver(db, FakeSender()) == (1, 0)  # the failed one goes on the next run
