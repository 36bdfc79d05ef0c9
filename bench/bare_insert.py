"""Baseline (a): the least a deposit can cost here — FastAPI, a validated JSON body, one asyncpg
INSERT (pool of 10, like the system's), a 201 answer. Served by uvicorn in its own process:

    BENCH_DATABASE_URL=postgresql://... python -m uvicorn bench.bare_insert:app --port 8001
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, Request
from pydantic import BaseModel

POOL_SIZE = 10


class Requester(BaseModel):
    email: str
    name: str


class Deposit(BaseModel):
    requester: Requester
    software: str
    subject: str
    description: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(
        os.environ["BENCH_DATABASE_URL"], min_size=POOL_SIZE, max_size=POOL_SIZE
    )
    assert pool is not None
    await pool.execute(
        """CREATE TABLE IF NOT EXISTS scratch (
               id uuid PRIMARY KEY,
               received_at timestamptz NOT NULL DEFAULT now(),
               requester_email text NOT NULL,
               software text NOT NULL,
               subject text NOT NULL,
               description text NOT NULL)"""
    )
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/requests", status_code=201)
async def deposit(body: Deposit, request: Request) -> dict[str, str]:
    row_id = uuid.uuid4()
    await request.app.state.pool.execute(
        "INSERT INTO scratch (id, requester_email, software, subject, description)"
        " VALUES ($1, $2, $3, $4, $5)",
        row_id,
        body.requester.email,
        body.software,
        body.subject,
        body.description,
    )
    return {"id": str(row_id)}
