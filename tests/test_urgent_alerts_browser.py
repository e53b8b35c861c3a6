"""The urgent alert in the web chat, in a real headless Chromium at 390 px (SQLite only):
styled apart by its flag (class "urgent"), its buttons tappable, and the answer to "Đã nhận
xử lý" in the thread. Writes docs/screens/urgent-alert-{phone,desk}.png for review."""

from __future__ import annotations

from tests.conftest import StartBot, seed_ward
from tests.test_urgent_alerts import ONE_MESSAGE, _roster
from tests.test_web_browser import (
    DESK,
    PHONE,
    SCREENS,
    chromium,
    db_url,
    log_in,
    new_page,
    pytestmark,
)

__all__ = ["db_url", "pytestmark"]  # the browser module's SQLite fixture and its skip


async def test_the_urgent_alert_stands_out_and_acts_in_the_web_chat(start_bot: StartBot
                                                                     ) -> None:
    from playwright.async_api import expect

    from tests.chat import Chat
    from tests.telegram_helpers import free_port

    runtime = await start_bot(COSO_WEB_PORT=free_port())
    seeded = await seed_ward(runtime.db)
    codes = await _roster(runtime.db, seeded)
    leader = Chat(runtime.router, runtime.db, external_id="kp1", language="vi",
                  display_name="Nguyễn Văn An")
    await leader.send(f"/start {codes['kp1']}")
    SCREENS.mkdir(parents=True, exist_ok=True)
    async with chromium() as browser:
        pages = {}
        for name, viewport, who in (("phone", PHONE, "dung"), ("desk", DESK, "hai")):
            page = await new_page(browser, viewport)
            await log_in(page, runtime.port, codes[who], "Phường Bến Thành",
                         "Phạm Thị Dung" if who == "dung" else "Lê Văn Hải")
            pages[name] = page
        await leader.send(ONE_MESSAGE)
        await leader.tap("🚨 Lưu, báo KHẨN")
        for name, page in pages.items():
            alert = page.locator("#log .msg.bot.urgent")
            await expect(alert).to_have_count(1)
            await expect(alert).to_contain_text("🚨 KHẨN · báo cáo #1")
            assert await page.locator("#log .msg.bot:not(.urgent)").count() >= 1
            colour = await alert.locator(".bubble").evaluate(
                "(el) => getComputedStyle(el).borderLeftColor")
            assert colour == "rgb(179, 38, 30)", colour
            await page.screenshot(path=str(SCREENS / f"urgent-alert-{name}.png"))
        phone = pages["phone"]
        await phone.locator(".urgent .choice", has_text="Đã nhận xử lý").tap()
        await expect(phone.locator("#log .msg.bot").last).to_contain_text(
            "Anh/chị đã nhận xử lý báo cáo #1")
        await expect(pages["desk"].locator("#log .msg.bot").last).to_contain_text(
            "đã có người nhận: Phạm Thị Dung")
        await phone.screenshot(path=str(SCREENS / "urgent-alert-taken-phone.png"))
