"""Load: N leaders each file a household report at once, against the Telegram double over HTTP.

`python -m bench load [--leaders=2000] [--mode=webhook|polling|both] [--db=sqlite|postgresql|both]
[--rate=200] [--seconds=10] [--connections=40] [--no-echo] [--profile=DIR]
[--loop=asyncio|uvloop|auto]`

For each mode and database: a fresh database is seeded straight through storage code (a ward
of N quarters, one leader each with a Telegram account and one household), then `coso run`
is started in a subprocess against the double, as in production. Two runs follow on that bot:

* closed loop: every leader files a full report (8 updates: /report, the household, the
  situation, the people count, the urgency, a note, no photo, confirm), each answer sent as
  soon as the reply to the previous one arrived; updates/s handled overall and the time from
  an update's injection to its reply's arrival at the double (p50/p95/p99);
* open loop: updates injected at a fixed --rate for --seconds, by whichever leaders are
  waiting for nothing; the same latency percentiles (the issue's p99 target is at 200/s).

Peak RSS is the bot process's VmHWM over both runs; CPU per update is the bot's CPU time over
both runs ÷ their updates, counted from the first update (the ~6 s of start-up, imports and
migrations, is printed apart: it is not per-update work); SQL statements per update are read
from the bot's /metrics (COSO_METRICS=on on a port of its own;
`coso_database_statements_total`, counted by an event listener in bot/ops/metrics.py) before
and after the closed loop, in the turn and elsewhere (the sender).
A bare aiogram echo bot
(bench/echo_bot.py) runs the same closed loop in each mode as the reference.
--profile=DIR samples the bot with py-spy during each closed loop (DIR/coso-<mode>-<db>.txt,
collapsed stacks; `pip install py-spy`); the figures of such a run are skewed by it.

The double's webhook delivers with --connections parallel requests (Telegram's default
max_connections is 40) instead of the test double's one at a time, and its per-chat and
global send limits are off, as are the bot's own (TELEGRAM_RATE_PER_SECOND,
TELEGRAM_CHAT_RATE_PER_SECOND set high): a person answers every few seconds, so in production
the 1 message/s per chat pace never delays a reply, but here each leader answers at once.
The scheduler is off (COSO_SCHEDULER=false) so no check-in prompt lands among the replies.
PostgreSQL: COSO_BENCH_POSTGRES_URL, else postgresql+asyncpg://postgres@127.0.0.1:5432/
coso_bench_load (created when missing, emptied at each run).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from storage import households, units
from storage.db import Database, make_engine
from storage.migrate import upgrade_async
from storage.models import ChatAccount, Person, Report, Role, RoleAssignment, Unit
from tests.doubles.telegram_api import SentMessage, TelegramDouble

DEFAULT_LEADERS = 2_000
DEFAULT_RATE = 200.0
DEFAULT_SECONDS = 10.0
WEBHOOK_CONNECTIONS = 40
FIRST_CHAT = 500_000
STEP_TIMEOUT = 120.0
START_TIMEOUT = 90.0
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/coso_bench_load"
SECRET = "bench-secret"
WEBHOOK_PATH = "/webhook/telegram"
SENDS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})

# One household report, as a leader answers it: ("text", what they type) or ("tap", the
# button's label; None: the first button, the most recent household).
SCRIPT: tuple[tuple[str, str | None], ...] = (
    ("text", "/report"),
    ("tap", None),
    ("tap", "Short of food"),
    ("text", "2"),
    ("text", "Cần thêm gạo và mì cho hai người."),
    ("tap", "Save"),
)
STEPS = len(SCRIPT)


def option(argv: Sequence[str], name: str, default: str) -> str:
    prefix = f"--{name}="
    return next((arg[len(prefix):] for arg in argv if arg.startswith(prefix)), default)


def choices(value: str, known: tuple[str, ...]) -> tuple[str, ...]:
    if value == "both":
        return known
    if value not in known:
        sys.exit(f"load: {value!r} is not one of {', '.join(known)} or both")
    return (value,)


# ---------------------------------------------------------------- the double, for load


class LoadDouble(TelegramDouble):
    """The test double with what a load needs: parallel webhook delivery, a waiter per chat
    instead of one condition every waiter wakes on, and taps looked up by message id."""

    def __init__(self, connections: int = WEBHOOK_CONNECTIONS) -> None:
        super().__init__()
        self.connections = connections
        self._replies: dict[int, asyncio.Future[SentMessage]] = {}
        self._pushers: list[asyncio.Task[None]] = []
        self.unexpected = 0

    async def start(self) -> None:
        await super().start()
        self._pushers = [asyncio.create_task(self._push_worker())
                         for _ in range(self.connections - 1)]

    async def stop(self) -> None:
        for task in self._pushers:
            task.cancel()
        await asyncio.gather(*self._pushers, return_exceptions=True)
        await super().stop()

    def expect_reply(self, chat_id: int) -> asyncio.Future[SentMessage]:
        future: asyncio.Future[SentMessage] = asyncio.get_running_loop().create_future()
        self._replies[chat_id] = future
        return future

    async def _record(self, method: str, message: dict[str, Any], params: dict[str, Any],
                      **files: Any) -> None:
        await super()._record(method, message, params, **files)
        if method not in SENDS:
            return
        record = self.sent[-1]
        future = self._replies.pop(record.chat_id, None)
        if future is None or future.done():
            self.unexpected += 1
        else:
            future.set_result(record)

    def _tap_target(self, user_id: int, data: str, message_id: int | None,
                    strict: bool) -> dict[str, Any]:
        message = self._bot_messages.get(message_id) if message_id is not None else None
        if message is not None and message["chat"]["id"] == user_id:
            return message
        return super()._tap_target(user_id, data, message_id, strict)


# ---------------------------------------------------------------- leaders


@dataclass
class Leader:
    chat: int
    step: int = 0
    last: SentMessage | None = None


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    failures: int = 0
    injected: float = 0.0  # open loop: seconds it took to inject them all
    # SQL statements per update handled: in the turn, and elsewhere (the sender's claims and
    # marks), from the bot's /metrics counters around the closed loop.
    statements: tuple[float, float] | None = None

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def elapsed(self) -> float:
        return self.finished - self.started

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, p: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1]


def button_for(message: SentMessage, label: str | None, echo: bool) -> str:
    data = message.button_data
    if not data:
        raise RuntimeError(f"no buttons to tap: {message.describe()}")
    if label is None or echo:
        return data[0]
    texts = message.button_texts
    if label not in texts:
        raise RuntimeError(f"no button {label!r}: {message.describe()}")
    return data[texts.index(label)]


async def act(tg: LoadDouble, leader: Leader, echo: bool) -> float:
    """The leader's next answer; the seconds from its injection to the bot's reply."""
    kind, value = SCRIPT[leader.step % STEPS]
    reply = tg.expect_reply(leader.chat)
    began = time.monotonic()
    if kind == "text":
        assert value is not None
        await tg.send_text(leader.chat, value, language_code="en", first_name="Trưởng KP")
    else:
        assert leader.last is not None
        await tg.tap(leader.chat, button_for(leader.last, value, echo),
                     message_id=leader.last.message_id)
    message = await asyncio.wait_for(reply, STEP_TIMEOUT)
    leader.last = message
    leader.step += 1
    return message.at - began


async def closed_loop(tg: LoadDouble, leaders: list[Leader], echo: bool) -> Sample:
    """Every leader files one whole report, each answer right after the previous reply."""
    sample = Sample(started=time.monotonic())

    async def file_report(leader: Leader) -> None:
        for _ in range(STEPS):
            try:
                sample.latencies.append(await act(tg, leader, echo))
            except (TimeoutError, RuntimeError):
                sample.failures += 1
                return

    await asyncio.gather(*(file_report(leader) for leader in leaders))
    sample.finished = time.monotonic()
    return sample


async def open_loop(tg: LoadDouble, leaders: list[Leader], echo: bool, rate: float,
                    seconds: float) -> Sample:
    """Updates injected at a fixed rate by idle leaders, whatever the bot's pace."""
    idle = deque(leaders)
    back = asyncio.Event()
    running: set[asyncio.Task[None]] = set()
    sample = Sample(started=time.monotonic())

    async def one(leader: Leader) -> None:
        try:
            sample.latencies.append(await act(tg, leader, echo))
        except (TimeoutError, RuntimeError):
            sample.failures += 1
            return
        idle.append(leader)
        back.set()

    for index in range(int(rate * seconds)):
        delay = sample.started + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        while not idle:
            back.clear()
            await back.wait()
        task = asyncio.create_task(one(idle.popleft()))
        running.add(task)
        task.add_done_callback(running.discard)
    sample.injected = time.monotonic() - sample.started
    await asyncio.gather(*running)
    sample.finished = time.monotonic()
    return sample


