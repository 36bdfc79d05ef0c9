"""The workaround base (R8): every workaround given to a customer, searchable by software,
version and words (French full text), with its bug's state."""

from __future__ import annotations

import uuid

import httpx

from assistance.bus import Bus
from assistance.directory import Role
from tests.helpers import auth, eventually
from tests.services.bugs.support import new_bug, publish, software


async def test_technicians_find_workarounds_by_software_version_and_words(
    http: httpx.AsyncClient, system, bus: Bus
) -> None:
    code = software()
    fec, _ = await new_bug(
        bus,
        software=code,
        version="5.2",
        subject="Export FEC interrompu",
        workaround="Exportez les écritures trimestre par trimestre.",
    )
    await new_bug(
        bus,
        software=code,
        version="5.1",
        subject="Impression des bulletins",
        workaround="Imprimer depuis l'aperçu PDF.",
    )
    tech = auth(system.tokens[Role.technician])

    async def search(**params: str) -> list[dict]:
        r = await http.get("/api/v1/workarounds", headers=tech, params={"software": code, **params})
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(r.json()["items"])
        return r.json()["items"]

    assert len(await search()) == 2
    found = await search(q="exporter trimestre")  # French stemming: exportez ~ exporter
    assert [w["text"] for w in found] == ["Exportez les écritures trimestre par trimestre."]
    assert found[0]["version"] == "5.2"
    assert found[0]["subject"] == "Export FEC interrompu"
    assert found[0]["bug"]["id"] == fec and found[0]["bug"]["state"] == "new"
    assert [w["subject"] for w in await search(version="5.1")] == ["Impression des bulletins"]
    assert await search(q="bulletins", version="5.2") == []
    customer = auth(system.tokens[Role.customer])
    assert (await http.get("/api/v1/workarounds", headers=customer)).status_code == 403


async def test_workarounds_come_from_the_dossier_stream_too(
    http: httpx.AsyncClient, system, bus: Bus
) -> None:
    dossier_id = str(uuid.uuid4())
    word = f"contournement{uuid.uuid4().hex[:6]}"
    await publish(
        bus,
        "dossier.dossier.workaround_recorded",
        {
            "dossier_id": dossier_id,
            "reference": "D-2026-424242",
            "seq": 7,
            "workaround": f"Passer par le menu Outils ({word}).",
            "set": {"kind": "bug", "details": {"workaround": "…"}},
            "timeline": {"kind": "workaround", "visibility": "customer"},
        },
    )
    tech = auth(system.tokens[Role.technician])

    async def found() -> list[dict] | None:
        r = await http.get("/api/v1/workarounds", headers=tech, params={"q": word})
        return r.json()["items"] or None

    items = await eventually(found, timeout=10)
    assert [(w["dossier_id"], w["reference"], w["bug"]) for w in items] == [
        (dossier_id, "D-2026-424242", None)
    ]
    assert items[0]["text"] == f"Passer par le menu Outils ({word})."
