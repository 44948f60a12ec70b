"""The email sender: SMTP through aiosmtplib (STARTTLS, implicit TLS or plain for a local relay)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Literal

import aiosmtplib

from telehealth.messaging.sender import Outgoing, SendFailed

TlsMode = Literal["starttls", "tls", "none"]


class EmailSender:
    """Sends each message as one email with its attachments."""

    channel = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        tls: TlsMode,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.sender = sender
        self.username = username
        self.password = password
        self.timeout = timeout

    def build(self, message: Outgoing) -> EmailMessage:
        """The email for a message."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail.set_content(message.text)
        for a in message.attachments:
            maintype, _, subtype = a.content_type.partition("/")
            mail.add_attachment(a.data, maintype=maintype, subtype=subtype, filename=a.filename)
        return mail

    async def send(self, message: Outgoing) -> None:
        """Deliver over SMTP; any SMTP or network error becomes SendFailed."""
        try:
            await aiosmtplib.send(
                self.build(message),
                hostname=self.host,
                port=self.port,
                use_tls=self.tls == "tls",
                start_tls=self.tls == "starttls",
                username=self.username,
                password=self.password,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendFailed(f"{type(exc).__name__}: {exc}"[:200]) from exc