# ---------------------------------------------------------------- the database


async def fresh_database(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'load.db'}"
    else:
        url = postgres_url()
        await _empty_postgres(url)
    await upgrade_async(url)
    return url


def postgres_url() -> str:
    return os.environ.get("COSO_BENCH_POSTGRES_URL") or POSTGRES_URL


async def postgres_reachable() -> bool:
    server = make_url(postgres_url()).set(drivername="postgresql", database="postgres")
    try:
        connection = await asyncpg.connect(server.render_as_string(False))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"load: PostgreSQL skipped: {server.host}:{server.port} unreachable "
              f"({type(exc).__name__})")
        return False
    await connection.close()
    return True


async def _empty_postgres(url: str) -> None:
    name = make_url(url).database
    if name in (None, "", "test"):
        sys.exit("load: refusing to use the PostgreSQL database 'test' (other runs empty it)")
    server = make_engine(make_url(url).set(database="postgres").render_as_string(False),
                         isolation_level="AUTOCOMMIT")
    try:
        async with server.connect() as conn:
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                       {"n": name})
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await server.dispose()
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def seed(url: str, count: int) -> list[Leader]:
    """A ward of `count` quarters; in each a leader on Telegram and one household they added."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            city = await units.upsert(session, "79", "Thành phố Hồ Chí Minh", "province", None)
            ward = await units.upsert(session, "26734", "Phường Bến Thành", "ward", city)
            quarters = [Unit(code=f"26734-B{n}", name=f"Khu phố {n}", level="quarter",
                             parent_id=ward.id, path="") for n in range(1, count + 1)]
            people = [Person(full_name=f"Trưởng khu phố {n}", locale="en")
                      for n in range(1, count + 1)]
            session.add_all([*quarters, *people])
            await session.flush()
            for number, (quarter, person) in enumerate(zip(quarters, people, strict=True)):
                quarter.path = f"{ward.path}{quarter.id}/"
                session.add(RoleAssignment(person_id=person.id, unit_id=quarter.id,
                                           role=Role.LEADER))
                session.add(ChatAccount(channel="telegram", external_id=str(FIRST_CHAT + number),
                                        person_id=person.id, locale="en"))
                await households.add(session, quarter, f"{number + 1} Lê Lợi",
                                     head_name="Nguyễn Văn An", members=4,
                                     person_id=person.id, flush=False)
    finally:
        await db.dispose()
    return [Leader(FIRST_CHAT + number) for number in range(count)]


async def count_reports(url: str) -> int:
    db = Database(url)
    try:
        async with db.read() as session:
            return int(await session.scalar(select(func.count()).select_from(Report)) or 0)
    finally:
        await db.dispose()


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """This environment without any Coso, Telegram or Zalo setting, plus `values`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COSO_", "TELEGRAM_", "ZALO_"))}
    env.update(values)
    return env


