"""Follow-through of bugs (R2): a bug the developers owe a move on, quiet for too long, is
escalated to the admins by mail — once per quiet period, recorded before it is mailed, and
mailed again on the next check if the SMTP server refused it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime as rfc2822_datetime

import asyncpg

from assistance import directory, french, mail_once, telemetry
from assistance.business_time import BusinessCalendar
from assistance.commitment import hours_text
from assistance.directory import Role
from assistance.settings import Settings
from services.bugs import domain, repo
from services.bugs.domain import STATE_LABELS, State
from services.bugs.settings import BugsSettings

log = logging.getLogger(__name__)


class Escalator:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        bugs: BugsSettings,
        calendar: BusinessCalendar,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.bugs = bugs
        self.calendar = calendar

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as exc:  # noqa: BLE001 - logged; the next check tries again
                log.warning("bug follow-through check failed, next time: %r", exc)
            await asyncio.sleep(self.bugs.escalation_check_seconds)

    async def check(self, now: datetime | None = None) -> list[uuid.UUID]:
        """Record the escalations due at `now`, then mail those not mailed yet; returns the
        bugs escalated by this check."""
        now = now or datetime.now(UTC)
        escalated = []
        with telemetry.quiet():  # polled: no span unless there is something to do
            candidates = await repo.escalation_candidates(self.pool)
        for row in candidates:
            since = domain.quiet_since(
                State(row["state"]), row["last_activity_at"], row["last_answer_at"]
            )
            if since is None:
                continue
            if not domain.escalation_due(self.calendar, since, self.bugs.escalation_hours, now):
                continue
            result = await self.pool.execute(
                "INSERT INTO bugs.escalations (bug_id, quiet_since, escalated_at) "
                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                row["id"],
                since,
                now,
            )
            if result.endswith(" 1"):
                escalated.append(row["id"])
        await self._mail_pending()
        return escalated

    async def _mail_pending(self) -> None:
        """Each escalation in its own transaction: one refused mail holds back no other, and
        a mail accepted by the SMTP server is marked at once."""
        pending = await self.pool.fetch(
            "SELECT bug_id, quiet_since FROM bugs.escalations WHERE mailed_at IS NULL "
            "ORDER BY escalated_at"
        )
        for key in pending:
            try:
                await self._mail_one(key["bug_id"], key["quiet_since"])
            except Exception as exc:  # noqa: BLE001 - mailed at the next check
                log.warning("escalation of bug %s not mailed yet: %r", key["bug_id"], exc)

    async def _mail_one(self, bug_id: uuid.UUID, quiet_since: datetime) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """SELECT e.bug_id, e.quiet_since, b.reference, b.software, b.title, b.state,
                          b.developer_name,
                          (SELECT count(*) FROM bugs.bug_dossiers d WHERE d.bug_id = b.id) AS n
                   FROM bugs.escalations e JOIN bugs.bugs b ON b.id = e.bug_id
                   WHERE e.bug_id = $1 AND e.quiet_since = $2 AND e.mailed_at IS NULL
                   FOR UPDATE OF e SKIP LOCKED""",
                bug_id,
                quiet_since,
            )
            if row is None:
                return  # mailed meanwhile, or being mailed by another process
            recipients = await directory.emails_with_role(conn, Role.admin) or [
                self.settings.support_address
            ]
            message = self.message(row, recipients)
            # once in practice: a crash before this transaction commits finds it sent (0015)
            await mail_once.send_shared(self.pool, self.settings, "bugs", message)
            await conn.execute(
                "UPDATE bugs.escalations SET mailed_at = now(), recipients = $3 "
                "WHERE bug_id = $1 AND quiet_since = $2",
                bug_id,
                quiet_since,
                recipients,
            )

    def message(self, row: asyncpg.Record, recipients: list[str]) -> EmailMessage:
        """The French mail to the admins."""
        since = french.moment(row["quiet_since"])
        who = row["developer_name"] or "aucun développeur (bug non pris)"
        message = EmailMessage()
        message["From"] = Address("Assistance Manao", addr_spec=self.settings.mail_from)
        message["To"] = ", ".join(recipients)
        message["Subject"] = f"[{row['reference']}] Bug sans activité des développeurs"
        message["Date"] = rfc2822_datetime(datetime.now(UTC))
        # one per quiet period: to the microsecond, two periods starting within the same
        # second would otherwise share it (and the second mail be taken for a duplicate)
        quiet = int(row["quiet_since"].timestamp() * 1_000_000)
        message["Message-ID"] = (
            f"<bug-escalation.{row['bug_id']}.{quiet}@{self.settings.mail_domain}>"
        )
        message["Auto-Submitted"] = "auto-generated"
        message["Content-Language"] = "fr"
        message.set_content(
            f"Bonjour,\n\n"
            f"Le bug {row['reference']} ({row['software']}) « {row['title']} » n'a connu "
            f"aucune activité des développeurs depuis le {since} "
            f"({hours_text(self.bugs.escalation_hours)} ou plus).\n\n"
            f"État : {STATE_LABELS[State(row['state'])]}.\n"
            f"Suivi par : {who}.\n"
            f"Dossiers clients en attente : {row['n']}.\n\n"
            f"{self.settings.public_url}/api/v1/bugs/{row['bug_id']}\n\n"
            f"Merci de relancer ou de réattribuer ce bug.\n\n"
            f"L'équipe Assistance Manao\n"
        )
        return message
