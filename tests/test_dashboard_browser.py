"""The ward dashboard in a real headless Chromium (SQLite only; the HTTP tests cover both
databases): ward staff gets the link through the Telegram double, sees every unit of the
ward with the digest's figures, sorts, filters, downloads the export; the link works once;
another ward's staff sees none of it. Screenshots at 1366 px and 390 px go to docs/screens/.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.app import Runtime
from storage.migrate import upgrade_async
from tests.conftest import Coso, StartBot
from tests.doubles.telegram_api import TelegramDouble
from tests.telegram_helpers import register, start_telegram
from tests.test_dashboard import (
    ADMIN,
    LINK,
    OTHER_STAFF,
    STAFF,
    _codes,
    _more_directives,
    local,
    ward_team,
)
from tests.test_web_browser import ARGS, CHROMIUM, PHONE, SHOTS, WAIT_MS

if TYPE_CHECKING:
    from playwright.async_api import Page

SCREENS = Path(__file__).resolve().parent.parent / "docs" / "screens"
DESK = {"width": 1366, "height": 900}

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"no Chromium at {CHROMIUM}")


@pytest.fixture
async def db_url(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'coso.db'}"
    await upgrade_async(url)
    yield url


async def vi_link(tg: TelegramDouble, user: int) -> str:
    """/web from a Vietnamese phone: the link, and the person's pages in Vietnamese."""
    await tg.send_text(user, "/lang vi", language_code="vi")
    await tg.wait_messages(user, 1)
    await tg.send_text(user, "/web", language_code="vi")
    [reply] = await tg.wait_messages(user, 1)
    found = LINK.search(reply.text or "")
    assert found, reply.describe()
    return found.group(1)


