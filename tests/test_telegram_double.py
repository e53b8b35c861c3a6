"""The Telegram double, driven by a real aiogram Bot and Dispatcher.

If these pass, a test that runs the Coso bot against the double exercises aiogram's real
encoding, parsing and error mapping, not a mock's idea of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    Message,
    TelegramObject,
    Update,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from tests.doubles.telegram_api import SECRET_HEADER, TelegramDouble

USER = 1001


@pytest.fixture
async def tg() -> AsyncIterator[TelegramDouble]:
    async with TelegramDouble() as double:
        yield double


class PlainHttpSession(AiohttpSession):
    """aiogram's session minus the 250 ms close() pause that lets TLS sockets wind down.

    The double speaks plain HTTP on localhost, and the pause would cost seconds per run.
    """

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def make_bot(tg: TelegramDouble, token: str | None = None) -> Bot:
    session = PlainHttpSession(api=TelegramAPIServer.from_base(tg.base_url))
    return Bot(token or tg.token, session=session)


@pytest.fixture
async def bot(tg: TelegramDouble) -> AsyncIterator[Bot]:
    bot = make_bot(tg)
    yield bot
    await bot.session.close()


def yes_no() -> InlineKeyboardBuilder:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(text="Có", callback_data="ans:yes")
    keyboard.button(text="Không", callback_data="ans:no")
    return keyboard


def echo_router() -> Router:
    """/start asks a yes/no question; a tap is answered and confirmed."""
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("Xin chào! Báo cáo hôm nay?", reply_markup=yes_no().as_markup())

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"Đã nhận: {message.text}")

    @router.callback_query(F.data.startswith("ans:"))
    async def answer(query: CallbackQuery) -> None:
        await query.answer("OK")
        await query.bot.send_message(query.from_user.id, f"Bạn chọn {query.data}")  # type: ignore[union-attr]
    return router


@pytest.fixture
async def polling(tg: TelegramDouble) -> AsyncIterator[list[int]]:
    """A real dispatcher polling the double; yields the update ids it saw."""
    seen: list[int] = []
    dispatcher = Dispatcher()
    dispatcher.include_router(echo_router())

    async def remember(
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        update: TelegramObject, data: dict[str, Any],
    ) -> Any:
        assert isinstance(update, Update)
        seen.append(update.update_id)
        return await handler(update, data)

    dispatcher.update.outer_middleware(remember)

    bot = make_bot(tg)
    task = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False))
    yield seen
    await dispatcher.stop_polling()
    await task


# ---------------------------------------------------------------- plain API calls


async def test_get_me_is_the_bot_of_the_token(tg: TelegramDouble, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "coso_test_bot")


async def test_send_message_records_text_and_buttons(tg: TelegramDouble, bot: Bot) -> None:
    first = await bot.send_message(USER, "<b>Hỏi</b>", parse_mode="HTML",
                                   reply_markup=yes_no().as_markup())
    second = await bot.send_message(USER, "tiếp")
    assert first.from_user is not None and first.from_user.id == 123456
    assert first.chat.id == USER and second.message_id == first.message_id + 1
    [sent, _] = tg.messages_to(USER)
    assert (sent.method, sent.text, sent.parse_mode) == ("sendMessage", "<b>Hỏi</b>", "HTML")
    assert sent.button_texts == ["Có", "Không"]
    assert sent.buttons == [[{"text": "Có", "callback_data": "ans:yes"},
                             {"text": "Không", "callback_data": "ans:no"}]]
    assert tg.calls[0][0] == "sendMessage" and tg.calls[0][1]["chat_id"] == str(USER)


async def test_uploads_and_file_ids(tg: TelegramDouble, bot: Bot) -> None:
    photo = await bot.send_photo(USER, BufferedInputFile(b"\x89PNG", "a.png"), caption="ảnh")
    doc = await bot.send_document(USER, BufferedInputFile(b"xlsx!", "bao-cao.xlsx"))
    await tg.send_photo(USER, file_id="AgAC-user")
    again = await bot.send_photo(USER + 1, "AgAC-user")
    sent = tg.sent
    assert (sent[0].photo, sent[0].text) == (b"\x89PNG", "ảnh")
    assert (sent[1].document, sent[1].filename) == (b"xlsx!", "bao-cao.xlsx")
    assert sent[2].photo == "AgAC-user" and again.photo is not None
    assert photo.photo is not None and doc.document is not None
    file = await bot.get_file(doc.document.file_id)
    assert file.file_path is not None
    assert (await bot.download_file(file.file_path)).read() == b"xlsx!"  # type: ignore[union-attr]
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(USER, "no-such-id")


async def test_telegram_refusals(tg: TelegramDouble, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER, "a <tag> b", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="reserved"):
        await bot.send_message(USER, "Xong.", parse_mode="MarkdownV2")
    with pytest.raises(TelegramBadRequest, match="too long"):
        await bot.send_message(USER, "x" * 4097)
    message = await bot.send_message(USER, "a", reply_markup=yes_no().as_markup())
    with pytest.raises(TelegramBadRequest, match="not modified"):
        await bot.edit_message_text("a", chat_id=USER, message_id=message.message_id,
                                    reply_markup=yes_no().as_markup())
    edited = await bot.edit_message_text("b", chat_id=USER, message_id=message.message_id)
    assert isinstance(edited, Message) and edited.reply_markup is None
    assert tg.sent[-1].method == "editMessageText" and tg.sent[-1].buttons == []
    stranger = make_bot(tg, "999:wrong")
    with pytest.raises(TelegramUnauthorizedError):
        await stranger.get_me()
    await stranger.session.close()


async def test_unknown_method_and_json_bodies(tg: TelegramDouble) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{tg.base_url}/bot{tg.token}"
        async with http.post(f"{url}/fly", json={}) as response:
            assert response.status == 404
            assert (await response.json())["description"] == "Not Found: method not found"
        async with http.post(f"{url}/sendMessage", json={"chat_id": 7, "text": "hi"}) as resp:
            assert (await resp.json())["result"]["text"] == "hi"


async def test_commands_by_language_and_webhook_info(tg: TelegramDouble, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="start", description="Bắt đầu")])
    await bot.set_my_commands([BotCommand(command="start", description="Start")],
                              language_code="en")
    assert tg.my_commands[""] == [{"command": "start", "description": "Bắt đầu"}]
    assert tg.my_commands["en"][0]["description"] == "Start"
    await bot.set_my_commands([BotCommand(command="digest", description="Tổng hợp")],
                              scope=BotCommandScopeChat(chat_id=USER))
    assert tg.my_commands[f"|chat:{USER}"][0]["command"] == "digest"
    assert tg.my_commands[""][0]["command"] == "start"
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Start", description="x")])
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == ("", 0)


# ---------------------------------------------------------------- users talking to a bot


async def test_long_poll_wakes_on_update_and_times_out_empty(
    tg: TelegramDouble, bot: Bot,
) -> None:
    assert await bot.get_updates(timeout=0) == []
    waiting = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    update_id = await tg.send_text(USER, "/start ref", language_code="en")
    [update] = await asyncio.wait_for(waiting, 1)
    assert update.update_id == update_id and update.message is not None
    assert update.message.entities is not None and update.message.entities[0].length == 6
    assert update.message.from_user is not None
    assert update.message.from_user.language_code == "en"
    assert await bot.get_updates(offset=update_id + 1, timeout=0) == []


async def test_polling_dispatcher_text_and_tap(tg: TelegramDouble, polling: list[int]) -> None:
    await tg.send_text(USER, "/start")
    question = await tg.next_message(USER, timeout=5)
    assert question.button_texts == ["Có", "Không"]
    await tg.tap(USER, "ans:yes")
    reply = await tg.next_message(USER, timeout=5)
    assert reply.text == "Bạn chọn ans:yes"
    assert tg.callback_answers[0]["text"] == "OK"
    await tg.send_text(USER, "mưa to")
    assert [m.text for m in await tg.wait_messages(USER)] == ["Đã nhận: mưa to"]
    await tg.expect_silence(USER, 0.1)


async def test_redeliver_repeats_the_update_id(tg: TelegramDouble, polling: list[int]) -> None:
    update_id = await tg.send_text(USER, "một")
    await tg.next_message(USER, timeout=5)
    await tg.redeliver(update_id)
    await tg.next_message(USER, timeout=5)
    later = await tg.send_text(USER, "hai")
    await tg.next_message(USER, timeout=5)
    assert polling == [update_id, update_id, later]


async def test_tap_needs_the_button_on_screen(tg: TelegramDouble, bot: Bot) -> None:
    with pytest.raises(AssertionError, match="none"):
        await tg.tap(USER, "ans:yes")
    await bot.send_message(USER, "q", reply_markup=yes_no().as_markup())
    with pytest.raises(AssertionError, match="ans:no"):
        await tg.tap(USER, "ans:maybe")


async def test_waiting_reads_each_message_once_and_explains_timeouts(
    tg: TelegramDouble, bot: Bot,
) -> None:
    for text in ("1", "2", "3"):
        await bot.send_message(USER, text)
    assert (await tg.next_message(USER)).text == "1"
    assert [m.text for m in await tg.wait_messages(USER, 2)] == ["2", "3"]
    with pytest.raises(AssertionError, match=r"(?s)expected 1 new.*read #3 sendMessage '3'"):
        await tg.wait_messages(USER, timeout=0.05)
    await bot.send_message(USER, "4")
    with pytest.raises(AssertionError, match="NEW  #4"):
        await tg.expect_silence(USER, 0.05)


# ---------------------------------------------------------------- webhook push mode


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def test_webhook_push_to_aiogram_with_secret(tg: TelegramDouble, bot: Bot) -> None:
    dispatcher = Dispatcher()
    dispatcher.include_router(echo_router())
    app = web.Application()
    SimpleRequestHandler(dispatcher, bot, secret_token="s3cret").register(app, path="/hook")
    runner, base = await serve(app)
    try:
        await bot.set_webhook(f"{base}/hook", secret_token="s3cret")
        assert (tg.webhook_url, tg.webhook_secret) == (f"{base}/hook", "s3cret")
        await tg.send_text(USER, "/start")
        assert (await tg.next_message(USER, timeout=5)).button_texts == ["Có", "Không"]
        await tg.tap(USER, "ans:no")
        assert (await tg.next_message(USER, timeout=5)).text == "Bạn chọn ans:no"
        with pytest.raises(TelegramConflictError):
            await bot.get_updates()
        await tg.drain_webhook()
        assert tg.webhook_failures == 0
    finally:
        await runner.cleanup()


async def test_webhook_retries_failed_pushes(tg: TelegramDouble, bot: Bot) -> None:
    received: list[tuple[int, str | None]] = []

    async def flaky(request: web.Request) -> web.Response:
        body = await request.json()
        received.append((body["update_id"], request.headers.get(SECRET_HEADER)))
        return web.Response(status=500 if len(received) == 1 else 200)

    app = web.Application()
    app.router.add_post("/hook", flaky)
    runner, base = await serve(app)
    try:
        await bot.set_webhook(f"{base}/hook")
        update_id = await tg.send_text(USER, "xin chào")
        await tg.drain_webhook()
        assert received == [(update_id, None), (update_id, None)]
        assert tg.webhook_failures == 1
        info = await bot.get_webhook_info()
        assert info.last_error_message is not None and "500" in info.last_error_message
        await bot.delete_webhook()
        await tg.send_text(USER, "polling again")
        assert len(await bot.get_updates(timeout=0)) == 1
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------- faults


async def test_injected_faults_map_to_aiogram_errors(tg: TelegramDouble, bot: Bot) -> None:
    tg.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(USER, "x")
    assert retry.value.retry_after == 7
    tg.fail_next("*", 502, count=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_chat_action(USER, "typing")
    await tg.block_bot(USER)
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await bot.send_message(USER, "x")
    await tg.send_text(USER, "/start")  # writing again unblocks, as in the app
    await bot.send_message(USER, "ok")
    assert [m.text for m in tg.sent] == ["ok"]


async def test_rate_limit_answers_429(tg: TelegramDouble, bot: Bot) -> None:
    tg.rate_limit_per_second = 2
    await bot.send_message(USER, "1")
    await bot.send_message(USER + 1, "2")
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(USER, "3")
    assert retry.value.retry_after == 1


async def test_outage_is_a_network_error(tg: TelegramDouble, bot: Bot) -> None:
    tg.set_unreachable(True)
    with pytest.raises((TelegramNetworkError, TelegramServerError)):
        await bot.send_message(USER, "x")
    tg.set_unreachable(False)
    await bot.send_message(USER, "back")
    assert [m.text for m in tg.sent] == ["back"]
