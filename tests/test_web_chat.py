"""The web chat over HTTP, as the page uses it, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import Runtime
from bot.channels.web import DEVICE_COOKIE, LOGIN_ATTEMPTS, PAGE_TEXTS, SESSION_COOKIE
from bot.dashboard import favicon
from bot.settings import SettingsError
from storage import outbox
from storage.models import ChatAccount, InviteFailure, Person
from tests.conftest import StartBot, make_settings, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.telegram_helpers import free_port

WELCOME_UNIT = "Khu phố 1, Phường Bến Thành, Thành phố Hồ Chí Minh"
ENGLISH_SET = "Language set to English."


class WebUser:
    """One browser: its own cookie jar, and how far it has read its messages."""

    def __init__(self, runtime: Runtime) -> None:
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.point_at(runtime)
        self.after = 0

    def point_at(self, runtime: Runtime) -> None:
        self.base = f"http://127.0.0.1:{runtime.port}"

    async def post(self, path: str, body: Any = None, **kwargs: Any
                   ) -> tuple[int, Any, aiohttp.ClientResponse]:
        if body is not None:
            kwargs["json"] = body
        async with self.http.post(self.base + path, **kwargs) as response:
            return response.status, await response.json(content_type=None), response

    async def login(self, code: str, name: str | None = "Lê Văn Cường") -> tuple[int, Any]:
        status, data, _ = await self.post("/api/login", {"code": code, "name": name})
        return status, data

    async def say(self, **body: Any) -> int:
        status, _, _ = await self.post("/api/send", body)
        return status

    async def messages(self, wait: bool = True) -> list[dict[str, Any]]:
        url = f"{self.base}/api/messages?after={self.after}" + ("" if wait else "&wait=0")
        async with asyncio.timeout(30), self.http.get(url) as response:
            assert response.status == 200, response.status
            found: list[dict[str, Any]] = await response.json()
        if found:
            self.after = found[-1]["id"]
        return found

    async def reply(self, where: Callable[[dict[str, Any]], bool] = lambda m: True
                    ) -> dict[str, Any]:
        """The next new bubble that fits, skipping the others and every change of a bubble
        already shown (an answered question's keyboard taken away, ticks changed in place)."""
        async with asyncio.timeout(20):
            while True:
                for message in await self.messages():
                    if not _changes_a_bubble(message) and where(message):
                        return message

    async def close(self) -> None:
        await self.http.close()


def _changes_a_bubble(message: dict[str, Any]) -> bool:
    return "edit" in message or bool(message.get("retire"))


@pytest.fixture
async def users() -> AsyncIterator[Callable[[Runtime], WebUser]]:
    made: list[WebUser] = []

    def make(runtime: Runtime) -> WebUser:
        made.append(WebUser(runtime))
        return made[-1]

    yield make
    for user in made:
        await user.close()


Users = Callable[[Runtime], WebUser]


async def _logged_in(start_bot: StartBot, users: Users, label: str = "leader:KP1"
                     ) -> tuple[Runtime, WebUser]:
    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    user = users(runtime)
    assert await user.login(seeded.codes[label]) == (200, {"ok": True})
    return runtime, user


async def test_login_sets_a_strict_cookie_and_the_welcome_arrives(
        start_bot: StartBot, users: Users) -> None:
    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    user = users(runtime)
    status, data, response = await user.post(
        "/api/login", {"code": seeded.codes["leader:KP1"].lower(), "name": "Lê Văn Cường"})
    assert (status, data) == (200, {"ok": True})
    cookie = response.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=2592000"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    welcome = await user.reply()
    assert WELCOME_UNIT in welcome["text"] and "Lê Văn Cường" in welcome["text"]
    async with runtime.db.read() as session:
        account = (await session.execute(select(ChatAccount))).scalar_one()
    assert account.channel == "web" and account.person_id is not None


@pytest.mark.parametrize("typed", ["/start {code}", "  /START {lower}  ", "/start@coso_bot {code}",
                                   "start {spaced}"])
async def test_a_code_typed_as_the_start_command_is_the_code(
        typed: str, start_bot: StartBot, users: Users) -> None:
    """Found by a new-user trial: "/start CODE" copied whole from the invite was refused."""
    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    code = seeded.codes["leader:KP1"]
    user = users(runtime)
    assert await user.login(typed.format(code=code, lower=code.lower(),
                                         spaced=f"{code[:4]} {code[4:]}")) == (200, {"ok": True})
    assert WELCOME_UNIT in (await user.reply())["text"]


async def test_a_bad_code_is_refused_with_the_reason_and_no_cookie(
        start_bot: StartBot, users: Users) -> None:
    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    user = users(runtime)
    status, data = await user.login("ZZZZ2222")
    assert status == 400 and data["ok"] is False
    assert data["message"] and "ZZZZ2222" not in data["message"]
    assert len(user.http.cookie_jar) == 0
    async with runtime.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 0
    # A used code is refused too, for a different reason.
    assert (await user.login(seeded.codes["leader:KP2"]))[0] == 200
    other = users(runtime)
    status, used = await other.login(seeded.codes["leader:KP2"])
    assert status == 400 and used["message"] and used["message"] != data["message"]
    assert len(other.http.cookie_jar) == 0


async def test_help_language_buttons_and_a_stale_button(start_bot: StartBot,
                                                         users: Users) -> None:
    _, user = await _logged_in(start_bot, users)
    await user.reply()  # the welcome
    assert await user.say(text="/lang") == 200
    menu = await user.reply()
    labels = {b["label"]: b["payload"] for b in menu["buttons"]}
    assert list(labels) == ["Tiếng Việt", "English", "Hủy"]
    assert await user.say(choice=labels["English"]) == 200
    assert (await user.reply())["text"] == ENGLISH_SET
    assert await user.say(text="/help") == 200
    help_text = (await user.reply())["text"]
    assert WELCOME_UNIT in help_text and "/lang" in help_text and "/help" in help_text
    # A button of an older message still sends; the bot says it is no longer open.
    assert await user.say(choice=labels["Tiếng Việt"]) == 200
    assert (await user.reply())["text"] == "This question is no longer open."


async def test_a_retried_send_is_answered_once(start_bot: StartBot, users: Users) -> None:
    _, user = await _logged_in(start_bot, users)
    await user.reply()
    for _ in range(2):
        assert await user.say(text="/help", id="3f2b9c1e-retry") == 200
    assert len(await user.messages(wait=False)) == 1
    assert await user.say(text="/help", id="3f2b9c1e-other") == 200
    assert len(await user.messages(wait=False)) == 1
    assert await user.say(text="/help", id="x" * 65) == 400


async def test_the_api_wants_a_session_and_json(start_bot: StartBot, users: Users) -> None:
    runtime, user = await _logged_in(start_bot, users)
    stranger = users(runtime)
    async with stranger.http.get(stranger.base + "/api/messages?after=0") as response:
        assert response.status == 401
    assert await stranger.say(text="/help") == 401
    assert (await stranger.post("/api/logout", {}))[0] == 401
    assert (await stranger.post("/api/login", data="code=AB", headers={
        "Content-Type": "application/x-www-form-urlencoded"}))[0] == 415
    assert (await user.post("/api/send", data="/help", headers={
        "Content-Type": "text/plain"}))[0] == 415
    assert (await user.post("/api/send", {"text": "x" * 20_000}))[0] == 413
    assert (await user.post("/api/send", {"text": "hi", "choice": "f:1:0"}))[0] == 400


async def test_page_and_assets(start_bot: StartBot, users: Users) -> None:
    runtime = await start_bot()
    user = users(runtime)
    for path, kind in (("/", "text/html"), ("/static/app.js", "text/javascript"),
                       ("/static/style.css", "text/css")):
        async with user.http.get(user.base + path) as response:
            assert response.status == 200 and response.content_type == kind
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    async with user.http.get(user.base + "/static/..%2Fchannels%2Fweb.py") as response:
        assert response.status == 404


VI_BROWSER = {"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.5"}
EN_BROWSER = {"Accept-Language": "en-GB,en;q=0.9"}


async def _page(user: WebUser, headers: dict[str, str]) -> str:
    async with user.http.get(user.base + "/", headers=headers) as response:
        assert response.status == 200
        return await response.text()


async def _strings(user: WebUser, headers: dict[str, str]) -> dict[str, Any]:
    async with user.http.get(user.base + "/api/strings", headers=headers) as response:
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
        found: dict[str, Any] = await response.json()
        return found


async def _spoken(user: WebUser, headers: dict[str, str]) -> str:
    """The language /api/messages names for what it answers (the page's words follow it)."""
    async with user.http.get(f"{user.base}/api/messages?after={user.after}&wait=0",
                             headers=headers) as response:
        assert response.status == 200
        return response.headers["Content-Language"]


async def test_the_pages_own_words_follow_the_language_chosen_with_lang(
        start_bot: StartBot, users: Users) -> None:
    """Found by a new-user trial: "Đăng xuất", "Gửi" and the placeholder followed the
    browser's language, not the one the person chose with /lang. Before login the browser's;
    once logged in, the person's (stored), from the catalogs, on the page and on every
    answer's Content-Language, which the page follows at once."""
    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    user = users(runtime)
    page = await _page(user, VI_BROWSER)
    assert '<html lang="vi">' in page and ">Đăng nhập</button>" in page
    assert '<html lang="en">' in await _page(user, EN_BROWSER)
    assert (await _strings(user, EN_BROWSER))["strings"]["login"] == "Log in"
    status, data, _ = await user.post("/api/login", {"code": seeded.codes["leader:KP1"]},
                                      headers=VI_BROWSER)
    assert (status, data) == (200, {"ok": True})
    await user.reply()  # the welcome
    assert await _spoken(user, VI_BROWSER) == "vi"
    assert await user.say(text="/lang") == 200
    menu = await user.reply()
    english = next(b["payload"] for b in menu["buttons"] if b["label"] == "English")
    assert await user.say(choice=english) == 200
    assert (await user.reply())["text"] == ENGLISH_SET
    # The browser still says Vietnamese; the person chose English.
    assert await _spoken(user, VI_BROWSER) == "en"
    found = await _strings(user, VI_BROWSER)
    assert found["lang"] == "en"
    assert found["strings"] == dict(PAGE_TEXTS)  # English: the msgids themselves
    page = await _page(user, VI_BROWSER)
    assert '<html lang="en">' in page and ">Log out</button>" in page
    assert ">Send</button>" in page and 'placeholder="Type a message…"' in page
    assert '"logout": "Log out"' in page  # the words the page's script reuses
    # Back to Vietnamese in chat: every word of the page in it, none left in English.
    assert await user.say(text="/lang") == 200
    menu = await user.reply()
    vietnamese = next(b["payload"] for b in menu["buttons"] if b["label"] == "Tiếng Việt")
    assert await user.say(choice=vietnamese) == 200
    await user.reply()
    found = await _strings(user, EN_BROWSER)
    assert found["lang"] == "vi" and found["strings"]["logout"] == "Đăng xuất"
    assert found["strings"]["send"] == "Gửi"
    assert not {k for k, v in found["strings"].items() if v == PAGE_TEXTS[k]}
    assert await _spoken(user, EN_BROWSER) == "vi"
    # Logged out: the browser's language again.
    assert (await user.post("/api/logout", {}))[0] == 200
    assert (await _strings(user, EN_BROWSER))["lang"] == "en"


async def test_the_icon_is_served_cached_and_linked_from_every_page(
        start_bot: StartBot, users: Users) -> None:
    """Found by a new-user trial: every page's /favicon.ico was a 404 in the browser's log."""
    runtime = await start_bot()
    user = users(runtime)
    async with user.http.get(user.base + favicon.URL) as response:
        assert response.status == 200 and response.content_type == "image/svg+xml"
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert (await response.read()).startswith(b"<svg ")
    async with user.http.get(user.base + "/favicon.ico") as response:
        assert response.status == 200 and response.content_type == "image/svg+xml"
        assert "max-age=86400" in response.headers["Cache-Control"]
    link = f'<link rel="icon" href="{favicon.URL}" type="image/svg+xml">'
    assert link in await _page(user, VI_BROWSER)
    async with user.http.get(user.base + "/dashboard/nowhere") as response:
        assert response.status == 404 and link in await response.text()


async def test_files_are_served_only_to_their_owner(start_bot: StartBot, users: Users,
                                                    tmp_path: Path) -> None:
    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    owner, other = users(runtime), users(runtime)
    assert (await owner.login(seeded.codes["leader:KP1"]))[0] == 200
    assert (await other.login(seeded.codes["leader:KP2"]))[0] == 200
    await owner.reply()
    photo, sheet = tmp_path / "receipt.png", tmp_path / "export.xlsx"
    photo.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    sheet.write_bytes(b"PK fake workbook")
    waiting = asyncio.create_task(owner.messages())
    await asyncio.sleep(0.2)  # the poll is now waiting
    async with runtime.db.transaction() as session:
        account = (await session.execute(select(ChatAccount).order_by(ChatAccount.id)
                                         )).scalars().first()
        assert account is not None
        outbox.enqueue(session, account, {"text": "Biên nhận", "photo": str(photo),
                                          "document": str(sheet),
                                          "filename": "Báo cáo ngày.xlsx"})
    # Woken by deliver(), well before the 5 s re-check or the 25 s limit.
    async with asyncio.timeout(4):
        (message,) = await waiting
    assert message["photo"].startswith("/api/file/") and message["filename"] == "Báo cáo ngày.xlsx"
    async with owner.http.get(owner.base + message["photo"]) as response:
        assert response.status == 200 and await response.read() == photo.read_bytes()
        assert response.content_type == "image/png"
    async with owner.http.get(owner.base + message["document"]) as response:
        assert response.status == 200 and await response.read() == sheet.read_bytes()
        assert "filename*=UTF-8''B%C3%A1o%20c%C3%A1o" in response.headers["Content-Disposition"]
    for url in (message["photo"], message["document"]):
        async with other.http.get(other.base + url) as response:
            assert response.status == 404
    async with owner.http.get(owner.base + f"/api/file/{message['id']}/secret") as response:
        assert response.status == 404


async def test_logout_ends_the_session(start_bot: StartBot, users: Users) -> None:
    _, user = await _logged_in(start_bot, users)
    token = next(c.value for c in user.http.cookie_jar if c.key == SESSION_COOKIE)
    assert (await user.post("/api/logout", {}))[0] == 200
    assert await user.say(text="/help") == 401
    user.http.cookie_jar.update_cookies({SESSION_COOKIE: token})  # a copied cookie is dead
    assert await user.say(text="/help") == 401


async def test_the_owner_of_a_used_code_signs_in_again_after_logging_out(
        start_bot: StartBot, users: Users) -> None:
    """Logging out ends the session, not the person's account: in the same browser their
    own (spent) code signs them back in to their thread; elsewhere the code stays spent."""
    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    code = seeded.codes["leader:KP1"]
    user = users(runtime)
    assert await user.login(code) == (200, {"ok": True})
    welcome = await user.reply()
    assert (await user.post("/api/logout", {}))[0] == 200
    assert await user.say(text="/help") == 401
    assert await user.login(code.lower()) == (200, {"ok": True})
    user.after = 0  # the page reloads the thread from its start
    thread = await user.messages(wait=False)
    assert thread[0]["id"] == welcome["id"]  # the same account, its history kept
    assert "Lê Văn Cường" in thread[-1]["text"] and thread[-1]["id"] > welcome["id"]
    async with runtime.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 1
        assert await session.scalar(select(func.count()).select_from(ChatAccount)) == 1
    # Another browser, or this one's device cookie forged or carried to another's code:
    # the spent code is refused as before.
    other = users(runtime)
    status, data = await other.login(code)
    assert status == 400 and data["message"]
    device = next(c.value for c in user.http.cookie_jar if c.key == DEVICE_COOKIE)
    account_id, _, signature = device.partition(".")
    forger = users(runtime)
    forger.http.cookie_jar.update_cookies({DEVICE_COOKIE: f"{account_id}.{'0' * 64}"})
    assert (await forger.login(code))[0] == 400
    assert (await users(runtime).login(seeded.codes["leader:KP2"]))[0] == 200
    assert (await user.post("/api/logout", {}))[0] == 200
    assert (await user.login(seeded.codes["leader:KP2"]))[0] == 400
    async with runtime.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 2


async def test_login_attempts_are_rate_limited(start_bot: StartBot, users: Users) -> None:
    runtime = await start_bot()
    user = users(runtime)
    for _ in range(LOGIN_ATTEMPTS):
        assert (await user.post("/api/login", {"name": "x"}))[0] == 400
    status, data, _ = await user.post("/api/login", {"name": "x"})
    assert status == 429 and "chờ một phút" in data["message"]


async def test_a_restart_mid_flow_keeps_the_session_and_the_question(
        start_bot: StartBot, users: Users) -> None:
    first, user = await _logged_in(start_bot, users)
    await user.reply()
    assert await user.say(text="/lang") == 200
    english = next(b["payload"] for b in (await user.reply())["buttons"]
                   if b["label"] == "English")
    waiting = asyncio.create_task(user.messages())
    await asyncio.sleep(0.2)
    await first.stop()
    async with asyncio.timeout(3):  # stop() ends the waiting poll at once, not a re-check
        assert await waiting == []
    second = await start_bot()
    user.point_at(second)
    assert await user.say(choice=english) == 200
    assert (await user.reply())["text"] == ENGLISH_SET


# --- COSO_WEB_CHAT and COSO_TRUSTED_PROXIES (issue 11, item 7) ------------------------------

async def test_web_chat_off_answers_404_and_keeps_the_webhook(
        start_bot: StartBot, users: Users, tg: TelegramDouble) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhook/telegram"
    runtime = await start_bot(COSO_WEB_CHAT="off", COSO_WEB_PORT=port,
                              TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url,
                              TELEGRAM_WEBHOOK_URL=url, TELEGRAM_WEBHOOK_SECRET="s3cret_s3cret-1")
    seeded = await seed_ward(runtime.db)
    user = users(runtime)
    for path in ("/", "/static/app.js"):
        async with user.http.get(user.base + path) as response:
            assert response.status == 404, path
    for path, body in (("/api/login", {"code": seeded.codes["leader:KP1"]}),
                       ("/api/send", {"text": "/help"}), ("/api/logout", {})):
        async with user.http.post(user.base + path, json=body) as response:
            assert response.status == 404, path
    for path in ("/api/messages?wait=0", "/api/file/1/photo", "/api/strings"):
        async with user.http.get(user.base + path) as response:
            assert response.status == 404, path
    async with user.http.get(user.base + "/favicon.ico") as response:
        assert response.status == 200  # the dashboard's pages still link it
    async with runtime.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(ChatAccount)) == 0
    # The webhook is still served: a Telegram user registers through it.
    await tg.send_text(7001, f"/start {seeded.codes['leader:KP2']}", language_code="en")
    [welcome] = await tg.wait_messages(7001, 1)
    assert "Khu phố 2" in (welcome.text or "")