async def _a_dispute(runtime: Runtime) -> None:
    """A monitor's open dispute on KP1's first delivery, flagged 3 hours ago; the household's
    head named (the page shows it in full to ward staff)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from storage import units
    from storage.models import DeliveryDispute, Household, SupportDelivery

    async with runtime.db.transaction() as session:
        kp1 = await units.by_code(session, "26734-KP1")
        assert kp1 is not None
        delivery = (await session.execute(select(SupportDelivery).where(
            SupportDelivery.unit_id == kp1.id).order_by(SupportDelivery.id).limit(1))
        ).scalar_one()
        home = await session.get(Household, delivery.household_id)
        assert home is not None
        home.head_name = "Phạm Thị Dung"
        session.add(DeliveryDispute(delivery_id=delivery.id, note="chưa nhận đủ",
                                    created_at=datetime.now(UTC) - timedelta(hours=3)))


async def test_ward_staff_uses_the_dashboard_in_a_real_browser(
        start_bot: StartBot, tg: TelegramDouble, coso: Coso, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    runtime: Runtime = await ward_team(start_bot, tg)
    await _more_directives(runtime)
    await _a_dispute(runtime)
    code, out, _ = await coso("digest", "--unit", "26734", "--format", "json")
    assert code == 0
    digest = json.loads(out)["figures"]
    url = local(runtime, await vi_link(tg, STAFF))
    SCREENS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            expect.set_options(timeout=WAIT_MS)
            desk = await browser.new_context(viewport=DESK, locale="vi-VN",
                                             accept_downloads=True)
            page = await desk.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text)
                    if "Content Security Policy" in m.text else None)
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                    if r.status >= 400 else None)  # the icon too: no 404 in any page's log
            async with page.expect_response(lambda r: "/favicon" in r.url) as icon:
                await page.goto(url)
            assert (await icon.value).status == 200
            await expect(page.locator("h1")).to_contain_text("Hôm nay · Phường Bến Thành")
            rows = page.locator("#units tbody tr")
            await expect(rows).to_have_count(3)
            desk_ward = page.url
            open_total = sum(c["open"] for c in digest["categories"])
            await expect(page.locator('[data-figure="open"]')).to_have_text(str(open_total))
            await expect(page.locator('[data-figure="urgent"]')).to_have_text(
                str(digest["urgent_open"]))
            # Unanswered: silent (red) only once the check-in is due; before, neutral.
            await expect(page.locator(
                "#units td.ci:not(.on_time):not(.late):not(.vacant)")).to_contain_text(
                re.compile("Chưa báo cáo|Chưa đến giờ hỏi|Đã hỏi, chưa đến hạn"))
            await page.screenshot(path=str(SCREENS / "dashboard-ward-1366.png"), full_page=True)

            # Sorting by urgent cases, most first (a second click reverses), then back to
            # the tree's order by the unit column.
            heading = page.locator("#units thead th", has_text="Khẩn")
            await heading.locator("button").click()
            await expect(rows.last.locator("th")).to_have_text("Khu phố 1")
            await heading.locator("button").click()
            await expect(heading).to_have_attribute("aria-sort", "descending")
            await expect(rows.first.locator("th")).to_have_text("Khu phố 1")
            await page.locator("#units thead th").first.locator("button").click()
            await expect(rows.first.locator("th")).to_have_text("Khu phố 1")
            await expect(rows.last.locator("th")).to_have_text("Khu phố 2")

            await page.get_by_role("link", name="Chỉ đơn vị chưa báo cáo").click()
            await expect(rows).to_have_count(1)
            await expect(rows.first.locator("th")).to_have_text("Khu phố 1 › Tổ dân phố 1")
            await page.get_by_role("link", name="Tất cả đơn vị").click()
            await expect(rows).to_have_count(3)

            async with page.expect_download() as waiting:
                await page.get_by_role("link", name="Xuất Excel (30 ngày qua)").click()
            download = await waiting.value
            saved = tmp_path / download.suggested_filename
            await download.save_as(saved)
            assert saved.suffix == ".xlsx" and saved.read_bytes()[:2] == b"PK"

            # A unit: its households (initials only), open reports, the 30-day strip, who
            # has not acknowledged the directive.
            await page.get_by_role("link", name="Khu phố 1", exact=True).click()
            await expect(page.locator("h1")).to_have_text("Khu phố 1")
            await expect(page.locator("#strip li")).to_have_count(30)
            await expect(page.locator("#households tbody tr")).to_have_count(4)
            await expect(page.locator("#reports tbody tr")).to_have_count(2)
            await expect(page.locator("#reports tbody tr").first).to_contain_text("Khẩn")
            await expect(page.locator("#acks")).to_contain_text("Trần Thị Bình")
            await page.screenshot(path=str(SCREENS / "dashboard-unit-1366.png"), full_page=True)
            async with page.expect_download() as waiting:
                await page.get_by_role("link", name="Xuất Excel (30 ngày qua)").click()
            assert (await waiting.value).suggested_filename.startswith("coso-26734-KP1")

            # The ward's open reports, filtered by situation with the form (no script).
            await page.goto(desk_ward)
            await page.get_by_role("link", name="Báo cáo đang mở").click()
            await expect(page.locator("#open-reports tbody tr")).to_have_count(2)
            await page.screenshot(path=str(SCREENS / "dashboard-reports-1366.png"),
                                  full_page=True)
            await page.select_option("select[name=situation]", "f0")
            await page.get_by_role("button", name="Lọc").click()
            await expect(page.locator("#open-reports tbody tr")).to_have_count(2)
            await page.goto(desk_ward)
            await page.get_by_role("link", name="Độ phủ hỗ trợ").click()
            await expect(page.locator("#coverage tbody tr")).to_have_count(1)
            # The open dispute, its age, the household head in full for ward staff.
            await expect(page.locator("#disputes tbody tr")).to_have_count(1)
            await expect(page.locator("#disputes")).to_contain_text("Phạm Thị Dung")
            await expect(page.locator("#disputes")).to_contain_text("⚑ 3 tiếng")
            await page.screenshot(path=str(SCREENS / "dashboard-support-1366.png"),
                                  full_page=True)
            # Directives and drills: units × items on time / late / missing in words, who
            # is missing by name with their phone; its export for the page's period.
            await page.goto(desk_ward)
            await page.get_by_role("link", name="Chỉ đạo và diễn tập").click()
            await expect(page.locator("#ack-matrix tbody tr").first).to_be_visible()
            for word in ("Đúng giờ", "Muộn", "Chưa xác nhận"):
                await expect(page.locator("#ack-matrix tbody").get_by_text(word).first
                             ).to_be_visible()
            await expect(page.locator("#missing")).to_contain_text("Trần Thị Bình")
            await expect(page.locator("#missing")).to_contain_text("0907654321")
            await page.screenshot(path=str(SCREENS / "dashboard-acknowledgements-1366.png"),
                                  full_page=True)
            async with page.expect_download() as waiting:
                await page.get_by_role("link", name="Xuất Excel (30 ngày qua)").click()
            assert (await waiting.value).suggested_filename.endswith(".xlsx")
            await page.get_by_role("link", name="7 ngày qua").click()
            await expect(page.locator("#ack-matrix tbody tr").first).to_be_visible()
            async with page.expect_download() as waiting:
                await page.locator("a.export").click()
            week = (await waiting.value).suggested_filename
            assert week.startswith("coso-26734-") and week.endswith(".xlsx"), week
            assert not errors, errors  # the CSP blocked nothing the page needs

            # The same link a second time: a clear page, no session.
            other = await browser.new_context(viewport=PHONE, locale="vi-VN")
            second = await other.new_page()
            await second.goto(url)
            await expect(second.locator(".message")).to_contain_text("đã được dùng")
            await other.close()

            phone = await browser.new_context(viewport=PHONE, device_scale_factor=2,
                                              is_mobile=True, has_touch=True, locale="vi-VN")
            small = await phone.new_page()
            await small.goto(local(runtime, await vi_link(tg, STAFF)))
            await expect(small.locator("#units tbody tr")).to_have_count(3)
            await small.screenshot(path=str(SCREENS / "dashboard-ward-390.png"), full_page=True)
            # A phone opens on the table: it starts in the first screen, the charts after it,
            # and a link at the top reaches them.
            table = await small.locator("#units").bounding_box()
            charts_at = await small.locator("#charts").bounding_box()
            assert table is not None and charts_at is not None
            assert table["y"] < PHONE["height"] - 150 < charts_at["y"]
            assert charts_at["y"] > table["y"] + table["height"]
            await expect(small.get_by_role("link", name="Biểu đồ xu hướng ↓")).to_be_visible()
            # Each unit a card, its values labelled; the sort buttons still sort.
            await expect(small.locator("#units tbody td[data-label='Khẩn']")).to_have_count(3)
            await small.locator("#units thead th", has_text="Khẩn").locator("button").click()
            await expect(small.locator("#units tbody tr").last.locator("th")).to_have_text(
                "Khu phố 1")
            ward_url = small.url
            # The phone's charts: drawn at their shown size, the desk's hidden.
            await expect(small.locator("svg.chart.narrow").first).to_be_visible()
            await expect(small.locator("svg.chart.wide").first).to_be_hidden()
            await small.locator("section.charts").screenshot(
                path=str(SCREENS / "dashboard-charts-390.png"))
            await small.goto(ward_url + "/acknowledgements")
            await expect(small.locator("#missing")).to_contain_text("Trần Thị Bình")
            await small.screenshot(path=str(SCREENS / "dashboard-acknowledgements-390.png"),
                                   full_page=True)
            # The matrix scrolls sideways; the unit column stays.
            matrix = small.locator("#ack-matrix")
            await small.locator("section", has=matrix).evaluate("e => e.scrollIntoView()")
            await small.locator(".scroll", has=matrix).evaluate("e => e.scrollLeft = 300")
            box = await matrix.locator("tbody tr th").first.bounding_box()
            assert box is not None and box["x"] < 20
            await small.screenshot(
                path=str(SCREENS / "dashboard-acknowledgements-390-scrolled.png"))
            await small.goto(ward_url + "/support")
            await small.screenshot(path=str(SCREENS / "dashboard-support-390.png"),
                                   full_page=True)
            await small.goto(ward_url)

            # Another ward's staff: their own ward only; ours answers 404.
            theirs = await browser.new_context(viewport=DESK, locale="vi-VN")
            foreign = await theirs.new_page()
            await foreign.goto(local(runtime, await vi_link(tg, OTHER_STAFF)))
            await expect(foreign.locator("h1")).to_contain_text("Phường Sài Gòn")
            await expect(foreign.locator("nav.jump")).to_be_hidden()  # a desk sees it all
            response = await foreign.goto(ward_url)
            assert response is not None and response.status == 404
            await expect(foreign.locator(".message")).to_contain_text("không thuộc địa bàn")
            forged = re.sub(r"/ward/\d+", "/ward/424242", ward_url)
            response = await foreign.goto(forged)
            assert response is not None and response.status == 404

            # The city's admin: the wards ranked, each a link to its ward.
            await register(tg, ADMIN, (await _codes(runtime))["admin"], "Thành phố Hồ Chí Minh")
            await foreign.goto(local(runtime, await vi_link(tg, ADMIN)))
            await expect(foreign.locator("#by-rate tbody tr")).to_have_count(2)
            await foreign.screenshot(path=str(SCREENS / "dashboard-city-1366.png"),
                                     full_page=True)
            await foreign.locator("#by-urgent").get_by_role("link", name="Phường Bến Thành").click()
            await expect(foreign.locator("#units tbody tr")).to_have_count(3)
        finally:
            await browser.close()


async def test_a_phone_sees_who_to_call_without_scrolling_sideways(
        start_bot: StartBot, tg: TelegramDouble) -> None:
    """At 390 px (a leader's phone) the tables turn into one card per row, each value
    labelled with its column's header: the people missing and their phone numbers (tel:
    links), the names not yet acknowledged, the urgent count, the situation and its age are
    all inside the screen's width; the page never scrolls sideways."""
    from playwright.async_api import async_playwright, expect

    runtime: Runtime = await ward_team(start_bot, tg)
    await _more_directives(runtime)
    url = local(runtime, await vi_link(tg, STAFF))
    SCREENS.mkdir(parents=True, exist_ok=True)

    async def inside(page: Page, selector: str) -> int:
        """Every cell `selector` matches lies fully inside the phone's width; their count."""
        cells = page.locator(selector)
        count = await cells.count()
        for index in range(count):
            cell = cells.nth(index)
            box = await cell.bounding_box()
            assert box is not None, selector
            text = (await cell.inner_text()).strip()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (
                selector, text, box)
        wide = await page.evaluate("document.documentElement.scrollWidth")
        assert wide <= PHONE["width"], (page.url, wide)
        return count

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            expect.set_options(timeout=WAIT_MS)
            phone = await browser.new_context(viewport=PHONE, device_scale_factor=2,
                                              is_mobile=True, has_touch=True, locale="vi-VN")
            small = await phone.new_page()
            await small.goto(url)
            await expect(small.locator("#units tbody tr")).to_have_count(3)
            ward_url = small.url

            await small.goto(ward_url + "/acknowledgements")
            missing = small.locator("#missing")
            await expect(missing).to_contain_text("Trần Thị Bình")
            # Who is missing, by name: the person and the phone to call, in full.
            assert await inside(small, "#missing tbody td.who") >= 2
            assert await inside(small, "#missing tbody td.phone") >= 2
            call = missing.get_by_role("link", name="0907654321")
            await expect(call).to_have_attribute("href", "tel:0907654321")
            await expect(missing.locator("td.phone").first).to_have_attribute(
                "data-label", "Điện thoại")
            # The names not yet acknowledged, whole.
            assert await inside(small, "#acks tbody td.names") >= 1
            await expect(small.locator("#acks")).to_contain_text("Trần Thị Bình")
            await small.screenshot(path=str(SCREENS / "dashboard-acknowledgements-390.png"),
                                   full_page=True)

            # The overview: each unit's urgent count.
            await small.goto(ward_url)
            assert await inside(small, "#units tbody td[data-label='Khẩn']") == 3
            assert await inside(small, "#units tbody th") == 3

            await small.goto(ward_url + "/reports")
            await expect(small.locator("#open-reports tbody tr")).to_have_count(2)
            assert await inside(small, "#open-reports tbody td[data-label='Tình huống']") == 2
            assert await inside(small, "#open-reports tbody td[data-label='Đã mở']") == 2
            await small.screenshot(path=str(SCREENS / "dashboard-reports-390.png"),
                                   full_page=True)
        finally:
            await browser.close()


