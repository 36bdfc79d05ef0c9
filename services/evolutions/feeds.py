"""The Atom feed of each software's weekly announcements (R12): `/feeds/{software}.atom`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from assistance.web import PoolDep
from services.evolutions import atom, publications
from services.evolutions.api import CODE
from services.evolutions.settings import get_evolutions_settings

router = APIRouter(tags=["announcements"])


@router.get(
    "/feeds/{software}.atom",
    response_class=Response,
    responses={
        200: {"content": {atom.MEDIA_TYPE: {}}, "description": "Flux Atom 1.0"},
        404: {"description": "Logiciel inconnu"},
    },
    summary="Le flux Atom des évolutions d'un logiciel",
)
async def feed(
    software: Annotated[str, Path(min_length=1, max_length=100, pattern=CODE)],
    request: Request,
    pool: PoolDep,
) -> Response:
    """R12: one entry per week with the versions released and the evolutions they brought."""
    settings = get_evolutions_settings()
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        name = await publications.software_name(conn, software)
        items = await publications.announcements(
            conn, software, None, settings.announcement_weeks, now, settings.review_timezone
        )
    body = atom.render_feed(
        software,
        name,
        items,
        public_url=request.app.state.settings.public_url,
        tag_authority=settings.feed_tag_authority,
        generated_at=now,
    )
    return Response(body, media_type=f"{atom.MEDIA_TYPE}; charset=utf-8")
