"""The mails caught by the local mail catcher, as pages (`make run` only, never in production).

    /dev/mails          the list, newest first
    /dev/mails/{n}      one mail: its headers, its text, its source
    /dev/mails.json     the same, for scripts

`n` counts from 1 in the order the mails arrived, so a link stays valid as more arrive.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse

from assistance import french

if TYPE_CHECKING:
    from deploy.local.stack import CaughtMail, MailCatcher


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1a1a1a; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd;
         vertical-align: top; }
th { background: #f4f4f4; }
pre { white-space: pre-wrap; background: #f8f8f8; padding: 1rem; border: 1px solid #ddd; }
.auto { color: #777; font-size: .85em; }
"""


def router(catcher: MailCatcher) -> APIRouter:
    """Pages over `catcher`'s messages; mount with `app.include_router(router(stack.mail))`."""
    pages = APIRouter(prefix="/dev", include_in_schema=False)

    @pages.get("/mails", response_class=HTMLResponse)
    async def mail_list() -> HTMLResponse:
        caught = catcher.messages
        rows = "".join(_row(n, mail) for n, mail in reversed(list(enumerate(caught, 1))))
        empty = "" if caught else '<tr><td colspan="5">Aucun mail pour le moment.</td></tr>'
        body = (
            f"<h1>Mails envoyés ({len(caught)})</h1>"
            f"<p>Capturés par le serveur SMTP local ; la page se recharge toutes les 5 s. "
            f'<a href="/dev/mails.json">JSON</a></p>'
            "<table><thead><tr><th>#</th><th>Date (Paris)</th><th>De</th><th>À</th>"
            f"<th>Objet</th></tr></thead><tbody>{rows}{empty}</tbody></table>"
        )
        return HTMLResponse(_page("Mails envoyés", body, refresh=True))

    @pages.get("/mails.json")
    async def mail_list_json() -> list[dict[str, Any]]:
        return [_summary(n, mail) for n, mail in reversed(list(enumerate(catcher.messages, 1)))]

    @pages.get("/mails/{n}", response_class=HTMLResponse)
    async def mail_detail(n: int) -> HTMLResponse:
        caught = catcher.messages
        if not 1 <= n <= len(caught):
            raise HTTPException(404, f"aucun mail n° {n}")
        mail = caught[n - 1]
        message = mail.message()
        headers = "".join(
            f"<tr><th>{escape(name)}</th><td>{escape(str(value))}</td></tr>"
            for name, value in message.items()
        )
        body = (
            f'<p><a href="/dev/mails">← Tous les mails</a></p>'
            f"<h1>{escape(str(message['Subject'] or '(sans objet)'))}</h1>"
            f"<p>Reçu le {escape(_when(mail))} (heure de Paris), "
            f"enveloppe : {escape(mail.mail_from)} → {escape(', '.join(mail.rcpt_tos))}</p>"
            f"<table>{headers}</table>"
            f"<h2>Texte</h2><pre>{escape(_text(mail))}</pre>"
            f"<details><summary>Source</summary>"
            f"<pre>{escape(mail.data.decode(errors='replace'))}</pre></details>"
        )
        return HTMLResponse(_page(f"Mail n° {n}", body))

    return pages


def _row(n: int, mail: CaughtMail) -> str:
    message = mail.message()
    auto = ' <span class="auto">(automatique)</span>' if message.get("Auto-Submitted") else ""
    return (
        f"<tr><td>{n}</td><td>{escape(_when(mail))}</td>"
        f"<td>{escape(str(message['From'] or mail.mail_from))}</td>"
        f"<td>{escape(str(message['To'] or ', '.join(mail.rcpt_tos)))}</td>"
        f'<td><a href="/dev/mails/{n}">{escape(str(message["Subject"] or "(sans objet)"))}</a>'
        f"{auto}</td></tr>"
    )


def _summary(n: int, mail: CaughtMail) -> dict[str, Any]:
    message = mail.message()
    return {
        "n": n,
        "received_at": mail.received_at.isoformat(),
        "mail_from": mail.mail_from,
        "rcpt_tos": mail.rcpt_tos,
        "from": str(message["From"] or ""),
        "to": str(message["To"] or ""),
        "subject": str(message["Subject"] or ""),
        "message_id": str(message["Message-ID"] or ""),
        "in_reply_to": str(message["In-Reply-To"] or ""),
        "auto_submitted": str(message["Auto-Submitted"] or ""),
        "text": _text(mail),
    }


def _text(mail: CaughtMail) -> str:
    part = mail.message().get_body(("plain",))
    return str(part.get_content()).replace("\r\n", "\n") if part is not None else ""


def _when(mail: CaughtMail) -> str:
    return french.moment(mail.received_at, seconds=True)


def _page(title: str, body: str, refresh: bool = False) -> str:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    return (
        f'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">{meta}'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
