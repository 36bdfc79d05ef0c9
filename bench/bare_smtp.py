"""Baseline of the mail rate: a bare aiosmtpd server that answers 250 to every message and
keeps nothing, in its own process, as the system's receiver runs in the services' process:

    python -m bench.bare_smtp --port 2600
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

READY = "bench smtp ready"


class _Accept:
    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        return "250 2.0.0 OK"


async def _serve(port: int) -> None:
    controller = Controller(_Accept(), hostname="127.0.0.1", port=port)
    controller.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(READY, flush=True)
    try:
        await stop.wait()
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(_serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
