"""`coso run`: start the bot (all configured channels) until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from bot.cli.common import CliError, Context, with_db
from bot.cli.demo import build_demo_if_empty, show_demo
from bot.settings import UVLOOP_MISSING, Settings, SettingsError
from storage.backup import BackupError

Serve = Callable[[Settings], Coroutine[Any, Any, None]]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "run", help="start the bot",
        description="Migrate the database and start every configured channel (Telegram, "
                    "Zalo, the web chat) until interrupted.")
    parser.add_argument("--demo-if-empty", action="store_true",
                        help="when the database has no units yet, build the demo ward first "
                             "and print its invites")
    parser.set_defaults(handler=handle_run)


def handle_run(ctx: Context, args: argparse.Namespace) -> int:
    logging.basicConfig(level=ctx.settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiogram writes "Update id=… is handled. Duration … ms" at INFO for every update: a
    # formatted record per update that says nothing the metrics do not (docs/performance.md).
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    if args.demo_if_empty:
        outcome = with_db(ctx, lambda db: build_demo_if_empty(ctx, db))
        if outcome is not None:
            ctx.out(ctx.t("The database had no units, so a demo ward was built."))
            show_demo(ctx, outcome, json=False)
    serve = _serve(ctx)
    _freeze_imports(ctx.settings)
    try:
        with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(
                loop_factory=loop_factory(ctx.settings)) as runner:
            runner.run(serve(ctx.settings))
    except OSError as exc:  # e.g. the web chat's port is taken
        raise CliError(ctx.t("the bot stopped: {error}", error=str(exc))) from None
    except BackupError as exc:  # a restore holds the database
        raise CliError(ctx.t(exc.msgid, **exc.values)) from None
    except SettingsError as exc:  # found at start-up, e.g. a token the platform refused
        raise CliError(ctx.t(exc.msgid, **exc.values), code=2) from None
    return 0


def loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop for COSO_EVENT_LOOP=uvloop, or =auto where it is installed; None:
    asyncio's own. COSO_EVENT_LOOP=uvloop without uvloop stops here with one line."""
    if settings.event_loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if settings.event_loop == "uvloop":
            raise SettingsError(UVLOOP_MISSING) from None
        return None
    return uvloop.new_event_loop


def _freeze_imports(settings: Settings) -> None:
    """Move what the imports made (modules, classes, pydantic schemas: ~300,000 objects that
    live as long as the process) out of the collector's sight. Otherwise each full collection
    walks them all and stops the event loop for ~150 ms, which every reply waiting then pays
    (docs/performance.md, load)."""
    for module, wanted in (("bot.channels.telegram", settings.telegram_bot_token),
                           ("bot.channels.zalo", settings.zalo_bot_token)):
        if wanted:  # imported when the channel is built, so bring it in now
            importlib.import_module(module)
    gc.collect()
    gc.freeze()


def _serve(ctx: Context) -> Serve:
    try:
        from bot.app import serve
    except ImportError as exc:
        raise CliError(ctx.t("the bot server cannot start: {error}", error=str(exc))) from None
    return serve
