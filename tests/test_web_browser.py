"""The web chat in a real headless Chromium, on a phone-sized screen (SQLite only).

Uses the system's /usr/bin/chromium through Playwright; no browser is ever downloaded.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from storage.migrate import upgrade_async
from tests.conftest import StartBot, seed_ward

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, ViewportSize

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path("/tmp/coso-web.png")  # the chat, with buttons and both sides
SHOTS = Path("/tmp")  # and coso-web-login.png, coso-web-help.png beside it
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE: ViewportSize = {"width": 390, "height": 844}
WAIT_MS = 15_000

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"no Chromium at {CHROMIUM}")


@pytest.fixture
async def db_url(tmp_path: Path) -> AsyncIterator[str]:
    """SQLite only: the browser tests the page, the HTTP tests cover both databases."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'coso.db'}"
    await upgrade_async(url)
    yield url


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """The system's Chromium, headless, closed however the test ends."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(browser: Browser, viewport: ViewportSize = PHONE) -> Page:
    """A page in Vietnamese, on a phone (touch, 2× pixels) or at a desk, by its width."""
    from playwright.async_api import expect

    phone = viewport["width"] < 600
    context = await browser.new_context(viewport=viewport, device_scale_factor=2 if phone else 1,
                                        is_mobile=phone, has_touch=phone, locale="vi-VN")
    expect.set_options(timeout=WAIT_MS)
    return await context.new_page()


async def log_in(page: Page, port: int | None, code: str, unit: str,
                 name: str | None = None) -> None:
    """The web chat's login with an invite code; the greeting names the person's unit."""
    from playwright.async_api import expect

    assert port is not None, "the bot's web server is not listening"
    await page.goto(f"http://127.0.0.1:{port}/")
    await page.fill("#code", code)
    if name is not None:
        await page.fill("#name", name)
    await page.click("#login-button")
    await expect(page.locator("#log")).to_contain_text(unit)


async def test_a_newcomer_logs_in_and_chats_in_a_real_browser(start_bot: StartBot) -> None:
    from playwright.async_api import expect

    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    async with chromium() as browser:
        page = await new_page(browser)
        # Nothing the page asks for is missing: its icon neither (a 404 in every page's log).
        failed: list[str] = []
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                if r.status >= 400 and "/api/" not in r.url else None)
        async with page.expect_response(lambda r: "/favicon" in r.url) as icon:
            await page.goto(f"http://127.0.0.1:{runtime.port}/")
        assert (await icon.value).status == 200

        # Not logged in: the invite form, with the page's own Vietnamese labels.
        await expect(page.locator("#login-button")).to_have_text("Đăng nhập")
        await page.fill("#code", "ZZZZ2222")
        await page.click("#login-button")
        await expect(page.locator("#login-error")).to_be_visible()
        await page.screenshot(path=str(SHOTS / "coso-web-login.png"))
        await page.fill("#code", seeded.codes["leader:KP1"])
        await page.fill("#name", "Lê Văn Cường")
        await page.click("#login-button")
        log = page.locator("#log")
        await expect(log).to_contain_text("Khu phố 1, Phường Bến Thành")
        await expect(page.locator("#text")).to_have_attribute("placeholder",
                                                              "Nhập tin nhắn…")

        await page.fill("#text", "/lang")
        await page.press("#text", "Enter")
        await page.locator(".choice", has_text="English").tap()
        await expect(log.locator(".msg.bot").last).to_have_text("Language set to English.")
        # The page's own words follow the language chosen, not the browser's (Vietnamese).
        await expect(page.locator("#logout")).to_have_text("Log out")
        await expect(page.locator("#send")).to_have_text("Send")
        await expect(page.locator("#text")).to_have_attribute("placeholder", "Type a message…")
        await expect(page.locator("#attach")).to_have_attribute("aria-label", "Send a photo")
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await page.screenshot(path=str(SCREENSHOT))

        await page.fill("#text", "/help")
        await page.click("#send")
        await expect(log.locator(".msg.bot").last).to_contain_text("/lang")
        await expect(log.locator(".msg.me")).to_have_count(3)  # /lang, English, /help
        await page.screenshot(path=str(SHOTS / "coso-web-help.png"))

        # A reload keeps the session (the cookie), the bot's side of the history, and the
        # person's own messages (kept in the tab), each where it was.
        await page.reload()
        await expect(log).to_contain_text("Language set to English.")
        await expect(page.locator("#login-view")).to_be_hidden()
        await expect(page.locator("#logout")).to_have_text("Log out")  # from the first paint
        await expect(page.locator("#send")).to_have_text("Send")
        await expect(log.locator(".msg.me")).to_have_count(3)
        shown = [" ".join(text.split()) for text in await log.locator("li").all_inner_texts()]
        mine = [index for index, text in enumerate(shown) if text in ("/lang", "English",
                                                                       "/help")]
        switched = shown.index("Language set to English.")
        assert shown[mine[0]] == "/lang" and mine[0] < mine[1] < switched < mine[2], shown
        await page.screenshot(path=str(SHOTS / "coso-web-reloaded.png"))
        # Logging out forgets them on this tab.
        await page.click("#logout")
        await page.fill("#code", seeded.codes["leader:KP1:1"])
        await page.click("#login-button")
        await expect(log).to_contain_text("Khu phố 1")
        await expect(log.locator(".msg.me")).to_have_count(0)
        # Another person (a new account: Vietnamese, as the browser is) on the same tab.
        await expect(page.locator("#logout")).to_have_text("Đăng xuất")
        await expect(page.locator("#send")).to_have_text("Gửi")
        await expect(page.locator("#text")).to_have_attribute("placeholder", "Nhập tin nhắn…")
        await page.screenshot(path=str(SHOTS / "coso-web-vi-390.png"))
        assert not failed, failed


async def test_at_an_english_desk_the_page_speaks_the_language_chosen_with_lang(
        start_bot: StartBot) -> None:
    """A ward officer on an English browser who chose Vietnamese with /lang: the page's own
    words turn Vietnamese at once, and stay so after a reload (read from their person)."""
    from playwright.async_api import expect

    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    async with chromium() as browser:
        context = await browser.new_context(viewport=DESK, locale="en-US")
        expect.set_options(timeout=WAIT_MS)
        page = await context.new_page()
        await page.goto(f"http://127.0.0.1:{runtime.port}/")
        await expect(page.locator("#login-button")).to_have_text("Log in")
        await page.fill("#code", seeded.codes["ward_staff:WARD"])
        await page.fill("#name", "Phạm Thị Dung")
        await page.click("#login-button")
        await expect(page.locator("#log")).to_contain_text("Phường Bến Thành")
        await expect(page.locator("#send")).to_have_text("Send")
        await page.fill("#text", "/lang")
        await page.press("#text", "Enter")
        await page.locator(".choice", has_text="Tiếng Việt").click()
        await expect(page.locator("#log .msg.bot").last).to_have_text("Đã chuyển sang tiếng Việt.")
        for _ in range(2):  # at once, then after a reload
            await expect(page.locator("#logout")).to_have_text("Đăng xuất")
            await expect(page.locator("#send")).to_have_text("Gửi")
            await expect(page.locator("#text")).to_have_attribute("placeholder",
                                                                  "Nhập tin nhắn…")
            await expect(page.locator("#attach")).to_have_attribute("title", "Gửi ảnh")
            await expect(page.locator("html")).to_have_attribute("lang", "vi")
            await page.screenshot(path=str(SHOTS / "coso-web-vi-1366.png"))
            await page.reload()
            await expect(page.locator("#log .msg.bot").last).to_have_text(
                "Đã chuyển sang tiếng Việt.")


SCREENS = Path(__file__).parent.parent / "docs" / "screens"  # checked in: what staff see
DESK: ViewportSize = {"width": 1366, "height": 900}


async def test_ward_staff_read_the_digest_and_its_chart_in_the_web_chat(
        start_bot: StartBot) -> None:
    """The evening digest as a ward officer opens it, on a phone and at a desk: the chart is
    in view once it has loaded (the page scrolls again after the image), and the shots are
    written to docs/screens/ for review."""
    from datetime import datetime

    from playwright.async_api import expect

    from bot.digest import send_digest
    from tests.test_digest import HCM, build_ward

    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    today = datetime.now(HCM).date()
    await build_ward(runtime.db, today, seed=False)
    SCREENS.mkdir(parents=True, exist_ok=True)
    async with chromium() as browser:
        pages = {}
        for name, viewport, code in (("phone", PHONE, seeded.codes["ward_staff:WARD:0"]),
                                     ("desk", DESK, seeded.codes["ward_staff:WARD:1"])):
            page = await new_page(browser, viewport)
            await log_in(page, runtime.port, code, "Phường Bến Thành", "Phạm Thị Dung")
            pages[name] = page
        await send_digest(runtime.db, runtime.settings, seeded.unit_ids["26734"], today)
        for name, page in pages.items():
            log = page.locator("#log")
            chart = log.locator("img.photo").last
            await expect(chart).to_be_visible()
            await page.wait_for_function(
                "() => { const i = [...document.querySelectorAll('img.photo')].pop();"
                " return i && i.complete && i.naturalWidth > 0; }")
            await page.wait_for_timeout(300)  # the scroll after the load
            box = await chart.bounding_box()
            height = (PHONE if name == "phone" else DESK)["height"]
            assert box is not None and box["y"] + box["height"] <= height + 1, box
            await expect(log).to_contain_text("Báo cáo đang mở và tỷ lệ báo cáo ngày")
            await page.screenshot(path=str(SCREENS / f"digest-chart-{name}.png"))
            digest_text = log.locator(".msg.bot", has_text="🔴 1 báo cáo khẩn").last
            await digest_text.scroll_into_view_if_needed()
            await page.evaluate("(el) => el.scrollIntoView({block: 'start'})",
                                await digest_text.element_handle())
            await page.screenshot(path=str(SCREENS / f"digest-text-{name}.png"))


async def test_the_dashboard_link_from_web_in_the_web_chat_is_a_link(start_bot: StartBot
                                                                      ) -> None:
    """/web answers with a login link: in the web chat it can be tapped (it was plain text,
    a 60-character token to copy by hand on a phone within 10 minutes)."""
    from playwright.async_api import expect

    from tests.telegram_helpers import free_port

    runtime = await start_bot(COSO_WEB_PORT=free_port())
    seeded = await seed_ward(runtime.db)
    async with chromium() as browser:
        page = await new_page(browser)
        await log_in(page, runtime.port, seeded.codes["ward_staff:WARD"], "Phường Bến Thành")
        log = page.locator("#log")
        await page.fill("#text", "/web")
        await page.press("#text", "Enter")
        link = log.locator(".msg.bot").last.locator("a.link")
        await expect(link).to_have_count(1)
        href = await link.get_attribute("href") or ""
        assert href.startswith(f"http://127.0.0.1:{runtime.port}/dashboard/login/"), href
        await link.tap()
        await expect(page.locator("body")).to_contain_text("Phường Bến Thành")
        assert "/dashboard" in page.url, page.url


@asynccontextmanager
async def phone_chat(port: int | None, code: str, unit: str) -> AsyncIterator[Page]:
    """A leader's phone (390 px, touch, Vietnamese) logged in to the web chat with `code`."""
    async with chromium() as browser:
        page = await new_page(browser)
        await log_in(page, port, code, unit, "Trần Thị Bình")
        yield page


