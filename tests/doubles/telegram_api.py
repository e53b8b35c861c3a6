"""A fake Telegram Bot API server for tests: a real HTTP server that the real aiogram bot uses.

Point aiogram at it with ``AiohttpSession(api=TelegramAPIServer.from_base(double.base_url))``.
Testing through the wire (instead of mocking aiogram) keeps aiogram's form encoding, pydantic
parsing and error classes in the loop, so a test fails the way production would.

What the double copies from Telegram, because code under test depends on it:
  * ``/bot<token>/<method>`` (method names case-insensitive), GET query, urlencoded or multipart
    forms (nested objects as JSON strings, files as ``attach://<part>``) or JSON bodies;
    ``{"ok": true, "result": ...}`` envelopes; errors as ``{"ok": false, "error_code",
    "description", "parameters": {"retry_after"}}`` with the same HTTP status, which is what
    aiogram maps to TelegramRetryAfter / TelegramForbiddenError / TelegramServerError / ...
  * getUpdates long polling with ``offset`` confirmation, ``timeout``, ``limit`` and
    ``allowed_updates``; a newer getUpdates ends an older waiting one with 409, and getUpdates
    while a webhook is set is a 409 too.
  * Webhooks: each update POSTed as JSON with ``X-Telegram-Bot-Api-Secret-Token``, in order,
    retried on failure.
  * Checks that catch real bugs: text > 4096 / caption > 1024 characters, callback_data > 64
    bytes, HTML or MarkdownV2 that Telegram cannot parse, "message is not modified" edits,
    unknown file ids, invalid command names, unknown callback query ids, blocked users.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import mimetypes
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from multidict import MultiDictProxy

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes, UTF-8
WEBHOOK_RETRIES = 5
WEBHOOK_RETRY_DELAY = 0.2
WEBHOOK_TIMEOUT = 5.0
UPLOAD_LIMIT = 50 * 1024 * 1024  # Telegram's limit for bot uploads
_JSON_FIELDS = frozenset({
    "reply_markup", "allowed_updates", "commands", "scope", "entities", "caption_entities",
    "menu_button", "link_preview_options", "reply_parameters", "media",
})
PAID_MESSAGE_TENTHS = 1  # 0.1 Star a paid-broadcast message
_NO_STARS = "Bad Request: not enough Stars on the bot's balance for a paid broadcast"
_RATE_LIMITED = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
_NOT_CHAT_BOUND = frozenset({"setChatMenuButton"})  # chat_id optional there, never "blocked"
_DEFAULT_UPDATES = frozenset({
    "message", "edited_message", "channel_post", "edited_channel_post", "callback_query",
    "inline_query", "chosen_inline_result", "shipping_query", "pre_checkout_query", "poll",
    "poll_answer", "my_chat_member", "chat_join_request",
})
_HTML_TAGS = frozenset({
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "tg-emoji", "code", "pre", "blockquote",
})
_HTML_ENTITIES = frozenset({"lt", "gt", "amp", "quot"})
_MDV2_MUST_ESCAPE = frozenset(".!#+-={}")
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_BLOCKED = "Forbidden: bot was blocked by the user"
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_QUERY_INVALID = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
_TERMINATED = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)
_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
    "delete the webhook first"
)

Params = dict[str, Any]
Json = dict[str, Any]
Handler = Callable[[Params], Awaitable[Any]]


@dataclass
class UploadedFile:
    """A file part of a multipart request, as the bot uploaded it."""

    data: bytes
    filename: str | None


@dataclass
class SentMessage:
    """One thing the bot showed a user: a message sent, or an edit of one."""

    message_id: int
    method: str
    chat_id: int
    text: str | None  # the text, or the caption of a photo/document
    buttons: list[list[dict[str, Any]]]  # inline keyboard rows, as sent; [] if none
    photo: bytes | str | None  # uploaded bytes, or the file_id/URL the bot passed
    document: bytes | str | None
    filename: str | None
    parse_mode: str | None
    at: float  # time.monotonic() when received
    reply_markup: dict[str, Any] | None = None  # raw, also for reply keyboards / removals

    @property
    def button_texts(self) -> list[str]:
        return [str(button.get("text")) for row in self.buttons for button in row]

    @property
    def button_data(self) -> list[str]:
        """callback_data of every button that has one, flattened."""
        return [b["callback_data"] for row in self.buttons for b in row if "callback_data" in b]

    def describe(self) -> str:
        """One line for assertion dumps."""
        extra = f" buttons={self.button_texts}" if self.buttons else ""
        media = " +photo" if self.photo is not None else ""
        media += f" +document({self.filename})" if self.document is not None else ""
        return f"#{self.message_id} {self.method}{media} {self.text!r}{extra}"


class ApiError(Exception):
    """A Telegram-shaped refusal; the HTTP layer turns it into the error envelope."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def response(self) -> web.Response:
        body: Json = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.status)


@dataclass
class _Fault:
    method: str
    status: int
    remaining: int
    retry_after: int | None
    description: str
    after: int = 0  # matching calls let through before the fault applies

    def matches(self, method: str) -> bool:
        if self.method == "*":
            return method != "getUpdates"
        return self.method.lower() == method.lower()


