"""Filters and saved sort on the site (issue 14): the back office's queue filtered (mine,
unassigned, software by its name, state) and sorted as the technician chose last time; the
search across open and archived dossiers, accents aside; the customer's « En cours / Clos »."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx

from assistance.directory import Role
from tests.helpers import auth, eventually
from tests.services.site.support import opened_dossier, site_client
from tests.services.site.test_no_codes import leftovers


def _selected(html: str, name: str) -> str:
    """The value of the option selected in the <select name=`name`>."""
    select = re.search(rf'<select id="{name}" name="{name}">(.*?)</select>', html, re.S)
    assert select, name
    chosen = re.search(r'<option value="([^"]*)" selected', select.group(1))
    return chosen.group(1) if chosen else ""


def _references(html: str) -> list[str]:
    return re.findall(r'class="ref">(D-\d{4}-\d+)</a>', html)


async def test_the_queue_is_filtered_and_remembers_the_choice(
    system: Any, http: httpx.AsyncClient
) -> None:
    taken = await opened_dossier(http, system, subject="File du site, pris")
    paie = await opened_dossier(http, system, subject="File du site, paie", software="manao-paie")
    tech = auth(system.tokens[Role.technician])
    assert (await http.post(f"/api/v1/dossiers/{taken['id']}/take", headers=tech)).is_success

    async def projected() -> bool:
        mine = await http.get("/api/v1/queue", headers=tech, params={"technician": "me"})
        return any(q["id"] == taken["id"] and q["technician"] for q in mine.json()["items"])

    await eventually(projected, timeout=30)
    async with site_client(system, Role.technician) as web:
        try:
            everything = await web.get("/bureau/file?vue=1")
            assert everything.status_code == 200
            # the head of the queue (its first 500; the session's other tests leave many open)
            head = set(_references(everything.text))
            total = (await http.get("/api/v1/queue", headers=tech)).json()["total"]
            assert 0 < len(head) <= 500
            if total <= 500:
                assert {taken["reference"], paie["reference"]} <= head
            options = unescape(everything.text)
            assert "Les miens" in options and "Non attribués" in options
            assert ">Manao Paie</option>" in options  # the software by its name
            assert leftovers(everything.text) == []

            chosen = await web.get(
                "/bureau/file",
                params={
                    "vue": "1",
                    "technicien": "libres",
                    "logiciel": "manao-paie",
                    "tri": "echeance",
                },
            )
            assert chosen.status_code == 200
            shown = _references(chosen.text)
            assert paie["reference"] in shown and taken["reference"] not in shown
            assert leftovers(chosen.text) == []

            again = await web.get("/bureau/file")  # the next visit: the same view
            assert _selected(again.text, "technicien") == "libres"
            assert _selected(again.text, "logiciel") == "manao-paie"
            assert _selected(again.text, "tri") == "echeance"
            assert _references(again.text) == shown

            mine = await web.get("/bureau/file", params={"vue": "1", "technicien": "moi"})
            assert taken["reference"] in _references(mine.text)
            assert paie["reference"] not in _references(mine.text)

            odd = await web.get(
                "/bureau/file", params={"vue": "1", "logiciel": "inconnu", "etat": "closed"}
            )
            assert odd.status_code == 200  # unknown choices are dropped, never an error
            assert _selected(odd.text, "logiciel") == "" and _selected(odd.text, "etat") == ""
        finally:
            assert (await web.get("/bureau/file?vue=1")).status_code == 200  # back to all


async def test_the_back_office_search_ignores_accents(system: Any, http: httpx.AsyncClient) -> None:
    dossier = await opened_dossier(http, system, subject="Intégration des établissements Héloïse")
    async with site_client(system, Role.technician) as web:

        async def found() -> str | None:
            r = await web.get("/bureau/recherche", params={"q": "ETABLISSEMENT heloise"})
            return r.text if dossier["reference"] in _references(r.text) else None

        html = await eventually(found, timeout=30)
        assert leftovers(html) == []
        paie = await web.get(
            "/bureau/recherche", params={"q": "etablissement heloise", "logiciel": "manao-paie"}
        )
        assert dossier["reference"] not in _references(paie.text)


async def test_the_customer_filters_open_and_closed(system: Any, http: httpx.AsyncClient) -> None:
    dossier = await opened_dossier(http, system, subject="Espace client, filtre en cours")
    async with site_client(system, Role.customer) as web:
        ongoing = await web.get("/espace", params={"etat": "en-cours"})
        assert ongoing.status_code == 200
        assert dossier["reference"] in _references(ongoing.text)
        assert 'aria-current="page">En cours</a>' in ongoing.text
        closed = await web.get("/espace", params={"etat": "clos"})
        assert dossier["reference"] not in _references(closed.text)
        assert 'aria-current="page">Clos</a>' in closed.text
        assert leftovers(ongoing.text) == [] and leftovers(closed.text) == []
        everything = await web.get("/espace", params={"etat": "n'importe"})
        assert everything.status_code == 200
        assert dossier["reference"] in _references(everything.text)
