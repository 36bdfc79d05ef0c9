"""The local stack starts real Temporal, NATS, PostgreSQL and a mail catcher, and stops them."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import nats
import psutil
import pytest
from temporalio.client import Client

from deploy.local.stack import Endpoints, LocalStack, StackConfig, create_database, free_port


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    config = StackConfig(data_dir=tmp_path_factory.mktemp("stack"), persistent=False, ui=False)
    async with LocalStack(config, progress=lambda _: None) as started:
        yield started


@pytest.fixture
def endpoints(stack: LocalStack) -> Endpoints:
    return stack.endpoints


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


def _processes_using(data_dir: Path) -> set[str]:
    """Names of the running processes whose command line mentions `data_dir`."""
    found = set()
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if process.info["status"] != psutil.STATUS_ZOMBIE and any(
            str(data_dir) in arg for arg in cmdline
        ):
            found.add(process.info["name"])
    return found


def _send_mail(host: str, port: int, message: EmailMessage) -> None:
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(message)


async def test_free_port_can_be_bound() -> None:
    port = free_port()
    server = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", port)
    server.close()
    await server.wait_closed()
    assert 1024 <= port <= 65535


async def test_endpoints_avoid_the_default_ports(endpoints: Endpoints) -> None:
    assert endpoints.temporal_address.startswith("127.0.0.1:")
    assert endpoints.temporal_address != "127.0.0.1:7233"
    assert endpoints.nats_url.startswith("nats://127.0.0.1:")
    assert endpoints.nats_url != "nats://127.0.0.1:4222"
    assert endpoints.temporal_ui_url is None
    assert endpoints.smtp_host == "127.0.0.1"


async def test_postgres_answers_and_makes_fresh_databases(endpoints: Endpoints) -> None:
    url = await create_database(endpoints.database_url, "stack-test")
    fresh = await asyncpg.connect(url)
    try:
        assert await fresh.fetchval("SELECT current_database()") == "stack-test"
        await fresh.execute("CREATE TABLE only_here (id int)")
    finally:
        await fresh.close()

    connection = await asyncpg.connect(endpoints.database_url)
    try:
        assert await connection.fetchval("SELECT 1") == 1
        assert await connection.fetchval("SELECT to_regclass('only_here')") is None
    finally:
        await connection.close()


async def test_temporal_accepts_a_client(endpoints: Endpoints) -> None:
    client = await Client.connect(endpoints.temporal_address)
    assert [execution async for execution in client.list_workflows()] == []


async def test_jetstream_accepts_a_stream(endpoints: Endpoints) -> None:
    connection = await nats.connect(endpoints.nats_url)
    try:
        js = connection.jetstream()
        await js.add_stream(name="STACK_JS", subjects=["stack.js.>"])
        ack = await js.publish("stack.js.tested", b"{}")
        assert (ack.stream, ack.seq) == ("STACK_JS", 1)
    finally:
        await connection.close()


async def test_mail_catcher_keeps_what_it_receives(stack: LocalStack, endpoints: Endpoints) -> None:
    stack.mail.clear()
    message = EmailMessage()
    message["From"] = "assistance@manao.eu"
    message["To"] = "client@example.com"
    message["Subject"] = "Votre demande est enregistrée"
    message.set_content("Bonjour")

    await asyncio.to_thread(_send_mail, endpoints.smtp_host, endpoints.smtp_port, message)
    caught = await stack.mail.wait_for(lambda mail: "client@example.com" in mail.rcpt_tos)

    assert caught.mail_from == "assistance@manao.eu"
    assert caught.rcpt_tos == ["client@example.com"]
    assert caught.message()["Subject"] == "Votre demande est enregistrée"
    assert len(stack.mail.messages) == 1
    stack.mail.clear()
    assert stack.mail.messages == []
    with pytest.raises(TimeoutError):
        await stack.mail.wait_for(timeout=0.2)


async def test_nats_restarts_on_the_same_port_with_its_store(
    stack: LocalStack, endpoints: Endpoints
) -> None:
    connection = await nats.connect(endpoints.nats_url)
    await connection.jetstream().add_stream(name="STACK_RESTART", subjects=["stack.restart.>"])
    await connection.jetstream().publish("stack.restart.kept", b"{}")
    await connection.close()
    port = int(endpoints.nats_url.rsplit(":", 1)[1])

    await stack.stop_nats()
    assert not await _port_open("127.0.0.1", port)
    await stack.start_nats()

    connection = await nats.connect(endpoints.nats_url)
    try:
        info = await connection.jetstream().stream_info("STACK_RESTART")
        assert info.state.messages == 1
    finally:
        await connection.close()


async def test_temporal_restarts_on_the_same_port(stack: LocalStack, endpoints: Endpoints) -> None:
    host, port = endpoints.temporal_address.split(":")

    await stack.stop_temporal()
    assert not await _port_open(host, int(port))
    await stack.start_temporal()

    client = await Client.connect(endpoints.temporal_address)
    assert client.namespace == "default"
    assert stack.endpoints.temporal_address == endpoints.temporal_address


async def test_stop_ends_every_child_process(tmp_path: Path) -> None:
    stack = LocalStack(StackConfig(data_dir=tmp_path), progress=lambda _: None)
    endpoints = await stack.start()
    assert (tmp_path / "temporal.db").exists()
    assert (tmp_path / "nats" / "jetstream").is_dir()
    # as root in a folder closed to the pgserver account, the cluster lives elsewhere (0018)
    postgres = psutil.Process(stack.pid("postgres"))
    assert postgres.name() == "postgres"
    assert _processes_using(tmp_path) | {"postgres"} == {"temporal", "nats-server", "postgres"}

    await stack.stop()
    await stack.stop()

    assert _processes_using(tmp_path) == set()
    assert not postgres.is_running()
    assert not await _port_open(endpoints.smtp_host, endpoints.smtp_port)
