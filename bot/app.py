"""The running bot: channels in, router, outbox senders out, one web server for all."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from typing import IO, TYPE_CHECKING

from aiohttp import web

import bot.files  # registers the clean-up of old charts and exports; serves signed links
import bot.ops.backup  # noqa: F401  (registers the nightly backup)
from bot import dashboard
from bot.channels.base import Channel, HandleIncoming
from bot.channels.intake import Intake
from bot.channels.spool import Spool, SpooledHandle
from bot.delivery import Sender
from bot.files import prepare_data_dir  # (also registers the clean-up of old files)
from bot.flows import engine
from bot.handlers.commands import menu
from bot.handlers.router import Router
from bot.i18n import Translator
from bot.messages import Incoming
from bot.ops import health, metrics, systemd
from bot.scheduler import Scheduler
from bot.settings import Settings
from storage import backup, claimants, outbox
from storage.db import Database, unavailable
from storage.migrate import upgrade_if_behind
from storage.models import utcnow

if TYPE_CHECKING:
    from bot.channels.telegram import TelegramChannel

log = logging.getLogger(__name__)

LAPSE_SWEEP_SECONDS = 60.0
CLAIMS_WATCH_SECONDS = 5.0  # a dead process's claimed rows wait at most about this long


def build_channels(settings: Settings, db: Database) -> list[Channel]:
    """Telegram and Zalo when their tokens are set, one channel per bot (TELEGRAM_BOT_TOKENS);
    the web chat always."""
    from bot.channels.web import WebChannel

    telegrams = _telegram_channels(settings)
    channels: list[Channel] = [*telegrams]
    for token in settings.zalo_bots:
        from bot.channels.zalo import ZaloChannel

        zalo = ZaloChannel(settings.for_bot("zalo", token))
        zalo.bot_key = token.key
        if telegrams:  # a report's photo taken on Telegram, viewed on Zalo
            zalo.fetch_photo = telegrams[0].fetch_file
        channels.append(zalo)
    web_chat = WebChannel(settings, db)
    if telegrams:  # a directive's photo taken on Telegram, shown in the web chat
        web_chat.fetch_photo = telegrams[0].fetch_file
    channels.append(web_chat)
    return channels


def _telegram_channels(settings: Settings) -> list[TelegramChannel]:
    if not settings.telegram_bots:
        return []
    from bot.channels.telegram import TelegramChannel  # aiogram only when Telegram is on

    telegrams = []
    for token in settings.telegram_bots:
        telegram = TelegramChannel(settings.for_bot("telegram", token), lambda locale: menu(
            Translator(locale, settings.tz)))
        telegram.bot_key = token.key
        telegrams.append(telegram)
    for telegram in telegrams:  # a file id is one bot's: the others may fetch it for it
        telegram.siblings = tuple(telegrams)
    return telegrams


def bot_of(channel: Channel) -> str:
    """The channel's bot (BotToken.key): "" for the default bot and for the web chat."""
    return str(getattr(channel, "bot_key", "") or "")


def label_of(channel: Channel) -> str:
    """One name per channel instance, for senders, spools and health: "telegram" for the
    default bot, "telegram-<bot id>" for another."""
    key = bot_of(channel)
    return f"{channel.name}-{key}" if key else channel.name


def stamped(handle: HandleIncoming, key: str) -> HandleIncoming:
    """Updates of a bot other than the default: marked with it, and their ids made unique
    across bots (each bot numbers its updates alone) for the ledger."""
    if not key:
        return handle

    async def stamp(incoming: Incoming) -> None:
        await handle(dataclasses.replace(incoming, bot=key,
                                         update_id=f"{key}:{incoming.update_id}"))

    return stamp


