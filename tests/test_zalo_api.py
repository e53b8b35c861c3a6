"""The Zalo Bot API client against the fake server (tests/doubles/zalo_api.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web

from bot.channels.zalo_api import (
    SECRET_HEADER,
    ZaloApiError,
    ZaloBotClient,
    ZaloNetworkError,
    parse_update,
)
from tests.doubles.zalo_api import ZaloDouble


@pytest.fixture
async def client(zalo: ZaloDouble) -> AsyncIterator[ZaloBotClient]:
    api = ZaloBotClient(zalo.token, zalo.base_url)
    yield api
    await api.close()


class Receiver:
    """A tiny webhook endpoint that can be told to fail its first deliveries."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.bodies: list[dict[str, Any]] = []
        self.secrets: list[str | None] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        self.secrets.append(request.headers.get(SECRET_HEADER))
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=500)
        self.bodies.append(await request.json())
        return web.Response(text="ok")


async def _api_error(call: Any) -> ZaloApiError:
    with pytest.raises(ZaloApiError) as caught:
        await call
    return caught.value


async def test_get_me(client: ZaloBotClient, zalo: ZaloDouble) -> None:
    me = await client.get_me()
    assert me["id"] == zalo.bot_id
    assert me["account_type"] == "BASIC"


async def test_polls_a_text_update(client: ZaloBotClient, zalo: ZaloDouble) -> None:
    sent_id = await zalo.send_text("u-1", "Xin chào", display_name="Lan")
    [update] = await client.get_updates(timeout=2)
    assert update.event_name == "message.text.received"
    assert (update.message_id, update.chat_id, update.user_id) == (sent_id, "u-1", "u-1")
    assert (update.text, update.display_name, update.photo_url) == ("Xin chào", "Lan", None)
    assert zalo.calls[-1] == ("getUpdates", {"timeout": "2"})  # a String, as documented


async def test_polls_an_image_update(client: ZaloBotClient, zalo: ZaloDouble) -> None:
    await zalo.send_image("u-2", photo_url="https://example.invalid/a.jpg", caption="Hộ 12")
    [update] = await client.get_updates(timeout=2)
    assert update.event_name == "message.image.received"
    assert (update.photo_url, update.caption, update.text) == (
        "https://example.invalid/a.jpg", "Hộ 12", None)


async def test_each_poll_hands_out_one_update(client: ZaloBotClient, zalo: ZaloDouble) -> None:
    first = await zalo.send_text("u-1", "một")
    second = await zalo.send_sticker("u-1")
    assert [u.message_id for u in await client.get_updates(timeout=1)] == [first]
    [sticker] = await client.get_updates(timeout=1)
    assert (sticker.message_id, sticker.event_name) == (second, "message.sticker.received")


async def test_an_empty_poll_returns_nothing_after_its_timeout(client: ZaloBotClient) -> None:
    started = time.monotonic()
    assert await client.get_updates(timeout=1) == []
    assert 0.9 <= time.monotonic() - started < 3


async def test_redelivery_repeats_the_message_id(client: ZaloBotClient, zalo: ZaloDouble) -> None:
    sent_id = await zalo.send_text("u-1", "báo cáo")
    await client.get_updates(timeout=1)
    await zalo.redeliver(sent_id)
    [again] = await client.get_updates(timeout=1)
    assert again.message_id == sent_id


async def test_send_message_is_recorded(client: ZaloBotClient, zalo: ZaloDouble) -> None:
    result = await client.send_message("u-1", "Đã ghi nhận")
    sent = await zalo.next_message("u-1")
    assert (sent.method, sent.text, sent.message_id) == ("sendMessage", "Đã ghi nhận",
                                                         result["message_id"])
    await zalo.expect_silence("u-1", 0.05)


async def test_photo_and_typing(client: ZaloBotClient, zalo: ZaloDouble) -> None:
    assert await client.send_chat_action("u-1") == {}
    await client.send_photo("u-1", "https://example.invalid/chart.png", caption="Tuần 3")
    [photo] = await zalo.wait_messages("u-1")
    assert (photo.method, photo.photo, photo.text) == (
        "sendPhoto", "https://example.invalid/chart.png", "Tuần 3")


async def test_wait_messages_fails_with_a_dump(zalo: ZaloDouble) -> None:
    with pytest.raises(AssertionError, match="expected 1 new message"):
        await zalo.wait_messages("nobody", timeout=0.05)


async def test_text_over_2000_characters_is_refused(client: ZaloBotClient) -> None:
    error = await _api_error(client.send_message("u-1", "a" * 2001))
    assert (error.error_code, error.permanent) == (400, True)
    await client.send_message("u-1", "a" * 2000)


async def test_wrong_token_is_unauthorized(zalo: ZaloDouble) -> None:
    api = ZaloBotClient("123:wrong", zalo.base_url)
    try:
        error = await _api_error(api.get_me())
    finally:
        await api.close()
    assert (error.error_code, error.permanent) == (401, True)
    assert "123:wrong" not in str(error)


async def test_webhook_push_carries_the_secret(client: ZaloBotClient, zalo: ZaloDouble) -> None:
    receiver = Receiver(fail_first=2)
    await receiver.start()
    try:
        await client.set_webhook(receiver.url, "s3cret-token")
        assert (await client.get_webhook_info())["url"] == receiver.url
        sent_id = await zalo.send_text("u-3", "qua webhook")
        await zalo.drain_webhook()
    finally:
        await receiver.stop()
    assert receiver.secrets == ["s3cret-token"] * 3
    assert zalo.webhook_failures == 2
    update = parse_update(receiver.bodies[0])
    assert update is not None and (update.message_id, update.text) == (sent_id, "qua webhook")


