"""Zalo through our thin client: text only, so buttons become a numbered list.

The person answers with the number or the option's text; the engine matches either, without
case or diacritics, so nothing here needs to know which question is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from bot import files
from bot.channels.base import DeliveryError, HandleIncoming, SendRate, handle_polled
from bot.channels.zalo_api import (
    IMAGE_EVENT,
    SECRET_HEADER,
    TEXT_LIMIT,
    ZaloApiError,
    ZaloBotClient,
    ZaloNetworkError,
    ZaloUpdate,
    parse_update,
)
from bot.messages import PHOTO_NOTE, Incoming, Outgoing
from bot.settings import Settings, SettingsError
from storage.db import unavailable
from wording import N_

log = logging.getLogger(__name__)

POLL_SECONDS = 30
TOKEN_REFUSED = frozenset({401, 403})  # what getMe answers to a token that is not the bot's


def to_incoming(update: ZaloUpdate) -> Incoming:
    return Incoming(
        channel="zalo",
        external_id=update.chat_id,
        update_id=update.message_id,
        # An image's caption is its text, as on Telegram: a command or an answer typed
        # with the photo is read, not dropped.
        text=update.caption if update.event_name == IMAGE_EVENT else update.text,
        photo=update.photo_url,
        display_name=update.display_name,
        language=None,  # Zalo tells no language: COSO_DEFAULT_LOCALE (vi) applies
    )


def served(update: ZaloUpdate) -> bool:
    """Private chats only, as on Telegram: in a group every member would act as the person
    who registered it, and household data would go to the whole group. The line names no
    chat, person or text."""
    if update.private:
        return True
    kind = "a group" if (update.chat_type or "").upper() == "GROUP" else "a non-private"
    log.info("zalo: update %s from %s chat ignored: only private chats are served",
             update.message_id, kind)
    return False


class ZaloChannel:
    name = "zalo"
    bot_key = ""  # which of the channel's bots (bot.app.build_channels; "" the default)
    # The content of a photo another platform holds (a Telegram file id), when Telegram is
    # on too (bot.app.build_channels): Zalo takes photos by URL only.
    fetch_photo: Callable[[str], Awaitable[bytes | None]] | None = None

    def __init__(self, settings: Settings) -> None:
        assert settings.zalo_bot_token
        self.settings = settings
        self.send_rate = SendRate(settings.zalo_rate_per_second,
                                  settings.zalo_chat_rate_per_second)
        self.client = ZaloBotClient(settings.zalo_bot_token, settings.zalo_api_base)
        self._handle: HandleIncoming | None = None
        self._poller: asyncio.Task[None] | None = None

    @property
    def webhook_path(self) -> str | None:
        url = self.settings.zalo_webhook_url
        return urlsplit(url).path or "/" if url else None

    def routes(self) -> list[web.RouteDef]:
        path = self.webhook_path
        return [web.post(path, self._webhook)] if path else []

    async def start(self, handle: HandleIncoming) -> None:
        """Raises SettingsError (one line, naming the setting) when Zalo refuses the token or
        the webhook: retrying cannot fix either."""
        self._handle = handle
        await self._check_token()
        if self.settings.zalo_webhook_url:
            assert self.settings.zalo_webhook_secret
            try:
                await self.client.set_webhook(self.settings.zalo_webhook_url,
                                              self.settings.zalo_webhook_secret)
            except ZaloApiError as exc:
                if not exc.permanent:
                    raise
                raise SettingsError(N_("ZALO_WEBHOOK_URL: Zalo refused the webhook "
                                       "({code} {description})"),
                                    code=exc.code, description=exc.description) from None
            log.info("zalo: webhook mode")
            return
        with contextlib.suppress(ZaloApiError, ZaloNetworkError):
            await self.client.delete_webhook()  # getUpdates does not work while one is set
        self._poller = asyncio.create_task(self._poll(), name="zalo-poll")
        log.info("zalo: long polling")

    async def _check_token(self) -> None:
        """getMe, as Telegram's start-up does: a bad token fails now, not in a poller that
        would meet 401 on every try. No answer at all is not the token's fault: go on."""
        try:
            await self.client.get_me()
        except ZaloApiError as exc:
            if exc.code in TOKEN_REFUSED:
                raise self.settings.refused_token(
                    "zalo", f"{exc.code} {exc.description}") from None
            log.warning("zalo: getMe failed (code %s); starting anyway", exc.code)
        except ZaloNetworkError as exc:
            log.warning("zalo: getMe got no answer (%s); starting anyway", exc)

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        await self.client.close()

    async def _poll(self) -> None:
        pause = 1.0
        while True:
            try:
                updates = await self.client.get_updates(timeout=POLL_SECONDS)
                pause = 1.0
            except (ZaloApiError, ZaloNetworkError) as exc:
                log.warning("zalo: polling failed (%s); retrying in %.0fs", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 60.0)
                continue
            for update in updates:
                if served(update):
                    await self._handle_polled(update)

    async def _handle_polled(self, update: ZaloUpdate) -> None:
        # Zalo has no offset: a polled update is gone from the server, so a failure is
        # retried here, and a database that is away is waited for (see base).
        assert self._handle is not None
        await handle_polled(self._handle, to_incoming(update))

    async def _webhook(self, request: web.Request) -> web.Response:
        expected = self.settings.zalo_webhook_secret or ""
        given = request.headers.get(SECRET_HEADER, "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        try:
            update = parse_update(await request.json())
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
            log.warning("zalo webhook: a request body that is not an update, refused")
            return web.json_response({"ok": False, "description": "Bad Request"}, status=400)
        if update is not None and served(update) and self._handle is not None:
            # Zalo is not documented to deliver an update again after a 5xx: the handle
            # (bot/channels/spool.py) returns once the update is committed or spooled, so
            # 200 means kept. It raises for a bug (500) or when the database is away and the
            # spool cannot be written (503): then only a redelivery, if any, would save it.
            try:
                await self._handle(to_incoming(update))
            except Exception as exc:
                reason = unavailable(exc)
                if reason is None:
                    raise
                log.warning("zalo: update %s not handled: %s; answering 503",
                            update.message_id, reason)
                return web.json_response({"ok": False, "description": "Unavailable"},
                                         status=503)
        return web.json_response({"ok": True})

    @property
    def last_api_success(self) -> float | None:
        """When the Zalo API last answered a call (time.monotonic()); for /readyz."""
        return self.client.last_success

    async def probe_api(self) -> None:
        """One cheap authenticated call (getMe), for /readyz when the API has been quiet."""
        await self.client.get_me()

    async def deliver(self, external_id: str, message: Outgoing, skip_parts: int = 0) -> None:
        if message.keyboard_only:
            return  # no keyboards to take away: a numbered list is only text
        if message.photo and not message.photo.startswith(("http://", "https://")):
            link = await self._photo_link(message.photo)
            note = message.extra.get(PHOTO_NOTE) if link is None else None
            message = dataclasses.replace(  # no photo: the sentence saying where it is
                message, photo=link, text=f"{message.text}\n{note}" if note else message.text)
        sent = skip_parts
        try:
            for send in self._plan(external_id, message)[skip_parts:]:
                await send()
                sent += 1  # a retry (after a 429's wait) sends the rest only
        except ZaloNetworkError as exc:
            raise DeliveryError(str(exc), unreachable=True, parts_sent=sent) from None
        except ZaloApiError as exc:
            raise DeliveryError(f"zalo {exc.code}: {exc.description}",
                                permanent=exc.permanent, blocked=exc.blocked,
                                retry_after=exc.retry_after, parts_sent=sent) from None

    async def _photo_link(self, ref: str) -> str | None:
        """A signed link (COSO_PUBLIC_URL) to a photo of this machine's, or to a copy of one
        another platform holds; None when there is no public URL or no such photo, and the
        text goes alone."""
        if not self.settings.public_url:
            return None
        path: Path | None = Path(ref)
        if not await asyncio.to_thread(Path(ref).is_file):
            path = await asyncio.to_thread(files.relayed_copy, self.settings, ref)
        if path is None:
            data = await self.fetch_photo(ref) if self.fetch_photo is not None else None
            path = None if data is None else await asyncio.to_thread(
                files.relay_photo, self.settings, ref, data)
        return files.signed_url(self.settings, path) if path is not None else None

    def _plan(self, chat_id: str, message: Outgoing) -> list[Callable[[], Awaitable[object]]]:
        """The API calls for one message, in order: the photo, then the text's parts."""
        parts = message.numbered_parts(TEXT_LIMIT)
        sends: list[Callable[[], Awaitable[object]]] = []
        if message.photo and message.photo.startswith(("http://", "https://")):
            # Zalo fetches photos by URL; a local file cannot be sent as a photo here.
            caption = parts[0] if len(parts) == 1 else None
            sends.append(partial(self.client.send_photo, chat_id, message.photo, caption))
            if caption is not None:
                return sends
        sends += [partial(self.client.send_message, chat_id, part) for part in parts]
        return sends
