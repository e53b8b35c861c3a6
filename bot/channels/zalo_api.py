"""A thin async client for the Zalo Bot Platform API (our own; no third-party SDK).

What the API is, as far as public sources show (checked while writing this module):

Transport
  * ``POST {base}/bot<token>/<method>`` with a JSON body; base ``https://bot-api.zaloplatforms.com``
    (official docs as mirrored in public repositories, "Zalo Bot API Documentation", updated
    10/12/2025). The older host ``https://bot-api.zapps.me`` is still the SDK default
    (python-zalo-bot 0.1.9, ``zalo_bot/constants.py``). The token is ``<bot_id>:<secret>`` and
    sits in the URL path, so a URL must never be logged or put into an exception message.
  * Answer envelope: ``{"ok": true, "result": ...}`` or
    ``{"ok": false, "error_code": <int>, "description": <str>}``.
  * Measured by a third-party client on the live API: API errors come back with **HTTP 200** and
    ``ok: false`` (e.g. ``"Bad request: The chat_id must not be empty"``/400, an unknown method
    ``"Not Found"``/404). Flooding is stopped by nginx **before** the API: HTTP 429 with an HTML
    page, no JSON. So both the HTTP status and ``error_code`` must be read. The only code list found
    (a Java SDK, ``ZaloErrorCode``) names 400, 401 Unauthorized, 403, 404, 408 Request timeout and
    429 Quota exceeded. Unknown: the exact answer when the user blocked the bot, when text is over
    2,000 characters, and whether a JSON 429 ever carries ``retry_after`` (python-zalo-bot reads
    Telegram-style ``parameters.retry_after``; we also read a ``Retry-After`` header).

Methods and parameters
  * ``getMe`` -> ``{id, account_name, account_type, can_join_groups}``.
  * ``getUpdates`` ``{timeout}``: long poll, seconds, documented as a *String*, default 30. There is
    no ``offset``: the server pops the update, so a read that dies in flight loses it. The result
    is ONE update object ``{event_name, message}``, not a list (docs sample; SDK
    ``Update.de_json(result)``; openclaw: "Zalo returns a single update per call"). When the wait
    expires with nothing, the live API answers HTTP 200
    ``{"ok": false, "error_code": 408, "description": "Request timeout"}`` after the asked seconds;
    some clients also see ``{"ok": true, "result": {}}``. We accept a list too, in case it changes.
    getUpdates does not work while a webhook is set (docs).
  * ``setWebhook`` ``{url (HTTPS), secret_token (8-256 chars)}`` -> ``{url, updated_at}``;
    ``getWebhookInfo`` -> ``{url, updated_at}``; ``deleteWebhook`` -> ``{url: "", updated_at}``.
  * ``sendMessage`` ``{chat_id, text (1-2,000 chars)}`` -> ``{message_id, date}``.
  * ``sendPhoto`` ``{chat_id, photo (public http(s) URL; Zalo fetches it), caption?}``;
    ``sendSticker`` ``{chat_id, sticker}``; ``sendChatAction`` ``{chat_id, action}`` with
    ``typing`` (``upload_photo`` "coming soon") -> ``{"ok": true}`` and no result.

Updates (getUpdates result, or webhook POST body)
  * Webhook: POST JSON with header ``X-Bot-Api-Secret-Token: <secret_token>``. The docs show the
    body wrapped as ``{"ok": true, "result": {event_name, message}}``; several integrators report
    the live webhook sends ``{event_name, message}`` at the top level. We accept both.
  * ``event_name``: ``message.text.received``, ``message.image.received``,
    ``message.sticker.received``, ``message.unsupported.received``.
  * ``message``: ``from {id, display_name, is_bot}``, ``chat {id, chat_type PRIVATE|GROUP}``,
    ``message_id``, ``date`` (milliseconds), ``text``; images carry ``photo_url`` (SDK
    ``_message.py``, openclaw) although the docs table says ``photo``, plus ``caption``; stickers
    carry ``sticker`` and ``url``. Ids are opaque strings (hex), read defensively.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://bot-api.zaloplatforms.com"
SECRET_HEADER = "X-Bot-Api-Secret-Token"
TEXT_LIMIT = 2000
POLL_EXPIRED = 408  # error_code of an empty long poll: the normal outcome, not a failure

TEXT_EVENT = "message.text.received"
IMAGE_EVENT = "message.image.received"
STICKER_EVENT = "message.sticker.received"
UNSUPPORTED_EVENT = "message.unsupported.received"
PRIVATE_CHAT = "PRIVATE"  # message.chat.chat_type; a group the bot was added to is "GROUP"

# Codes retrying cannot fix. 408 and 429 are 4xx but transient, so they are not here.
_PERMANENT_CODES = frozenset({400, 401, 403, 404, 405, 409, 410, 413, 414, 422})
_BLOCKED_WORDS = ("block", "chặn")


class ZaloApiError(Exception):
    """The API (or a gateway in front of it) refused a call."""

    def __init__(self, method: str, status: int, error_code: int | None, description: str,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{method}: HTTP {status}, error_code {error_code}: {description}")
        self.method = method
        self.status = status
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    @property
    def code(self) -> int:
        """The code that tells what went wrong: the API's own if any, else the HTTP status."""
        return self.error_code if self.error_code is not None else self.status

    @property
    def blocked(self) -> bool:
        """The person blocked the bot (Zalo's exact answer is unknown: match words and 403)."""
        text = self.description.lower()
        return self.code == 403 or any(word in text for word in _BLOCKED_WORDS)

    @property
    def permanent(self) -> bool:
        """Retrying the same call cannot succeed (bad request, token, blocked, gone)."""
        if self.code in (408, 429) or self.code >= 500:
            return False
        return self.blocked or self.code in _PERMANENT_CODES or "not found" in (
            self.description.lower())


