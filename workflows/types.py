"""What the dossier workflow receives and keeps; plain dataclasses, safe in the sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class DossierOpening:
    """A committed request, as the intake relay hands it to the workflow (id = dossier id)."""

    dossier_id: str
    reference: str
    channel: str  # web | mail | phone
    requester_email: str
    requester_name: str
    software: str
    subject: str
    description: str
    received_at: datetime
    first_response_due: datetime
    organisation_id: str | None = None
    technician_id: str | None = None  # phone: the technician who took the call
    caller_phone: str | None = None