def gives_updates_once(channel: Channel, settings: Settings) -> bool:
    """Zalo (no redelivery after a 5xx is documented; polled updates are popped) and
    Telegram polling (an update fetched is confirmed by the next getUpdates) get a spool;
    Telegram's webhook delivers an update again after a 5xx, and the web chat tells the
    browser, so they go straight to the router."""
    if channel.name == "zalo":
        return True
    return channel.name == "telegram" and not settings.telegram_webhook_url


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.router = Router(self.db, settings)
        self.channels = build_channels(settings, self.db)
        self.claimant = claimants.Claimant(self.db.engine)
        self.senders = {label_of(channel): Sender(self.db, channel, bot=bot_of(channel),
                                                  claimant=self.claimant)
                        for channel in self.channels}
        # Counted and timed (bot/ops); queued per chat in front, so a flooding chat takes one
        # handling slot, not all of them (bot/channels/intake.py).
        self._handle = Intake(metrics.counted(self.router.handle))
        self.spools = {label_of(channel): SpooledHandle(self._handle, Spool(
            settings.data_dir / "spool", label_of(channel))) for channel in self.channels
            if gives_updates_once(channel, settings)}
        self.db.on_commit(self._wake_senders)
        self.scheduler = Scheduler(self.db, settings)
        self.health = health.for_runtime(self.db, self.channels, self.senders)
        self.systemd = systemd.Notifier.from_env()
        metrics.watch_database(self.db)
        self.metrics = metrics.Metrics(self.db, list(dict.fromkeys(c.name for c in
                                                                   self.channels)))
        self._web: web.AppRunner | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._claims_watch: asyncio.Task[None] | None = None
        self.port: int | None = None
        self._stopped = False
        self._run_lock: IO[str] | None = None

    def channel(self, name: str) -> Channel:
        return next(c for c in self.channels if c.name == name)

    def _handle_for(self, channel: Channel) -> HandleIncoming:
        return stamped(self.spools.get(label_of(channel)) or self._handle, bot_of(channel))

    def _wake_senders(self, channels: set[str]) -> None:
        for sender in self.senders.values():  # every bot of a channel that queued rows
            if sender.channel.name in channels:
                sender.wake()

    async def start(self) -> None:
        """Start everything, or, when a part cannot start (a refused token), nothing: what
        did start is stopped again before the error goes up."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        await asyncio.to_thread(prepare_data_dir, self.settings)
        database = backup.sqlite_file(self.settings.database_url)
        if database is not None:  # `coso restore` refuses while this is held
            self._run_lock = backup.hold_running(database)
        await upgrade_if_behind(self.db, self.settings.database_url)
        await self._start_web()
        for spooled in self.spools.values():  # what an earlier run kept goes first
            spooled.start()
        for channel in self.channels:
            await channel.start(self._handle_for(channel))
        await self._release_sqlite_claims()
        await self.claimant.hold()
        await self._free_dead_claims()
        for sender in self.senders.values():
            sender.start()
        self._sweeper = asyncio.create_task(self._sweep_lapsed(), name="lapse-sweeper")
        if self.claimant.key is not None:
            self._claims_watch = asyncio.create_task(self._watch_claims(), name="claims")
        if self.settings.scheduler:
            self.scheduler.start()
        log.info("coso running: channels %s, web server on http://%s:%s/ (web chat %s)",
                 ", ".join(label_of(c) for c in self.channels), self.settings.web_host, self.port,
                 "on" if self.settings.web_chat else "off")
        self.systemd.ready()

    async def _release_sqlite_claims(self) -> None:
        # SQLite has one sender, this one: what it held when it stopped (a crash) is free now.
        if not self.db.is_sqlite:
            return
        async with self.db.transaction() as session:
            released = await outbox.release_claims(session)
        if released:
            log.info("%d outbox rows claimed before the restart are due again", released)

    async def _start_web(self) -> None:
        app = web.Application(client_max_size=2 * 1024 * 1024)
        for channel in self.channels:
            app.add_routes(channel.routes())
        app.add_routes(bot.files.routes(self.settings))  # signed links to charts and exports
        dashboard.attach(app, self.settings, self.db)
        app.add_routes(self.health.routes())
        if self.settings.metrics == "public":
            app.add_routes(self.metrics.routes())
        elif self.settings.metrics == "on":
            await self.metrics.serve_private(self.settings.metrics_host,
                                             self.settings.metrics_port, self.health.routes())
        self._web = web.AppRunner(app, access_log=None)
        await self._web.setup()
        site = web.TCPSite(self._web, self.settings.web_host, self.settings.web_port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.web_port

    async def _free_dead_claims(self) -> None:
        """Rows claimed by a process that is gone (killed, crashed) are due again now."""
        async with self.db.transaction() as session:
            freed = await claimants.free_dead_claims(session, self.claimant.key)
        if freed:
            log.info("%d outbox rows claimed by a process that is gone are due again", freed)

    async def _watch_claims(self) -> None:
        """Keep this process's lock (taken again after a lost connection) and free a dead
        process's claims within seconds (several processes on one PostgreSQL)."""
        while True:
            await asyncio.sleep(CLAIMS_WATCH_SECONDS)
            try:
                await self.claimant.hold()
                await self._free_dead_claims()
            except Exception as exc:
                reason = unavailable(exc)
                if reason is None:
                    log.exception("checking other processes' claims failed; will try again")
                else:
                    log.info("checking other processes' claims: %s; will try again", reason)

    async def _sweep_lapsed(self) -> None:
        while True:
            await asyncio.sleep(LAPSE_SWEEP_SECONDS)
            try:
                async with self.db.transaction() as session:
                    await engine.lapse_idle(session, self.settings, utcnow())
            except Exception:
                log.exception("sweeping lapsed conversations failed; will try again")

    async def stop(self) -> None:
        """Stop receiving, then sending; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        await self.systemd.stopping()
        await self.scheduler.stop()
        for task in (self._sweeper, self._claims_watch):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for channel in self.channels:
            await channel.stop()
        for spooled in self.spools.values():
            await spooled.stop()
        for sender in self.senders.values():
            await sender.stop()
        await self.claimant.let_go()
        await self.metrics.stop()
        if self._web is not None:
            await self._web.cleanup()
        await self.db.dispose()
        if self._run_lock is not None:
            self._run_lock.close()


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    runtime = Runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before starting: a stop during start-up
        with contextlib.suppress(NotImplementedError):  # is a clean stop once started
            loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    try:
        await stop.wait()
    finally:
        log.info("coso stopping")
        await runtime.stop()
