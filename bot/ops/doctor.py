"""`coso doctor`'s checks: what an operator verifies before (and after) starting the bot.

Each check asks the part it checks: the database through storage, each token and webhook
through the channel's own client (getMe, getWebhookInfo), COSO_PUBLIC_URL by fetching its
/healthz as the platforms would reach it. A finding is ok, warn (works, but look at it) or
fail (the bot cannot do its work); texts are msgids, translated by the command.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.i18n import N_
from bot.settings import UVLOOP_MISSING, BotToken, Settings, bot_key
from storage import health
from storage.db import Database, unavailable
from storage.migrate import current_heads, known_revision

OK, WARN, FAIL = "ok", "warn", "fail"
SECONDS = 10.0  # per network check
MIN_FREE, LOW_FREE = 200 * 1024 * 1024, 1024 * 1024 * 1024  # disk space: fail, warn below
PENDING_WARN = 100  # webhook updates waiting at the platform: the bot is not keeping up


@dataclass
class Finding:
    key: str  # stable, for --json: "database", "telegram.token"...
    label: str  # msgid
    status: str
    detail: str  # msgid
    values: dict[str, Any] = field(default_factory=dict)
    bot: str = ""  # with several bots (TELEGRAM_BOT_TOKENS): which one, "" the default
    bot_id: str = ""  # the bot's id (before the token's ':'), the default's too: shown


def _of_bot(found: list[Finding], bot: BotToken) -> list[Finding]:
    """One bot's findings, named by its id; keyed apart from the default's
    ('telegram.token.222222')."""
    shown = bot.key or bot_key(bot.token)
    if not bot.key:
        return [dataclasses.replace(f, bot_id=shown) for f in found]
    return [dataclasses.replace(f, key=f"{f.key}.{bot.key}", bot=bot.key, bot_id=shown)
            for f in found]


Check = Callable[[Settings], Awaitable[list[Finding]]]


async def run_all(settings: Settings) -> list[Finding]:
    found: list[Finding] = []
    for check in (settings_check, event_loop_check, timezone_check, database_check,
                  telegram_check,
                  zalo_check, public_url_check, data_dir_check):
        try:
            async with asyncio.timeout(3 * SECONDS):
                found += await check(settings)
        except TimeoutError:
            found.append(Finding(check.__name__, N_("Check"), FAIL, N_("no answer in time")))
    return found


async def settings_check(settings: Settings) -> list[Finding]:
    channels = [name for name, token in (("Telegram", settings.telegram_bot_token),
                                         ("Zalo", settings.zalo_bot_token)) if token]
    values = {"database": "SQLite" if settings.is_sqlite else "PostgreSQL",
              "channels": ", ".join([*channels, "web"]),
              "web": f"{settings.web_host}:{settings.web_port}"}
    found = [Finding("settings", N_("Settings"), OK,
                     N_("read; database {database}, channels {channels}, web server {web}"),
                     values)]
    for name, url in (("TELEGRAM_WEBHOOK_URL", settings.telegram_webhook_url),
                      ("ZALO_WEBHOOK_URL", settings.zalo_webhook_url),
                      ("COSO_PUBLIC_URL", settings.public_url)):
        if url and not url.startswith("https://"):
            found.append(Finding("settings.https", N_("Settings"), WARN,
                                 N_("{name} is not HTTPS: the platforms need HTTPS"),
                                 {"name": name}))
    return found


async def event_loop_check(settings: Settings) -> list[Finding]:
    """COSO_EVENT_LOOP=uvloop without uvloop stops coso run at start: say so now."""
    label = N_("Event loop")
    if settings.event_loop == "asyncio":
        return [Finding("event_loop", label, OK, N_("asyncio (COSO_EVENT_LOOP)"))]
    try:
        import uvloop  # noqa: F401 - only whether it is there
    except ImportError:
        if settings.event_loop == "uvloop":
            return [Finding("event_loop", label, FAIL, UVLOOP_MISSING)]
        return [Finding("event_loop", label, OK,
                        N_("asyncio: COSO_EVENT_LOOP=auto, and uvloop is not installed"))]
    return [Finding("event_loop", label, OK, N_("uvloop (COSO_EVENT_LOOP={setting})"),
                    {"setting": settings.event_loop})]


async def timezone_check(settings: Settings) -> list[Finding]:
    """The zone, its offset from UTC (what shows a wrong tzdata) and the local time now; the
    command writes the time in the reader's language (Translator.full_datetime)."""
    now = datetime.now(settings.tz)
    offset = now.strftime("%z")  # +0700
    return [Finding("timezone", N_("Time zone"), OK, N_("{zone} (UTC{offset}): now {now}"),
                    {"zone": settings.timezone, "offset": f"{offset[:3]}:{offset[3:]}",
                     "now": now})]