async def test_the_demo_wards_charts_have_a_point_every_day(
        start_bot: StartBot, tg: TelegramDouble) -> None:
    """Found by a new-user trial: on `coso demo`'s ward the 7- and 30-day charts showed a
    single point: its people took up their posts the moment it was built (the days before
    are "no leader yet", a gap) and every report was from the last two days. The demo now
    has a month of history; each chart has a point a day, its days labelled "d/M" and its
    period with the full year under the axis."""
    from datetime import datetime, timedelta

    from playwright.async_api import async_playwright, expect

    from bot.dashboard.pages import day_month
    from bot.i18n import Translator
    from storage import demo
    from storage.models import Person
    from tests.test_digest import HCM

    runtime = await start_telegram(start_bot, tg)
    async with runtime.db.transaction() as session:
        built = await demo.build(session, timedelta(days=7), tz=HCM)
        names = {new.code: await session.get(Person, new.invite.person_id)
                 for new in built.invites if new.invite.person_id is not None}
        [staff] = [code for code, person in names.items()
                   if person is not None and person.full_name == "Phạm Thị Dung"]
    await register(tg, STAFF, staff, "Phường Bến Thành")
    t = Translator("vi", HCM)
    today = datetime.now(HCM).date()
    days = [today - timedelta(days=n) for n in range(29, -1, -1)]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            expect.set_options(timeout=WAIT_MS)
            for name, viewport, kind in (("1366", DESK, "wide"), ("390", PHONE, "narrow")):
                phone = viewport is PHONE
                context = await browser.new_context(
                    viewport=viewport, locale="vi-VN", device_scale_factor=2 if phone else 1,
                    is_mobile=phone, has_touch=phone)
                page = await context.new_page()
                await page.goto(local(runtime, await vi_link(tg, STAFF)))
                charts = page.locator(f"svg.chart.{kind}")
                await expect(charts).to_have_count(4)
                # Open reports and compliance, 7 days then 30: a dot a day, one line each;
                # today's compliance only once its question is out (by the hour of the run).
                asked = "Chưa đến giờ hỏi" not in await page.locator(
                    '[data-figure="stage"]').inner_text()
                for index, count in enumerate((7, 7, 30, 30)):
                    chart = charts.nth(index)
                    dots = count if index % 2 == 0 or asked else count - 1
                    await expect(chart.locator("circle.dot")).to_have_count(dots)
                    await expect(chart.locator("polyline.line")).to_have_count(1)
                    ticks = await chart.locator("text.tick").all_text_contents()
                    assert day_month(t, days[-1]) in ticks  # today, "6/12"
                    assert day_month(t, days[-count]) in ticks  # the first day
                    axis = await chart.locator("text.axis").first.text_content() or ""
                    assert t.date(days[-count]) in axis and t.date(today) in axis, axis
                await page.locator("section.charts").screenshot(
                    path=str(SHOTS / f"coso-demo-charts-{name}.png"))
                await context.close()
        finally:
            await browser.close()
