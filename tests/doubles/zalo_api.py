"""A fake Zalo Bot API server for tests, faithful to what is known of the real one.

See ``bot/channels/zalo_api.py`` for the sources. What the double copies from them:
  * ``/bot<token>/<method>``, JSON bodies, ``{"ok", "result"}`` envelopes; API errors answer
    HTTP 200 with ``{"ok": false, "error_code", "description"}`` (measured on the live API);
    floods and gateway faults (429, 5xx) are HTML pages with that HTTP status, as nginx sends them.
  * getUpdates hands out ONE update per call, popped from the queue (no offset), and when the
    ``timeout`` expires answers ``error_code`` 408 "Request timeout".
  * A webhook gets each update POSTed as JSON with ``X-Bot-Api-Secret-Token``; getUpdates is
    refused while a webhook is set.
  * sendMessage text must be 1-2,000 characters; sendPhoto needs an http(s) URL.
Guessed where the real answer is unknown (kept in one place, ``_GUESSED``): wrong token, text
too long, blocked user, getUpdates while a webhook is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

SECRET_HEADER = "X-Bot-Api-Secret-Token"
TEXT_LIMIT = 2000
STICKER_ID = "0e078a2fb66a5f34067b"  # the sticker id of the official docs sample
_PATH = re.compile(r"/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)")
_CHAT_ACTIONS = frozenset({"typing", "upload_photo"})
_SENT_METHODS = frozenset({"sendMessage", "sendPhoto", "sendSticker"})
_GUESSED = {
    401: "Unauthorized",
    403: "Forbidden: the user has blocked the bot",
    409: "Conflict: a webhook is set; call deleteWebhook before getUpdates",
}

Body = dict[str, Any]
Handler = Callable[[Body], Awaitable[web.Response]]


@dataclass
class ZaloSent:
    message_id: str
    method: str
    chat_id: str
    text: str | None
    photo: str | None
    at: float  # time.monotonic()


@dataclass
class _Failure:
    method: str
    status: int
    count: int
    retry_after: int | None
    description: str | None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ok(result: Any = None) -> web.Response:
    envelope: Body = {"ok": True}
    if result is not None:
        envelope["result"] = result
    return web.json_response(envelope)


def _api_error(code: int, description: str) -> web.Response:
    # Measured: the API itself says no with HTTP 200 and the code in the body.
    return web.json_response({"ok": False, "error_code": code, "description": description})


def _gateway_error(status: int, retry_after: int | None = None) -> web.Response:
    # Measured: a flood is stopped by nginx with its own HTML page, not the API's JSON.
    reason = web.Response(status=status).reason
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    page = f"<html><head><title>{status} {reason}</title></head><body>nginx</body></html>"
    return web.Response(status=status, text=page, content_type="text/html", headers=headers)


def _text_error(field: str, value: object, *, required: bool = True) -> web.Response | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        return _api_error(400, f"Bad request: The {field} must not be empty")
    if len(value) > TEXT_LIMIT:  # wording unknown: only "1 to 2000 characters" is documented
        return _api_error(400, f"Bad request: The {field} is too long (max {TEXT_LIMIT})")
    return None


class ZaloDouble:
    def __init__(self, token: str = "zalo-test-token", bot_name: str = "Coso Test") -> None:
        self.token = token
        self.bot_name = bot_name
        self.bot_id = str(secrets.randbelow(10**18) + 10**18)
        self.base_url = ""
        self.sent: list[ZaloSent] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.webhook_wrapped = False  # True: POST {"ok": true, "result": update} as the docs show
        self.webhook_attempts = 5
        self.webhook_retry_delay = 0.2
        self.webhook_failures = 0  # failed POST attempts
        self.webhook_dropped = 0  # updates given up after every attempt failed
        self.rate_limit_per_second: float | None = None
        self._failures: list[_Failure] = []
        self._unreachable = False
        self._blocked: set[str] = set()
        self._names: dict[str, str] = {}
        self._updates: asyncio.Queue[Body] = asyncio.Queue()
        self._pushes: asyncio.Queue[Body] = asyncio.Queue()
        self._by_id: dict[str, Body] = {}
        self._read: dict[str, int] = {}
        self._changed = asyncio.Condition()
        self._recent: deque[float] = deque()
        self._polls: set[asyncio.BaseTransport] = set()  # connections of open long polls
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._pusher: asyncio.Task[None] | None = None
        self._methods: dict[str, Handler] = {
            "getMe": self._get_me, "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook, "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info, "sendMessage": self._send_message,
            "sendPhoto": self._send_photo, "sendSticker": self._send_sticker,
            "sendChatAction": self._send_chat_action,
        }

    # ----- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a long poll whose client left must not pop the next update.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5,
                                     access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self._http = aiohttp.ClientSession()
        self._pusher = asyncio.create_task(self._push_loop())

    async def stop(self) -> None:
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ----- the people on the other side -------------------------------------------------------

    async def send_text(self, user_id: str, text: str, *, display_name: str = "Tester") -> str:
        self._names[user_id] = display_name
        return self._dispatch(self._update("message.text.received", user_id, {"text": text}))

    async def send_image(self, user_id: str, *, photo_url: str = "https://example.invalid/p.jpg",
                         caption: str | None = None) -> str:
        # photo_url, not the docs' "photo": it is what the SDK and live integrations read.
        extra: Body = {"photo_url": photo_url}
        if caption is not None:
            extra["caption"] = caption
        return self._dispatch(self._update("message.image.received", user_id, extra))

    async def send_group_text(self, group_id: str, user_id: str, text: str, *,
                              chat_type: str | None = "GROUP") -> str:
        """A member of a group the bot was added to writes there: chat.id is the group's
        (None: the update carries no chat_type at all)."""
        update = self._update("message.text.received", user_id, {"text": text})
        chat: Body = {"id": group_id}
        if chat_type is not None:
            chat["chat_type"] = chat_type
        update["message"]["chat"] = chat
        return self._dispatch(update)

    async def send_sticker(self, user_id: str) -> str:
        extra = {"sticker": STICKER_ID, "url": f"https://zalo-api.zadn.vn/sticker/{STICKER_ID}"}
        return self._dispatch(self._update("message.sticker.received", user_id, extra))

    async def redeliver(self, message_id: str) -> None:
        """Deliver an update again, unchanged, as a platform retry would."""
        if message_id not in self._by_id:
            raise AssertionError(f"no update with message_id {message_id!r} was sent")
        self._dispatch(copy.deepcopy(self._by_id[message_id]))

    async def block_bot(self, user_id: str) -> None:
        self._blocked.add(user_id)

    def _update(self, event_name: str, user_id: str, extra: Body) -> Body:
        message: Body = {
            "from": {"id": user_id, "display_name": self._names.get(user_id, "Tester"),
                     "is_bot": False},
            "chat": {"id": user_id, "chat_type": "PRIVATE"},
            "message_id": secrets.token_hex(10),
            "date": _now_ms(),
            **extra,
        }
        return {"event_name": event_name, "message": message}

    def _dispatch(self, update: Body) -> str:
        message_id = str(update["message"]["message_id"])
        self._by_id[message_id] = update
        (self._pushes if self.webhook_url else self._updates).put_nowait(update)
        return message_id

    # ----- what the bot sent ------------------------------------------------------------------

    def messages_to(self, chat_id: str) -> list[ZaloSent]:
        return [sent for sent in self.sent if sent.chat_id == chat_id]

    def _unread(self, chat_id: str) -> list[ZaloSent]:
        return self.messages_to(chat_id)[self._read.get(chat_id, 0):]

    # ``timeout`` names below are the agreed test API; they bound a wait, they cancel nothing.
    async def wait_messages(self, chat_id: str, count: int = 1,
                            timeout: float = 10.0) -> list[ZaloSent]:  # noqa: ASYNC109
        """Every message not returned before, once there are at least ``count`` of them."""
        await self._wait_unread(chat_id, count, timeout)
        unread = self._unread(chat_id)
        self._read[chat_id] = self._read.get(chat_id, 0) + len(unread)
        return unread

    async def next_message(self, chat_id: str,
                           timeout: float = 10.0) -> ZaloSent:  # noqa: ASYNC109
        await self._wait_unread(chat_id, 1, timeout)
        first = self._unread(chat_id)[0]
        self._read[chat_id] = self._read.get(chat_id, 0) + 1
        return first

    async def expect_silence(self, chat_id: str, seconds: float = 0.5) -> None:
        await asyncio.sleep(seconds)
        if self._unread(chat_id):
            raise AssertionError(self._dump(chat_id, f"expected silence for {seconds}s"))

    async def _wait_unread(self, chat_id: str, count: int, within: float) -> None:
        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self._unread(chat_id)) >= count)

        try:
            await asyncio.wait_for(enough(), within)
        except TimeoutError:
            headline = f"expected {count} new message(s) within {within}s"
            raise AssertionError(self._dump(chat_id, headline)) from None

    def _dump(self, chat_id: str, headline: str) -> str:
        read = self._read.get(chat_id, 0)
        lines = [f"{headline} to chat {chat_id!r}; {read} already read. Sent to it:"]
        for index, sent in enumerate(self.messages_to(chat_id)):
            mark = "read" if index < read else "NEW "
            lines.append(f"  {mark} {sent.method} text={sent.text!r:.300} photo={sent.photo!r}")
        others = sorted({sent.chat_id for sent in self.sent} - {chat_id})
        lines.append(f"other chats with messages: {others}")
        lines.append(f"last calls: {[method for method, _ in self.calls[-15:]]}")
        return "\n".join(lines)

    async def _record(self, method: str, chat_id: str, text: str | None,
                      photo: str | None) -> str:
        message_id = secrets.token_hex(10)
        self.sent.append(ZaloSent(message_id, method, chat_id, text, photo, time.monotonic()))
        async with self._changed:
            self._changed.notify_all()
        return message_id

    # ----- fault injection --------------------------------------------------------------------

    def fail_next(self, method: str, status: int, *, count: int = 1,
                  retry_after: int | None = None, description: str | None = None) -> None:
        """Make the next ``count`` calls of ``method`` ("*": any but getUpdates) fail.

        429 and 5xx come as a gateway's HTML page with that HTTP status (``Retry-After`` when
        given); any other status comes as the API's HTTP 200 JSON error with that error_code.
        """
        self._failures.append(_Failure(method, status, count, retry_after, description))

    def set_unreachable(self, flag: bool) -> None:
        """While set, every connection is cut, open long polls included."""
        self._unreachable = flag
        if flag:
            for transport in list(self._polls):
                transport.close()

    def _injected(self, method: str) -> web.Response | None:
        for failure in self._failures:
            if failure.method == method or (failure.method == "*" and method != "getUpdates"):
                failure.count -= 1
                if failure.count <= 0:
                    self._failures.remove(failure)
                if failure.status == 429 or failure.status >= 500:
                    return _gateway_error(failure.status, failure.retry_after)
                reason = web.Response(status=failure.status).reason
                return _api_error(failure.status, failure.description or reason)
        return None

    def _rate_limited(self, method: str) -> bool:
        if self.rate_limit_per_second is None or method == "getUpdates":
            return False
        now = time.monotonic()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.rate_limit_per_second:
            return True
        self._recent.append(now)
        return False

    # ----- HTTP -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self._unreachable:
            if request.transport is not None:
                request.transport.close()
            raise web.HTTPServiceUnavailable()  # never reaches the client: the socket is gone
        match = _PATH.fullmatch(request.path)
        if match is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"},
                                     status=404)
        method, body = match["method"], await self._read_body(request)
        self.calls.append((method, body))
        if match["token"] != self.token:
            return _api_error(401, _GUESSED[401])
        return await self._answer(method, body, request)

    async def _answer(self, method: str, body: Body, request: web.Request) -> web.Response:
        injected = self._injected(method)
        if injected is not None:
            return injected
        if self._rate_limited(method):
            return _gateway_error(429)
        handler = self._methods.get(method)
        if handler is None:
            return _api_error(404, "Not Found")  # measured for sendDocument & co
        transport = request.transport
        if method != "getUpdates" or transport is None:
            return await handler(body)
        self._polls.add(transport)
        try:
            return await handler(body)
        finally:
            self._polls.discard(transport)

    @staticmethod
    async def _read_body(request: web.Request) -> Body:
        # The docs send JSON; curl samples use query strings; the SDK posts a form.
        data: Body = dict(request.query)
        if request.content_type == "application/json" and request.can_read_body:
            try:
                parsed = await request.json()
            except ValueError:
                parsed = None
            data.update(parsed if isinstance(parsed, dict) else {})
        elif request.can_read_body:
            data.update(dict(await request.post()))
        return data

    # ----- methods ----------------------------------------------------------------------------

    async def _get_me(self, body: Body) -> web.Response:
        return _ok({"id": self.bot_id, "account_name": f"bot.{self.bot_id[-8:]}",
                    "account_type": "BASIC", "can_join_groups": False,
                    "display_name": self.bot_name})

    async def _get_updates(self, body: Body) -> web.Response:
        if self.webhook_url:
            return _api_error(409, _GUESSED[409])
        try:
            timeout = max(0.0, min(float(body.get("timeout", 30)), 60.0))
        except (TypeError, ValueError):
            return _api_error(400, "Bad request: The timeout is invalid")
        if self._updates.empty():
            try:
                async with asyncio.timeout(timeout):
                    return _ok(await self._updates.get())
            except TimeoutError:
                return _api_error(408, "Request timeout")  # measured: after `timeout` seconds
        return _ok(self._updates.get_nowait())  # even timeout=0 hands out a waiting update

    async def _set_webhook(self, body: Body) -> web.Response:
        url, secret = body.get("url"), body.get("secret_token")
        if not isinstance(url, str) or not _webhook_url_ok(url):
            return _api_error(400, "Bad request: The url must be a valid HTTPS URL")
        if not isinstance(secret, str) or not 8 <= len(secret) <= 256:
            return _api_error(400, "Bad request: The secret_token must be 8 to 256 characters")
        self.webhook_url, self.webhook_secret = url, secret
        while not self._updates.empty():  # what waited for a poll now goes to the webhook
            self._pushes.put_nowait(self._updates.get_nowait())
        return _ok({"url": url, "updated_at": _now_ms()})

    async def _delete_webhook(self, body: Body) -> web.Response:
        self.webhook_url = self.webhook_secret = None
        return _ok({"url": "", "updated_at": _now_ms()})

    async def _get_webhook_info(self, body: Body) -> web.Response:
        return _ok({"url": self.webhook_url or "", "updated_at": _now_ms()})

    def _chat_error(self, chat_id: object) -> web.Response | None:
        if not isinstance(chat_id, str) or not chat_id:
            return _api_error(400, "Bad request: The chat_id must not be empty")  # measured
        if chat_id in self._blocked:
            return _api_error(403, _GUESSED[403])
        return None

    async def _send_message(self, body: Body) -> web.Response:
        chat_id, text = body.get("chat_id"), body.get("text")
        error = self._chat_error(chat_id) or _text_error("text", text)
        if error is not None:
            return error
        message_id = await self._record("sendMessage", str(chat_id), str(text), None)
        return _ok({"message_id": message_id, "date": _now_ms()})

    async def _send_photo(self, body: Body) -> web.Response:
        chat_id, photo, caption = body.get("chat_id"), body.get("photo"), body.get("caption")
        error = self._chat_error(chat_id) or _text_error("caption", caption, required=False)
        if error is not None:
            return error
        if not isinstance(photo, str) or not photo.startswith(("http://", "https://")):
            return _api_error(400, "Bad request: The photo must start with http:// or https://")
        text = caption if isinstance(caption, str) else None
        message_id = await self._record("sendPhoto", str(chat_id), text, photo)
        return _ok({"message_id": message_id, "date": _now_ms()})

    async def _send_sticker(self, body: Body) -> web.Response:
        chat_id, sticker = body.get("chat_id"), body.get("sticker")
        error = self._chat_error(chat_id) or _text_error("sticker", sticker)
        if error is not None:
            return error
        message_id = await self._record("sendSticker", str(chat_id), None, None)
        return _ok({"message_id": message_id, "date": _now_ms()})

    async def _send_chat_action(self, body: Body) -> web.Response:
        error = self._chat_error(body.get("chat_id"))
        if error is not None:
            return error
        if body.get("action") not in _CHAT_ACTIONS:
            return _api_error(400, "Bad request: The action is invalid")
        return _ok()  # the docs show {"ok": true} with no result

    # ----- webhook pushes ---------------------------------------------------------------------

    async def drain_webhook(self) -> None:
        """Wait until every update queued for the webhook was delivered or given up."""
        await self._pushes.join()

    async def _push_loop(self) -> None:
        while True:
            update = await self._pushes.get()
            try:
                await self._push(update)
            finally:
                self._pushes.task_done()

    async def _push(self, update: Body) -> None:
        for attempt in range(self.webhook_attempts):
            url, secret = self.webhook_url, self.webhook_secret
            if url is None or secret is None:  # webhook removed meanwhile: back to polling
                self._updates.put_nowait(update)
                return
            if attempt:
                await asyncio.sleep(self.webhook_retry_delay)
            body = {"ok": True, "result": update} if self.webhook_wrapped else update
            if await self._post(url, secret, body):
                return
            self.webhook_failures += 1
        self.webhook_dropped += 1

    async def _post(self, url: str, secret: str, body: Body) -> bool:
        assert self._http is not None
        try:
            async with self._http.post(url, json=body, headers={SECRET_HEADER: secret},
                                       timeout=aiohttp.ClientTimeout(total=5)) as response:
                return 200 <= response.status < 300
        except (aiohttp.ClientError, TimeoutError):
            return False


def _webhook_url_ok(url: str) -> bool:
    # The real API wants HTTPS; plain http is let through for a receiver on this machine.
    parts = urlsplit(url)
    local = parts.hostname in {"127.0.0.1", "localhost", "::1"}
    return bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http" and local))