async def test_polling_is_refused_while_a_webhook_is_set(client: ZaloBotClient,
                                                         zalo: ZaloDouble) -> None:
    await client.set_webhook("https://example.invalid/hook", "s3cret-token")
    assert (await _api_error(client.get_updates(timeout=1))).permanent
    await client.delete_webhook()
    assert await client.get_updates(timeout=0) == []
    await zalo.send_text("u-1", "sau webhook")
    assert len(await client.get_updates(timeout=0)) == 1


async def test_429_carries_retry_after(client: ZaloBotClient, zalo: ZaloDouble) -> None:
    zalo.fail_next("sendMessage", 429, retry_after=3)
    error = await _api_error(client.send_message("u-1", "hi"))
    assert (error.status, error.retry_after, error.permanent) == (429, 3.0, False)


async def test_rate_limit_answers_429(client: ZaloBotClient, zalo: ZaloDouble) -> None:
    zalo.rate_limit_per_second = 2
    await client.send_message("u-1", "1")
    await client.send_message("u-1", "2")
    error = await _api_error(client.send_message("u-1", "3"))
    assert (error.status, error.permanent) == (429, False)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_not_permanent(
        client: ZaloBotClient, zalo: ZaloDouble, status: int) -> None:
    zalo.fail_next("*", status)
    error = await _api_error(client.send_message("u-1", "hi"))
    assert (error.status, error.permanent) == (status, False)
    await client.send_message("u-1", "hi")  # the failure was for one call only


async def test_a_blocked_user_is_permanent(client: ZaloBotClient, zalo: ZaloDouble) -> None:
    await zalo.block_bot("u-9")
    error = await _api_error(client.send_message("u-9", "hi"))
    assert error.permanent and error.blocked
    assert zalo.messages_to("u-9") == []


async def test_unreachable_is_a_network_error(client: ZaloBotClient, zalo: ZaloDouble) -> None:
    zalo.set_unreachable(True)
    with pytest.raises(ZaloNetworkError):
        await client.send_message("u-1", "hi")
    zalo.set_unreachable(False)
    await client.send_message("u-1", "hi")


async def test_unreachable_cuts_an_open_long_poll(client: ZaloBotClient,
                                                  zalo: ZaloDouble) -> None:
    poll = asyncio.create_task(client.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    zalo.set_unreachable(True)
    with pytest.raises(ZaloNetworkError):
        await poll


async def test_a_slow_answer_is_a_network_error() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"ok": True, "result": {}})

    app = web.Application()
    app.router.add_post("/{tail:.*}", slow)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    api = ZaloBotClient("1:t", f"http://127.0.0.1:{runner.addresses[0][1]}", timeout=0.2)
    try:
        with pytest.raises(ZaloNetworkError):
            await api.get_me()
    finally:
        await api.close()
        await runner.cleanup()


MESSAGE = {"message_id": "m1", "chat": {"id": "c1"}, "from": {"id": "u1", "display_name": "A"},
           "text": "hi", "photo": "https://example.invalid/x.jpg"}


def test_parse_update_accepts_both_webhook_shapes() -> None:
    flat = {"event_name": "message.text.received", "message": MESSAGE}
    from_flat, from_wrapped = parse_update(flat), parse_update({"ok": True, "result": flat})
    assert from_flat is not None and from_wrapped is not None
    assert (from_flat.message_id, from_flat.chat_id, from_flat.user_id) == ("m1", "c1", "u1")
    assert (from_flat.display_name, from_flat.text, from_flat.photo_url) == ("A", "hi", None)
    assert replace(from_wrapped, raw=flat) == from_flat


def test_parse_update_reads_the_documented_photo_field() -> None:
    update = parse_update({"event_name": "message.image.received", "message": MESSAGE})
    assert update is not None
    assert (update.photo_url, update.text) == ("https://example.invalid/x.jpg", None)


@pytest.mark.parametrize("junk", [
    None, 3, "text", [], {}, {"ok": True}, {"ok": True, "result": None},
    {"event_name": "message.text.received"},
    {"event_name": 5, "message": MESSAGE},
    {"event_name": "message.text.received", "message": "hi"},
    {"event_name": "message.text.received", "message": {"chat": {"id": "c1"}}},
    {"event_name": "message.text.received", "message": {"message_id": "m", "chat": "c1"}},
    {"event_name": "message.text.received", "message": {"message_id": True, "chat": {"id": 1}}},
    {"event_name": "message.text.received",
     "message": {"message_id": "m", "chat": {"id": " "}, "from": []}},
])
def test_parse_update_returns_none_on_junk(junk: Any) -> None:
    assert parse_update(junk) is None


@pytest.mark.parametrize(("chat", "private"), [
    ({"id": "u1", "chat_type": "PRIVATE"}, True),
    ({"id": "g1", "chat_type": "GROUP"}, False),
    ({"id": "u1", "chat_type": "GROUP"}, False),  # the type decides, not the ids
    ({"id": "u1"}, True),  # no chat_type: the sender's own chat only
    ({"id": "g1"}, False),
    ({"id": "u1", "chat_type": 1}, True),  # junk type: read as absent
])
def test_only_a_private_chat_is_private(chat: dict[str, Any], private: bool) -> None:
    message = {**MESSAGE, "chat": chat}
    update = parse_update({"event_name": "message.text.received", "message": message})
    assert update is not None and update.private is private