async def _login_from(user: WebUser, forwarded: str | None, code: object = None) -> int:
    """A login attempt (by default one without a code, which only the rate limit counts)."""
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    status, _, _ = await user.post("/api/login", {"code": code}, headers=headers)
    return status


async def test_the_login_limit_is_keyed_on_the_client_behind_a_trusted_proxy(
        start_bot: StartBot, users: Users) -> None:
    """Behind the README's reverse proxy every request comes from 127.0.0.1: one person
    guessing must not lock everybody out, and a forged left part must not help."""
    runtime = await start_bot(COSO_TRUSTED_PROXIES="127.0.0.0/8, ::1")
    user = users(runtime)
    for _ in range(LOGIN_ATTEMPTS):
        assert await _login_from(user, "203.0.113.5") == 400
    assert await _login_from(user, "203.0.113.5") == 429
    # A forged address to the left of what the proxy appended changes nothing.
    assert await _login_from(user, "198.51.100.1, 203.0.113.5") == 429
    # Another client behind the same proxy is not limited.
    assert await _login_from(user, "203.0.113.6") == 400
    assert await _login_from(user, "198.51.100.7, 203.0.113.6") == 400


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(
        start_bot: StartBot, users: Users) -> None:
    runtime = await start_bot()  # no trusted proxy: the header is the client's own words
    user = users(runtime)
    for number in range(LOGIN_ATTEMPTS):
        assert await _login_from(user, f"203.0.113.{number}") == 400
    assert await _login_from(user, "203.0.113.99") == 429