class Process:
    """A bot in a subprocess: its peak RSS and CPU time from /proc while it lives."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name, self.argv, self.env, self.cwd = name, argv, env, cwd
        self.log = cwd / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, ready: Callable[[], bool]) -> None:
        with self.log.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if self.proc.returncode is not None or time.monotonic() > deadline:
                await self.stop()
                tail = self.log.read_text(errors="replace")[-2000:]  # noqa: ASYNC240
                raise RuntimeError(f"{self.name} did not start:\n{tail}")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)

    def _status(self, key: str) -> int:
        assert self.proc is not None
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024
        return 0

    def peak_rss(self) -> int:
        return self._status("VmHWM")

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return 0.0

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def coso_process(tg: LoadDouble, url: str, mode: str, folder: Path, loop: str = "asyncio"
                 ) -> tuple[Process, int, int]:
    port, metrics_port = free_port(), free_port()
    env = clean_env(
        COSO_DATABASE_URL=url, COSO_WEB_HOST="127.0.0.1", COSO_WEB_PORT=str(port),
        COSO_METRICS="on", COSO_METRICS_PORT=str(metrics_port),
        COSO_SCHEDULER="false", COSO_DATA_DIR=str(folder / "data"),
        TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url,
        TELEGRAM_RATE_PER_SECOND="100000", TELEGRAM_CHAT_RATE_PER_SECOND="1000",
        COSO_EVENT_LOOP=loop)
    if mode == "webhook":
        env.update(TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
                   TELEGRAM_WEBHOOK_SECRET=SECRET)
    coso = Path(sys.executable).with_name("coso")
    argv = [str(coso)] if coso.exists() else [sys.executable, "-c",
                                              "import sys; from bot.cli import main; "
                                              "sys.exit(main())"]
    return Process("coso", [*argv, "run"], env, folder), port, metrics_port


async def counters(metrics_port: int) -> dict[str, float]:
    """The bot's statement and update counters from its /metrics (bot/ops/metrics.py)."""
    found = {"turn": 0.0, "other": 0.0, "updates": 0.0}
    async with aiohttp.ClientSession() as client, client.get(
            f"http://127.0.0.1:{metrics_port}/metrics") as response:
        body = await response.text()
    for line in body.splitlines():
        if line.startswith("coso_database_statements_total{"):
            found["turn" if 'part="turn"' in line else "other"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("coso_updates_total{") and 'outcome="handled"' in line:
            found["updates"] += float(line.rsplit(" ", 1)[1])
    return found


def echo_process(tg: LoadDouble, mode: str, folder: Path) -> Process:
    port = free_port()
    argv = [sys.executable, "-m", "bench.echo_bot", "--token", tg.token,
            "--api-base", tg.base_url, "--mode", mode, "--port", str(port),
            "--path", WEBHOOK_PATH, "--secret", SECRET]
    env = clean_env(PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    return Process("echo", argv, env, folder)


def called(tg: TelegramDouble, method: str, times: int = 1) -> Callable[[], bool]:
    return lambda: sum(1 for name, _ in tg.calls if name == method) >= times


# ---------------------------------------------------------------- runs


@dataclass
class Outcome:
    bot: str
    mode: str
    db: str
    closed: Sample
    opened: Sample | None
    peak_rss: int
    cpu: float
    unexpected: int
    reports: int | None = None
    start_cpu: float = 0.0


async def profiler(bot: Process, folder: Path | None, name: str) -> Process | None:
    """py-spy sampling the bot's closed loop into folder/name.txt (collapsed stacks)."""
    if folder is None:
        return None
    assert bot.proc is not None
    out = folder.resolve() / f"{name}.txt"  # noqa: ASYNC240 - once, before the load
    out.parent.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
    found = Path(sys.executable).with_name("py-spy")
    spy_bin = str(found) if found.exists() else "py-spy"  # noqa: ASYNC240
    spy = Process("py-spy", [spy_bin, "record", "--pid", str(bot.proc.pid), "--rate", "200",
                             "--format", "raw", "--nonblocking", "-o", str(out)],
                  dict(os.environ), bot.cwd)
    await spy.start(lambda: True)
    return spy


async def stop_profiler(spy: Process | None) -> None:
    if spy is not None and spy.proc is not None and spy.proc.returncode is None:
        spy.proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(spy.proc.wait(), 60)


async def run_coso(mode: str, db: str, leaders: int, rate: float, seconds: float,
                   connections: int, profile: Path | None = None, loop: str = "asyncio"
                   ) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="coso-load-") as name:
        folder = Path(name)
        url = await fresh_database(db, folder)
        crowd = await seed(url, leaders)
        async with LoadDouble(connections) as tg:
            bot, _, metrics_port = coso_process(tg, url, mode, folder, loop)
            # The command menu is set last, once the channel receives.
            await bot.start(called(tg, "setMyCommands", 3))
            try:
                start_cpu = bot.cpu_seconds()
                spy = await profiler(bot, profile, f"coso-{mode}-{db}")
                before = await counters(metrics_port)
                closed = await closed_loop(tg, crowd, echo=False)
                after = await counters(metrics_port)
                await stop_profiler(spy)
                updates = max(after["updates"] - before["updates"], 1.0)
                closed.statements = ((after["turn"] - before["turn"]) / updates,
                                     (after["other"] - before["other"]) / updates)
                reports = await count_reports(url)
                opened = await open_loop(tg, crowd, False, rate, seconds)
                await asyncio.sleep(0.5)
                return Outcome("coso", mode, db, closed, opened, bot.peak_rss(),
                               bot.cpu_seconds() - start_cpu, tg.unexpected, reports,
                               start_cpu)
            finally:
                await bot.stop()


async def run_echo(mode: str, leaders: int, rate: float, seconds: float,
                   connections: int) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="coso-echo-") as name:
        folder = Path(name)
        crowd = [Leader(FIRST_CHAT + number) for number in range(leaders)]
        async with LoadDouble(connections) as tg:
            bot = echo_process(tg, mode, folder)
            await bot.start(called(tg, "setWebhook" if mode == "webhook" else "getUpdates"))
            try:
                start_cpu = bot.cpu_seconds()
                closed = await closed_loop(tg, crowd, echo=True)
                opened = await open_loop(tg, crowd, True, rate, seconds)
                return Outcome("aiogram echo", mode, "—", closed, opened, bot.peak_rss(),
                               bot.cpu_seconds() - start_cpu, tg.unexpected,
                               start_cpu=start_cpu)
            finally:
                await bot.stop()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def describe(outcome: Outcome) -> str:
    closed, opened = outcome.closed, outcome.opened
    line = (f"load: {outcome.bot:>12} {outcome.mode:>7} {outcome.db:>10}: "
            f"{closed.count} updates in {closed.elapsed:.1f}s = {closed.rate:.0f} updates/s, "
            f"p50/p95/p99 {ms(closed.percentile(50))}/{ms(closed.percentile(95))}/"
            f"{ms(closed.percentile(99))} ms")
    if opened is not None:
        offered = opened.count / opened.injected if opened.injected else float("nan")
        line += (f"; open loop at {offered:.0f}/s: p50/p95/p99 "
                 f"{ms(opened.percentile(50))}/{ms(opened.percentile(95))}/"
                 f"{ms(opened.percentile(99))} ms")
    handled = closed.count + (opened.count if opened else 0)
    line += (f"; peak RSS {outcome.peak_rss / 2**20:.0f} MB, bot CPU {outcome.cpu:.1f}s"
             f" = {outcome.cpu / max(handled, 1) * 1000:.2f} ms per update"
             f" (+ {outcome.start_cpu:.1f}s to start)")
    if closed.statements is not None:
        turn, other = closed.statements
        line += f"; SQL statements per update {turn:.2f} in the turn + {other:.2f} sending"
    problems = closed.failures + (opened.failures if opened else 0)
    if problems or outcome.unexpected:
        line += f"; {problems} updates unanswered, {outcome.unexpected} unexpected messages"
    if outcome.reports is not None:
        line += f"; {outcome.reports} reports saved"
    return line


