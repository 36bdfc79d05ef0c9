"""The site's entry point: `router` (its pages and static files). It has no background part:
everything it shows comes from the services' HTTP APIs, or from its own `site` schema."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

from assistance import web as kernel_web
from assistance.parts import Part
from services.site import (
    account,
    dashboard,
    office,
    operations,
    personal_data,
    portal,
    public,
    staff,
)
from services.site.web import STATIC, unrouted_error_page

__all__ = ["part", "router"]

router = APIRouter(include_in_schema=False)
for pages in (
    public.router,
    portal.router,
    office.router,
    dashboard.router,
    staff.router,
    operations.router,
    account.router,
):
    router.include_router(pages)
router.mount("/static/site", StaticFiles(directory=STATIC), name="site-static")
kernel_web.html_error_page = unrouted_error_page  # French pages for unknown URLs (issue 14)


part = Part(
    "site",
    router=router,
    migrations="services.site",
    personal_data=personal_data.HOOKS,
    uses_temporal=True,
    sends_commands=True,
)