@pytest.mark.parametrize("value", ["10.0.0.0/33", "localhost", "10.0.0.0/8, nope"])
def test_a_bad_trusted_proxy_stops_start_up_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^COSO_TRUSTED_PROXIES: .*not an address or CIDR"):
        make_settings("sqlite+aiosqlite:///:memory:", COSO_TRUSTED_PROXIES=value)


# --- the back-off against guessing invite codes (issue 11, item 8) ---------------------------

async def test_five_wrong_codes_lock_a_browser_out_for_ten_minutes(
        start_bot: StartBot, users: Users) -> None:
    """Every web login is a new chat account, so the refused codes count per client address
    (behind a trusted proxy, the forwarded one)."""
    runtime = await start_bot(COSO_TRUSTED_PROXIES="127.0.0.1/32")
    seeded = await seed_ward(runtime.db)
    user = users(runtime)
    for code in ("ZZZZ2222", "ZZZZ3333", "ZZZZ4444", "ZZZZ5555", "ZZZZ6666"):
        assert await _login_from(user, "203.0.113.5", code) == 400
    status, data, _ = await user.post("/api/login", {"code": seeded.codes["leader:KP1"]},
                                      headers={"X-Forwarded-For": "203.0.113.5",
                                               "Accept-Language": "vi"})
    assert status == 429 and data["message"].startswith("Anh/chị đã gửi sai mã mời quá nhiều lần")
    async with runtime.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 0
    # Someone else behind the same proxy logs in.
    assert await _login_from(user, "203.0.113.6", seeded.codes["leader:KP2"]) == 200
    # Ten minutes later the first browser's good code works.
    async with runtime.db.transaction() as session:
        for row in (await session.execute(select(InviteFailure))).scalars():
            row.at -= timedelta(minutes=10)
    assert await _login_from(user, "203.0.113.5", seeded.codes["leader:KP1"]) == 200