async def database_check(settings: Settings) -> list[Finding]:
    db = Database(settings.database_url)
    try:
        try:
            async with asyncio.timeout(SECONDS), db.read() as session:
                await health.ping(session)
                applied = await health.applied_revisions(session)
        except Exception as exc:
            return [_database_failure(exc)]
    finally:
        await db.dispose()
    found = [Finding("database", N_("Database"), OK, N_("answers"))]
    heads = set(current_heads())
    revision = ", ".join(sorted(applied)) or "—"
    if applied == heads:
        found.append(Finding("migrations", N_("Migrations"), OK, N_("current ({revision})"),
                             {"revision": revision}))
    elif applied and not all(known_revision(r) for r in applied):
        found.append(Finding("migrations", N_("Migrations"), FAIL,
                             N_("at {revision}, newer than this Coso: upgrade Coso"),
                             {"revision": revision}))
    else:
        found.append(Finding("migrations", N_("Migrations"), FAIL,
                             N_("at {revision}, not {head}: run `coso db upgrade`"),
                             {"revision": revision, "head": ", ".join(sorted(heads))}))
    return found


def _database_failure(exc: Exception) -> Finding:
    """What failed, in a sentence that says what to do (no exception's name)."""
    label = N_("Database")
    names = _names(exc)
    if isinstance(exc, TimeoutError):
        return Finding("database", label, FAIL, N_("no answer in {seconds} seconds: is the "
                                                   "database server running?"),
                       {"seconds": int(SECONDS)})
    if names & {"InvalidPasswordError", "InvalidAuthorizationSpecificationError"}:
        return Finding("database", label, FAIL, N_("the server refused the login: check the "
                                                   "user and password in COSO_DATABASE_URL"))
    if "InvalidCatalogNameError" in names:
        return Finding("database", label, FAIL, N_("the database named in COSO_DATABASE_URL "
                                                   "does not exist: create it, or correct "
                                                   "the name"))
    if unavailable(exc) is not None:
        return Finding("database", label, FAIL, N_("cannot reach it now: check that the "
                                                   "database server is running (or that "
                                                   "the SQLite file can be opened), and "
                                                   "COSO_DATABASE_URL"))
    return Finding("database", label, FAIL, N_("cannot read it: check COSO_DATABASE_URL, and "
                                               "that its migrations were run (coso db "
                                               "upgrade)"))


def _names(exc: BaseException) -> set[str]:
    """The type names of an exception and of what it wraps (SQLAlchemy's orig, causes):
    to tell failures apart, never to show."""
    names: set[str] = set()
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        names.add(type(seen).__name__)
        orig = getattr(seen, "orig", None)
        seen = orig if isinstance(orig, BaseException) else seen.__cause__ or seen.__context__
    return names


async def telegram_check(settings: Settings) -> list[Finding]:
    """Every Telegram bot's token and webhook, the default first; the bots asked at once."""
    return await _each_bot(settings, "telegram", _telegram_bot)


async def zalo_check(settings: Settings) -> list[Finding]:
    return await _each_bot(settings, "zalo", _zalo_bot)


