"""The ward dashboard over the synthetic city (bench/city.py), on SQLite and PostgreSQL.

`python -m bench dashboard [--scale=S] [--db=sqlite|postgresql|both] [--repeat=N] [--fresh]`

Serves the dashboard's routes as `coso run` does (aiohttp, the real session and role checks)
on 127.0.0.1, logs an admin of the city in through a real single-use link, and times whole
GET requests from a client in the same process: (a) one ward's overview (a ward of the city
has about 200 units), the median over N wards; (b) the city's page, its wards ranked. The
clock is set to the evening of the city's last day (city.LAST_DAY), so "today" has its
check-ins. The city is the digest benchmark's, built and kept the same way.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime

import aiohttp
import time_machine
from aiohttp import web
from sqlalchemy import func, select

from bench import city
from bench.delivery import option
from bench.digest import postgres_city, sqlite_city
from bot.dashboard.pages import Dashboard
from bot.settings import load_settings
from storage import dashboard_sessions
from storage.db import Database
from storage.models import Person, RoleAssignment, Unit

TARGETS = {"one ward": 0.150, "city": 1.0}
BENCH_PERSON = "coso-bench dashboard admin"


async def main(argv: list[str]) -> None:
    scale = option(argv, "scale", 1.0)
    repeat = int(option(argv, "repeat", 21))
    which = next((a.split("=", 1)[1] for a in argv if a.startswith("--db=")), "both")
    fresh = "--fresh" in argv
    evening = datetime.combine(city.LAST_DAY, datetime.min.time().replace(hour=20), city.TZ)
    with time_machine.travel(evening, tick=True):
        if which in ("sqlite", "both"):
            await measure("SQLite", await sqlite_city(scale, fresh), scale, repeat)
        if which in ("postgresql", "both"):
            url = await postgres_city(scale, fresh)
            if url:
                await measure("PostgreSQL", url, scale, repeat)


async def measure(label: str, url: str, scale: float, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(_env_file=None, COSO_DATABASE_URL=url, COSO_DATA_DIR=folder,
                                 COSO_TIMEZONE=str(city.TZ), COSO_WEB_PORT=0)
        db = Database(url)
        app = web.Application()
        Dashboard(settings, db).attach(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            await _measure(label, db, f"http://127.0.0.1:{port}", scale, repeat)
        finally:
            await runner.cleanup()
            await db.dispose()


async def _admin_link(db: Database, root: Unit) -> str:
    """A login link for the bench's own admin of the city (made once, kept like the city)."""
    async with db.transaction() as session:
        person = (await session.execute(select(Person).where(
            Person.full_name == BENCH_PERSON))).scalar_one_or_none()
        if person is None:
            person = Person(full_name=BENCH_PERSON)
            session.add(person)
            await session.flush()
            session.add(RoleAssignment(person_id=person.id, unit_id=root.id, role="admin"))
        return await dashboard_sessions.create_link(session, person, datetime.now(city.TZ))


async def _measure(label: str, db: Database, base: str, scale: float, repeat: int) -> None:
    async with db.read() as session:
        wards = list((await session.execute(
            select(Unit).where(Unit.level == "ward").order_by(Unit.path))).scalars())
        root = (await session.execute(select(Unit).where(Unit.parent_id.is_(None))
                                      .order_by(Unit.id).limit(1))).scalar_one()
        sizes = [int((await session.execute(select(func.count()).where(
            Unit.path.startswith(ward.path)))).scalar_one()) for ward in wards[:3]]
    picked = [wards[i * len(wards) // repeat] for i in range(repeat)]
    token = await _admin_link(db, root)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{base}/dashboard/login/{token}", allow_redirects=False) as r:
            assert r.status == 303, r.status

        async def page(path: str) -> float:
            started = time.perf_counter()
            async with http.get(base + path) as response:
                await response.read()
                assert response.status == 200, (path, response.status)
            return time.perf_counter() - started

        for ward in picked[:3]:  # warm, as a running bot is
            await page(f"/dashboard/ward/{ward.id}")
        one = statistics.median([await page(f"/dashboard/ward/{ward.id}") for ward in picked])
        await page(f"/dashboard/city/{root.id}")
        whole = statistics.median([await page(f"/dashboard/city/{root.id}") for _ in range(3)])
    print(f"dashboard, {label}, scale {scale:g}: {len(wards)} wards of about "
          f"{statistics.mean(sizes):.0f} units")
    _line("(a) one ward's overview, median", one, TARGETS["one ward"], f"of {repeat} wards")
    _line("(b) the city's page", whole, TARGETS["city"], f"{len(wards)} wards, median of 3")


def _line(what: str, seconds: float, target: float, detail: str) -> None:
    shown = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
    goal = f"{target * 1000:.0f} ms" if target < 1 else f"{target:g} s"
    print(f"  {what}: {shown} ({detail}; target < {goal}) "
          f"{'met' if seconds < target else 'MISSED'}")
