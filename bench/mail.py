"""The mail rate: customers' mails sent over SMTP by `concurrency` connections, each sending
its messages one after another on the same session, as a relaying MTA does. A message counts
as accepted on its 250, which the system answers only once the mail is committed (R13)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from bench.load import Call, Outcome

SENDER = "claire.martin@dupont-sa.fr"


def customer_mail(index: int, to: str) -> EmailMessage:
    """A new request by mail, a different subject and Message-ID each time."""
    message = EmailMessage()
    message["From"] = f"Claire Martin <{SENDER}>"
    message["To"] = to
    message["Subject"] = f"Export FEC impossible (essai de charge par mail n° {index})"
    message["Message-ID"] = make_msgid(f"bench{index}", "dupont-sa.fr")
    message["Date"] = formatdate(localtime=True)
    message.set_content("Bonjour,\n\nDepuis ce matin l'export FEC s'arrête à 50 %.\n\nClaire\n")
    return message


class SmtpSessions:
    """One open SMTP session per caller (opened on first use, reopened after a failure)."""

    def __init__(self, host: str, port: int, to: str, concurrency: int) -> None:
        self.host, self.port, self.to = host, port, to
        self.idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self.opened: list[aiosmtplib.SMTP] = []
        self.concurrency = concurrency

    async def _session(self) -> aiosmtplib.SMTP:
        if not self.idle.empty():
            return self.idle.get_nowait()
        client = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=30, start_tls=False)
        await client.connect()
        self.opened.append(client)
        return client

    def call(self, mail: Callable[[int, str], EmailMessage] = customer_mail) -> Call:
        async def send(index: int) -> Outcome:
            client = await self._session()
            try:
                errors, _ = await client.send_message(mail(index, self.to))
            except aiosmtplib.SMTPResponseException as error:
                self.idle.put_nowait(client)
                return f"SMTP {error.code}", error.message
            except (aiosmtplib.SMTPException, OSError) as error:
                self.opened.remove(client)
                return type(error).__name__, str(error)
            self.idle.put_nowait(client)
            if errors:
                return "refused recipient", str(errors)
            return None

        return send

    async def close(self) -> None:
        for client in self.opened:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        self.opened.clear()
