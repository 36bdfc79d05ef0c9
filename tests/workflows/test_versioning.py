"""Every `workflow.patched` change of the dossier process is replayed: some recorded history
went through its new branch (docs/workflow-versioning.md)."""

from __future__ import annotations

import base64
import json

from services.dossier.process import BUNDLES, FEATURES
from tests.workflows.record_histories import HISTORIES


def _patches(history: str) -> set[str]:
    found = set()
    for event in json.loads(history)["events"]:
        marker = event.get("markerRecordedEventAttributes")
        if marker and marker.get("markerName") == "core_patch":
            for payload in marker["details"]["patch-data"]["payloads"]:
                found.add(json.loads(base64.b64decode(payload["data"]))["id"])
    return found


def test_every_patch_has_a_recorded_history_after_it() -> None:
    """Asked on its own, or through a bundle a recorded history asked (which went through the
    new branch of every change it stands for)."""
    recorded: set[str] = set()
    for path in HISTORIES.glob("*.json"):
        recorded |= _patches(path.read_text())
    for bundle in recorded & set(BUNDLES):
        recorded |= BUNDLES[bundle]
    assert recorded == FEATURES | set(BUNDLES)