async def test_a_leader_attaches_a_photo_to_a_report_on_a_phone(start_bot: StartBot) -> None:
    """The report's note answered by a photo from the camera button at 390 px: a text file that
    calls itself .jpg and a photo over 10 MB are refused in Vietnamese, a PNG called .txt
    is taken (the content decides), and the photo shows in the leader's own bubble;
    docs/screens/ gets the shot."""
    from playwright.async_api import expect

    from tests.test_web_chat import picture

    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    SCREENS.mkdir(parents=True, exist_ok=True)
    async with phone_chat(runtime.port, seeded.codes["leader:KP2"],
                          "Khu phố 2, Phường Bến Thành") as page:
        log = page.locator("#log")
        attach = page.locator("#attach")
        await expect(attach).to_have_attribute("aria-label", "Gửi ảnh")
        box = await attach.bounding_box()
        assert box is not None and box["width"] >= 44 and box["height"] >= 44, box
        assert await page.locator("#photo").get_attribute("accept") == "image/*"
        assert await page.locator("#photo").get_attribute("capture") is not None

        async def say(text: str) -> None:
            count = await log.locator(".msg.bot").count()
            await page.fill("#text", text)
            await page.press("#text", "Enter")
            await expect(log.locator(".msg.bot")).not_to_have_count(count)

        async def tap(label: str) -> None:
            count = await log.locator(".msg.bot").count()
            await log.locator(".msg.bot").last.get_by_role("button", name=label,
                                                           exact=True).tap()
            await expect(log.locator(".msg.bot")).not_to_have_count(count)

        await say("/report")
        await tap("Thêm hộ mới")
        for text in ("7 Pasteur", "bỏ qua", "1"):
            await say(text)
        await tap("Xong")
        await tap("Thiếu thuốc")  # a household of one: not asked how many are concerned
        # The note's question takes a photo instead (no step of its own).
        await expect(log.locator(".msg.bot").last).to_contain_text("hoặc gửi ảnh")

        mine = log.locator(".msg.me")
        async with page.expect_file_chooser() as chooser:
            await attach.tap()
        await (await chooser.value).set_files(
            {"name": "anh.jpg", "mimeType": "image/jpeg", "buffer": b"ghi chu\n"})
        await expect(mine.last.locator(".error")).to_contain_text(
            "chỉ gửi được ảnh (JPEG, PNG hoặc WebP)")
        await page.screenshot(path=str(SHOTS / "coso-web-photo-refused.png"))
        # Over 10 MB: refused from its declared length, and the phone hears why.
        async with page.expect_file_chooser() as chooser:
            await attach.tap()
        await (await chooser.value).set_files(
            {"name": "lon.jpg", "mimeType": "image/jpeg",
             "buffer": b"\xff\xd8\xff" + bytes(11 * 1024 * 1024)})
        await expect(mine.last.locator(".error")).to_contain_text("lớn hơn 10 MB")

        async with page.expect_file_chooser() as chooser:
            await attach.tap()
        await (await chooser.value).set_files(
            {"name": "anh.txt", "mimeType": "text/plain",
             "buffer": picture("PNG", (1200, 900))})
        await expect(log.locator(".msg.bot").last).to_contain_text("Ảnh: có kèm")
        shown = mine.last.locator("img.photo")
        await expect(shown).to_be_visible()
        await page.wait_for_function(
            "() => { const i = document.querySelector('.msg.me img.photo');"
            " return i && i.complete && i.naturalWidth === 1200; }")
        await page.wait_for_timeout(300)  # the scroll after the load
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width  # nothing wider than the phone
        await shown.scroll_into_view_if_needed()
        await page.screenshot(path=str(SCREENS / "report-photo-phone.png"))
        await tap("Lưu")
        await expect(log.locator(".msg.bot").last).to_contain_text("Đã lưu")