# --- photos sent from the web chat ---------------------------------------------------------

def picture(kind: str = "PNG", size: tuple[int, int] = (320, 240)) -> bytes:
    """A real image (a house-coloured square on a sky) in the given format."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, (135, 190, 235))
    ImageDraw.Draw(image).rectangle((size[0] // 4, size[1] // 3, size[0] * 3 // 4, size[1]),
                                    fill=(200, 90, 60))
    out = io.BytesIO()
    image.save(out, kind)
    return out.getvalue()


async def upload(user: WebUser, data: Any, page_id: str = "p1",
                 content_type: str = "application/octet-stream") -> tuple[int, Any]:
    status, body, _ = await user.post(f"/api/photo?id={page_id}", data=data,
                                      headers={"Content-Type": content_type})
    return status, body


def on_disk(path: Path) -> tuple[bytes, int]:
    """A file's bytes and mode bits."""
    return path.read_bytes(), path.stat().st_mode & 0o777


def payload(message: dict[str, Any], label: str) -> str:
    """The payload of the message's button whose label holds `label`."""
    return next(b["payload"] for b in message["buttons"] if label in b["label"])


async def answer(user: WebUser, **body: Any) -> dict[str, Any]:
    """Send, then the last of the replies (committed before the send is answered)."""
    assert await user.say(**body) == 200
    return (await user.messages(wait=False))[-1]