async def _each_bot(settings: Settings, platform: str, check: Check) -> list[Finding]:
    bots = settings.telegram_bots if platform == "telegram" else settings.zalo_bots
    answers = await asyncio.gather(*(check(settings.for_bot(platform, bot)) for bot in bots))
    return [finding for bot, found in zip(bots, answers, strict=True)
            for finding in _of_bot(found, bot)]


async def _telegram_bot(settings: Settings) -> list[Finding]:
    from bot.channels.telegram import TelegramChannel

    try:
        channel = TelegramChannel(settings, lambda locale: [])
    except ValueError:
        return [Finding("telegram.token", N_("Telegram token"), FAIL,
                        N_("not a bot token: TELEGRAM_BOT_TOKEN takes '<digits>:<secret>' as "
                           "@BotFather gives it"))]
    try:
        try:
            me = await channel.bot.get_me()
        except Exception as exc:
            return [_api_failure("telegram.token", N_("Telegram token"), exc, settings)]
        found = [Finding("telegram.token", N_("Telegram token"), OK, N_("accepted: @{name}"),
                         {"name": me.username or str(me.id)})]
        try:
            info = await channel.bot.get_webhook_info()
        except Exception as exc:
            return [*found, _api_failure("telegram.webhook", N_("Telegram webhook"), exc,
                                         settings)]
        found.append(webhook_finding("telegram.webhook", N_("Telegram webhook"),
                                     settings.telegram_webhook_url, info.url,
                                     info.pending_update_count, info.last_error_message))
        return found
    finally:
        await channel.bot.session.close()


async def _zalo_bot(settings: Settings) -> list[Finding]:
    from bot.channels.zalo_api import ZaloBotClient

    assert settings.zalo_bot_token
    client = ZaloBotClient(settings.zalo_bot_token, settings.zalo_api_base, timeout=SECONDS)
    try:
        try:
            me = await client.get_me()
        except Exception as exc:
            return [_api_failure("zalo.token", N_("Zalo token"), exc, settings)]
        name = me.get("account_name") or me.get("display_name") or me.get("id") or "?"
        found = [Finding("zalo.token", N_("Zalo token"), OK, N_("accepted: {name}"),
                         {"name": name})]
        try:
            info = await client.get_webhook_info()
        except Exception as exc:
            return [*found, _api_failure("zalo.webhook", N_("Zalo webhook"), exc, settings)]
        found.append(webhook_finding("zalo.webhook", N_("Zalo webhook"),
                                     settings.zalo_webhook_url, str(info.get("url") or ""),
                                     None, None))
        return found
    finally:
        await client.close()


def webhook_finding(key: str, label: str, wanted: str | None, actual: str,
                    pending: int | None, last_error: str | None) -> Finding:
    values: dict[str, Any] = {"url": actual or "—", "pending": pending or 0,
                              "error": last_error or ""}
    if not wanted:
        if actual:
            return Finding(key, label, WARN, N_("a webhook is set ({url}) but the bot polls: "
                                                "coso run removes it at start"), values)
        return Finding(key, label, OK, N_("none: long polling"), values)
    if not actual:
        return Finding(key, label, WARN, N_("not set yet: coso run sets it at start"), values)
    if actual != wanted:
        values["wanted"] = wanted
        return Finding(key, label, FAIL, N_("set to {url}, not {wanted}: another bot or an "
                                            "old address gets the updates"), values)
    if last_error:
        return Finding(key, label, WARN, N_("{url}; {pending} waiting; last error: {error}"),
                       values)
    if pending is not None and pending > PENDING_WARN:
        return Finding(key, label, WARN, N_("{url}; {pending} updates waiting"), values)
    return Finding(key, label, OK, N_("{url}; {pending} waiting"), values)


