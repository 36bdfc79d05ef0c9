"""Releases (R11, R12): the version joins the catalogue, docs per version, shipped evolutions
told to their requesters exactly once, weekly announcements as JSON and as an Atom feed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from nats.aio.client import Client as NATS

from assistance import directory
from assistance.directory import Role
from assistance.settings import Settings
from deploy.local.stack import LocalStack
from services.evolutions import domain
from services.evolutions.mail import MailSender
from tests.helpers import auth
from tests.services.evolutions.support import events, hand_over, hand_over_order, mails, settled

ATOM = "{http://www.w3.org/2005/Atom}"
SPEC = "# Export FEC\n\nUn fichier par établissement."


async def _accepted(http: httpx.AsyncClient, system, nc: NATS, software: str, **kw: Any) -> dict:
    ids = await hand_over(nc, hand_over_order(software, **kw))
    r = await http.post(
        f"/api/v1/evolutions/{ids['evolution_id']}/decision",
        headers=auth(system.tokens[Role.product_manager]),
        json={
            "decision": "accepted",
            "specification": SPEC,
            "title": "Export FEC par établissement",
            "summary": "Un fichier FEC pour chaque établissement.",
        },
    )
    assert r.status_code == 200, r.text
    return ids


def _release(version: str, evolutions: list[str], **kw: Any) -> dict[str, Any]:
    return {
        "version": version,
        "notes": kw.pop("notes", f"Version {version}."),
        "evolutions": evolutions,
        "documentation": kw.pop(
            "documentation",
            [
                {"slug": "export-fec", "title": "Export FEC", "markdown": f"# FEC {version}"},
                {"slug": "installation", "title": "Installation", "markdown": "Lancez setup."},
            ],
        ),
    }


async def test_a_release_ships_evolutions_and_tells_each_requester_once(
    http: httpx.AsyncClient,
    system,
    settings: Settings,
    stack: LocalStack,
    nc: NATS,
    pool: asyncpg.Pool,
    software: str,
    other_pm_token: str,
) -> None:
    a = await _accepted(http, system, nc, software, requester_email="claire.martin@dupont-sa.fr")
    b = await hand_over(nc, hand_over_order(software, requester_email="jean@martin-freres.fr"))
    open_one = await hand_over(nc, hand_over_order(software))
    pm = auth(system.tokens[Role.product_manager])
    await http.post(  # b joins a after the decision? no: a is decided, so group a into b first
        f"/api/v1/evolutions/{b['evolution_id']}/group",
        headers=auth(system.tokens[Role.technician]),
        json={"evolutions": [open_one["evolution_id"]]},
    )
    url = f"/api/v1/softwares/{software}/releases"

    assert (await http.post(url, json=_release("5.3", []))).status_code == 401
    other = await http.post(url, headers=auth(other_pm_token), json=_release("5.3", []))
    assert other.status_code == 403
    not_accepted = await http.post(url, headers=pm, json=_release("5.3", [b["evolution_id"]]))
    assert not_accepted.status_code == 422
    assert not_accepted.json()["error"]["field"] == "evolutions"
    for version in ("latest", "5 3", ""):
        bad = await http.post(url, headers=pm, json=_release(version, []))
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "version", version
    unknown = await http.post(
        "/api/v1/softwares/inconnu/releases", headers=pm, json=_release("1.0", [])
    )
    assert unknown.status_code == 404

    created = await http.post(url, headers=pm, json=_release("5.3", [a["request_id"]]))
    assert created.status_code == 201, created.text
    release = created.json()
    assert release["evolutions"] == [a["evolution_id"]]
    assert release["documentation"] == ["export-fec", "installation"]
    assert release["notified_requests"] == 1
    replay = await http.post(url, headers=pm, json=_release("5.3", [a["request_id"]]))
    assert (replay.status_code, replay.json()) == (200, release)
    changed = await http.post(url, headers=pm, json=_release("5.3", [], notes="Autre."))
    assert changed.status_code == 409

    # the directory's catalogue knows the version (the bugs service reads it there too)
    catalogue = {s["code"]: s["versions"] for s in await directory.list_softwares(pool)}
    assert catalogue[software] == ["5.3"]
    (released,) = await events(pool, "version.released", software=software)
    assert released["id"] == f"{software}:5.3:released"
    assert released["data"]["version"] == "5.3"
    assert datetime.fromisoformat(released["data"]["released_at"]) == datetime.fromisoformat(
        release["released_at"]
    )
    (shipped,) = await events(pool, "request.shipped", evolution_id=a["evolution_id"])
    assert shipped["data"]["version"] == "5.3"
    assert "dossier_ids" not in shipped["data"]  # the dossier is closed: nothing to signal

    # the requester is told once, although the dossier is closed
    (told,) = await settled(stack, "claire.martin@dupont-sa.fr", f"{software[-8:].upper()} 5.3", 1)
    assert "[D-2026-" in str(told["Subject"])
    text = told.get_body(("plain",)).get_content()
    assert "Export FEC par établissement" in text and "version 5.3" in text
    # a relay retrying the same row mails nobody twice
    payload = await pool.fetchval(
        """SELECT payload FROM bus.outbox WHERE source = 'evolutions' AND kind = 'mail'
           AND payload->>'message_id' = $1""",
        str(told["Message-ID"]),
    )
    await MailSender(pool, settings)(payload)
    assert len(mails(stack, "claire.martin@dupont-sa.fr", f"{software[-8:].upper()} 5.3")) == 1

    # an evolution ships once
    again = await http.post(url, headers=pm, json=_release("5.4", [a["evolution_id"]]))
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "already_shipped"


async def test_documentation_is_kept_per_version_with_latest_explicit(
    http: httpx.AsyncClient, system, software: str
) -> None:
    pm = auth(system.tokens[Role.product_manager])
    url = f"/api/v1/softwares/{software}/releases"
    empty = await http.get(f"/api/v1/docs/{software}")
    assert empty.json() == {"software": software, "latest": None, "versions": []}
    assert (await http.get(f"/api/v1/docs/{software}/latest/export-fec")).status_code == 404
    assert (await http.post(url, headers=pm, json=_release("5.3", []))).status_code == 201
    update = [
        {
            "slug": "export-fec",
            "title": "Export FEC",
            "markdown": "# FEC 5.4\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))",
        }
    ]
    r = await http.post(url, headers=pm, json=_release("5.4", [], documentation=update))
    assert r.status_code == 201, r.text
    assert r.json()["documentation"] == ["export-fec", "installation"]  # carried over

    index = (await http.get(f"/api/v1/docs/{software}")).json()  # no token: anyone reads
    assert index["latest"] == "5.4"
    assert [v["version"] for v in index["versions"]] == ["5.4", "5.3"]
    pages = {p["slug"]: p["published_in"] for p in index["versions"][0]["pages"]}
    assert pages == {"export-fec": "5.4", "installation": "5.3"}

    latest = (await http.get(f"/api/v1/docs/{software}/latest/export-fec")).json()
    assert (latest["version"], latest["latest"], latest["latest_version"]) == ("5.4", True, "5.4")
    assert "<h1>FEC 5.4</h1>" in latest["html"]
    assert "<script>" not in latest["html"] and "&lt;script&gt;" in latest["html"]
    assert "href" not in latest["html"]  # a javascript: link stays text
    older = (await http.get(f"/api/v1/docs/{software}/5.3/export-fec")).json()
    assert (older["version"], older["latest"], older["html"]) == (
        "5.3",
        False,
        "<h1>FEC 5.3</h1>\n",
    )
    carried = (await http.get(f"/api/v1/docs/{software}/5.4/installation")).json()
    assert carried["markdown"] == "Lancez setup." and carried["published_in"] == "5.3"
    assert (await http.get(f"/api/v1/docs/{software}/9.9/export-fec")).status_code == 404
    assert (await http.get(f"/api/v1/docs/{software}/5.4/absente")).status_code == 404
    assert (await http.get("/api/v1/docs/inconnu")).status_code == 404
    bad_slug = await http.post(
        url,
        headers=pm,
        json=_release("5.5", [], documentation=[{"slug": "Pas Bon", "title": "x", "markdown": ""}]),
    )
    assert bad_slug.status_code == 422
    assert bad_slug.json()["error"]["field"] == "documentation.0.slug"


async def test_weekly_announcements_and_atom_feed(
    http: httpx.AsyncClient, system, settings: Settings, nc: NATS, software: str
) -> None:
    a = await _accepted(http, system, nc, software)
    pm = auth(system.tokens[Role.product_manager])
    r = await http.post(
        f"/api/v1/softwares/{software}/releases",
        headers=pm,
        json=_release("5.3", [a["evolution_id"]], notes="Export & <améliorations>"),
    )
    assert r.status_code == 201
    week = domain.iso_week(datetime.now(UTC))

    page = await http.get("/api/v1/announcements", params={"software": software})
    assert page.status_code == 200
    (item,) = page.json()["items"]
    assert (item["software"], item["week"]) == (software, week)
    assert item["week_start"] == domain.week_start(week).isoformat()
    assert [e["title"] for e in item["evolutions"]] == ["Export FEC par établissement"]
    assert item["evolutions"][0]["summary"] == "Un fichier FEC pour chaque établissement."
    assert [rel["version"] for rel in item["releases"]] == ["5.3"]
    one_week = await http.get("/api/v1/announcements", params={"software": software, "week": week})
    assert one_week.json()["items"] == page.json()["items"]
    past = await http.get(
        "/api/v1/announcements", params={"software": software, "week": "2020-W01"}
    )
    assert past.json()["items"] == []
    for bad in ("2026-W60", "semaine"):
        refused = await http.get("/api/v1/announcements", params={"week": bad})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "week"
    assert (await http.get("/api/v1/announcements", params={"software": "x"})).status_code == 404

    feed = await http.get(f"/feeds/{software}.atom")
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(feed.content)
    assert root.tag == f"{ATOM}feed"
    assert root.findtext(f"{ATOM}id") == f"tag:assistance.manao.eu,2026:feeds/{software}"
    assert software[-8:].upper() in root.findtext(f"{ATOM}title")
    assert root.findtext(f"{ATOM}author/{ATOM}name") == "Centre de service Manao"
    self_link = root.find(f"{ATOM}link[@rel='self']")
    assert self_link.get("href") == f"{settings.public_url}/feeds/{software}.atom"
    (entry,) = root.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}id") == (
        f"tag:assistance.manao.eu,2026:announcements/{software}/{week}"
    )
    assert "1 évolution" in entry.findtext(f"{ATOM}title")
    updated = datetime.fromisoformat(entry.findtext(f"{ATOM}updated"))
    assert updated == datetime.fromisoformat(item["updated"]).replace(microsecond=0)
    assert updated.utcoffset() in (timedelta(hours=1), timedelta(hours=2))  # Europe/Paris
    assert root.findtext(f"{ATOM}updated") == entry.findtext(f"{ATOM}updated")
    assert entry.find(f"{ATOM}link").get("href").endswith(f"software={software}&week={week}")
    content = entry.find(f"{ATOM}content")
    assert content.get("type") == "html"
    assert "<strong>Export FEC par établissement</strong>" in content.text
    assert "Export &amp; &lt;améliorations&gt;" in content.text  # escaped inside the HTML
    assert (await http.get("/feeds/inconnu.atom")).status_code == 404


async def test_a_software_without_releases_has_an_empty_valid_feed(
    http: httpx.AsyncClient, software: str
) -> None:
    feed = await http.get(f"/feeds/{software}.atom")
    root = ET.fromstring(feed.content)
    assert root.findall(f"{ATOM}entry") == []
    assert datetime.fromisoformat(root.findtext(f"{ATOM}updated")).tzinfo is not None
