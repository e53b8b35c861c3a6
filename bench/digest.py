"""The ward digest over a synthetic city (bench/city.py), on SQLite and on PostgreSQL.

`python -m bench digest [--scale=S] [--db=sqlite|postgresql|both] [--repeat=N] [--fresh]
[--queries]`

Measures, per database: (a) one ward's digest figures (`storage.digest.ward_figures`), the
median of N runs over different wards; (b) all the city's ward digests one after another;
(c) the ratio of (a) to one hand-written GROUP BY over the same ward's reports, timed in the
same process and session. The text and chart of a digest are timed apart: they cost the
same whatever the database. The city is built once per scale and database and kept
(SQLite under COSO_BENCH_DIR, default ~/.cache/coso-bench; PostgreSQL in the database of
COSO_BENCH_POSTGRES_URL, default coso_bench on 127.0.0.1), `--fresh` builds it again.
`--queries` then times each statement of one ward's digest (median of N runs, warm): where
(a) goes, and why it cannot come within 3x of one GROUP BY (docs/performance.md).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, func, select, text

from bench import city
from bench.delivery import option
from bot.digest import chart
from bot.digest import text as digest_text
from bot.i18n import Translator
from bot.settings import Settings, load_settings
from storage.db import Database
from storage.digest import ward_figures
from storage.models import Report, Unit

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/coso_bench"
HAND_WRITTEN = text(
    "SELECT r.category_key, count(*) FROM reports r JOIN units u ON u.id = r.unit_id "
    "WHERE u.path >= :low AND u.path < :high GROUP BY r.category_key")
TARGETS = {"one ward": 0.050, "all wards": 10.0, "ratio": 3.0}


async def main(argv: list[str]) -> None:
    scale = option(argv, "scale", 1.0)
    repeat = int(option(argv, "repeat", 21))
    which = next((a.split("=", 1)[1] for a in argv if a.startswith("--db=")), "both")
    fresh, queries = "--fresh" in argv, "--queries" in argv
    if which in ("sqlite", "both"):
        await measure("SQLite", await sqlite_city(scale, fresh), scale, repeat, queries)
    if which in ("postgresql", "both"):
        url = await postgres_city(scale, fresh)
        if url:
            await measure("PostgreSQL", url, scale, repeat, queries)


async def sqlite_city(scale: float, fresh: bool) -> str:
    path, partial = _city_file(scale, fresh)
    if partial is not None:
        started = time.perf_counter()
        await city.build_sqlite(str(partial), scale)
        partial.rename(path)  # a half-built city is never taken for a whole one
        print(f"built {path} in {time.perf_counter() - started:.0f} s")
    return f"sqlite+aiosqlite:///{path}"


def _city_file(scale: float, fresh: bool) -> tuple[Path, Path | None]:
    """The city's file, and where to build it when it must be built."""
    folder = Path(os.environ.get("COSO_BENCH_DIR", Path.home() / ".cache" / "coso-bench"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"city-{scale:g}.db"
    if path.exists() and not fresh:
        return path, None
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    return path, partial


async def postgres_city(scale: float, fresh: bool) -> str | None:
    url = os.environ.get("COSO_BENCH_POSTGRES_URL", POSTGRES_URL)
    server, name = url.rsplit("/", 1)
    try:
        admin = await asyncpg.connect(server.replace("+asyncpg", "") + "/postgres")
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"PostgreSQL skipped: {url} unreachable ({type(exc).__name__})")
        return None
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    if fresh or await _built_scale(url) != scale:
        started = time.perf_counter()
        await city.build_postgres(url, scale)
        await _mark_scale(url, scale)
        print(f"built {name} in {time.perf_counter() - started:.0f} s")
    return url


async def _built_scale(url: str) -> float | None:
    """The scale of the city in the database, from a comment set once the build finished."""
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        comment = await connection.fetchval(
            "SELECT obj_description('public'::regnamespace, 'pg_namespace')")
    finally:
        await connection.close()
    # A new database's schema carries PostgreSQL's own comment ("standard public schema").
    if not comment or not comment.startswith("coso-bench city "):
        return None
    return float(comment.removeprefix("coso-bench city "))


async def _mark_scale(url: str, scale: float) -> None:
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await connection.execute(f"COMMENT ON SCHEMA public IS 'coso-bench city {scale:g}'")
    finally:
        await connection.close()


async def measure(label: str, url: str, scale: float, repeat: int, queries: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(_env_file=None, COSO_DATABASE_URL=url, COSO_DATA_DIR=folder,
                                 COSO_TIMEZONE=str(city.TZ))
        db = Database(url)
        try:
            await _measure(label, db, settings, scale, repeat, Path(folder))
            if queries:
                await _statements(db, settings, repeat)
        finally:
            await db.dispose()


async def _statements(db: Database, settings: Settings, repeat: int) -> None:
    """Each statement of one ward's digest, timed from the driver's call to its return."""
    spent: dict[str, list[float]] = {}
    engine = db.engine.sync_engine

    def before(_c: Any, _cur: Any, _stmt: str, _p: Any, context: Any, _m: bool) -> None:
        context.bench_started = time.perf_counter()

    def after(_c: Any, _cur: Any, statement: str, _p: Any, context: Any, _m: bool) -> None:
        key = " ".join(statement.split())[:90]
        spent.setdefault(key, []).append(time.perf_counter() - context.bench_started)

    async with db.read() as session:
        ward = (await session.execute(select(Unit).where(Unit.level == "ward")
                                      .order_by(Unit.path).limit(1))).scalar_one()
        await ward_figures(session, ward, city.LAST_DAY, settings)  # warm
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        try:
            whole = [await _timed(lambda w: ward_figures(session, w, city.LAST_DAY, settings),
                                  ward) for _ in range(repeat)]
        finally:
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)
    medians = sorted(((statistics.median(times), key) for key, times in spent.items()),
                     reverse=True)
    in_sql = sum(median for median, _ in medians)
    print(f"  statements of {ward.code}'s digest: {len(medians)}, {in_sql * 1000:.1f} ms in the "
          f"driver of {statistics.median(whole) * 1000:.1f} ms (medians)")
    for median, key in medians:
        print(f"    {median * 1000:6.2f} ms  {key}")


async def _measure(label: str, db: Database, settings: Settings, scale: float, repeat: int,
                   folder: Path) -> None:
    day = city.LAST_DAY
    async with db.read() as session:
        wards = list((await session.execute(
            select(Unit).where(Unit.level == "ward").order_by(Unit.path))).scalars())
        reports = (await session.execute(select(func.count()).select_from(Report))).scalar_one()
        picked = [wards[i * len(wards) // repeat] for i in range(repeat)]

        async def one_ward(ward: Unit) -> Any:
            return await ward_figures(session, ward, day, settings)

        async def group_by(ward: Unit) -> Any:
            rows = await session.execute(HAND_WRITTEN,
                                         {"low": ward.path, "high": ward.path + "\uffff"})
            return rows.all()

        for ward in picked[:3]:  # warm the caches the way a running bot has them warm
            await one_ward(ward)
            await group_by(ward)
        # Interleaved, so a noisy neighbour on the machine weighs on both alike.
        digest_times, group_times = [], []
        for ward in picked:
            digest_times.append(await _timed(one_ward, ward))
            group_times.append(await _timed(group_by, ward))
        started = time.perf_counter()
        for ward in wards:
            figures = await one_ward(ward)
        all_wards = time.perf_counter() - started
    t = Translator("vi", settings.tz)
    render = _median_of(lambda: digest_text.render(t, figures), repeat)
    draw = _median_of(lambda: chart.draw(t, figures, folder), 5)
    a, c = statistics.median(digest_times), statistics.median(group_times)
    print(f"digest, {label}, scale {scale:g}: {len(wards)} wards, {reports:,} reports")
    _line("(a) one ward's figures, median", a, TARGETS["one ward"], f"of {repeat} wards")
    _line("(b) all wards one after another", all_wards, TARGETS["all wards"],
          f"{len(wards)} wards")
    print(f"  (c) ratio (a) ÷ hand-written GROUP BY ({c * 1000:.1f} ms): {a / c:.2f} "
          f"(target < {TARGETS['ratio']:g}) {'met' if a / c < TARGETS['ratio'] else 'MISSED'}")
    print(f"  text {render * 1000:.1f} ms, chart {draw * 1000:.0f} ms (medians)")


async def _timed(run: Callable[[Unit], Awaitable[Any]], ward: Unit) -> float:
    started = time.perf_counter()
    await run(ward)
    return time.perf_counter() - started


def _median_of(run: Callable[[], Any], times: int) -> float:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent)


def _line(what: str, seconds: float, target: float, detail: str) -> None:
    shown = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
    goal = f"{target * 1000:.0f} ms" if target < 1 else f"{target:g} s"
    print(f"  {what}: {shown} ({detail}; target < {goal}) "
          f"{'met' if seconds < target else 'MISSED'}")
