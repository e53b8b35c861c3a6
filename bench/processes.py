"""Processes: updates/s with one `coso run` process and with two, on one PostgreSQL.

`python -m bench processes [--leaders=1000] [--processes=1,2] [--connections=40]`

The layout of docs/deploy.md §8: N processes behind a reverse proxy (here a small aiohttp one
that sends each webhook request to a process chosen at random), one PostgreSQL. The double
delivers as Telegram does: up to --connections requests at once, one chat's updates one at
a time, each after the previous one was answered. For each N: a fresh database seeded as in
`bench load` (a ward, one leader per quarter with a household), the N processes started,
then the closed loop of `bench load` (every leader files a whole report, 8 updates, each
answer right after the reply); updates/s overall, the time from an update's injection to its
reply (p50/p95/p99) and each process's CPU time. The scheduler is off; send limits are off.
PostgreSQL: COSO_BENCH_POSTGRES_URL, else postgresql+asyncpg://postgres@127.0.0.1:5432/
coso_bench_load (emptied at each run).
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import sys
import tempfile
from collections import Counter, deque
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.load import (
    SECRET,
    STEPS,
    WEBHOOK_CONNECTIONS,
    WEBHOOK_PATH,
    LoadDouble,
    Process,
    Sample,
    called,
    closed_loop,
    coso_process,
    free_port,
    fresh_database,
    ms,
    option,
    postgres_reachable,
    seed,
)

DEFAULT_LEADERS = 1_000
# The processes import this checkout's code, not whichever one the venv was installed from.
REPOSITORY = Path(__file__).resolve().parent.parent



def chat_of(update: dict[str, Any]) -> int:
    for value in update.values():
        if isinstance(value, dict) and "from" in value:
            return int(value["from"]["id"])
    raise AssertionError(f"no sender in update {sorted(update)}")


class TelegramLike(LoadDouble):
    """LoadDouble's parallel webhook connections (40), but one chat's updates one at a time,
    in order, each after the previous one was answered: Telegram's webhook delivery."""

    def __init__(self, connections: int = WEBHOOK_CONNECTIONS) -> None:
        super().__init__(connections)
        self._chats: dict[int, deque[dict[str, Any]]] = {}

    async def _push_worker(self) -> None:
        while True:
            update = await self._push_queue.get()
            chat = chat_of(update)
            waiting = self._chats.get(chat)
            if waiting is not None:  # this chat's pusher sends it after the one in flight
                waiting.append(update)
                continue
            self._chats[chat] = waiting = deque([update])
            try:
                while waiting:
                    await self._push(waiting[0])
                    waiting.popleft()
                    self._push_queue.task_done()
            finally:
                del self._chats[chat]


class Proxy:
    """A reverse proxy: each webhook request to one of the backends, chosen at random."""

    def __init__(self, backends: list[int], seed: int = 17) -> None:
        self.backends = backends
        self.port = free_port()
        self.served: Counter[int] = Counter()
        self.statuses: Counter[int] = Counter()
        self._random = random.Random(seed)
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    async def __aenter__(self) -> Proxy:
        self._client = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post(WEBHOOK_PATH, self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._runner is not None and self._client is not None
        await self._runner.cleanup()
        await self._client.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._client is not None
        port = self._random.choice(self.backends)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", "x-telegram-bot-api-secret-token")}
        try:
            async with self._client.post(f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
                                         data=body, headers=headers) as answer:
                self.served[port] += 1
                self.statuses[answer.status] += 1
                return web.Response(status=answer.status, body=await answer.read(),
                                    content_type=answer.content_type)
        except aiohttp.ClientError:
            return web.Response(status=502)  # a backend gone: Telegram delivers it again


def behind(process: Process, proxy: Proxy, port: int, name: str, folder: Path) -> Process:
    """A `coso run` of bench load's, on its own port, its webhook the proxy's address."""
    env = {**process.env, "PYTHONPATH": str(REPOSITORY), "COSO_WEB_PORT": str(port),
           "COSO_METRICS": "off",
           "COSO_DATA_DIR": str(folder / name), "TELEGRAM_WEBHOOK_URL": proxy.url,
           "TELEGRAM_WEBHOOK_SECRET": SECRET}
    return Process(name, process.argv, env, folder)


async def run(count: int, leaders: int, connections: int
              ) -> tuple[Sample, list[float], dict[int, int]]:
    with tempfile.TemporaryDirectory(prefix="coso-processes-") as name:
        folder = Path(name)
        url = await fresh_database("postgresql", folder)
        crowd = await seed(url, leaders)
        ports = [free_port() for _ in range(count)]
        async with TelegramLike(connections) as tg, Proxy(ports) as proxy:
            template, _, _ = coso_process(tg, url, "webhook", folder)
            bots = [behind(template, proxy, port, f"coso-{n}", folder)
                    for n, port in enumerate(ports)]
            try:
                await asyncio.gather(*(bot.start(called(tg, "setMyCommands", 3 * count))
                                       for bot in bots))
                before = [bot.cpu_seconds() for bot in bots]
                sample = await closed_loop(tg, crowd, echo=False)
                cpu = [bot.cpu_seconds() - b for bot, b in zip(bots, before, strict=True)]
            finally:
                await asyncio.gather(*(bot.stop() for bot in bots))
            return sample, cpu, dict(proxy.served)


async def main(argv: list[str]) -> None:
    leaders = int(option(argv, "leaders", str(DEFAULT_LEADERS)))
    counts = [int(n) for n in option(argv, "processes", "1,2").split(",")]
    connections = int(option(argv, "connections", str(WEBHOOK_CONNECTIONS)))
    if not await postgres_reachable():
        sys.exit("processes: needs PostgreSQL")
    print(f"processes: {leaders} leaders × {STEPS} updates, webhook behind a proxy, "
          f"PostgreSQL; {datetime.now():%Y-%m-%d}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    rows = ["| processes | updates/s | vs one | p50 / p95 / p99 ms | CPU s per process | "
            "unanswered |", "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    first: float | None = None
    for count in counts:
        sample, cpu, served = await run(count, leaders, connections)
        first = first or sample.rate
        print(f"processes: {count}: {sample.count} updates in {sample.elapsed:.1f}s = "
              f"{sample.rate:.0f} updates/s, p50/p95/p99 {ms(sample.percentile(50))}/"
              f"{ms(sample.percentile(95))}/{ms(sample.percentile(99))} ms; CPU "
              f"{', '.join(f'{c:.0f}s' for c in cpu)}; requests per process "
              f"{sorted(served.values())}; {sample.failures} unanswered; load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        rows.append(f"| {count} | {sample.rate:.0f} | {sample.rate / first:.2f}× | "
                    f"{ms(sample.percentile(50))} / {ms(sample.percentile(95))} / "
                    f"{ms(sample.percentile(99))} | "
                    f"{' + '.join(f'{c:.0f}' for c in cpu)} | {sample.failures} |")
    print()
    print("\n".join(rows))
