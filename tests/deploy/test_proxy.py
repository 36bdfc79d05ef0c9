"""`make cluster`'s reverse proxy (deploy/local/proxy.py): the real HAProxy, with the
configuration generated from the Ingress, in front of stand-in replicas that answer who they
are. Every public path of the Ingress reaches its part, with Kubernetes' Prefix semantics; a
replica whose `/readyz` fails leaves the rotation; a replica that is gone is routed around."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deploy.local.proxy import NOT_INSTALLED, Proxy, Replica, haproxy_executable, ingress_routes
from deploy.local.stack import StackError, steady_port


@dataclass
class Stub:
    """A replica that answers `<name> <path>`, and 200 or 503 on /readyz."""

    name: str
    ready: bool = True
    port: int = 0  # the kernel's pick when it binds: nothing can take it in between
    server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            path = head.split(" ", 2)[1]
            status = "200 OK"
            if path == "/readyz" and not self.ready:
                status = "503 Service Unavailable"
            body = f"{self.name} {path}".encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def haproxy() -> str:
    try:
        return haproxy_executable()
    except StackError:
        pytest.skip(NOT_INSTALLED + " (.ci/run installs it)")


@pytest.fixture
async def proxied(haproxy: str, tmp_path: Path) -> AsyncIterator[tuple[Proxy, dict[str, Stub]]]:
    parts = sorted({route.part for route in ingress_routes()})
    stubs = {f"{part}-{n}": Stub(f"{part}-{n}") for part in parts for n in (1, 2)}
    for stub in stubs.values():
        await stub.start()
    replicas = {
        part: [Replica(f"{part}-{n}", stubs[f"{part}-{n}"].port) for n in (1, 2)] for part in parts
    }
    # below the ephemeral range: no other process's bind(0) takes it before HAProxy binds it
    proxy = Proxy(tmp_path, steady_port(), replicas)
    await proxy.start()
    try:
        await proxy.all_up(timeout=30)
        yield proxy, stubs
    finally:
        await proxy.stop()
        for stub in stubs.values():
            await stub.stop()


async def _who(http: httpx.AsyncClient, path: str) -> str:
    answer = await http.get(path)
    assert answer.status_code == 200, (path, answer.status_code, answer.text)
    name, served = answer.text.split(" ", 1)
    assert served == path
    return name.rsplit("-", 1)[0]


async def test_every_ingress_path_reaches_its_part(proxied: tuple[Proxy, dict[str, Stub]]) -> None:
    proxy, _ = proxied
    routes = ingress_routes()
    assert {route.part for route in routes} >= {"intake", "dossier", "site"}
    async with httpx.AsyncClient(base_url=proxy.url, trust_env=False, timeout=10) as http:
        for route in routes:
            assert await _who(http, route.prefix) == route.part, route
            below = route.prefix.rstrip("/") + "/x/y"
            assert await _who(http, below) == route.part, route
        # Prefix matches whole path segments: a longer word is not below the prefix
        assert await _who(http, "/api/v1/requestsx") == "site"
        assert await _who(http, "/feedsx") == "site"
        # the longest prefix wins
        assert await _who(http, "/api/v1/docs/manao-compta") == "evolutions"
        assert await _who(http, "/api/v1/dossiers/42/take") == "dossier"


async def test_a_replica_not_ready_or_gone_is_routed_around(
    proxied: tuple[Proxy, dict[str, Stub]],
) -> None:
    proxy, stubs = proxied
    async with httpx.AsyncClient(base_url=proxy.url, trust_env=False, timeout=10) as http:
        served = {(await http.get("/api/v1/queue")).text.split(" ")[0] for _ in range(8)}
        assert served == {"dossier-1", "dossier-2"}  # both in rotation

        stubs["dossier-1"].ready = False  # /readyz 503: out of the rotation within seconds

        async def out() -> bool:
            return (await proxy.states())["dossier/dossier-1"].startswith("DOWN")

        await _eventually(out)
        served = {(await http.get("/api/v1/queue")).text.split(" ")[0] for _ in range(8)}
        assert served == {"dossier-2"}

        await stubs["intake-2"].stop()  # gone before any check noticed: routed around
        for _ in range(8):
            assert (await http.get("/api/v1/requests")).text.startswith("intake-1 ")


async def _eventually(probe: object, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await probe():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "still not true"
        await asyncio.sleep(0.2)
