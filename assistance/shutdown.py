"""A graceful stop on SIGTERM (or Ctrl-C), for every process (deploy/README.md, "Stopping").

1. The stop begins: the Runtime says so and `/readyz` answers 503 « arrêt en cours » at once,
   while requests are still served for `SHUTDOWN_NOTICE_SECONDS` (the time a load balancer
   takes to see it and stop sending; 0 locally, a few seconds behind one).
2. uvicorn stops accepting connections and lets the requests in flight finish, for at most
   `SHUTDOWN_GRACE_SECONDS`.
3. The app's lifespan ends: `Runtime.close` lets consumers, relays and the Temporal worker
   finish what they hold, within what is left of the same bound, then closes the pool.

The process then exits 0: uvicorn would raise the signal again once served, which would end
the process as killed by it; a requested stop that went well is not a failure.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from types import FrameType
from typing import Any

import uvicorn

from assistance.settings import Settings

log = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    """uvicorn, stopping as above. `app` is the FastAPI app (its state holds the Runtime)."""

    def __init__(self, config: uvicorn.Config, app: Any, settings: Settings) -> None:
        super().__init__(config)
        self.app = app
        self.notice = settings.shutdown_notice_seconds
        self.grace = settings.shutdown_grace_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stop_began: float | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)
        if self.stop_began is not None:
            # by the process's own clock: from the signal to everything closed (a supervisor
            # compares it with the bound; the interpreter's own exit comes after)
            log.warning(
                "stopped in %.1f s (bound %.1f s)",
                time.monotonic() - self.stop_began,
                self.notice + self.grace,
            )

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        runtime = getattr(self.app.state, "runtime", None)
        if self.stop_began is None:
            self.stop_began = time.monotonic()
            log.warning("signal %s: stopping (notice %.1f s)", sig, self.notice)
            if runtime is not None:
                runtime.begin_stop()
            if self.notice > 0 and self._loop is not None and not self.should_exit:
                self._loop.call_soon_threadsafe(self._loop.call_later, self.notice, self._exit)
                return
            self._exit()
            return
        # a second signal: no more notice; a second Ctrl-C forces, as uvicorn does
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self._exit()

    def _exit(self) -> None:
        self.should_exit = True


def server(app: Any, settings: Settings) -> GracefulServer:
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
    )
    return GracefulServer(config, app, settings)
