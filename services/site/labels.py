"""What the site calls the system's codes, in words (translated where shown)."""

from __future__ import annotations

from services.site.i18n import N_

STATUS = {
    "new": N_("Waiting for a technician"),
    "in_progress": N_("In progress"),
    "waiting_customer": N_("Waiting for your answer"),
    "waiting_service": N_("With a specialist team"),
    "resolved": N_("Resolution proposed"),
    "closed": N_("Closed"),
}
# Back-office wording of the same statuses.
STATUS_STAFF = {
    "new": N_("New"),
    "in_progress": N_("In progress"),
    "waiting_customer": N_("Waiting for the customer"),
    "waiting_service": N_("Handed over"),
    "resolved": N_("Resolution proposed"),
    "closed": N_("Closed"),
}
KIND = {
    "usage": N_("Usage question"),
    "advanced_usage": N_("Advanced usage (training)"),
    "bug": N_("Bug"),
    "evolution": N_("Evolution request"),
    "": N_("Not classified yet"),
}
CHANNEL = {"web": N_("Web site"), "mail": N_("Mail"), "phone": N_("Phone")}
ROLE = {
    "customer": N_("Customer"),
    "technician": N_("Technician"),
    "trainer": N_("Trainer"),
    "developer": N_("Developer"),
    "product_manager": N_("Product manager"),
    "project_manager": N_("IT project manager"),
    "admin": N_("Administrator"),
}
# Timeline entries, by kind.
ENTRY = {
    "received": N_("Request received"),
    "opened": N_("Dossier opened"),
    "taken": N_("Taken in charge"),
    "released": N_("Returned to the queue"),
    "diagnosed": N_("Diagnosis"),
    "diagnosis": N_("Diagnosis (internal)"),
    "response": N_("Answer"),
    "customer_message": N_("Message from the customer"),
    "note": N_("Internal note"),
    "information_request": N_("Information requested"),
    "screen_share": N_("Screen sharing"),
    "workaround": N_("Workaround"),
    "training": N_("Training"),
    "bug": N_("Bug follow-up"),
    "evolution": N_("Evolution request"),
    "resolved": N_("Resolution proposed"),
    "confirmed": N_("Resolution confirmed"),
    "closed": N_("Dossier closed"),
    "reopened": N_("Dossier reopened"),
    "handed_over": N_("Handed over to a specialist team"),
    "effect_failed": N_("An automatic step failed; it is retried"),
    "reminder": N_("Reminder"),
    "customer_reminder": N_("Reminder sent"),
    "escalation": N_("Escalation"),
    "first_response_warning": N_("First-response warning"),
    "first_response_breach": N_("First-response commitment missed"),
}
# Training appointments (R7), evolution requests (R9), bugs (R8): their services' codes.
APPOINTMENT = {
    "booked": N_("Booked"),
    "held": N_("Held"),
    "missed": N_("Missed"),
    "cancelled": N_("Cancelled"),
}
EVOLUTION = {
    "open": N_("Open"),
    "accepted": N_("Accepted"),
    "rejected": N_("Rejected"),
    "merged": N_("Merged"),
}
BUG_STATE = {
    "new": N_("Reported, to reproduce"),
    "reproduced": N_("Reproduced"),
    "not_reproducible": N_("Not reproduced: questions to the customer"),
    "diagnosed": N_("Diagnosed"),
    "fix_completed": N_("Fix completed"),
    "released": N_("Released"),
    "duplicate": N_("Duplicate"),
}
BUG_EVENT = {
    "reported": N_("Reported"),
    "linked": N_("Dossier linked"),
    "claimed": N_("Taken by a developer"),
    "reproduced": N_("Reproduced"),
    "not_reproducible": N_("Not reproduced"),
    "diagnosed": N_("Diagnosed"),
    "fix_completed": N_("Fix completed"),
    "released": N_("Released"),
}
# What a dossier waits for (`waiting_for`), shown to the staff.
WAITING_FOR = {
    "customer": N_("the customer's answer"),
    "training": N_("a training appointment"),
    "bug_fix": N_("the bug fix"),
    "evolution_decision": N_("the product manager's decision"),
}
# The steps of an evolution request as a dossier hears them (`evolutions.request.<step>`).
EVOLUTION_EVENT = {
    "recorded": N_("Recorded for the weekly review"),
    "reviewed": N_("Examined at the weekly review"),
    "grouped": N_("Grouped with a similar request"),
    "accepted": N_("Accepted"),
    "rejected": N_("Rejected"),
    "shipped": N_("Shipped"),
    "merged": N_("Merged"),
}
# The fields an API refusal names (`error.field`), worded for the form they came from.
FIELD = {
    "resolution": N_("Resolution"),
    "text": N_("Text"),
    "reason": N_("Reason"),
    "none_reason": N_("Why there is no workaround"),
    "caller_phone": N_("Phone number"),
    "subject": N_("Subject"),
    "description": N_("Description"),
    "software": N_("Software"),
    "version": N_("Version"),
    "kind": N_("Nature"),
    "context": N_("Work context"),
    "need": N_("Technical need"),
    "requester.email": N_("E-mail address"),
    "requester.name": N_("Name"),
    "email": N_("E-mail address"),
    "name": N_("Name"),
    "comment": N_("Comment"),
    "score": N_("Rating"),
    "technician": N_("Technician"),
    "status": N_("Status"),
    "notes": N_("Notes"),
    "starts_at": N_("New time"),
    "trainer_id": N_("Trainer"),
    "evolutions": N_("Evolutions shipped"),
    "documentation": N_("Documentation"),
    "reference": N_("Dossier reference"),
}
# Why a mail was set aside (`services/intake/mail/rules.py`, REASONS), for the technicians.
QUARANTINE_REASON = {
    "no_sender": N_("No readable sender address"),
    "own_mail": N_("One of our own mails came back (a loop avoided)"),
    "bounce": N_("Non-delivery report: the address is marked as failing"),
    "report": N_("Automatic report (read receipt, notice) without a request"),
    "staff_sender": N_("Mail from a team member: answer from the back office"),
    "auto_submitted": N_("Automatic answer (marked as such)"),
    "bulk": N_("Bulk mailing"),
    "mailing_list": N_("Mailing-list mail"),
    "null_sender": N_("Empty sender: an automatic message"),
    "auto_reply": N_("Automatic answer (out of office)"),
    "daemon_sender": N_("Sent by a program (list manager, mail server)"),
    "rate_limited": N_("Too many mails from this sender within the hour"),
    "unknown_dossier": N_("Names an unknown dossier"),
    "sender_mismatch": N_(
        "Names a dossier, but the sender is neither its requester nor of their company"
    ),
    "reply_sender_mismatch": N_(
        "Answers one of our mails, but the sender is neither the requester nor of their company"
    ),
    "dmarc_fail": N_("Sender authentication failed for a client's domain (probably forged)"),
    "no_software": N_("No software is registered: no dossier can be opened"),
    "invalid_request": N_("The mail cannot become a valid request"),
    "dossier_finished": N_("The dossier is archived (the reopening window is over)"),
    "internal_error": N_("Unexpected error while reading it: kept as received"),
}
OTHER_REASON = N_("Other reason")
QUARANTINE_STATUS = {
    "pending": N_("To decide"),
    "released": N_("Released into a dossier"),
    "discarded": N_("Discarded (no dossier)"),
}
# The DMARC verdict our trusted mail server wrote on a mail (issue 13, decision 0020): kept in
# the mail's `details.authentication` by services/intake/mail/auth.py.
DMARC = {
    "pass": N_("compliant"),
    "fail": N_("not compliant"),
    "none": N_("no policy published by the sender's domain"),
    "temperror": N_("not checked (temporary error)"),
    "permerror": N_("not checked (the domain's record is unreadable)"),
    "absent": N_("absent (our mail server gave no result)"),
    "not_configured": N_("not checked (no trusted mail server is configured)"),
    "": N_("not recorded (received before the check existed)"),
}
DMARC_OTHER = N_("unrecognised result")