def table(outcomes: list[Outcome], echo: dict[str, Outcome], rate: float) -> str:
    rows = ["| bot | mode | database | updates/s | vs echo | p50 / p95 / p99 ms | "
            f"p50 / p95 / p99 ms at {rate:g}/s | peak RSS MB | bot CPU s |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for o in outcomes:
        reference = echo.get(o.mode)
        ratio = (f"{o.closed.rate / reference.closed.rate:.0%}"
                 if reference is not None and o.bot != "aiogram echo" else "—")
        c, p = o.closed, o.opened
        at_rate = (f"{ms(p.percentile(50))} / {ms(p.percentile(95))} / {ms(p.percentile(99))}"
                   if p is not None else "—")
        rows.append(f"| {o.bot} | {o.mode} | {o.db} | {c.rate:.0f} | {ratio} | "
                    f"{ms(c.percentile(50))} / {ms(c.percentile(95))} / {ms(c.percentile(99))} "
                    f"| {at_rate} | {o.peak_rss / 2**20:.0f} | {o.cpu:.0f} |")
    return "\n".join(rows)


def verdicts(outcomes: list[Outcome], echo: dict[str, Outcome], rate: float) -> list[str]:
    lines = []
    for o in outcomes:
        if o.bot == "aiogram echo":
            continue
        reference = echo.get(o.mode)
        ratio = o.closed.rate / reference.closed.rate if reference else None
        p99 = o.opened.percentile(99) if o.opened else float("nan")
        cpu_ms = o.cpu / max(o.closed.count + (o.opened.count if o.opened else 0), 1) * 1000
        checks = [
            "throughput: no echo run to compare with" if ratio is None else
            f"throughput {ratio:.0%} of echo ({'ok' if ratio >= 0.4 else 'MISSED'})",
            f"CPU {cpu_ms:.2f} ms per update ({'ok' if cpu_ms <= 2.0 else 'MISSED'})",
            f"p99 at {rate:g}/s {ms(p99)} ms ({'ok' if p99 < 0.25 else 'MISSED'})",
            f"peak RSS {o.peak_rss / 2**20:.0f} MB "
            f"({'ok' if o.peak_rss < 300 * 2**20 else 'MISSED'})",
        ]
        lines.append(f"load targets {o.mode}/{o.db}: " + "; ".join(checks))
    return lines


async def main(argv: list[str]) -> None:
    leaders = int(option(argv, "leaders", str(DEFAULT_LEADERS)))
    modes = choices(option(argv, "mode", "both"), ("webhook", "polling"))
    dbs = choices(option(argv, "db", "both"), ("sqlite", "postgresql"))
    rate = float(option(argv, "rate", str(DEFAULT_RATE)))
    seconds = float(option(argv, "seconds", str(DEFAULT_SECONDS)))
    connections = int(option(argv, "connections", str(WEBHOOK_CONNECTIONS)))
    if "postgresql" in dbs and not await postgres_reachable():
        dbs = tuple(db for db in dbs if db != "postgresql")
    with_echo = "--no-echo" not in argv
    profile = Path(option(argv, "profile", "")) if option(argv, "profile", "") else None
    loop = option(argv, "loop", "asyncio")
    if loop not in ("auto", "asyncio", "uvloop"):
        raise SystemExit(f"--loop: auto, asyncio or uvloop, not {loop[:20]!r}")
    print(f"load: {leaders} leaders × {STEPS} updates, modes {'/'.join(modes)}, databases "
          f"{'/'.join(dbs)}, open loop {rate:g}/s for {seconds:g}s; {datetime.now():%Y-%m-%d}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, event loop {loop}")
    outcomes: list[Outcome] = []
    echo: dict[str, Outcome] = {}
    runs: list[Callable[[], Awaitable[Outcome]]] = []
    for mode in modes:
        if with_echo:
            runs.append(lambda mode=mode: run_echo(mode, leaders, rate, seconds,  # type: ignore[misc]
                                                   connections))
        for db in dbs:
            runs.append(lambda mode=mode, db=db: run_coso(  # type: ignore[misc]
                mode, db, leaders, rate, seconds, connections, profile, loop))
    for run in runs:
        outcome = await run()
        print(describe(outcome), flush=True)
        outcomes.append(outcome)
        if outcome.bot == "aiogram echo":
            echo[outcome.mode] = outcome
    print()
    print(table(outcomes, echo, rate))
    print()
    print("\n".join(verdicts(outcomes, echo, rate)))