async def public_url_check(settings: Settings) -> list[Finding]:
    if not settings.public_url:
        return [Finding("public_url", N_("Public URL"), OK,
                        N_("not set (COSO_PUBLIC_URL): no links to the web server"))]
    import aiohttp  # here: `coso --help` and the commands but doctor need none of it

    url = settings.public_url.rstrip("/") + "/healthz"
    try:
        async with aiohttp.ClientSession() as http, http.get(
                url, timeout=aiohttp.ClientTimeout(total=SECONDS)) as response:
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [Finding("public_url", N_("Public URL"), FAIL, _unreachable(exc),
                        {"url": url, "seconds": int(SECONDS)})]
    if status == 200:
        return [Finding("public_url", N_("Public URL"), OK, N_("{url} answers"),
                        {"url": url})]
    return [Finding("public_url", N_("Public URL"), FAIL,
                    N_("{url} answers HTTP {status}: is the bot running behind the proxy?"),
                    {"url": url, "status": status})]


def _unreachable(exc: Exception) -> str:
    """Why COSO_PUBLIC_URL was not reached, and what to look at."""
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return N_("{url} unreachable: its name does not resolve from here; check "
                  "COSO_PUBLIC_URL and the name's DNS record")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return N_("{url} unreachable: its HTTPS certificate is not accepted; renew it, or fix "
                  "the reverse proxy's certificate")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return N_("{url} unreachable: nothing answers there; check that the reverse proxy is "
                  "running and its port is open")
    if isinstance(exc, TimeoutError):
        return N_("{url} unreachable: no answer in {seconds} seconds; check the firewall and "
                  "the reverse proxy")
    return N_("{url} unreachable: the connection failed; check COSO_PUBLIC_URL and the "
              "reverse proxy")


async def data_dir_check(settings: Settings) -> list[Finding]:
    return await asyncio.to_thread(_data_dir, settings.data_dir)


def _data_dir(folder: Path) -> list[Finding]:
    label = N_("Data directory")
    if not folder.exists():
        return [Finding("data_dir", label, WARN, N_("{path} does not exist yet: the bot "
                                                    "creates it"), {"path": str(folder)})]
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return [Finding("data_dir", label, FAIL, N_("{path} is not a directory the bot can "
                                                    "write to"), {"path": str(folder)})]
    found = []
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o077:
        found.append(Finding("data_dir.permissions", label, WARN,
                             N_("{path} is open to other users ({mode}): chmod 700"),
                             {"path": str(folder), "mode": oct(mode)}))
    free = shutil.disk_usage(folder).free
    # A number: the command writes it in the reader's locale (Babel), e.g. 71,4 in vi.
    values = {"path": str(folder), "free": round(free / 1024 ** 3, 1)}
    if free < MIN_FREE:
        found.append(Finding("data_dir.space", label, FAIL, N_("{path}: only {free} GB free"),
                             values))
    elif free < LOW_FREE:
        found.append(Finding("data_dir.space", label, WARN, N_("{path}: only {free} GB free"),
                             values))
    else:
        found.append(Finding("data_dir.space", label, OK, N_("{path}: {free} GB free"),
                             values))
    return found


def _api_failure(key: str, label: str, exc: Exception, settings: Settings) -> Finding:
    """A token or webhook call that failed: refused (401), the API not reached, or an
    error answered; said in a sentence, the exception's name only told apart."""
    import aiohttp

    text = f"{type(exc).__name__} {getattr(exc, 'code', '')} {exc}".lower()
    if "unauthorized" in text or " 401" in text:
        return Finding(key, label, FAIL, N_("refused by the platform (401): check the token"))
    platform = key.partition(".")[0]
    values = {"platform": platform.capitalize(), "setting": f"{platform.upper()}_API_BASE",
              "base": getattr(settings, f"{platform}_api_base")}
    if isinstance(exc, OSError | TimeoutError | aiohttp.ClientError) or "network" in text:
        return Finding(key, label, FAIL, N_("the {platform} API ({base}) is not reached from "
                                            "this machine: check the network, a firewall or "
                                            "proxy, and {setting}"), values)
    return Finding(key, label, FAIL, N_("the {platform} API ({base}) answered with an error: "
                                        "check {setting}, or try again in a few minutes"),
                   values)
