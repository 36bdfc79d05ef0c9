"""The bugs service's use cases (R8), each inside the caller's transaction.

A hand-over records (or links) the bug; developers reproduce, diagnose and fix it; a release
of a version that carries the fix tells every linked dossier, once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, TypeAlias

import asyncpg

from assistance.directory import Principal, Role
from assistance.errors import Conflict, NotFound
from services.bugs import domain, repo
from services.bugs.domain import State, Step
from services.bugs.models import (
    DiagnosisIn,
    FixIn,
    FixOut,
    HandOverIn,
    LinkIn,
    NotReproducibleIn,
    ReproducedIn,
)

Conn: TypeAlias = asyncpg.Connection


def _now() -> datetime:
    return datetime.now(UTC)


async def _bug(conn: Conn, bug_id: uuid.UUID) -> asyncpg.Record:
    row = await repo.lock_bug(conn, bug_id)
    if row is None:
        raise NotFound("bug_not_found", "Bug introuvable.")
    return row


def _ids(who: Principal) -> tuple[uuid.UUID, bool]:
    assert who.user_id is not None
    return who.user_id, who.role is Role.admin


# --- developers ------------------------------------------------------------------------------


async def claim(conn: Conn, bug_id: uuid.UUID, who: Principal) -> None:
    row = await _bug(conn, bug_id)
    user_id, admin = _ids(who)
    if domain.check_claim(repo.facts(row), user_id, admin):
        await _take(conn, bug_id, who)


async def _take(conn: Conn, bug_id: uuid.UUID, who: Principal) -> None:
    """The developer holds the bug; any step of theirs is activity (R2)."""
    await repo.update_bug(
        conn, bug_id, developer_id=who.user_id, developer_name=who.name, last_activity_at=_now()
    )


async def _step(conn: Conn, bug_id: uuid.UUID, step: Step, who: Principal) -> asyncpg.Record:
    row = await _bug(conn, bug_id)
    user_id, admin = _ids(who)
    domain.check_step(repo.facts(row), step, user_id, admin)
    if row["developer_id"] is None and who.role is Role.developer:
        await _take(conn, bug_id, who)  # working on an unclaimed bug claims it
    else:
        await repo.update_bug(conn, bug_id, last_activity_at=_now())
    return row


async def reproduced(conn: Conn, bug_id: uuid.UUID, body: ReproducedIn, who: Principal) -> None:
    row = await _step(conn, bug_id, Step.reproduced, who)
    await repo.update_bug(
        conn,
        bug_id,
        state=State.reproduced.value,
        reproduction_steps=body.steps,
        environment=body.environment,
    )
    await repo.add_versions(conn, row, body.affected_versions)
    await repo.record_fact(
        conn,
        bug_id,
        "reproduced",
        actor=who.name,
        steps=body.steps,
        environment=body.environment,
    )


async def not_reproducible(
    conn: Conn, bug_id: uuid.UUID, body: NotReproducibleIn, who: Principal
) -> None:
    """The questions go to every linked dossier's technician and customer (the workflow)."""
    await _step(conn, bug_id, Step.not_reproducible, who)
    await repo.update_bug(
        conn, bug_id, state=State.not_reproducible.value, questions=body.questions
    )
    await repo.record_fact(
        conn, bug_id, "not_reproducible", actor=who.name, questions=body.questions
    )


async def diagnosed(conn: Conn, bug_id: uuid.UUID, body: DiagnosisIn, who: Principal) -> None:
    row = await _step(conn, bug_id, Step.diagnosed, who)
    await repo.update_bug(conn, bug_id, state=State.diagnosed.value, diagnosis=body.diagnosis)
    await repo.add_versions(conn, row, body.affected_versions)
    await repo.record_fact(conn, bug_id, "diagnosed", actor=who.name, diagnosis=body.diagnosis)


async def complete_fix(conn: Conn, bug_id: uuid.UUID, body: FixIn, who: Principal) -> FixOut:
    """API.md `fix-completed`, by the developer holding the bug or an admin: the same version
    again answers the fix as recorded (one effect); another version once the fix is signalled
    is a 409, so the customers are never told twice."""
    row = await _bug(conn, bug_id)
    user_id, admin = _ids(who)
    domain.check_fix_author(repo.facts(row), user_id, admin)
    if row["fix_version"] is not None and row["fix_version"] == body.version:
        return FixOut(bug_id=bug_id, **repo.fix_fields(row))
    domain.check_step(repo.facts(row), Step.fix_completed, user_id, admin)
    now = _now()
    await repo.update_bug(
        conn,
        bug_id,
        state=State.fix_completed.value,
        fix_version=body.version,
        change_reference=body.change_reference,
        fix_notes=body.notes,
        fix_completed_at=now,
        fix_completed_by=who.name,
        last_activity_at=now,
    )
    await repo.record_fact(
        conn,
        bug_id,
        "fix_completed",
        actor=who.name,
        version=body.version,
        change_reference=body.change_reference,
    )
    # the fix may target a version already out: then it is released now
    released = await repo.released_versions(conn, row["software"])
    carrier = domain.first_carrier([r["version"] for r in released], body.version)
    if carrier is not None:
        at = next(r["released_at"] for r in released if r["version"] == carrier)
        await _release(conn, bug_id, carrier, at)
    fixed = await repo.lock_bug(conn, bug_id)
    assert fixed is not None
    return FixOut(bug_id=bug_id, **repo.fix_fields(fixed))


# --- releases --------------------------------------------------------------------------------