async def to_the_photo_step(user: WebUser) -> dict[str, Any]:
    """A leader's /report for a new household, answered as far as the note, the step that
    takes a photo (in Vietnamese, the page's default); the leader's unit has no groups under
    it (Khu phố 2)."""
    question = await answer(user, text="/report")
    question = await answer(user, choice=payload(question, "Thêm hộ mới"))
    await answer(user, text="7 Pasteur")
    await answer(user, text="bỏ qua")  # the head's name
    flags = await answer(user, text="1")
    categories = await answer(user, choice=payload(flags, "Xong"))
    # A household of one: nobody asks how many are concerned; the note comes next.
    question = await answer(user, choice=payload(categories, "thuốc"))
    assert "hoặc gửi ảnh" in question["text"], question
    return question


async def test_a_photo_answers_the_reports_photo_step_and_only_its_sender_sees_it(
        start_bot: StartBot, users: Users) -> None:
    from storage.models import Report

    runtime = await start_bot()
    seeded = await seed_ward(runtime.db)
    owner, other = users(runtime), users(runtime)
    assert (await owner.login(seeded.codes["leader:KP2"]))[0] == 200
    assert (await other.login(seeded.codes["leader:KP1"]))[0] == 200
    await owner.messages(wait=False)
    await to_the_photo_step(owner)
    png = picture()
    status, body = await upload(owner, png, page_id="a-photo")
    assert status == 200 and body["ok"] is True
    url = body["photo"]
    summary = (await owner.messages(wait=False))[-1]
    assert "Ảnh: có kèm" in summary["text"], summary  # the flow took it as its photo
    # The same upload retried (the answer was lost) is one photo, not a second answer.
    assert await upload(owner, png, page_id="a-photo") == (200, body)

    async with owner.http.get(owner.base + url) as response:
        assert response.status == 200 and await response.read() == png
        assert response.content_type == "image/png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    name = url.rsplit("/", 1)[1]
    altered = name[:40] + ("0" if name[40] != "0" else "1") + name[41:]
    for who, path in ((other, url), (owner, f"/api/photo/{altered}"),
                      (owner, "/api/photo/..%2Fcoso.db"), (owner, "/api/photo/file-secret")):
        async with who.http.get(who.base + path) as response:
            assert response.status == 404, path
    async with aiohttp.ClientSession() as stranger, stranger.get(owner.base + url) as response:
        assert response.status == 401

    save = next(b["payload"] for b in summary["buttons"] if b["label"] == "Lưu")
    assert "Đã lưu" in (await answer(owner, choice=save))["text"]
    async with runtime.db.read() as session:
        report = (await session.execute(select(Report))).scalar_one()
    stored = Path(report.photo or "")
    assert stored.parent == runtime.settings.data_dir / "photos" and stored.name == name
    assert on_disk(stored) == (png, 0o600)
    assert "a-photo" not in name and list(stored.parent.iterdir()) == [stored]