class ZaloNetworkError(Exception):
    """The API could not be reached or did not answer in time; retrying may help."""


@dataclass(frozen=True)
class ZaloUpdate:
    event_name: str
    message_id: str
    chat_id: str
    user_id: str
    display_name: str | None
    text: str | None  # text messages only
    photo_url: str | None  # image messages only
    raw: dict[str, Any]
    caption: str | None = None  # the text sent with an image, if any
    chat_type: str | None = None  # "PRIVATE" or "GROUP" (docs); None when absent

    @property
    def private(self) -> bool:
        """A one-to-one chat with the bot. Without a chat_type, only a chat whose id is the
        sender's (as in every private sample of the docs) counts as one."""
        if self.chat_type is not None:
            return self.chat_type.upper() == PRIVATE_CHAT
        return self.chat_id == self.user_id and "from" in _as_dict(
            _unwrap(self.raw).get("message"))


def _as_id(value: object) -> str | None:
    """Ids are hex strings today; accept numbers too, refuse anything else (bool is an int)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    # The ledger keeps ids in 64 characters; a longer one is no id Zalo sends.
    return text if text and len(text) <= 64 else None


def _as_text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _unwrap(data: dict[str, Any]) -> dict[str, Any]:
    """Webhook bodies may be wrapped in ``{"ok": true, "result": {...}}``; polling items are not."""
    result = data.get("result")
    if "event_name" not in data and isinstance(result, dict):
        return result
    return data


def parse_update(data: Any) -> ZaloUpdate | None:
    """One update from a getUpdates item or a webhook body; None when it cannot be used."""
    if not isinstance(data, dict):
        return None
    update = _unwrap(data)
    event_name = _as_text(update.get("event_name"))
    message = update.get("message")
    if not event_name or not isinstance(message, dict):
        return None
    sender = _as_dict(message.get("from"))
    chat = _as_dict(message.get("chat"))
    message_id = _as_id(message.get("message_id"))
    chat_id = _as_id(chat.get("id"))
    if message_id is None or chat_id is None:
        return None
    is_image = event_name == IMAGE_EVENT
    return ZaloUpdate(
        event_name=event_name,
        message_id=message_id,
        chat_id=chat_id,
        # In a private chat the chat id is the sender's id (docs samples), so it stands in
        # when "from" is missing.
        user_id=_as_id(sender.get("id")) or chat_id,
        display_name=_as_text(sender.get("display_name")),
        text=_as_text(message.get("text")) if event_name == TEXT_EVENT else None,
        photo_url=(_as_text(message.get("photo_url")) or _as_text(message.get("photo"))
                   if is_image else None),
        raw=data,
        caption=_as_text(message.get("caption")) if is_image else None,
        chat_type=_as_text(chat.get("chat_type")),
    )


def _retry_after(headers: Any, envelope: dict[str, Any]) -> float | None:
    """Seconds to wait, from a Retry-After header or Telegram-style ``parameters.retry_after``."""
    header: object = headers.get("Retry-After")
    in_body: object = _as_dict(envelope.get("parameters")).get("retry_after")
    for value in (header, in_body):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            continue
        try:
            seconds = float(value)
        except ValueError:  # an HTTP date: rare enough to let the caller's backoff decide
            continue
        if seconds >= 0:
            return seconds
    return None


def _error_code(value: object) -> int | None:
    # error_code is a number today; the docs do not promise it, so accept "408" too.
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


class ZaloBotClient:
    def __init__(self, token: str, base: str = DEFAULT_BASE, *, timeout: float = 40.0) -> None:
        self._token = token
        self._base = base.rstrip("/")
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        # When the API last answered a call as it should (time.monotonic()): readiness.
        self.last_success: float | None = None

    def _http(self) -> aiohttp.ClientSession:
        # Created lazily so the client can be built outside a running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def _call(self, method: str, body: dict[str, Any] | None = None,
                    seconds: float | None = None) -> Any:
        url = f"{self._base}/bot{self._token}/{method}"
        limit = aiohttp.ClientTimeout(total=seconds or self._timeout)
        try:
            async with self._http().post(url, json=body or {}, timeout=limit) as response:
                raw = await response.read()
                status, headers = response.status, response.headers
        except (aiohttp.ClientError, TimeoutError) as err:
            # Only the class name: aiohttp's messages can carry the URL, which holds the token.
            log.warning("zalo %s failed: %s", method, type(err).__name__)
            raise ZaloNetworkError(f"{method}: {type(err).__name__}") from None
        log.debug("zalo %s -> HTTP %s", method, status)
        try:
            result = self._result(method, status, headers, raw)
        except ZaloApiError as err:
            if err.error_code == POLL_EXPIRED:  # an empty long poll: the API answered
                self.last_success = time.monotonic()
            raise
        self.last_success = time.monotonic()
        return result

    def _result(self, method: str, status: int, headers: Any, raw: bytes) -> Any:
        try:
            envelope = _as_dict(json.loads(raw))
        except ValueError:
            envelope = {}  # a gateway's HTML page (nginx 429, 502...)
        if 200 <= status < 300 and envelope.get("ok") is True:
            return envelope.get("result")
        description = _as_text(envelope.get("description")) or (
            f"HTTP {status}" if envelope else f"HTTP {status}, answer is not a JSON envelope")
        error = ZaloApiError(method, status, _error_code(envelope.get("error_code")),
                             self._mask(description), _retry_after(headers, envelope))
        if error.code != POLL_EXPIRED:
            log.info("zalo %s refused: HTTP %s, code %s", method, status, error.code)
        raise error

    def _mask(self, text: str) -> str:
        # A gateway may echo the request path, token included, into its error text.
        return text.replace(self._token, "<token>") if self._token else text

    async def get_me(self) -> dict[str, Any]:
        return _as_dict(await self._call("getMe"))

    # The name is the API's own long-poll parameter, not a cancellation scope.
    async def get_updates(self, timeout: int = 30) -> list[ZaloUpdate]:  # noqa: ASYNC109
        """Long poll; [] when the wait expired. The HTTP timeout leaves room for the server's."""
        try:
            result = await self._call("getUpdates", {"timeout": str(timeout)},
                                      seconds=timeout + 10)
        except ZaloApiError as err:
            if err.error_code == POLL_EXPIRED:
                return []
            raise
        items = result if isinstance(result, list) else [result] if result else []
        updates = [parse_update(item) for item in items]
        if None in updates:
            log.warning("zalo getUpdates: skipped %d update(s) of unknown shape",
                        updates.count(None))
        return [update for update in updates if update is not None]

    async def set_webhook(self, url: str, secret_token: str) -> dict[str, Any]:
        return _as_dict(await self._call("setWebhook", {"url": url, "secret_token": secret_token}))

    async def delete_webhook(self) -> dict[str, Any]:
        return _as_dict(await self._call("deleteWebhook"))

    async def get_webhook_info(self) -> dict[str, Any]:
        return _as_dict(await self._call("getWebhookInfo"))

    async def send_message(self, chat_id: str, text: str) -> dict[str, Any]:
        return _as_dict(await self._call("sendMessage", {"chat_id": chat_id, "text": text}))

    async def send_photo(self, chat_id: str, photo: str,
                         caption: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"chat_id": chat_id, "photo": photo}
        if caption:  # an empty caption is refused (1-2,000 characters), so leave it out
            body["caption"] = caption
        return _as_dict(await self._call("sendPhoto", body))

    async def send_chat_action(self, chat_id: str, action: str = "typing") -> dict[str, Any]:
        return _as_dict(await self._call("sendChatAction", {"chat_id": chat_id, "action": action}))
