"""Telegram through aiogram 3: updates in as Incoming, Outgoing out as messages with buttons.

Long polling by default; a webhook when TELEGRAM_WEBHOOK_URL is set. aiogram stays inside this
module: the rest of the bot sees Incoming, Outgoing and DeliveryError only. Nothing a person
wrote, and no name, goes into the logs (Decree 13/2023/ND-CP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher, Router, methods
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatType
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods.base import Response
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    FSInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from aiogram.utils.token import TokenValidationError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import ClientError, web
from pydantic import ValidationError

from bot.channels.base import DeliveryError, HandleIncoming, SendRate, frames, handle_polled
from bot.messages import LAST_QUESTION, QUESTION, Button, Incoming, Outgoing, split_text
from bot.settings import SUPPORTED_LOCALES, Settings
from storage.db import unavailable

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# aiogram reads every answer as pydantic's Response[<the method's result>], and pydantic keeps
# such generic classes in a weak cache: once collected, each is rebuilt (~4 ms of schema
# building) on the next call. Held here, they are built once (docs/performance.md, load).
_RESPONSE_TYPES = [Response[method.__returning__] for method in (  # type: ignore[name-defined]
    methods.SendMessage, methods.SendPhoto, methods.SendDocument, methods.AnswerCallbackQuery,
    methods.EditMessageReplyMarkup, methods.EditMessageText, methods.GetFile,
    methods.GetUpdates, methods.GetMe, methods.GetWebhookInfo, methods.SetMyCommands,
    methods.SetWebhook, methods.DeleteWebhook)]

NAME = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
LABEL_LIMIT = 64
COMMANDS_LIMIT = 100  # Telegram's cap on a command menu
DESCRIPTION_LIMIT = 256
REQUEST_SECONDS = 30.0  # per Bot API call; a long poll gets its own wait on top
POLL_SECONDS = 10
STOP_SECONDS = 10.0  # how long stop() lets in-flight updates finish
# Polled updates fetched and not yet done, at most; past it the poller waits, and more
# updates wait at Telegram, as a webhook's do behind its 40 connections. They queue per chat
# in front of the router (bot/channels/intake.py: 64 chats handled at once), so a waiting
# update holds no database connection, and a chat that floods takes one handling slot, not
# all of them. This bound used to be the handling limit itself (64): a 1,000-message flood
# then filled every slot with one chat's updates, and another chat's /help waited 2.7 s
# (p99, `python -m bench flood`, PostgreSQL). Larger costs memory (a waiting update is an
# aiogram task, ~25 KB: 4,096 gave a peak RSS of 355 MB in `bench load`, polling) and, at a
# SIGKILL, more fetched updates that Telegram will not deliver again; so a flood bigger than
# this still delays other chats by the time its excess takes to be ledgered.
POLLED_AT_ONCE = 512
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_FILE_ID = re.compile(r"[A-Za-z0-9_-]+")

Menu = Callable[[str], list[tuple[str, str]]]
Send = Callable[[], Awaitable[Any]]


class HandlingFailed(Exception):
    """handle() raised. Carries only the exception's type: its text may quote personal data.
    unavailable: the database was away (restarting, locked), not a bug in this update."""

    def __init__(self, kind: str, *, unavailable: bool = False) -> None:
        super().__init__(kind)
        self.unavailable = unavailable


# ---------------------------------------------------------------- updates → Incoming


def message_incoming(message: Message, update_id: int) -> Incoming | None:
    """Any private message; content the core cannot use arrives with no text and no photo,
    so the person is told what to send instead of being ignored."""
    if message.chat.type != ChatType.PRIVATE:
        return None
    photo = max(message.photo, key=lambda size: size.width * size.height) if message.photo \
        else None
    return Incoming(
        channel=NAME,
        external_id=str(message.chat.id),
        update_id=str(update_id),
        text=message.text if message.text is not None else message.caption,
        photo=photo.file_id if photo else None,
        document=message.document.file_id if message.document else None,
        display_name=display_name(message.from_user),
        language=message.from_user.language_code if message.from_user else None,
    )


def callback_incoming(query: CallbackQuery, update_id: int) -> Incoming | None:
    """A tapped button of one of our messages in a private chat."""
    message = query.message
    if message is None or message.chat.type != ChatType.PRIVATE or query.data is None:
        return None
    return Incoming(
        channel=NAME,
        external_id=str(message.chat.id),
        update_id=str(update_id),
        payload=query.data,
        display_name=display_name(query.from_user),
        language=query.from_user.language_code,
        message_ref=str(message.message_id),
    )


def display_name(user: User | None) -> str | None:
    if user is None:
        return None
    name = " ".join(part for part in (user.first_name, user.last_name) if part)
    return name or None


# ---------------------------------------------------------------- Outgoing → Bot API


def keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
    """One answer per row: labels are long Vietnamese phrases on narrow phone screens; the
    steering buttons (Skip, Back, Cancel: short words) share the last row."""
    if not buttons:
        return None
    rows = [[InlineKeyboardButton(text=label(b.label), callback_data=b.payload)]
            for b in buttons if not b.steer]
    steering = [InlineKeyboardButton(text=label(b.label), callback_data=b.payload)
                for b in buttons if b.steer]
    return InlineKeyboardMarkup(inline_keyboard=rows + [steering] if steering else rows)


def label(text: str) -> str:
    text = " ".join(text.split()) or "…"
    return text if len(text) <= LABEL_LIMIT else text[:LABEL_LIMIT - 1] + "…"


def input_file(ref: str, filename: str | None = None) -> str | FSInputFile:
    """A URL or a Telegram file id goes as is; a file on this machine is uploaded."""
    if ref.startswith(("http://", "https://")):
        return ref
    path = Path(ref)
    if path.is_file():
        return FSInputFile(path, filename=filename or path.name)
    if _FILE_ID.fullmatch(ref):
        return ref
    raise DeliveryError("telegram: the file to send is missing on this machine", permanent=True)


def delivery_error(exc: Exception) -> DeliveryError:
    """What the sender should do about a failed call: wait, retry, or give up."""
    reason = f"telegram {type(exc).__name__}: {_describe(exc)}"[:300]
    if isinstance(exc, TelegramRetryAfter):
        return DeliveryError(reason, retry_after=float(exc.retry_after))
    if isinstance(exc, TelegramForbiddenError):  # blocked by the user, or account deleted
        return DeliveryError(reason, blocked=True)
    if isinstance(exc, TelegramBadRequest | TelegramNotFound | TelegramUnauthorizedError
                  | TelegramEntityTooLarge | TelegramMigrateToChat):
        return DeliveryError(reason, permanent=True)
    if isinstance(exc, TelegramNetworkError):  # no answer: refused, dropped, timed out
        return DeliveryError(reason, unreachable=True)
    # Server errors and anything unforeseen: try again later.
    return DeliveryError(reason)


def _describe(exc: Exception) -> str:
    # Telegram's descriptions ("Bad Request: chat not found") never quote what we sent.
    return exc.message if isinstance(exc, TelegramAPIError) else str(exc) or "no details"


# ---------------------------------------------------------------- the channel


class TelegramChannel:
    name = NAME
    bot_key = ""  # which of the channel's bots (bot.app.build_channels; "" the default)
    # Every Telegram bot of this installation, this one included (bot.app.build_channels):
    # a file id is one bot's own, and another of them may have to fetch what it names.
    siblings: tuple[TelegramChannel, ...] = ()

    def __init__(self, settings: Settings, menu: Menu) -> None:
        if not settings.telegram_bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN: required for the Telegram channel")
        self.settings = settings
        self.menu = menu
        # Each chat's newest flow question still showing its keyboard, as sent from this
        # process: a typed answer takes that keyboard away. Lost on a restart, which only
        # leaves a keyboard on screen (its taps are refused as "no longer open").
        self._asked: dict[int, int] = {}
        self.send_rate = SendRate(settings.telegram_rate_per_second,
                                  settings.telegram_chat_rate_per_second,
                                  settings.telegram_paid_rate_per_second)
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base),
                                 timeout=REQUEST_SECONDS)
        try:
            self.bot = Bot(settings.telegram_bot_token, session=session)
        except TokenValidationError:
            raise ValueError("TELEGRAM_BOT_TOKEN: not a bot token (expected "
                             "'<digits>:<secret>' from @BotFather)") from None
        self.last_api_success: float | None = None  # time.monotonic(); for /readyz
        self.bot.session.middleware(self._note_success)
        self.dispatcher = Dispatcher()
        self.dispatcher.include_router(self._router())
        self.webhook_url = settings.telegram_webhook_url
        self._webhook: SimpleRequestHandler | None = None
        if self.webhook_url:
            # Its check of X-Telegram-Bot-Api-Secret-Token is used; _on_webhook feeds the
            # update in the foreground itself, so a failure answers 5xx and Telegram
            # delivers the update again.
            self._webhook = SimpleRequestHandler(
                self.dispatcher, self.bot, handle_in_background=False,
                secret_token=settings.telegram_webhook_secret)
        self._handle: HandleIncoming | None = None
        self._poller: asyncio.Task[None] | None = None
        # In arrival order, so a stop cancels (and so spools) them in the order they came.
        self._in_flight: dict[asyncio.Task[Any], None] = {}

    async def _note_success(self, make_request: Any, bot: Bot, method: Any) -> Any:
        response = await make_request(bot, method)  # raises when the call failed
        self.last_api_success = time.monotonic()
        return response

    async def probe_api(self) -> None:
        """One cheap authenticated call (getMe), for /readyz when the API has been quiet."""
        await self.bot.get_me()

    @property
    def webhook_path(self) -> str | None:
        return (urlsplit(self.webhook_url).path or "/") if self.webhook_url else None

    def routes(self) -> list[web.RouteDef]:
        if self._webhook is None or self.webhook_path is None:
            return []
        return [web.post(self.webhook_path, self._on_webhook)]

    async def _on_webhook(self, request: web.Request) -> web.StreamResponse:
        """Checks the secret (401) and that the body is an Update (400 — aiogram answers 500,
        and Telegram would redeliver it forever), then feeds the update to the dispatcher."""
        assert self._webhook is not None
        if not self._webhook.verify_secret(request.headers.get(SECRET_HEADER, ""), self.bot):
            return web.Response(status=401)
        try:
            update = Update.model_validate(await request.json(), context={"bot": self.bot})
        except (ValueError, ValidationError, RecursionError):  # RecursionError: nested too deep
            log.warning("telegram webhook: a request body that is not an Update, refused")
            return web.Response(status=400)
        try:
            # Straight to our handler rather than aiogram's request handler (it logs a
            # traceback for every failed delivery, and a database restart would bury the one
            # clear line _handle_once writes) or its dispatcher (middlewares, observers and
            # filters built and run per update, none of which we use: docs/performance.md).
            await self._receive(update)
        except HandlingFailed as failed:
            # 503 while the database is away, 500 for a bug: either way Telegram delivers
            # the update again later, and the ledger makes that safe.
            return web.Response(status=503 if failed.unavailable else 500)
        return web.json_response({})

    async def _receive(self, update: Update) -> None:
        """A webhook's update to the handler the dispatcher's router would pick: a message
        or a tapped button (allowed_updates asks Telegram for nothing else; anything else
        is ignored, as the router would)."""
        if update.message is not None:
            await self._on_message(update.message, update)
        elif update.callback_query is not None:
            await self._on_callback(update.callback_query, update)

    def _router(self) -> Router:
        router = Router(name=NAME)
        router.message.register(self._on_message)
        router.callback_query.register(self._on_callback)
        return router

    # ------------------------------------------------------------ start and stop

    async def start(self, handle: HandleIncoming) -> None:
        self._handle = handle
        if self.webhook_url:
            await self._start_webhook()
        else:
            await self._start_polling()
        await self._set_commands()

    async def _start_webhook(self) -> None:
        assert self.webhook_url and self.settings.telegram_webhook_secret
        try:
            await self.bot.set_webhook(
                self.webhook_url, secret_token=self.settings.telegram_webhook_secret,
                drop_pending_updates=False,
                allowed_updates=self.dispatcher.resolve_used_update_types())
        except TelegramUnauthorizedError:
            raise self.settings.refused_token(NAME, "401 Unauthorized") from None
        log.info("telegram: webhook mode on %s", self.webhook_path)

    async def _start_polling(self) -> None:
        try:  # getUpdates is refused while a webhook is set
            await self.bot.delete_webhook(drop_pending_updates=False)
        except TelegramUnauthorizedError:
            raise self.settings.refused_token(NAME, "401 Unauthorized") from None
        except TelegramAPIError as exc:  # the poller retries until Telegram is back
            log.warning("telegram: deleteWebhook failed (%s); polling anyway",
                        type(exc).__name__)
        self._poller = asyncio.create_task(self._poll(), name="telegram-poll")
        log.info("telegram: long polling")

    async def _poll(self) -> None:
        """aiogram's poller survives network trouble, but not a failure before its first
        poll (getMe): restart it then, rather than go deaf."""
        pause = 1.0
        while True:
            try:
                await self.dispatcher.start_polling(
                    self.bot, handle_signals=False, close_bot_session=False,
                    polling_timeout=POLL_SECONDS, tasks_concurrency_limit=POLLED_AT_ONCE,
                    allowed_updates=self.dispatcher.resolve_used_update_types())
                return  # stop_polling() was called
            except Exception as exc:
                log.error("telegram: polling stopped (%s); restarting in %.0fs",
                          type(exc).__name__, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 60.0)

    async def _set_commands(self) -> None:
        """The command menu in Vietnamese, in English, and for every other app language."""
        for language in (*SUPPORTED_LOCALES, None):
            locale = language or self.settings.default_locale
            commands = [BotCommand(command=name, description=description[:DESCRIPTION_LIMIT])
                        for name, description in self.menu(locale)
                        if _COMMAND.fullmatch(name) and description][:COMMANDS_LIMIT]
            try:
                await self.bot.set_my_commands(commands, language_code=language)
            except TelegramAPIError as exc:  # only the menu is missing; the bot still works
                log.warning("telegram: setMyCommands(%s) failed: %s", language or "default",
                            _describe(exc))

    async def stop(self) -> None:
        """Stop fetching, let in-flight updates finish (briefly), close the session."""
        await self._stop_polling()
        await self._finish_in_flight()
        # A webhook request from now on gets a 5xx, so Telegram keeps it for the next process;
        # it must not reopen the session below either (aiogram would create a fresh one).
        self._handle = None
        await self.bot.session.close()

    async def _stop_polling(self) -> None:
        if self._poller is None:
            return
        # stop_polling() ends aiogram's own tasks; cancelling our task alone would leak them.
        with contextlib.suppress(RuntimeError, TimeoutError):  # RuntimeError: between restarts
            await asyncio.wait_for(self.dispatcher.stop_polling(), STOP_SECONDS)
        self._poller.cancel()
        await asyncio.gather(self._poller, return_exceptions=True)
        self._poller = None

    async def _finish_in_flight(self) -> None:
        await asyncio.sleep(0)  # updates fetched a moment ago start, so they are counted
        if not self._in_flight:
            return
        await asyncio.wait(list(self._in_flight), timeout=STOP_SECONDS)
        late = [task for task in self._in_flight if not task.done()]
        for task in late:
            task.cancel()
        if late:
            log.warning("telegram: %d update(s) still running at stop were cancelled", len(late))
            await asyncio.gather(*late, return_exceptions=True)

    # ------------------------------------------------------------ receiving

    async def _on_message(self, message: Message, event_update: Update) -> None:
        incoming = message_incoming(message, event_update.update_id)
        if incoming is not None:
            await self._feed(incoming)

    async def _on_callback(self, query: CallbackQuery, event_update: Update) -> None:
        incoming = callback_incoming(query, event_update.update_id)
        if incoming is not None:
            await self._feed(incoming)
        # Only now: the answer is committed, and a failure above leaves the query open for
        # Telegram's redelivery of the update.
        try:
            await query.answer()
        except TelegramAPIError as exc:  # too old, or answered before a redelivery
            log.info("telegram: answerCallbackQuery failed: %s", _describe(exc))

    async def _feed(self, incoming: Incoming) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight[task] = None
        try:
            if self._webhook is not None:
                await self._handle_once(incoming)
            else:
                await self._handle_polled(incoming)
        finally:
            if task is not None:
                self._in_flight.pop(task, None)

    async def _handle_once(self, incoming: Incoming) -> None:
        """Raises on failure, so the webhook answers 5xx and Telegram tries again."""
        if self._handle is None:
            raise HandlingFailed("the channel is not started yet")
        try:
            await self._handle(incoming)
        except Exception as exc:
            reason = unavailable(exc)
            if reason is not None:  # one line, no traceback: the cause is known
                log.warning("telegram: update %s not handled: %s; answering 503 so "
                            "Telegram delivers it again", incoming.update_id, reason)
            else:
                log.error("telegram: update %s failed: %s\n%s", incoming.update_id,
                          type(exc).__name__, frames(exc))
            raise HandlingFailed(type(exc).__name__, unavailable=reason is not None) from None

    async def _handle_polled(self, incoming: Incoming) -> None:
        """Polling cannot give an update back to Telegram: retried here (see base)."""
        handle = self._handle
        if handle is None:
            log.error("telegram: update %s arrived before the channel started",
                      incoming.update_id)
            return
        await handle_polled(handle, incoming)

    # ------------------------------------------------------------ sending

    async def deliver(self, external_id: str, message: Outgoing, skip_parts: int = 0) -> None:
        try:
            chat_id = int(external_id)
        except ValueError:
            raise DeliveryError("telegram: not a chat id", permanent=True) from None
        if message.edit_of is not None and await self._edited(chat_id, message):
            return
        if message.keyboard_only:
            return  # the keyboard could not be taken away: the bot refuses a stale tap anyway
        sends = self._plan(chat_id, message)
        for index, send in enumerate(sends[skip_parts:], start=skip_parts):
            try:
                sent = await send()
                if message.extra.get(QUESTION) and index == len(sends) - 1:
                    self._asked[chat_id] = sent.message_id
            except DeliveryError as exc:
                exc.parts_sent = index
                raise
            except Exception as exc:
                error = delivery_error(exc)
                error.parts_sent = index  # a retry (after a 429's wait) sends the rest only
                raise error from None

    async def _edited(self, chat_id: int, message: Outgoing) -> bool:
        """Change the message in place (editMessageText, or editMessageReplyMarkup for the
        keyboard alone); False when Telegram refuses (too old, not ours, a photo's caption,
        a text past one message), and the message is then sent anew. A 429 or a server
        error is raised like any send's, to be retried."""
        ref = str(message.edit_of)
        if ref == LAST_QUESTION:  # a typed answer: the question this channel last sent there
            message_id = self._asked.pop(chat_id, None)
        else:
            message_id = int(ref) if ref.isascii() and ref.isdigit() and len(ref) < 19 else None
            if message_id is not None and self._asked.get(chat_id) == message_id:
                del self._asked[chat_id]
        text = message.text.strip()
        if message_id is None or (not message.keyboard_only
                                  and not 0 < len(text) <= TEXT_LIMIT):
            return False
        markup = keyboard(message.buttons)
        try:
            if message.keyboard_only:
                await self.bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id,
                                                         reply_markup=markup)
            else:
                await self.bot.edit_message_text(text=text, chat_id=chat_id,
                                                 message_id=message_id, reply_markup=markup)
        except TelegramBadRequest as exc:
            if "not modified" in _describe(exc):  # already as asked: a retried edit
                return True
            log.info("telegram: an edit refused (%s); %s", _describe(exc),
                     "nothing to do" if message.keyboard_only else "sent anew")
            return False
        except Exception as exc:
            raise delivery_error(exc) from None
        if not message.keyboard_only:  # the ticks changed in place: still the open question
            self._asked[chat_id] = message_id
        return True

    def _plan(self, chat_id: int, message: Outgoing) -> list[Send]:
        """The API calls for one message: media first, the text as caption when it fits,
        else as messages of at most 4,096 characters; the buttons go on the last call."""
        markup = keyboard(message.buttons)
        # An urgent directive's paid broadcast: up to 1,000/s for 0.1 Star a call.
        paid: dict[str, Any] = {"allow_paid_broadcast": True} if message.paid_broadcast else {}
        text = message.text.strip()
        sends: list[Send] = []
        media = [partial(send, **paid) for send in self._media(chat_id, message)]
        if media:
            *first, last = media
            sends += first
            if len(text) <= CAPTION_LIMIT:
                return [*sends, partial(last, caption=text or None, reply_markup=markup)]
            sends.append(last)
        if not text and markup is not None:
            text = "…"  # Telegram refuses an empty text, and the buttons need a message
        parts = [part for part in split_text(text, TEXT_LIMIT) if part.strip()]
        for index, part in enumerate(parts):
            last_part = index == len(parts) - 1
            sends.append(partial(self.bot.send_message, chat_id, part,
                                 reply_markup=markup if last_part else None, **paid))
        return sends

    def _media(self, chat_id: int, message: Outgoing) -> list[Callable[..., Awaitable[Any]]]:
        media: list[Callable[..., Awaitable[Any]]] = []
        if message.photo:
            media.append(partial(self._send_file, self.bot.send_photo, chat_id, message.photo))
        if message.document:
            media.append(partial(self._send_file, self.bot.send_document, chat_id,
                                 message.document, message.filename))
        return media

    async def _send_file(self, method: Callable[..., Awaitable[Any]], chat_id: int, ref: str,
                         filename: str | None = None, **fields: Any) -> Any:
        """Send a photo or file; one another bot of ours received (its file id, refused
        here) is fetched through that bot and uploaded, so that a report's photo taken by
        bot B still shows when ward staff on bot A view it."""
        file = input_file(ref, filename)
        try:
            return await method(chat_id, file, **fields)
        except TelegramBadRequest:
            if file != ref or ref.startswith(("http://", "https://")):
                raise
            data = await self.fetch_file(ref, others_only=True)
            if data is None:
                raise
        return await method(chat_id, BufferedInputFile(data, filename or "photo.jpg"), **fields)

    async def fetch_file(self, file_id: str, *, others_only: bool = False) -> bytes | None:
        """The content of a file one of our bots received (getFile, then the download), or
        None when none of them knows the id or Telegram cannot be reached now."""
        others = [other for other in self.siblings if other is not self]
        for bot in [channel.bot for channel in (others if others_only else [self, *others])]:
            try:
                found = await bot.get_file(file_id)
                if not found.file_path:
                    continue
                downloaded = await bot.download_file(found.file_path)
            except (TelegramAPIError, ClientError, TimeoutError):
                continue  # not that bot's file, or that bot is not reachable now
            if downloaded is not None:
                return downloaded.read()
        return None
