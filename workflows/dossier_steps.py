"""What the dossier's commands and the services' facts do to it (R2–R10): the steps the
DossierWorkflow's handlers share. Passed through the sandbox like workflows/dossier_effects.py."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow

from assistance.events import Event
from services.dossier import domain
from workflows.dossier_effects import EFFECT_TIMEOUTS, DossierEffects
from workflows.types import (
    Actor,
    CustomerMessage,
    HandOver,
)

# Facts reaching a closed dossier used to move it out of "closed" without a reopening.
LATE_FACTS_KEEP_CLOSED = "late-facts-keep-closed"
# A resolution mailed to the customer did not count as a response: a dossier resolved or closed
# without a separate answer kept first_responded_at empty (and its R3 timers live).
RESOLUTION_ANSWERS = "resolution-is-first-response"


class DossierSteps(DossierEffects):
    async def _customer_said(self, msg: CustomerMessage) -> None:
        s = self.state
        if msg.message_id:
            s.thread.append(msg.message_id)
        if s.status in ("waiting_customer", "resolved"):
            # a reply resumes the follow-through; a reply to a resolution reopens the work
            s.status = "in_progress" if s.technician_id else "new"
            s.waiting_for = s.waiting_since = None
        self._touch()
        self._emit(
            "customer_replied",
            timeline=self._entry(
                "customer_message",
                msg.text,
                None,
                "customer",
                author=msg.author_name or msg.author_email,
                data={"via": msg.via, "attachments": msg.attachments}
                if msg.attachments
                else {"via": msg.via},
            ),
        )
        if s.technician_id:
            self._notice(
                "technician",
                "customer_replied",
                f"Réponse du client : {self.opening.reference}",
                msg.text[:2000],
            )

    async def _on_service_event(self, event: Event) -> None:
        s, d = self.state, event.data
        kind = event.type
        if s.status == "closed" and workflow.patched(LATE_FACTS_KEEP_CLOSED):
            self._on_late_fact(kind, d)
            return
        self._touch()
        if kind in ("training.appointment.booked", "training.appointment.rescheduled"):
            s.details["training"] = d
            self._set_waiting("training")
            when = d.get("starts_at", "")
            self._emit(
                "training_booked",
                timeline=self._entry(
                    "training",
                    f"Rendez-vous de formation le {self._fmt_iso(when)} avec "
                    f"{d.get('trainer_name', 'un formateur')}.",
                    visibility="customer",
                    data=d,
                ),
            )
        elif kind == "training.booking.unavailable":
            s.details["training_alert"] = d
            self._emit(
                "training_unavailable",
                timeline=self._entry(
                    "training",
                    "Aucun créneau de formation dans les délais : responsable formation alerté.",
                    data=d,
                ),
            )
        elif kind == "training.appointment.cancelled":
            s.details["training"] = d
            self._emit(
                "training_cancelled",
                timeline=self._entry(
                    "training", "Rendez-vous de formation annulé.", visibility="customer", data=d
                ),
            )
        elif kind == "training.appointment.held":
            s.details["training"] = d
            self._resolve("Formation effectuée : " + (d.get("notes") or "sujet traité."))
        elif kind == "training.appointment.missed":
            self._emit(
                "training_missed",
                timeline=self._entry(
                    "training",
                    "Rendez-vous manqué : un nouveau créneau est recherché.",
                    visibility="customer",
                    data=d,
                ),
            )
            self._hand_over()
        elif kind.startswith("bugs.bug."):
            await self._on_bug_event(kind.removeprefix("bugs.bug."), d)
        elif kind.startswith("evolutions.request."):
            await self._on_evolution_event(kind.removeprefix("evolutions.request."), d)

    async def _on_bug_event(self, what: str, d: dict[str, Any]) -> None:
        s = self.state
        bug = {**s.details.get("bug", {}), "id": d.get("bug_id"), "state": what}
        s.details["bug"] = bug
        labels = {
            "reported": "Bug transmis aux développeurs.",
            "linked": "Dossier rattaché à un bug connu.",
            "reproduced": "Bug reproduit par les développeurs.",
            "diagnosed": "Cause du bug identifiée.",
            "fix_completed": "Correctif développé ; il sera livré dans une prochaine version.",
        }
        if what == "released":
            version = d.get("version", "")
            bug["fixed_in"] = version
            self._mail("fix_released", {"version": version})
            self._resolve(f"Corrigé dans la version {version}.", mail=False)
        elif what == "not_reproducible":
            questions = d.get("questions") or "Pouvez-vous nous en dire plus ?"
            s.status, s.waiting_for, s.waiting_since = (
                "waiting_customer",
                "customer",
                workflow.now(),
            )
            s.details["information_request"] = questions
            self._emit(
                "information_requested",
                timeline=self._entry(
                    "information_request", f"Bug non reproduit : {questions}", visibility="customer"
                ),
            )
            self._mail("information_request", {"text": questions})
            self._notice(
                "technician",
                "bug_not_reproducible",
                f"Bug non reproduit : {self.opening.reference}",
                questions,
            )
        elif what in labels:
            self._set_waiting("bug_fix")
            self._emit(
                f"bug_{what}",
                timeline=self._entry(
                    "bug", labels[what], visibility="customer", data={"bug_id": d.get("bug_id")}
                ),
            )

    async def _on_evolution_event(self, what: str, d: dict[str, Any]) -> None:
        s = self.state
        s.details["evolution"] = {**s.details.get("evolution", {}), **d, "state": what}
        if what in ("accepted", "rejected"):
            template = f"evolution_{what}"
            self._mail(
                template, {"reason": d.get("reason"), "specification": d.get("specification")}
            )
            decision = "acceptée" if what == "accepted" else "refusée"
            resolution = f"Demande d'évolution {decision}."
            if d.get("reason"):
                resolution += f" {d['reason']}"
            await self._close(resolution, by="chef de produit", mail=False)
        else:
            self._set_waiting("evolution_decision")
            self._emit(
                f"evolution_{what}",
                timeline=self._entry(
                    "evolution",
                    "Demande d'évolution enregistrée pour la revue hebdomadaire."
                    if what == "recorded"
                    else f"Demande d'évolution : {what}.",
                    visibility="customer",
                    data=d,
                ),
            )

    def _on_late_fact(self, kind: str, d: dict[str, Any]) -> None:
        """A fact for a closed dossier (a bug it was linked to, a decision on its request).

        R10: it stays closed until someone reopens it, so no status change and no timer.
        R8/R9: the customer is still told the version that carries the fix, or the decision."""
        s = self.state
        if kind.startswith("bugs.bug."):
            what = kind.removeprefix("bugs.bug.")
            s.details["bug"] = {**s.details.get("bug", {}), "id": d.get("bug_id"), "state": what}
            if what == "released":
                version = d.get("version", "")
                s.details["bug"]["fixed_in"] = version
                self._mail("fix_released", {"version": version})
                self._emit(
                    "bug_released",
                    timeline=self._entry(
                        "bug",
                        f"Correctif livré dans la version {version}.",
                        visibility="customer",
                        data={"bug_id": d.get("bug_id"), "version": version},
                    ),
                )
        elif kind in ("evolutions.request.accepted", "evolutions.request.rejected"):
            what = kind.removeprefix("evolutions.request.")
            s.details["evolution"] = {**s.details.get("evolution", {}), **d, "state": what}
            self._mail(
                f"evolution_{what}",
                {"reason": d.get("reason"), "specification": d.get("specification")},
            )
            decision = "acceptée" if what == "accepted" else "refusée"
            self._emit(
                f"evolution_{what}",
                timeline=self._entry(
                    "evolution", f"Demande d'évolution {decision}.", visibility="customer", data=d
                ),
            )

    def _set_waiting(self, what: str) -> None:
        s = self.state
        s.status, s.waiting_for, s.waiting_since = "waiting_service", what, None

    def _resolve(self, resolution: str, mail: bool = True) -> None:
        """A proposed resolution: the customer confirms, or it closes after a delay."""
        s = self.state
        s.status, s.waiting_for, s.resolved_at = "resolved", "customer", workflow.now()
        s.details["proposed_resolution"] = resolution
        if mail:
            self._resolution_answers()
        self._emit("resolved", timeline=self._entry("resolved", resolution, visibility="customer"))
        if mail:
            self._mail("resolved", {"resolution": resolution})

    async def _close(
        self, resolution: str, *, by: str, actor: Actor | None = None, mail: bool
    ) -> None:
        s = self.state
        now = workflow.now()
        s.status, s.waiting_for, s.closed_at, s.resolution = "closed", None, now, resolution
        if "usage_target" in s.details:
            s.details["usage_target_met"] = now <= datetime.fromisoformat(s.details["usage_target"])
        if mail:
            self._resolution_answers()
        self._emit(
            "closed", timeline=self._entry("closed", resolution, actor, "customer", author=by)
        )
        if mail:
            self._mail("closure", {"resolution": resolution})

    def _reopen(self, reason: str, actor: Actor | None) -> None:
        s = self.state
        s.details.setdefault("previous_resolutions", []).append(
            {
                "resolution": s.resolution,
                "closed_at": s.closed_at.isoformat() if s.closed_at else None,
            }
        )
        s.status = "in_progress" if s.technician_id else "new"
        s.closed_at = s.resolution = s.waiting_for = s.waiting_since = None
        s.reopened += 1
        self._touch()
        self._emit(
            "reopened",
            timeline=self._entry(
                "reopened", reason, actor, "customer", author=actor.name if actor else "client"
            ),
        )
        self._mail("reopened", {"reason": reason})

    def _first_response(self) -> None:
        """R3: the first response to the customer stops the clock."""
        if self.state.first_responded_at is None:
            self.state.first_responded_at = workflow.now()

    def _resolution_answers(self) -> None:
        """R3: the mail carrying the resolution answers the customer; if nothing did before,
        it is the first response (else /reports/activity shows the dossier pending for ever)."""
        if self.state.first_responded_at is None and workflow.patched(RESOLUTION_ANSWERS):
            self._first_response()

    def _touch(self) -> None:
        """R2: activity restarts the follow-through timer."""
        s = self.state
        s.last_activity_at = workflow.now()
        s.reminded = s.escalated = False
        s.cycle_from = None
        self.changed = True

    def _tell_handover(self, kind: str) -> None:
        """R3: the customer learns at once what happens next (a first response)."""
        self._first_response()
        if kind == "evolution":
            self._mail("evolution_recorded", {})
        else:
            self._mail(
                "response",
                {
                    "text": "Votre question demande une formation ou un paramétrage "
                    "approfondi : un formateur vous propose un rendez-vous aujourd'hui ou "
                    "le prochain jour ouvré. Vous recevrez l'invitation par mail."
                },
            )

    def _hand_over(self) -> None:
        """R7–R9: ask the owning service over NATS; its facts come back as service_event."""
        s, o = self.state, self.opening
        service = {"advanced_usage": "training", "bug": "bugs", "evolution": "evolutions"}[
            s.kind or ""
        ]
        s.handover_attempt += 1
        self._set_waiting(domain.HANDED_OVER[s.kind or ""])
        order = HandOver(
            service=service,
            dossier_id=o.dossier_id,
            reference=o.reference,
            software=o.software,
            organisation_id=o.organisation_id,
            requester_email=o.requester_email,
            requester_name=o.requester_name,
            subject=o.subject,
            description=o.description,
            context=s.context or "",
            need=s.need or "",
            version=s.version,
            workaround=s.workaround,
            attempt=s.handover_attempt,
        )
        self._emit(
            "handed_over",
            timeline=self._entry(
                "handed_over",
                {
                    "training": "Demande transmise au service formation.",
                    "bugs": "Bug transmis à l'équipe de développement.",
                    "evolutions": "Demande d'évolution transmise au chef de produit.",
                }[service],
                visibility="customer",
            ),
            service=service,
        )

        async def ask() -> None:
            answer = await self._guarded(
                "hand_over",
                workflow.execute_activity("hand_over", order, result_type=dict, **EFFECT_TIMEOUTS),
            )
            if answer is None:
                return  # failed for good: recorded on the dossier, parked for an administrator
            async with self.lock:
                s.details[f"{service}_ticket"] = answer
                self.changed = True

        self.pending.append(asyncio.create_task(ask()))
