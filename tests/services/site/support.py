"""Helpers of the site's tests: forms with their CSRF token, dossiers ready for commands,
a browser page signed in as a demo user and watched for any script that should not run."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from assistance.demo import USERS
from assistance.directory import Role
from tests.helpers import auth, deposit_body, eventually

EMAIL_OF = {role: email for email, _, role in USERS}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@asynccontextmanager
async def site_client(system: Any, role: Role | None) -> AsyncIterator[httpx.AsyncClient]:
    """An HTML client of the site, signed in as the demo user of `role` (None: anonymous)."""
    headers = {"Accept": "text/html"}
    async with httpx.AsyncClient(base_url=system.base_url, timeout=60, headers=headers) as web:
        if role is not None:
            token = csrf_of((await web.get("/connexion")).text)
            r = await web.post(
                "/connexion",
                data={"csrf": token, "email": EMAIL_OF[role], "token": system.tokens[role]},
            )
            assert r.status_code == 303, r.text
        yield web


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form token"
    return found.group(1)


async def opened_dossier(http: httpx.AsyncClient, system: Any, **overrides: Any) -> dict[str, Any]:
    """A deposit through the API, once its workflow is running (commands can be sent)."""
    r = await http.post("/api/v1/requests", json=deposit_body(**overrides))
    assert r.status_code == 201, r.text
    deposit = r.json()
    staff = auth(system.tokens[Role.technician])

    async def opened() -> dict[str, Any] | None:
        got = await http.get(f"/api/v1/dossiers/{deposit['id']}", headers=staff)
        if got.status_code == 200 and any(e["kind"] == "opened" for e in got.json()["timeline"]):
            return got.json()
        return None

    return await eventually(opened, timeout=15)


@dataclass
class Watched:
    """A browser page, with every dialog it tried to open."""

    page: Any
    dialogs: list[str] = field(default_factory=list)

    async def no_script_ran(self) -> None:
        assert self.dialogs == [], self.dialogs
        assert await self.page.evaluate("typeof window.__xss") == "undefined"


async def signed_in(browser: Any, system: Any, role: Role | None, **context: Any) -> Watched:
    """A new browser context (its own cookies), signed in as the demo user of `role`."""
    options = {"locale": "fr-FR", "viewport": {"width": 1280, "height": 900}, **context}
    ctx = await browser.new_context(base_url=system.base_url, **options)
    page = await ctx.new_page()
    page.set_default_timeout(20_000)
    watched = Watched(page)

    async def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    if role is not None:
        await page.goto("/connexion")
        await page.locator("#email").fill(EMAIL_OF[role])  # the token form
        await page.get_by_label("Jeton d'accès").fill(system.tokens[role])
        await page.get_by_role("button", name="Se connecter").last.click()
        await page.wait_for_load_state()
        assert "/connexion" not in page.url, await page.content()
    return watched


async def shoot(page: Any, folder: Path, name: str) -> None:
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