@dataclass
class _Queued:
    """An update waiting for getUpdates; ``returned`` once a poller has seen it."""

    update: Json
    returned: bool = False

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])

    @property
    def kind(self) -> str:
        return next(key for key in self.update if key != "update_id")


@dataclass
class _User:
    first_name: str = "Tester"
    language_code: str = "vi"


@dataclass
class _Failure:
    method: str
    status: int
    description: str


def default_description(status: int, retry_after: int | None = None) -> str:
    """Telegram's wording for the common statuses, so log assertions read naturally."""
    known = {
        400: "Bad Request: fault injected",
        401: "Unauthorized",
        403: _BLOCKED,
        404: "Not Found",
        409: "Conflict",
        429: f"Too Many Requests: retry after {retry_after}",
        500: "Internal Server Error",
        502: "Bad Gateway",
    }
    if status in known:
        return known[status]
    with contextlib.suppress(ValueError):
        return HTTPStatus(status).phrase
    return f"Error {status}"


# ---------------------------------------------------------------- request parsing


async def read_params(request: web.Request) -> Params:
    """Parameters the way Telegram reads them, whatever encoding the client chose."""
    if request.method == "GET":
        return _decode_json_fields(dict(request.query))
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            return _form_params(await request.post())
        except web.HTTPRequestEntityTooLarge as error:
            raise ApiError(413, "Request Entity Too Large") from error
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError as error:
        raise ApiError(400, "Bad Request: can't parse JSON body") from error
    if not isinstance(body, dict):
        raise ApiError(400, "Bad Request: JSON body must be an object")
    return _decode_json_fields(body)


def _form_params(form: MultiDictProxy[str | bytes | bytearray | web.FileField]) -> Params:
    """Resolve ``attach://`` references; a file part not referenced is a parameter itself."""
    params: Params = {}
    uploads: dict[str, UploadedFile] = {}
    for key, value in form.items():
        if isinstance(value, web.FileField):
            uploads[key] = UploadedFile(value.file.read(), value.filename)
        else:
            params[key] = value if isinstance(value, str) else bytes(value).decode()
    for key, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            params[key] = uploads.pop(value.removeprefix("attach://"), value)
    params.update(uploads)
    return _decode_json_fields(params)


def _decode_json_fields(params: Params) -> Params:
    for key in _JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            try:
                params[key] = json.loads(params[key])
            except ValueError as error:
                raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from error
    return params


def _int(params: Params, key: str) -> int:
    value = params.get(key)
    if value in (None, ""):
        raise ApiError(400, f"Bad Request: {key} is empty")
    try:
        return int(value)
    except (TypeError, ValueError) as error:
        description = "chat not found" if key == "chat_id" else f"invalid {key}"
        raise ApiError(400, f"Bad Request: {description}") from error


def _opt_int(params: Params, key: str) -> int | None:
    return None if params.get(key) in (None, "") else _int(params, key)


def _sliding_second(recent: deque[float], limit: float) -> None:
    """At most `limit` accepted sends in any second (`recent`: their times); a 429 beyond."""
    now = time.monotonic()
    while recent and now - recent[0] >= 1.0:
        recent.popleft()
    if len(recent) >= limit:
        raise ApiError(429, default_description(429, 1), retry_after=1)
    recent.append(now)


def _flag(params: Params, key: str) -> bool:
    return params.get(key) in (True, "true", "True", "1", 1)


# ---------------------------------------------------------------- content checks


