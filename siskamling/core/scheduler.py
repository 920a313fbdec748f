"""Periodic jobs of a web node (webhook deliveries now; deadline sweeps later). Every job is
safe to run on several nodes at once: each claims its work with a conditional UPDATE. A job that
fails is logged and tried again at its next tick; it never stops the server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[FastAPI], object]  # blocking; runs in a worker thread


JOBS: list[Job] = []


def every(name: str, seconds: float):
    def register(fn: Callable[[FastAPI], object]):
        JOBS.append(Job(name, seconds, fn))
        return fn

    return register


async def _loop(app: FastAPI, job: Job) -> None:
    while True:
        try:
            await asyncio.to_thread(job.run, app)
        except Exception:  # noqa: BLE001 - a failing job must not end the loop
            log.exception("scheduled job %s failed; retrying in %.0f s", job.name, job.every_seconds)
        await asyncio.sleep(job.every_seconds)


@asynccontextmanager
async def lifespan(app: FastAPI):
    tasks = []
    if app.state.settings.run_scheduler:
        tasks = [asyncio.create_task(_loop(app, job), name=f"job:{job.name}") for job in JOBS]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