async def test_photo_refusals_are_clear_and_in_the_persons_language(
        start_bot: StartBot, users: Users) -> None:
    from bot.channels.web import MAX_PHOTO

    runtime, user = await _logged_in(start_bot, users)
    await user.messages(wait=False)
    photos = runtime.settings.data_dir / "photos"
    too_big = b"\xff\xd8\xff" + bytes(MAX_PHOTO)  # a JPEG's start, one photo's limit after it
    status, body = await upload(user, too_big)
    assert status == 413 and "lớn hơn 10 MB" in body["message"], body

    async def chunked() -> AsyncIterator[bytes]:  # no length declared: aiohttp counts
        for _ in range(11):
            yield bytes(1024 * 1024)

    status, body = await upload(user, chunked(), page_id="p2")
    assert status == 413 and "lớn hơn 10 MB" in body["message"], body

    # A text file, whatever it was called (the page sends no name) or declared as.
    status, body = await upload(user, b"Day la ghi chu, khong phai anh\n", page_id="p3")
    assert status == 415 and "chỉ gửi được ảnh (JPEG, PNG hoặc WebP)" in body["message"]
    for fake in (b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"GIF89a....", b"RIFF0000WAVE",
                 b""):
        assert (await upload(user, fake, page_id="p4"))[0] == 415, fake
    # The browser's content type counts for nothing either way, and no form can post here.
    assert (await upload(user, picture(), page_id="p5", content_type="image/png"))[0] == 415
    assert (await upload(user, b"x", page_id="p6", content_type="text/plain"))[0] == 415
    assert not photos.exists() or list(photos.iterdir()) == []
    assert (await upload(user, picture(), page_id="bad id!"))[0] == 400

    # Exactly 10 MB is a photo still; with no photo step open the core answers it as it
    # answers a Telegram photo out of place.
    status, _ = await upload(user, b"\xff\xd8\xff" + bytes(MAX_PHOTO - 3), page_id="p7")
    assert status == 200
    assert "/help" in (await user.messages(wait=False))[-1]["text"]

    english = await answer(user, text="/lang")
    await answer(user, choice=payload(english, "English"))
    status, body = await upload(user, too_big, page_id="p8")
    assert status == 413 and body["message"].startswith("This photo is larger than 10 MB")
    status, body = await upload(user, b"hello", page_id="p9")
    assert body["message"] == ("Only a photo (JPEG, PNG or WebP) can be sent here, and this "
                               "file is not one.")


