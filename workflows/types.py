"""The dossier workflow's input and answers: defined in services/dossier/state.py."""

from services.dossier.state import (
    Actor,
    CloseCmd,
    CustomerMessage,
    DiagnosisCmd,
    DossierOpening,
    DossierPolicy,
    DossierState,
    DossierView,
    HandOver,
    MailOrder,
    MessageCmd,
    ReopenCmd,
    ScreenShareCmd,
    StaffNotice,
    TakeCmd,
    WorkaroundCmd,
)

__all__ = [
    "Actor",
    "CloseCmd",
    "CustomerMessage",
    "DiagnosisCmd",
    "DossierOpening",
    "DossierPolicy",
    "DossierState",
    "DossierView",
    "HandOver",
    "MailOrder",
    "MessageCmd",
    "ReopenCmd",
    "ScreenShareCmd",
    "StaffNotice",
    "TakeCmd",
    "WorkaroundCmd",
]
