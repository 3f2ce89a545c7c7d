"""Messages to people (activation links, password resets), written in the same transaction
as the action that needs them: a rolled-back sign-up sends nothing, a committed one cannot
lose its link. A sender delivers them afterwards (`retain outbox send`); with no sender
configured (demo, tests) they stay here and admins read them at /admin/outbox.
"""

from __future__ import annotations

import smtplib
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base
from core.timeutil import UTCDateTime, utcnow


class OutboxMessage(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))  # email or sms
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


def queue(session: Session, *, to: str, subject: str, body: str) -> OutboxMessage:
    """Queue a message; an address with @ is an email, anything else a phone (SMS)."""
    message = OutboxMessage(
        channel="email" if "@" in to else "sms", recipient=to, subject=subject, body=body
    )
    session.add(message)
    session.flush()
    return message


def recent(session: Session, limit: int = 100) -> list[OutboxMessage]:
    return list(
        session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit))
    )


class Sender(Protocol):
    channel: str

    def send(self, message: OutboxMessage) -> None: ...


class SmtpSender:
    """Email through an SMTP relay (RETAIN_SMTP_HOST). SMS needs a provider's sender."""

    channel = "email"

    def __init__(self, host: str, port: int, sender: str) -> None:
        self.host, self.port, self.sender = host, port, sender

    def send(self, message: OutboxMessage) -> None:
        email = EmailMessage()
        email["From"], email["To"], email["Subject"] = (
            self.sender,
            message.recipient,
            message.subject,
        )
        email.set_content(message.body)
        with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
            smtp.send_message(email)


def deliver(session: Session, sender: Sender, limit: int = 500) -> tuple[int, int]:
    """Send what is waiting on the sender's channel; (sent, failed). Failures stay queued
    with their error, for the next run."""
    waiting = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.channel == sender.channel)
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    sent = failed = 0
    for message in waiting:
        try:
            sender.send(message)
        except (OSError, smtplib.SMTPException) as exc:
            message.error, failed = str(exc)[:500], failed + 1
        else:
            message.sent_at, message.error, sent = utcnow(), None, sent + 1
            # The body holds a working link; once delivered, it has no reason to stay.
            message.body = "(delivered; the text is not kept)"
    session.flush()
    return sent, failed
