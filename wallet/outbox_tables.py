"""The transactional outbox: messages to send, written in the same transaction as the change
that calls for them, and sent afterwards by a relay (see wallet.outbox).

A message moves through these states:

    pending ──claim──▶ sending ──gateway accepted──▶ sent
       ▲                  │
       └──retry later─────┤ (retryable failure, attempts left; or the claim expired)
                          ├──gateway refused (not retryable)──▶ failed
                          └──no attempts left──────────────────▶ dead

`sent`, `failed` and `dead` are final. A claim lasts until `claimed_until`; a relay that
crashes mid-send leaves the message in `sending`, and once the claim expires another relay
takes it again, which is what makes delivery at-least-once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from familymap.orm import Base, PortableJSON, utcnow
from familymap.tables import BigId

CHANNELS = ("sms", "bank")
STATUSES = ("pending", "sending", "sent", "failed", "dead")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class OutboxMessage(Base):
    """One message to deliver through a channel, with its delivery state and history."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(_in("status", STATUSES), name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        # An SMS goes to a Kazakh mobile number in E.164 (+7 and ten digits); the code checks
        # the digits, the database at least the shape, whatever code wrote the row.
        CheckConstraint(
            "channel <> 'sms' OR (recipient LIKE '+7%' AND length(recipient) = 12)",
            name="sms_recipient",
        ),
        CheckConstraint("status <> 'sending' OR claimed_until IS NOT NULL", name="claim"),
        # The relay's query: due pending messages, and expired claims, oldest first.
        Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The caller's idempotency key ("offer:<id>:consent-request"): enqueueing it again
    # returns the message already there. The HTTP gateway passes it on, so a resend after a
    # crash can be recognised by the gateway too.
    message_key: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(
        PortableJSON, default=dict, server_default=text("'{}'")
    )
    status: Mapped[str] = mapped_column(String(8), default="pending")
    # Claims made so far; a claim that crashed counts too, so a message that kills its relay
    # cannot be retried for ever.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column()
    # The last failure, with anything that could be an IIN masked.
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    gateway_message_id: Mapped[str | None] = mapped_column(String(128))