async def version_released(
    conn: Conn, software: str, version: str, released_at: datetime
) -> list[uuid.UUID]:
    """R8: every fixed bug of this software whose fix this version carries is released, and
    every linked dossier told once. Returns the bugs released now."""
    await repo.record_release(conn, software, version, released_at)
    released = []
    for row in await repo.fixed_bugs(conn, software):
        if domain.carries_fix(version, row["fix_version"]):
            await _release(conn, row["id"], version, released_at)
            released.append(row["id"])
    return released


async def _release(
    conn: Conn,
    bug_id: uuid.UUID,
    version: str,
    released_at: datetime,
    dossier_ids: list[uuid.UUID] | None = None,
) -> None:
    row = await repo.lock_bug(conn, bug_id)
    assert row is not None
    if row["state"] != State.released.value:
        await repo.update_bug(
            conn,
            bug_id,
            state=State.released.value,
            released_version=version,
            released_at=released_at,
        )
    await repo.record_fact(
        conn,
        bug_id,
        "released",
        actor=None,
        dossier_ids=dossier_ids,
        version=version,
        fix_version=row["fix_version"],
        released_at=released_at.isoformat(),
    )


# --- dossiers: the hand-over and the technicians' links --------------------------------------


async def open_from_handover(conn: Conn, order: HandOverIn) -> dict[str, Any]:
    """docs/contracts.md §1: record the bug (or link to the known one) and answer once per
    (dossier, attempt); the workflow only hands over after the workaround gate (R8)."""
    await repo.lock_dossier(conn, order.dossier_id)
    answer = await repo.handover_answer(conn, order.dossier_id, order.attempt)
    if answer is not None:
        return answer
    await repo.upsert_workaround(
        conn,
        order.dossier_id,
        _now(),
        reference=order.reference,
        software=order.software,
        version=order.version,
        subject=order.subject,
        text=order.workaround,
    )
    bug_id, created = await _bug_for(conn, order)
    bug = await repo.lock_bug(conn, bug_id)
    assert bug is not None
    answer = {"ok": True, "bug_id": str(bug_id), "reference": bug["reference"], "created": created}
    await repo.remember_handover(conn, order.dossier_id, order.attempt, bug_id, answer)
    return answer


async def _bug_for(conn: Conn, order: HandOverIn) -> tuple[uuid.UUID, bool]:
    current = await repo.current_link(conn, order.dossier_id)
    if current is not None:
        bug = await repo.lock_bug(conn, current["bug_id"])
        assert bug is not None
        if order.attempt == 1 or bug["state"] != State.released.value:
            # linked by a technician before the hand-over, or handed over again meanwhile
            await repo.complete_link(conn, order.dossier_id, order.reference, order.version)
            await repo.add_versions(conn, bug, [order.version or ""])
            return bug["id"], False
    if order.bug_id is not None:
        known = await repo.lock_bug(conn, order.bug_id)
        if known is not None and known["state"] != State.duplicate.value:
            await _join(conn, known, order.dossier_id, "handover", order.reference, order.version)
            return known["id"], False
    # a new bug; after a released fix that did not hold, one that remembers the old bug
    bug = await repo.create_bug(
        conn,
        software=order.software,
        title=order.subject,
        description=order.description,
        versions=[order.version] if order.version else [],
        previous_bug_id=current["bug_id"] if current is not None else None,
    )
    await repo.link(
        conn,
        bug["id"],
        order.dossier_id,
        via="handover",
        reference=order.reference,
        version=order.version,
    )
    await repo.record_fact(
        conn,
        bug["id"],
        "reported",
        actor=None,
        dossier_ids=[order.dossier_id],
        title=order.subject,
        version=order.version,
    )
    return bug["id"], True


async def link_dossier(conn: Conn, bug_id: uuid.UUID, body: LinkIn, who: Principal) -> None:
    """A technician links a dossier to a known bug instead of opening a duplicate; a bug
    the dossier leaves with no dossier becomes a duplicate of this one."""
    await repo.lock_dossier(conn, body.dossier_id)
    bug = await _bug(conn, bug_id)
    domain.check_link(repo.facts(bug))
    if not await repo.gate_passed(conn, body.dossier_id):
        raise Conflict(
            "workaround_first",
            "Enregistrez d'abord le contournement du dossier (ou la raison de son absence) : "
            "le bug ne va aux développeurs qu'ensuite (R8).",
            "dossier_id",
        )
    current = await repo.current_link(conn, body.dossier_id)
    if current is not None and current["bug_id"] == bug_id:
        return  # already linked here: nothing changes
    await _join(conn, bug, body.dossier_id, "technician", body.reference, None, who.name)
    if current is not None and not await repo.linked_dossier_ids(conn, current["bug_id"]):
        left = await repo.lock_bug(conn, current["bug_id"])
        if left is not None and left["state"] not in (State.released, State.duplicate):
            await repo.update_bug(
                conn, left["id"], state=State.duplicate.value, duplicate_of=bug_id
            )


async def _join(
    conn: Conn,
    bug: asyncpg.Record,
    dossier_id: uuid.UUID,
    via: str,
    reference: str | None,
    version: str | None,
    by: str | None = None,
) -> None:
    await repo.link(
        conn, bug["id"], dossier_id, via=via, reference=reference, version=version, linked_by=by
    )
    if version:
        await repo.add_versions(conn, bug, [version])
    await repo.record_fact(conn, bug["id"], "linked", actor=by, dossier_ids=[dossier_id])
    if bug["state"] == State.released.value:
        # already fixed and shipped: this customer is told the version at once
        await _release(conn, bug["id"], bug["released_version"], bug["released_at"], [dossier_id])