class _TelegramHtml(HTMLParser):
    """Telegram's HTML subset: a few tags, balanced, and four named entities."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.problem: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            self._fail(f'Unsupported start tag "{tag}"')
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self._fail(f'Unexpected end tag "{tag}"')
        elif self.open:
            self.open.pop()

    def handle_entityref(self, name: str) -> None:
        if name not in _HTML_ENTITIES:
            self._fail(f'Unsupported HTML entity "&{name};"')

    def _fail(self, problem: str) -> None:
        self.problem = self.problem or problem


def check_formatting(text: str, parse_mode: str | None) -> None:
    """Refuse what Telegram refuses, so escaping bugs show up in tests, not in production."""
    problem = None
    if parse_mode == "HTML":
        parser = _TelegramHtml()
        parser.feed(text)
        parser.close()
        if parser.open and not parser.problem:
            parser.problem = f'Can\'t find end tag corresponding to start tag "{parser.open[-1]}"'
        problem = parser.problem
    elif parse_mode == "MarkdownV2":
        problem = _markdown_v2_problem(text)
    if problem:
        raise ApiError(400, f"Bad Request: can't parse entities: {problem}")


def _markdown_v2_problem(text: str) -> str | None:
    """Only the classic mistake: a reserved character left unescaped outside code."""
    escaped = in_code = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "`":
            in_code = not in_code
        elif char in _MDV2_MUST_ESCAPE and not in_code:
            return f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
    return None


def check_length(text: str, limit: int, what: str) -> None:
    if len(text) > limit:
        raise ApiError(400, f"Bad Request: {what} is too long")


def inline_rows(markup: Json | None) -> list[list[dict[str, Any]]]:
    """The inline keyboard of a reply_markup, validated like Telegram does."""
    if not markup or "inline_keyboard" not in markup:
        return []
    rows = [[dict(button) for button in row] for row in markup["inline_keyboard"]]
    for button in itertools.chain.from_iterable(rows):
        data = button.get("callback_data")
        if not button.get("text"):
            raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
        if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
            raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return rows


# ---------------------------------------------------------------- the double


class TelegramDouble:
    """The Bot API for one bot token, plus the users who talk to that bot.

    Users act through ``send_text`` / ``tap`` / ...; what the bot did is in ``sent``,
    ``calls``, ``callback_answers`` and friends. ``wait_messages`` and ``next_message`` read
    a chat like a person scrolling: each message is returned once.
    """

    rate_limit_per_second: float | None = None

    def __init__(self, token: str = "123456:TEST-token", username: str = "coso_test_bot") -> None:
        bot_id, _, _ = token.partition(":")
        if not bot_id.isdigit():
            raise ValueError("token must look like '<numeric bot id>:<secret>'")
        self.token = token
        self.username = username
        self.bot_id = int(bot_id)
        self.rate_limit_per_second = None
        self.chat_rate_limit_per_second: float | None = None
        self.sent: list[SentMessage] = []
        self.calls: list[tuple[str, Params]] = []
        self.callback_answers: list[Params] = []
        self.my_commands: dict[str, list[dict[str, Any]]] = {}
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.webhook_failures = 0
        self.files: dict[str, bytes] = {}  # file_id → content served by getFile downloads
        self.failures: list[_Failure] = []  # every error answer, for dumps
        self._base_url: str | None = None
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None
        self._push_task: asyncio.Task[None] | None = None
        self._push_queue: asyncio.Queue[Json] = asyncio.Queue()
        self._webhook_error: tuple[int, str] | None = None
        self._closing = False
        self._unreachable = False
        self._faults: list[_Fault] = []
        self._random_faults: tuple[float, random.Random] | None = None
        self._last_send_by_chat: dict[int, float] = {}
        self._recent_sends: deque[float] = deque()
        self._recent_paid: deque[float] = deque()
        self.paid_rate_limit_per_second = 1000.0  # Telegram's limit with allow_paid_broadcast
        self.star_tenths = 0  # the bot's Star balance in tenths (no Stars: paid sends refused)
        self.paid_sends = 0
        self._blocked: set[int] = set()
        self._users: dict[int, _User] = {}
        self._message_ids = itertools.count(1)
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._updates: dict[int, Json] = {}  # every update ever made, for redeliver()
        self._queue: list[_Queued] = []
        self._confirmed = 0  # getUpdates offset high-water mark
        self._allowed: frozenset[str] = _DEFAULT_UPDATES
        self._poll_generation = 0
        self._queue_changed = asyncio.Condition()
        self._bot_messages: dict[int, Json] = {}  # message_id → current Message JSON
        self._open_queries: set[str] = set()
        self._by_chat: dict[int, list[SentMessage]] = {}
        self._read: dict[int, int] = {}  # chat_id → how many messages the test has read
        self._sent_changed = asyncio.Condition()
        self._methods: dict[str, Handler] = self._method_table()
        self._canonical = {name.lower(): name for name in self._methods}

    def _method_table(self) -> dict[str, Handler]:
        return {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getMyCommands": self._get_my_commands,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getFile": self._get_file,
            "setChatMenuButton": self._true,
            "sendChatAction": self._true,
            "setMyDescription": self._true,
            "setMyShortDescription": self._true,
        }

    # ------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, no trailing slash; only after start()."""
        if self._base_url is None:
            raise RuntimeError("TelegramDouble.start() was not awaited")
        return self._base_url

    async def start(self) -> None:
        self._closing = False
        app = web.Application(client_max_size=UPLOAD_LIMIT)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/files/{file_id}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._base_url = f"http://127.0.0.1:{port}"
        self._client = ClientSession(timeout=ClientTimeout(total=WEBHOOK_TIMEOUT))
        self._push_task = asyncio.create_task(self._push_worker())

    async def stop(self) -> None:
        """Ends waiting long polls first, else the server would wait for them to time out."""
        self._closing = True
        await self._notify(self._queue_changed)
        if self._push_task is not None:
            self._push_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._push_task
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------ what the users do

    async def send_text(
        self, user_id: int, text: str, *, language_code: str = "vi", first_name: str = "Tester",
    ) -> int:
        """A user writes; writing to a bot you blocked unblocks it, as in the real app."""
        self._users[user_id] = _User(first_name, language_code)
        self._blocked.discard(user_id)
        content: Json = {"text": text}
        if text.startswith("/"):
            length = len(text.split(maxsplit=1)[0])
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return await self._new_update("message", self._user_message(user_id, content))

    async def tap(
        self, user_id: int, callback_data: str, *, message_id: int | None = None,
        strict: bool = True,
    ) -> int:
        """A user taps an inline button.

        Without ``message_id`` the newest bot message in the chat whose keyboard has that
        callback_data is used (so with one keyboard on screen: the last message with buttons).
        ``strict`` makes tapping a button that is not on screen an AssertionError, because
        such a tap usually means the test and the bot disagree about callback_data.
        """
        message = self._tap_target(user_id, callback_data, message_id, strict)
        query_id = f"{self.bot_id}{next(self._query_ids):06d}"
        self._open_queries.add(query_id)
        query: Json = {
            "id": query_id,
            "from": self._user_json(user_id),
            "chat_instance": f"ci-{user_id}",
            "data": callback_data,
            "message": copy.deepcopy(message),
        }
        return await self._new_update("callback_query", query)

    async def send_photo(
        self, user_id: int, *, file_id: str = "AgAC-photo-1", caption: str | None = None,
    ) -> int:
        """Sizes come smallest first; the last one carries ``file_id`` (bots take photo[-1])."""
        self.files.setdefault(file_id, _fake_content(file_id))
        self.files.setdefault(f"{file_id}-thumb", _fake_content(f"{file_id}-thumb"))
        content: Json = {"photo": [_photo_size(f"{file_id}-thumb", 90, 67),
                                   _photo_size(file_id, 1280, 960)]}
        if caption is not None:
            content["caption"] = caption
        return await self._new_update("message", self._user_message(user_id, content))

    async def send_document(
        self, user_id: int, *, file_id: str = "BQAC-doc-1", file_name: str = "a.pdf",
    ) -> int:
        self.files.setdefault(file_id, _fake_content(file_id))
        document = _document_json(file_id, file_name, len(self.files[file_id]))
        message = self._user_message(user_id, {"document": document})
        return await self._new_update("message", message)

    async def redeliver(self, update_id: int) -> None:
        """Delivers the very same update again, as Telegram does when it thinks we missed it."""
        if update_id not in self._updates:
            raise AssertionError(f"no update {update_id}; made so far: {sorted(self._updates)}")
        await self._deliver(copy.deepcopy(self._updates[update_id]))

    async def block_bot(self, user_id: int) -> None:
        self._blocked.add(user_id)

    # ------------------------------------------------------------ what the bot did

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        return list(self._by_chat.get(chat_id, []))

    async def wait_messages(
        self, chat_id: int, count: int = 1, timeout: float = 10.0,  # noqa: ASYNC109 - agreed API
    ) -> list[SentMessage]:
        """All unread messages to the chat, once there are at least ``count`` of them."""
        new = await self._await_unread(chat_id, count, timeout)
        self._read[chat_id] = self._read.get(chat_id, 0) + len(new)
        return new

    async def next_message(
        self, chat_id: int, timeout: float = 10.0,  # noqa: ASYNC109 - agreed API
    ) -> SentMessage:
        """The oldest unread message to the chat; later ones stay unread."""
        message = (await self._await_unread(chat_id, 1, timeout))[0]
        self._read[chat_id] = self._read.get(chat_id, 0) + 1
        return message

    async def expect_silence(self, chat_id: int, seconds: float = 0.5) -> None:
        """Fails at once if an unread message to the chat is there or arrives within seconds.

        Unread messages that arrived earlier count too: the bot said something the test has
        not looked at, which is not silence.
        """
        spoke = await self._wait_sent(lambda: bool(self._unread(chat_id)), seconds)
        if spoke:
            raise AssertionError(self.dump(chat_id, f"expected silence to chat {chat_id}"))

    def dump(self, chat_id: int, headline: str) -> str:
        """What the bot did, for assertion messages: a failing test should explain itself."""
        read = self._read.get(chat_id, 0)
        lines = [headline, f"messages to chat {chat_id} (read / NEW):"]
        for index, message in enumerate(self._by_chat.get(chat_id, [])):
            lines.append(f"  {'read' if index < read else 'NEW '} {message.describe()}")
        others = {chat: len(msgs) for chat, msgs in self._by_chat.items() if chat != chat_id}
        lines.append(f"messages to other chats: {others or 'none'}")
        lines.extend(f"  failed: {f.method} {f.status} {f.description}" for f in self.failures[-5:])
        lines.append(f"last API calls: {[method for method, _ in self.calls[-12:]]}")
        return "\n".join(lines)

    # ------------------------------------------------------------ fault injection

    def fail_next(
        self, method: str, status: int, *, count: int = 1, retry_after: int | None = None,
        description: str | None = None, after: int = 0,
    ) -> None:
        """The next ``count`` calls of ``method`` ("*": any but getUpdates) get this error,
        once ``after`` calls of it went through (after=1: the second part of a message).

        A 429 without ``retry_after`` gets retry_after=1: without it aiogram would not raise
        TelegramRetryAfter, and Telegram always sends it.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        text = description or default_description(status, retry_after)
        self._faults.append(_Fault(method, status, count, retry_after, text, after))

    def inject_random_faults(self, probability: float, *, seed: int = 5) -> None:
        """From now on each send fails with this probability, evenly as a 429 (retry_after 1),
        a 502 or a dropped connection; seeded, so a run can be repeated."""
        self._random_faults = (probability, random.Random(seed)) if probability else None

    def _random_fault(self, request: web.Request, method: str) -> web.StreamResponse | None:
        if self._random_faults is None or method not in _RATE_LIMITED:
            return None
        probability, dice = self._random_faults
        if dice.random() >= probability:
            return None
        kind = dice.choice(("429", "502", "drop"))
        if kind == "drop":
            return _drop_connection(request)
        error = ApiError(429, default_description(429, 1), 1) if kind == "429" else ApiError(
            502, default_description(502))
        self.failures.append(_Failure(method, error.status, error.description))
        return error.response()

    def set_unreachable(self, flag: bool) -> None:
        """While set, every request has its connection dropped (aiogram: network error)."""
        self._unreachable = flag

    async def drain_webhook(self) -> None:
        """Returns once every update made so far was pushed (or gave up on)."""
        await self._push_queue.join()

    # ------------------------------------------------------------ HTTP layer

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        if self._unreachable:
            return _drop_connection(request)
        if request.match_info["token"] != self.token:
            return ApiError(401, "Unauthorized").response()
        name = request.match_info["method"]
        method = self._canonical.get(name.lower(), name)
        injected = self._random_fault(request, method)
        if injected is not None:
            return injected
        try:
            params = await read_params(request)
            self.calls.append((method, params))
            result = await self._call(method, params)
        except ApiError as error:
            self.failures.append(_Failure(method, error.status, error.description))
            return error.response()
        return web.json_response({"ok": True, "result": result})

    async def _call(self, method: str, params: Params) -> Any:
        fault = self._take_fault(method)
        if fault is not None:
            raise ApiError(fault.status, fault.description, fault.retry_after)
        handler = self._methods.get(method)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        chat_bound = "chat_id" in params and method not in _NOT_CHAT_BOUND
        if chat_bound and _int(params, "chat_id") in self._blocked:
            raise ApiError(403, _BLOCKED)
        paid = method in _RATE_LIMITED and _flag(params, "allow_paid_broadcast")
        if paid:
            self._check_paid()
        elif method in _RATE_LIMITED:
            self._check_rate()
        if method in _RATE_LIMITED:
            self._check_chat_rate(_opt_int(params, "chat_id"))
        result = await handler(params)
        if paid:
            self.star_tenths -= PAID_MESSAGE_TENTHS
            self.paid_sends += 1
        return result

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if self._unreachable:
            return _drop_connection(request)
        if request.match_info["token"] != self.token:
            return web.Response(status=401, text="Unauthorized")
        content = self.files.get(request.match_info["file_id"])
        if content is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=content, content_type="application/octet-stream")

    def _take_fault(self, method: str) -> _Fault | None:
        fault = next((f for f in self._faults if f.matches(method)), None)
        if fault is not None and fault.after > 0:
            fault.after -= 1
            return None
        if fault is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
        return fault

    def _check_chat_rate(self, chat_id: int | None) -> None:
        """At most chat_rate_limit_per_second sends to one chat (a small burst is not forgiven)."""
        if self.chat_rate_limit_per_second is None or chat_id is None:
            return
        now = time.monotonic()
        last = self._last_send_by_chat.get(chat_id)
        # 10% slack: the bot paces by its own clock, requests arrive with network jitter.
        if last is not None and now - last < 0.9 / self.chat_rate_limit_per_second:
            raise ApiError(429, default_description(429, 1), retry_after=1)
        self._last_send_by_chat[chat_id] = now

    def _check_paid(self) -> None:
        """allow_paid_broadcast: 0.1 Star a message from the bot's balance, refused (400)
        without it; up to paid_rate_limit_per_second, outside the free limit's window."""
        if self.star_tenths < PAID_MESSAGE_TENTHS:
            raise ApiError(400, _NO_STARS)
        _sliding_second(self._recent_paid, self.paid_rate_limit_per_second)

    @property
    def star_balance(self) -> float:
        """The bot's Stars (paid broadcasts draw 0.1 a message); settable by a test."""
        return self.star_tenths / 10

    @star_balance.setter
    def star_balance(self, stars: float) -> None:
        self.star_tenths = round(stars * 10)

    def _check_rate(self) -> None:
        """A sliding one-second window over accepted sends, across all chats."""
        if self.rate_limit_per_second is not None:
            _sliding_second(self._recent_sends, self.rate_limit_per_second)

    # ------------------------------------------------------------ methods: bot and updates

    async def _true(self, params: Params) -> bool:
        return True

    async def _get_me(self, params: Params) -> Json:
        return {**self._bot_json(), "can_join_groups": True,
                "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def _get_updates(self, params: Params) -> list[Json]:
        if self.webhook_url:
            raise ApiError(409, _WEBHOOK_ACTIVE)
        self._confirm(_opt_int(params, "offset"))
        if params.get("allowed_updates") is not None:
            self._allowed = frozenset(params["allowed_updates"]) or _DEFAULT_UPDATES
        limit = min(max(_opt_int(params, "limit") or 100, 1), 100)
        self._poll_generation += 1
        generation = self._poll_generation
        await self._notify(self._queue_changed)  # an older poller, if any, must end
        await self._wait_for_updates(generation, _opt_int(params, "timeout") or 0)
        if generation != self._poll_generation:
            raise ApiError(409, _TERMINATED)
        batch = self._deliverable()[:limit]
        for queued in batch:
            queued.returned = True
        return [queued.update for queued in batch]

    async def _wait_for_updates(self, generation: int, seconds: float) -> None:
        def ready() -> bool:
            stale = generation != self._poll_generation
            return self._closing or stale or bool(self._deliverable())

        async with self._queue_changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._queue_changed.wait_for(ready)

    def _confirm(self, offset: int | None) -> None:
        """Forget updates below the offset that a poller was given.

        A high-water mark, not the last offset: aiogram moves its offset back after a
        redelivered (older) update, and that must not resurrect newer, confirmed ones.
        Redelivered updates nobody was given yet survive, whatever their id.
        """
        if offset is None or offset <= 0:
            return
        self._confirmed = max(self._confirmed, offset)
        self._queue = [q for q in self._queue
                       if not (q.returned and q.update_id < self._confirmed)]

    def _deliverable(self) -> list[_Queued]:
        """Updates of types the bot did not ask for are dropped, as Telegram drops them."""
        self._queue = [queued for queued in self._queue if queued.kind in self._allowed]
        return self._queue

    async def _set_webhook(self, params: Params) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(params)
        self.webhook_url = url
        self.webhook_secret = params.get("secret_token") or None
        if params.get("allowed_updates") is not None:
            self._allowed = frozenset(params["allowed_updates"]) or _DEFAULT_UPDATES
        pending, self._queue = self._deliverable(), []
        if not _flag(params, "drop_pending_updates"):
            for queued in pending:
                self._push_queue.put_nowait(queued.update)
        return True

    async def _delete_webhook(self, params: Params) -> bool:
        self.webhook_url = self.webhook_secret = None
        if _flag(params, "drop_pending_updates"):
            self._queue = []
            _empty(self._push_queue)
        return True

    async def _get_webhook_info(self, params: Params) -> Json:
        pending = self._push_queue.qsize() if self.webhook_url else len(self._deliverable())
        info: Json = {"url": self.webhook_url or "", "has_custom_certificate": False,
                      "pending_update_count": pending}
        if self.webhook_url:
            info["max_connections"] = 40
            info["allowed_updates"] = sorted(self._allowed)
        if self._webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    # ------------------------------------------------------------ methods: messages

    async def _send_message(self, params: Params) -> Json:
        chat_id = _int(params, "chat_id")
        text = str(params.get("text") or "")
        if not text:
            raise ApiError(400, "Bad Request: message text is empty")
        check_length(text, TEXT_LIMIT, "message")
        check_formatting(text, params.get("parse_mode"))
        message = self._bot_message(chat_id, {"text": text}, params.get("reply_markup"))
        await self._record("sendMessage", message, params)
        return message

    async def _send_photo(self, params: Params) -> Json:
        chat_id = _int(params, "chat_id")
        file_id, payload = self._incoming_file(params, "photo")
        content: Json = {"photo": [_photo_size(file_id, 1280, 960)], **self._caption(params)}
        message = self._bot_message(chat_id, content, params.get("reply_markup"))
        await self._record("sendPhoto", message, params, photo=payload)
        return message

    async def _send_document(self, params: Params) -> Json:
        chat_id = _int(params, "chat_id")
        file_id, payload = self._incoming_file(params, "document")
        filename = payload.filename if isinstance(payload, UploadedFile) else None
        document = _document_json(file_id, filename or "file", len(self.files.get(file_id, b"")))
        content: Json = {"document": document, **self._caption(params)}
        message = self._bot_message(chat_id, content, params.get("reply_markup"))
        await self._record("sendDocument", message, params, document=payload)
        return message

    def _caption(self, params: Params) -> Json:
        caption = params.get("caption")
        if not caption:
            return {}
        check_length(str(caption), CAPTION_LIMIT, "message caption")
        check_formatting(str(caption), params.get("parse_mode"))
        return {"caption": str(caption)}

    def _incoming_file(self, params: Params, key: str) -> tuple[str, UploadedFile | str]:
        """An upload gets a fresh file_id; a string must be a known file_id or a URL."""
        value = params.get(key)
        if isinstance(value, UploadedFile):
            file_id = f"{'AgAC' if key == 'photo' else 'BQAC'}-bot-{next(self._file_ids)}"
            self.files[file_id] = value.data
            return file_id, value
        if not value:
            raise ApiError(400, f"Bad Request: there is no {key} in the request")
        text = str(value)
        if text not in self.files and not text.startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        return text, text

    async def _edit_message_text(self, params: Params) -> Json:
        message = self._editable(params)
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text = str(params.get("text") or "")
        if not text:
            raise ApiError(400, "Bad Request: message text is empty")
        check_length(text, TEXT_LIMIT, "message")
        check_formatting(text, params.get("parse_mode"))
        return await self._apply_edit("editMessageText", message, {"text": text}, params)

    async def _edit_message_reply_markup(self, params: Params) -> Json:
        message = self._editable(params)
        return await self._apply_edit("editMessageReplyMarkup", message, {}, params)

    async def _apply_edit(self, method: str, message: Json, content: Json, params: Params) -> Json:
        """Like Telegram, an edit without reply_markup removes the inline keyboard."""
        markup = params.get("reply_markup")
        rows = inline_rows(markup)
        new = {k: v for k, v in message.items() if k not in ("reply_markup", "edit_date")}
        new.update(content)
        if rows:
            new["reply_markup"] = {"inline_keyboard": rows}
        if _visible(new) == _visible(message):
            raise ApiError(400, _NOT_MODIFIED)
        new["edit_date"] = int(time.time())
        self._bot_messages[new["message_id"]] = new
        await self._record(method, new, params)
        return new

    def _editable(self, params: Params) -> Json:
        if "inline_message_id" in params:
            raise ApiError(400, "Bad Request: inline messages are not supported by the double")
        chat_id, message_id = _int(params, "chat_id"), _int(params, "message_id")
        message = self._bot_messages.get(message_id)
        if message is None or message["chat"]["id"] != chat_id:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    async def _delete_message(self, params: Params) -> bool:
        chat_id, message_id = _int(params, "chat_id"), _int(params, "message_id")
        message = self._bot_messages.get(message_id)
        if message is None or message["chat"]["id"] != chat_id:
            raise ApiError(400, "Bad Request: message to delete not found")
        del self._bot_messages[message_id]
        return True

    async def _answer_callback_query(self, params: Params) -> bool:
        if str(params.get("callback_query_id")) not in self._open_queries:
            raise ApiError(400, _QUERY_INVALID)
        self.callback_answers.append(params)
        return True

    async def _get_file(self, params: Params) -> Json:
        file_id = str(params.get("file_id") or "")
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {"file_id": file_id, "file_unique_id": _unique(file_id),
                "file_size": len(self.files[file_id]), "file_path": f"files/{file_id}"}

    # ------------------------------------------------------------ methods: commands

    async def _set_my_commands(self, params: Params) -> bool:
        commands = params.get("commands") or []
        for command in commands:
            if not _COMMAND.fullmatch(str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: command description is invalid")
        self.my_commands[_commands_key(params)] = list(commands)
        return True

    async def _delete_my_commands(self, params: Params) -> bool:
        self.my_commands.pop(_commands_key(params), None)
        return True

    async def _get_my_commands(self, params: Params) -> list[dict[str, Any]]:
        return self.my_commands.get(_commands_key(params), [])

    # ------------------------------------------------------------ building JSON

    def _bot_json(self) -> Json:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Coso (test)",
                "username": self.username}

    def _user_json(self, user_id: int) -> Json:
        user = self._users.setdefault(user_id, _User())
        return {"id": user_id, "is_bot": False, "first_name": user.first_name,
                "language_code": user.language_code}

    def _chat_json(self, chat_id: int) -> Json:
        user = self._users.get(chat_id, _User())
        return {"id": chat_id, "type": "private", "first_name": user.first_name}

    def _user_message(self, user_id: int, content: Json) -> Json:
        return {"message_id": next(self._message_ids), "date": int(time.time()),
                "chat": self._chat_json(user_id), "from": self._user_json(user_id), **content}

    def _bot_message(self, chat_id: int, content: Json, markup: Json | None) -> Json:
        message: Json = {"message_id": next(self._message_ids), "date": int(time.time()),
                         "chat": self._chat_json(chat_id), "from": self._bot_json(), **content}
        rows = inline_rows(markup)
        if rows:
            message["reply_markup"] = {"inline_keyboard": rows}
        self._bot_messages[message["message_id"]] = message
        return message

    async def _record(
        self, method: str, message: Json, params: Params, *,
        photo: UploadedFile | str | None = None, document: UploadedFile | str | None = None,
    ) -> None:
        upload = photo if photo is not None else document
        record = SentMessage(
            message_id=message["message_id"], method=method, chat_id=message["chat"]["id"],
            text=message.get("text", message.get("caption")),
            buttons=inline_rows(message.get("reply_markup")),
            photo=_payload(photo), document=_payload(document),
            filename=upload.filename if isinstance(upload, UploadedFile) else None,
            parse_mode=params.get("parse_mode"), at=time.monotonic(),
            reply_markup=params.get("reply_markup"),
        )
        self.sent.append(record)
        self._by_chat.setdefault(record.chat_id, []).append(record)
        await self._notify(self._sent_changed)

    # ------------------------------------------------------------ delivery

    async def _new_update(self, kind: str, payload: Json) -> int:
        update_id = next(self._update_ids)
        self._updates[update_id] = {"update_id": update_id, kind: payload}
        await self._deliver(copy.deepcopy(self._updates[update_id]))
        return update_id

    async def _deliver(self, update: Json) -> None:
        if self.webhook_url:
            self._push_queue.put_nowait(update)
        else:
            self._queue.append(_Queued(update))
            await self._notify(self._queue_changed)

    async def _push_worker(self) -> None:
        """One update at a time, in order: tests then see the bot in a deterministic order."""
        while True:
            update = await self._push_queue.get()
            try:
                await self._push(update)
            finally:
                self._push_queue.task_done()

    async def _push(self, update: Json) -> None:
        """Initial try plus WEBHOOK_RETRIES retries; each failed try counts once."""
        for attempt in range(1 + WEBHOOK_RETRIES):
            if attempt:
                await asyncio.sleep(WEBHOOK_RETRY_DELAY)
            if self.webhook_url is None:  # removed meanwhile: back to getUpdates
                await self._deliver(update)
                return
            problem = await self._post_update(self.webhook_url, update)
            if problem is None:
                return
            self.webhook_failures += 1
            self._webhook_error = (int(time.time()), problem)

    async def _post_update(self, url: str, update: Json) -> str | None:
        assert self._client is not None
        headers = {SECRET_HEADER: self.webhook_secret} if self.webhook_secret else {}
        try:
            async with self._client.post(url, json=update, headers=headers) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason}"
        except (ClientError, TimeoutError) as error:
            return f"Connection failed: {type(error).__name__}: {error}"

    # ------------------------------------------------------------ waiting helpers

    async def _notify(self, condition: asyncio.Condition) -> None:
        async with condition:
            condition.notify_all()

    async def _wait_sent(self, predicate: Callable[[], bool], seconds: float) -> bool:
        async with self._sent_changed:
            try:
                async with asyncio.timeout(seconds):
                    await self._sent_changed.wait_for(predicate)
            except TimeoutError:
                return False
        return True

    async def _await_unread(self, chat_id: int, count: int, seconds: float) -> list[SentMessage]:
        if not await self._wait_sent(lambda: len(self._unread(chat_id)) >= count, seconds):
            raise AssertionError(self.dump(
                chat_id, f"expected {count} new message(s) to chat {chat_id} within {seconds}s, "
                f"got {len(self._unread(chat_id))}"))
        return self._unread(chat_id)

    def _unread(self, chat_id: int) -> list[SentMessage]:
        return self._by_chat.get(chat_id, [])[self._read.get(chat_id, 0):]

    def _tap_target(
        self, user_id: int, data: str, message_id: int | None, strict: bool,
    ) -> Json:
        mine = [m for m in self._bot_messages.values() if m["chat"]["id"] == user_id]
        if message_id is not None:
            candidates = [m for m in mine if m["message_id"] == message_id]
        else:
            with_buttons = [m for m in reversed(mine) if m.get("reply_markup")]
            having = [m for m in with_buttons if data in _callback_data(m)]
            candidates = having or ([] if strict else with_buttons)
        if not candidates or (strict and data not in _callback_data(candidates[0])):
            raise AssertionError(self._tap_problem(user_id, data, message_id, mine))
        return candidates[0]

    def _tap_problem(
        self, user_id: int, data: str, message_id: int | None, mine: Iterable[Json],
    ) -> str:
        keyboards = {m["message_id"]: sorted(_callback_data(m)) for m in mine
                     if m.get("reply_markup")}
        where = f"message {message_id}" if message_id is not None else "any message"
        return (f"user {user_id} cannot tap {data!r} on {where}; buttons on screen "
                f"(message_id → callback_data): {keyboards or 'none'}")


