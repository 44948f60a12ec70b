"""The background sender: one owned task per process, started and stopped by a cleanup_ctx."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from telehealth.keys import HANDLERS, SETTINGS
from telehealth.messaging.email import EmailSender, TlsMode
from telehealth.messaging.sender import MessageSender
from telehealth.settings import Settings

if TYPE_CHECKING:
    from telehealth.handlers.messages import MessagesHandler

log = logging.getLogger(__name__)


def email_sender(settings: Settings) -> EmailSender | None:
    """The SMTP sender the settings describe, or None when no SMTP host is set."""
    if settings.smtp_host is None:
        return None
    tls: TlsMode = "tls" if settings.smtp_tls == "tls" else "none" if settings.smtp_tls == "none" else "starttls"
    return EmailSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        tls=tls,
        sender=settings.mail_from,
        username=settings.smtp_user,
        password=settings.smtp_password,
    )


async def run_sender(handler: MessagesHandler, sender: MessageSender, poll_seconds: float) -> None:
    """Send due messages now and then, and at once when something was scheduled for now."""
    while True:
        handler.wake.clear()
        try:
            await handler.deliver_due(sender)
        except Exception:  # a database hiccup must not end the sender: the schedule is durable
            log.exception("sending due messages failed; retrying at the next poll")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_seconds):
                await handler.wake.wait()


async def messages_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run the sender while the app runs (only with SMTP configured); cancel and await it."""
    settings = app[SETTINGS]
    sender = email_sender(settings)
    if sender is None:
        log.info("no TELEHEALTH_SMTP_HOST: invitations and reminders are recorded but not sent")
        yield
        return
    task = asyncio.create_task(
        run_sender(app[HANDLERS].messages, sender, settings.messages_poll_seconds), name="message-sender"
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