async def test_a_leader_ticks_flags_in_place_and_finds_the_menu_on_a_phone(
        start_bot: StartBot) -> None:
    """At 390 px: a multi-select ticks in its own bubble (no new bubble per tap), an answered
    question's buttons go, the steering row sits under the answers, and with no question
    open the role's commands are a menu above the text field that starts a flow in one tap.
    docs/screens/ gets keyboard-multi-phone.png and menu-phone.png."""
    from playwright.async_api import expect

    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    SCREENS.mkdir(parents=True, exist_ok=True)
    async with phone_chat(runtime.port, seeded.codes["leader:KP1"],
                          "Khu phố 1, Phường Bến Thành") as page:
        log = page.locator("#log")
        bots = log.locator(".msg.bot")
        menu = page.locator("#menu")
        await expect(menu).to_be_visible()  # nothing open: the role's commands
        await expect(menu.locator(".command", has_text="Hộ gia đình")).to_be_visible()
        await menu.locator(".command", has_text="Hộ gia đình").tap()
        await expect(bots.last).to_contain_text("Sổ hộ: anh/chị muốn làm gì?")
        await expect(menu).to_be_hidden()  # a question is open
        await expect(bots.last.locator(".steering .choice")).to_have_text(["Hủy"])

        async def tap(label: str) -> None:
            count = await bots.count()
            await bots.last.locator(".choice", has_text=label).tap()
            await expect(bots).not_to_have_count(count)

        async def say(text: str) -> None:
            count = await bots.count()
            await page.fill("#text", text)
            await page.press("#text", "Enter")
            await expect(bots).not_to_have_count(count)

        await tap("Thêm hộ")
        await tap("Tổ dân phố 1")
        for text in ("12 Lê Lợi", "Nguyễn Văn An", "4"):
            await say(text)
        count = await bots.count()
        flags = bots.nth(count - 1)  # this bubble, not whichever is last later
        await expect(flags).to_contain_text("Đánh dấu từng mục")
        for label in ("☐ Hộ nghèo", "☐ Có trẻ nhỏ"):
            await flags.locator(".choice", has_text=label).tap()
            await expect(flags.locator(".choice", has_text="☑ " + label[2:])).to_be_visible()
        assert await bots.count() == count  # ticked in place, no bubble per tap
        # Only the open question has buttons; answered ones lost theirs.
        assert await log.locator(".choice").count() == await flags.locator(".choice").count()
        await expect(flags.locator(".steering .choice")).to_have_text(["Quay lại"])
        await page.screenshot(path=str(SCREENS / "keyboard-multi-phone.png"))
        await tap("Xong")
        await expect(flags.locator(".choice")).to_have_count(0)
        await expect(bots.last).to_contain_text("Hoàn cảnh hộ: Hộ nghèo, Có trẻ nhỏ")
        await tap("Xác nhận")
        await expect(bots.last).to_contain_text("Đã lưu: 12 Lê Lợi")
        await expect(menu).to_be_visible()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width  # the menu scrolls inside itself
        await page.screenshot(path=str(SCREENS / "menu-phone.png"))
        await menu.get_by_role("button", name="Báo cáo", exact=True).tap()
        await expect(bots.last).to_contain_text("Hộ nào?")