# ---------------------------------------------------------------- small helpers


def _drop_connection(request: web.Request) -> web.StreamResponse:
    """An outage: close the socket without an answer, as a dead proxy would."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=503, text="Service Unavailable")


def _empty(queue: asyncio.Queue[Json]) -> None:
    while not queue.empty():
        queue.get_nowait()
        queue.task_done()


def _commands_key(params: Params) -> str:
    """The language code; a non-default scope is appended ("vi|chat:42") so none overwrite."""
    language = str(params.get("language_code") or "")
    scope = params.get("scope") or {"type": "default"}
    if scope.get("type", "default") == "default":
        return language
    chat = f":{scope['chat_id']}" if "chat_id" in scope else ""
    return f"{language}|{scope['type']}{chat}"


def _visible(message: Json) -> tuple[Any, ...]:
    return (message.get("text"), message.get("caption"), message.get("reply_markup"))


def _callback_data(message: Json) -> set[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return {b["callback_data"] for row in rows for b in row if "callback_data" in b}


def _payload(value: UploadedFile | str | None) -> bytes | str | None:
    return value.data if isinstance(value, UploadedFile) else value


def _unique(file_id: str) -> str:
    return f"u-{file_id}"


def _fake_content(file_id: str) -> bytes:
    return f"fake file {file_id}".encode()


def _photo_size(file_id: str, width: int, height: int) -> Json:
    return {"file_id": file_id, "file_unique_id": _unique(file_id), "width": width,
            "height": height}


def _document_json(file_id: str, file_name: str, size: int) -> Json:
    mime, _ = mimetypes.guess_type(file_name)
    return {"file_id": file_id, "file_unique_id": _unique(file_id), "file_name": file_name,
            "mime_type": mime or "application/octet-stream", "file_size": size}


__all__ = ["ApiError", "SentMessage", "TelegramDouble", "UploadedFile"]