@pytest.mark.parametrize(("kind", "suffix"), [("JPEG", ".jpg"), ("PNG", ".png"),
                                              ("WEBP", ".webp")])
def test_photos_are_known_by_their_content(kind: str, suffix: str) -> None:
    from bot.files import photo_suffix

    assert photo_suffix(picture(kind, (8, 8))) == suffix
    assert photo_suffix(b"%PDF-1.7") is None and photo_suffix(b"RIFF") is None


async def test_a_photo_from_the_web_chat_reaches_a_telegram_leader_with_a_directive(
        start_bot: StartBot, users: Users, tg: TelegramDouble) -> None:
    """Ward staff on the web chat attach a photo to a directive; the outbox uploads the
    file itself to Telegram (a web photo is a file on this machine, not a Telegram file id),
    as the card's photo with the directive as its caption."""
    from tests.telegram_helpers import register, start_telegram

    runtime = await start_telegram(start_bot, tg)
    seeded = await seed_ward(runtime.db)
    await register(tg, 801, seeded.codes["leader:KP1"])
    staff = users(runtime)
    assert (await staff.login(seeded.codes["ward_staff:WARD"]))[0] == 200
    await staff.messages(wait=False)
    question = await answer(staff, text="/directive")
    question = await answer(staff, choice=payload(question, "Khu phố 1"))
    question = await answer(staff, choice=payload(question, "Trưởng đơn vị"))
    question = await answer(staff, text="Họp tổ dân phố lúc 19h, mang theo sổ hộ.")
    assert "Gửi ảnh" in question["text"]
    jpeg = picture("JPEG")
    assert (await upload(staff, jpeg, page_id="directive-photo"))[0] == 200
    assert "Hạn" in (await staff.messages(wait=False))[-1]["text"]  # the photo was taken
    summary = await answer(staff, text="bỏ qua")
    await answer(staff, choice=payload(summary, "Xác nhận"))
    [card] = await tg.wait_messages(801, 1)
    assert card.method == "sendPhoto" and card.photo == jpeg, card.describe()
    assert "Họp tổ dân phố lúc 19h" in (card.text or "")
