"""The dashboard's routes: the login link, the ward overview, the city's wards, a unit, the
export, logout. Read-only: actions stay in chat.

Every request finds its viewer again from the cookie: the session row, the person, and the
person's roles as they are now (a role that ended ends the access). What a page shows is read
through storage functions that take the viewer's scope, so a unit outside it is a 404.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from babel.dates import format_skeleton, format_time
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.web import LoginLimiter, language_hint
from bot.dashboard import charts, favicon
from bot.dashboard.links import DASHBOARD_ROLES, PREFIX, is_secure
from bot.digest import text
from bot.export import file_stem, write_xlsx
from bot.flows import export as export_flow
from bot.flows.household_pick import initials
from bot.handlers.access import NAME_READERS, STAFF
from bot.i18n import N_, Translator, pick_locale
from bot.settings import Settings
from storage import (
    acknowledgements,
    dashboard_sessions,
    export,
    overview,
    people,
    reports,
    schedules,
)
from storage.dashboard_sessions import Refusal
from storage.db import Database
from storage.digest import compliance_level
from storage.households import FLAG_LABELS
from storage.models import DashboardSession, Person, Unit, utcnow
from storage.people import Grant
from storage.units import contains

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "coso_dashboard"
ENV_KEY = web.AppKey("dashboard_jinja2", jinja2.Environment)
STATIC = {"dashboard.css": "text/css", "sort.js": "text/javascript"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
FILTERS = {"silent", "urgent"}
UNANSWERED = {"silent", "pending", "not_asked"}
AGES = (1, 3, 7, 30)  # "opened more than N days ago" on the open reports' page
EXPORT_DAYS = 30
REFUSALS = {
    Refusal.UNKNOWN: N_("This login link is not valid. Send /web in the chat for a new one."),
    Refusal.USED: N_("This login link has already been used. Each link works once: send /web "
                     "in the chat for a new one."),
    Refusal.EXPIRED: N_("This login link has expired (links last 10 minutes). Send /web in "
                        "the chat for a new one."),
}
CHECK_IN = {"on_time": N_("On time"), "late": N_("Late"), "silent": N_("Silent"),
            "vacant": N_("No leader"), "not_asked": N_("Not yet asked"),
            "pending": N_("Asked, not yet due"), "no_data": N_("No data")}
# The mark beside each state, for who cannot tell the colours apart (and the sort order).
ACK_STATES = {"on_time": N_("On time"), "late": N_("Late"),
              "missing": N_("Not acknowledged")}
# ◷ rather than the check-in's ⏱: an emoji that text fonts (and headless Chromium) lack.
ACK_MARKS = {"on_time": "✓", "late": "◷", "missing": "✗"}
# What the headline says under "not reported yet", by where the day's question stands.
STAGES = {"not_asked": N_("Not asked yet: the question goes out at {time}"),
          "pending": N_("Asked at {asked}, due by {time}"),
          "silent": N_("Past the reminder at {time}"),
          "weekend": N_("Not asked today: the check-in is on weekdays only")}
CHECK_IN_MARKS = {"on_time": "✓", "late": "◷", "silent": "✗", "vacant": "–", "not_asked": "·",
                  "pending": "…", "no_data": ""}


@dataclass
class Viewer:
    person: Person
    row: DashboardSession
    grants: list[Grant]
    t: Translator

    def scope(self, roles: frozenset[str] = DASHBOARD_ROLES) -> list[str]:
        return [grant.unit.path for grant in self.grants if grant.role in roles]

    def roots(self) -> list[Unit]:
        held = {g.unit.id: g.unit for g in self.grants if g.role in DASHBOARD_ROLES}
        return [u for u in held.values()
                if not any(o.id != u.id and contains(o, u) for o in held.values())]

    def may_export(self, unit: Unit) -> bool:
        return any(contains(g.unit, unit) for g in self.grants if g.role in export_flow.ROLES)

    def may_call(self, unit: Unit) -> bool:
        """Phones of whom to chase: for the staff who chase them (as /directive status)."""
        return any(contains(g.unit, unit) for g in self.grants if g.role in STAFF)

    def may_read_name(self, unit_path: str) -> bool:
        """A household head's name in full: for who meet the household (access.NAME_READERS);
        others read initials."""
        return any(unit_path.startswith(g.unit.path) for g in self.grants
                   if g.role in NAME_READERS)


Page = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]


class Dashboard:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._limiter = LoginLimiter()

    def attach(self, app: web.Application) -> None:
        env = aiohttp_jinja2.setup(app, app_key=ENV_KEY, autoescape=True,
                                   loader=jinja2.FileSystemLoader(HERE / "templates"),
                                   undefined=jinja2.StrictUndefined)
        env.globals["PREFIX"] = PREFIX
        env.globals["FAVICON"] = favicon.URL
        app.add_routes(favicon.routes())  # the web chat's page links it too
        app.add_routes([
            web.get(PREFIX + "/login/{token}", self._login),
            web.get(PREFIX + "/", self._viewed(self._home)),
            web.get(PREFIX, self._viewed(self._home)),
            web.get(PREFIX + r"/ward/{id:\d{1,9}}", self._viewed(self._ward)),
            web.get(PREFIX + r"/ward/{id:\d{1,9}}/export", self._viewed(self._export)),
            web.get(PREFIX + r"/city/{id:\d{1,9}}", self._viewed(self._city)),
            web.get(PREFIX + r"/unit/{id:\d{1,9}}", self._viewed(self._unit)),
            web.get(PREFIX + r"/ward/{id:\d{1,9}}/reports", self._viewed(self._reports)),
            web.get(PREFIX + r"/ward/{id:\d{1,9}}/support", self._viewed(self._support)),
            web.get(PREFIX + r"/ward/{id:\d{1,9}}/acknowledgements",
                    self._viewed(self._acknowledgements)),
            web.get(PREFIX + r"/unit/{id:\d{1,9}}/export", self._viewed(self._export)),
            web.post(PREFIX + "/logout", self._viewed(self._logout)),
            web.get(PREFIX + "/static/{name}", self._static),
            web.route("*", PREFIX + "/{tail:.*}", self._not_found),
        ])

    # --- rendering ------------------------------------------------------------------------

    def _translator(self, request: web.Request, person: Person | None = None) -> Translator:
        locale = pick_locale(person.locale if person else None, language_hint(request),
                             default=self.settings.default_locale)
        return Translator(locale, self.settings.tz)

    def _render(self, request: web.Request, name: str, t: Translator, status: int = 200,
                **context: Any) -> web.Response:
        f = Formats(t)
        response = aiohttp_jinja2.render_template(
            name, request, {"t": t, "_": t, "ngettext": t.plural, "lang": t.locale,
             "num": f.number, "percent": f.percent, "clock": f.clock, "moment": f.moment,
             "full_date": lambda d: full_date(t, d), "level": compliance_level, **context},
            app_key=ENV_KEY, status=status)
        response.headers.update(HEADERS)
        return response

    def _message(self, request: web.Request, t: Translator, text: str, status: int,
                 ) -> web.Response:
        return self._render(request, "message.html", t, status=status, message=t(text),
                            viewer=None)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return self._message(request, self._translator(request),
                             N_("There is no such page, or it is not in your area."), 404)

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC:  # a fixed list: no path ever reaches the file system
            return await self._not_found(request)
        return web.FileResponse(HERE / "static" / name, headers={
            **HEADERS, "Cache-Control": "no-cache",
            "Content-Type": f"{STATIC[name]}; charset=utf-8"})

    # --- logging in and out ---------------------------------------------------------------

    async def _login(self, request: web.Request) -> web.StreamResponse:
        t = self._translator(request)
        if not self.settings.dashboard:
            return self._message(request, t, N_("The dashboard is switched off on this "
                                                "server."), 404)
        if not self._limiter.allow(request.remote or "?", time.monotonic()):
            return self._message(request, t, N_("Too many login attempts. Please wait a "
                                                "minute and try again."), 429)
        token = request.match_info["token"][:100]
        async with self.db.transaction() as session:
            opened = await dashboard_sessions.redeem(session, token, utcnow())
            if isinstance(opened, dashboard_sessions.Opened):
                person = await session.get(Person, opened.row.person_id)
                if person is not None and not await _allowed(session, person):
                    # The link outlived the role it was given for.
                    await dashboard_sessions.end(session, person, opened.row.id, utcnow())
                    opened = Refusal.UNKNOWN
        if not isinstance(opened, dashboard_sessions.Opened):
            log.info("dashboard: a login link refused (%s)", opened.value)
            return self._message(request, t, REFUSALS[opened], 410
                                 if opened is not Refusal.UNKNOWN else 404)
        log.info("dashboard: session %s opened", opened.row.id)
        # Away from the link at once, so it is in no history or bookmark.
        response = web.HTTPSeeOther(PREFIX + "/", headers=HEADERS)
        response.set_cookie(COOKIE, opened.cookie, path=PREFIX, httponly=True,
                            samesite="Strict", secure=is_secure(self.settings) or None,
                            max_age=dashboard_sessions.SESSION_HOURS * 3600)
        raise response

    def _viewed(self, page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The page, for a logged-in viewer who still holds a dashboard role."""

        async def handler(request: web.Request) -> web.StreamResponse:
            t = self._translator(request)
            if not self.settings.dashboard:
                return self._message(request, t, N_("The dashboard is switched off on this "
                                                    "server."), 404)
            viewer = await self._viewer(request)
            if viewer is None:
                return self._message(request, t, N_(
                    "You are not logged in, or your session has ended. Send /web in the chat "
                    "for a login link."), 401)
            try:
                return await page(request, viewer)
            except web.HTTPException:
                raise
            except Exception:
                # A defect, not an input: the reader gets a page, the log the traceback (the
                # route's ids only; no token reaches here).
                log.exception("dashboard: %s failed", request.match_info.route.resource)
                return self._message(request, viewer.t, N_(
                    "Something went wrong on this page. Please try again later."), 500)

        return handler

    async def _viewer(self, request: web.Request) -> Viewer | None:
        async with self.db.read() as session:
            row = await dashboard_sessions.by_cookie(session, request.cookies.get(COOKIE, ""),
                                                     utcnow())
            if row is None:
                return None
            person = await session.get(Person, row.person_id)
            if person is None or not person.active:
                return None
            grants = [g for g in await people.grants(session, person)]
            if not any(g.role in DASHBOARD_ROLES for g in grants):
                return None
            return Viewer(person, row, grants, self._translator(request, person))

    async def _logout(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        form = await request.post()
        if form.get("csrf") != viewer.row.csrf_token:
            return self._message(request, viewer.t, N_("This form has expired. Reload the page "
                                                       "and try again."), 403)
        async with self.db.transaction() as session:
            await dashboard_sessions.end(session, viewer.person, viewer.row.id, utcnow())
        log.info("dashboard: session %s logged out", viewer.row.id)
        response = self._message(request, viewer.t, N_("You are logged out."), 200)
        response.del_cookie(COOKIE, path=PREFIX)
        return response

    # --- the pages ------------------------------------------------------------------------

    def _today(self) -> date:
        return reports.local_day(utcnow(), self.settings.tz)

    async def _home(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        roots = viewer.roots()
        if len(roots) == 1:
            kind = "ward" if schedules.is_ward(roots[0]) else "city"
            raise web.HTTPSeeOther(f"{PREFIX}/{kind}/{roots[0].id}", headers=HEADERS)
        return self._render(request, "home.html", viewer.t, viewer=viewer, csrf=viewer.row
                            .csrf_token, roots=[(u, schedules.is_ward(u)) for u in roots])

    async def _ward(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        day = self._today()
        async with self.db.read() as session:
            found = await overview.ward(session, int(request.match_info["id"]),
                                        viewer.scope(), day, self.settings, utcnow())
        if found is None:
            return await self._not_found(request)
        only = request.query.get("only", "")
        rows = found.rows
        if only == "silent":
            # Who has not answered yet: silent, and before the reminder those still to answer.
            rows = [r for r in rows if r.check_in in UNANSWERED]
        elif only == "urgent":
            rows = [r for r in rows if r.urgent]
        t = viewer.t
        return self._render(
            request, "ward.html", t, viewer=viewer, csrf=viewer.row.csrf_token, o=found,
            rows=rows, all_rows=found.rows, only=only if only in FILTERS else "", day=day,
            check_in=CHECK_IN, marks=CHECK_IN_MARKS, may_export=viewer.may_export(found.ward),
            initials=initials, flag_labels=FLAG_LABELS, up=_up(viewer, found.ward),
            stage=_stage(t, found, day),
            charts=_charts(t, found.figures.trend, found.trend30, found.stage != "not_asked"))

    async def _city(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        day = self._today()
        async with self.db.read() as session:
            found = await overview.city(session, int(request.match_info["id"]),
                                        viewer.scope(), day, self.settings)
        if found is None:
            return await self._not_found(request)
        root, wards = found
        # Ranked as digest.rollup ranks them.
        by_rate = sorted(wards, key=lambda w: (-(w.compliance.rate or 0), w.ward.name))
        by_urgent = sorted(wards, key=lambda w: (-w.urgent_open, w.ward.name))
        expected = sum(w.compliance.expected for w in wards)
        reported = sum(w.compliance.reported for w in wards)
        return self._render(
            request, "city.html", viewer.t, viewer=viewer, csrf=viewer.row.csrf_token,
            root=root, day=day, by_rate=by_rate, by_urgent=by_urgent, expected=expected,
            reported=reported, rate=reported / expected if expected else None,
            urgent=sum(w.urgent_open for w in wards), open=sum(w.open for w in wards))

    async def _unit(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        day = self._today()
        async with self.db.read() as session:
            now = utcnow()
            found = await overview.unit_page(session, int(request.match_info["id"]),
                                             viewer.scope(), day, self.settings, now)
        if found is None:
            return await self._not_found(request)
        return self._render(
            request, "unit.html", viewer.t, viewer=viewer, csrf=viewer.row.csrf_token,
            u=found, day=day, check_in=CHECK_IN, marks=CHECK_IN_MARKS, initials=initials,
            flag_labels=FLAG_LABELS,
            may_export=viewer.may_export(found.unit), in_scope=_reaches(viewer, found.ward),
            age=lambda at: viewer.t.duration(now - at))

    async def _reports(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        """A ward's open reports, urgent first; ?situation=KEY and ?older=DAYS filter."""
        situation = request.query.get("situation", "")[:32] or None
        older = request.query.get("older", "")
        days = int(older) if older.isdigit() and len(older) <= 3 else None
        now = utcnow()
        async with self.db.read() as session:
            found = await overview.open_reports(
                session, int(request.match_info["id"]), viewer.scope(), situation=situation,
                before=now - timedelta(days=days) if days else None)
        if found is None:
            return await self._not_found(request)
        unit, rows, kinds = found
        return self._render(
            request, "reports.html", viewer.t, viewer=viewer, csrf=viewer.row.csrf_token,
            unit=unit, rows=rows, kinds=kinds, situation=situation or "", older=days or 0,
            ages=AGES, may_export=viewer.may_export(unit), day=self._today(),
            age=lambda at: viewer.t.duration(now - at), listed=overview.REPORTS_LISTED)

    async def _support(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        day = self._today()
        now = utcnow()
        async with self.db.read() as session:
            found = await overview.coverage(session, int(request.match_info["id"]),
                                            viewer.scope(), day)
            listed = await overview.dispute_lines(session, int(request.match_info["id"]),
                                                  viewer.scope())
        if found is None or listed is None:
            return await self._not_found(request)
        disputes = [(d, (d.head_name if viewer.may_read_name(d.unit_path)
                         else initials(d.head_name)) or "") for d in listed[1]]
        return self._render(request, "support.html", viewer.t, viewer=viewer,
                            csrf=viewer.row.csrf_token, m=found, day=day,
                            disputes=disputes, age=lambda at: viewer.t.duration(now - at),
                            may_export=viewer.may_export(found.ward))

    async def _acknowledgements(self, request: web.Request, viewer: Viewer
                                ) -> web.StreamResponse:
        """Units × the directives and drills of a period (?period=, /export's choices):
        acknowledged on time, late or missing, then who is missing by name."""
        day = self._today()
        period = _period(request)
        start, end = export_flow.period_of(period, day)
        unit_id = int(request.match_info["id"])
        async with self.db.read() as session:
            unit = await overview.unit_in_scope(session, unit_id, viewer.scope())
            found = None if unit is None else await acknowledgements.matrix(
                session, unit_id, viewer.scope(), start, end, self.settings.tz,
                phones=viewer.may_call(unit))
        if found is None:
            return await self._not_found(request)
        now = utcnow()
        return self._render(
            request, "acknowledgements.html", viewer.t, viewer=viewer,
            csrf=viewer.row.csrf_token, m=found, unit=found.unit, items=found.items, day=day,
            period=period, periods=export_flow.PERIODS, may_export=viewer.may_export(found.unit),
            phones=viewer.may_call(found.unit), marks=ACK_MARKS, states=ACK_STATES,
            after=lambda a, b: viewer.t.duration(b - a),
            age=lambda at: viewer.t.duration(now - at))

    async def _export(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        """The same workbook as /export in chat, for the unit's last 30 days, or the period
        of the page it was asked from (?period=, /export's choices)."""
        start, end = export_flow.period_of(_period(request), self._today())
        async with self.db.read() as session:
            unit = await overview.unit_in_scope(session, int(request.match_info["id"]),
                                                viewer.scope(export_flow.ROLES))
            if unit is None:
                return await self._not_found(request)
            sheets = await export.sheets(session, unit, export.Period(start, end,
                                                                      self.settings.tz),
                                         viewer.t.locale)
        name = f"{file_stem(unit.code, start, end)}.xlsx"
        path = await _write(sheets, viewer.t, self.settings.data_dir / "exports" / name)
        log.info("dashboard: export of unit %s for session %s", unit.id, viewer.row.id)
        return web.FileResponse(path, headers={
            **HEADERS, "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})


def _period(request: web.Request) -> str:
    """A period key of /export's (PERIODS); anything else is the last 30 days."""
    asked = request.query.get("period", "")
    return asked if asked in export_flow.PERIODS else str(EXPORT_DAYS)


async def _allowed(session: AsyncSession, person: Person) -> bool:
    return person.active and any(g.role in DASHBOARD_ROLES
                                 for g in await people.grants(session, person))


async def _write(sheets: list[export.Sheet], t: Translator, path: Path) -> Path:
    return await asyncio.to_thread(write_xlsx, sheets, t, path)


def full_date(t: Translator, day: date | datetime) -> str:
    """'2/12/2026': the full year always (Translator.date's short form has two digits)."""
    if isinstance(day, datetime):
        day = day.astimezone(t.tz).date()
    return format_skeleton("yMd", day, locale=t.locale)


class Formats:
    """Babel's formatting, remembered for one page: a ward's table repeats the same few
    numbers and minutes hundreds of times, and Babel costs ~0.1 ms a call (a third of the
    page's rendering before this)."""

    def __init__(self, t: Translator) -> None:
        self.t = t
        self.number = functools.lru_cache(maxsize=4096)(t.number)
        self.percent = functools.lru_cache(maxsize=4096)(lambda v: text.percent(t, v))
        self._day = functools.lru_cache(maxsize=1024)(lambda d: full_date(t, d))
        self._minute = functools.lru_cache(maxsize=2048)(
            lambda hm: format_time(hm, format="short", locale=t.locale))

    def clock(self, at: datetime) -> str:
        local = at.astimezone(self.t.tz)
        return str(self._minute(local.time().replace(second=0, microsecond=0)))

    def moment(self, at: datetime) -> str:
        """'08:00 2/12/2026'."""
        return f"{self.clock(at)} {self._day(at.astimezone(self.t.tz).date())}"


def day_month(t: Translator, day: date) -> str:
    """'1/12' in Vietnamese, 'Dec 1' in English: a chart's axis has no room for the year
    (Translator.short_date, as the digest's chart in chat writes it)."""
    return t.short_date(day)


def _stage(t: Translator, found: overview.WardOverview, day: date) -> str:
    """Where today's question stands, under the headline's "not reported yet" (which counts
    as the digest counts, whatever the hour): not asked yet, asked, or past the reminder."""
    times = found.times
    if times is None:
        return ""

    def clock(value: str) -> str:
        hour, minute = divmod(schedules.minutes_of(value), 60)
        return str(format_time(dt_time(hour, minute), format="short", locale=t.locale))

    if times.weekdays_only and day.weekday() >= 5:
        return t(STAGES["weekend"])
    if found.stage == "not_asked":
        return t(STAGES["not_asked"], time=clock(times.prompt_at))
    if found.stage == "pending":
        return t(STAGES["pending"], asked=clock(times.prompt_at), time=clock(times.reminder_at))
    return t(STAGES["silent"], time=clock(times.reminder_at))


def _reaches(viewer: Viewer, unit: Unit | None) -> bool:
    return unit is not None and any(contains(root, unit) for root in viewer.roots())


def _up(viewer: Viewer, ward: Unit) -> Unit | None:
    """The city page above this ward, when the viewer's roles reach it."""
    return next((u for u in viewer.roots() if u.id != ward.id and contains(u, ward)), None)


def _charts(t: Translator, week: list[Any], month: list[Any], asked: bool = True
            ) -> list[Any]:
    """The four trend charts; `asked`: today's check-in question has gone out (until it has,
    today's compliance has no point, not a 0 % that reads as every unit failing)."""

    def percent(v: float) -> str:
        return text.percent(t, v)

    def whole(v: float) -> str:
        return t.number(round(v))

    found = []
    for days, trend in ((7, week), (30, month)):
        dates = [date.fromisoformat(d.day) for d in trend]
        labels = [day_month(t, d) for d in dates]
        # The ticks are "1/12": the period under them says the year, "từ 7/11/2026 đến …".
        period = t("{first} to {last}", first=t.date(dates[0]),
                   last=t.date(dates[-1])) if dates else ""  # as the digest's chart says it
        # None before the ward had a leader: a gap in the line, as in the digest's chart.
        opened = [None if d.open is None else float(d.open) for d in trend]
        top = max(4, math.ceil(max([*(v for v in opened if v is not None), 1.0]) / 4) * 4)
        found.append(charts.both(charts.Series(
            t("Open reports, the last {days} days", days=days), period, t("Open reports"),
            labels, opened, top, whole)))
        found.append(charts.both(charts.Series(
            t("Check-in compliance, the last {days} days", days=days), period,
            t("Units that answered"), labels, _so_far(trend, asked), 1.0, percent)))
    return found


def _so_far(trend: list[Any], asked: bool) -> list[float | None]:
    """Each day's compliance; today's none while its question is not out and none answered."""
    rates: list[float | None] = [d.compliance for d in trend]
    if rates and not asked and not rates[-1]:
        rates[-1] = None
    return rates
