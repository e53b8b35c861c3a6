"""Settings from the environment and `.env` (names as in DESIGN.md's interface contract)."""

from __future__ import annotations

import hashlib
import os
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from wording import N_

SUPPORTED_LOCALES = ("vi", "en")
# What Telegram accepts as a webhook's secret_token.
_TELEGRAM_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Zalo's setWebhook takes a secret_token of 8 to 256 characters (no character set is given);
# it comes back in an HTTP header, so only what a header carries unchanged is allowed.
_ZALO_SECRET = re.compile(r"[\x21-\x7e]{8,256}")


# What coso run and coso doctor say of COSO_EVENT_LOOP=uvloop where uvloop is missing.
UVLOOP_MISSING = N_("COSO_EVENT_LOOP=uvloop, but uvloop is not installed: pip install "
                    "'coso-bot[fast]', or set COSO_EVENT_LOOP=asyncio")


def _untranslated(msgid: str, **values: Any) -> str:
    return msgid.format(**values) if values else msgid


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable. str() is the
    English line (logs, tests); `say(t)` the same line in t's language, for a person (the
    catalogs cannot be read here: bot.i18n imports this module). Without `name`,
    t(msgid, **values) is the whole line, as the commands that catch it translate it."""

    def __init__(self, msgid: str, name: str | None = None, **values: Any) -> None:
        self.msgid, self.name, self.values = msgid, name, values
        super().__init__(self.say())

    def say(self, t: Callable[..., str] = _untranslated) -> str:
        """'COSO_WEB_PORT: phải là số nguyên, không phải “abc”' with t a Translator."""
        problem = t(self.msgid, **self.values)
        return f"{self.name}: {problem}" if self.name else problem


class Invalid(ValueError):
    """What the validators below raise: a msgid and its values, so the person reads it in
    their language; `name` for the checks across fields (the variable is not the field)."""

    def __init__(self, msgid: str, name: str | None = None, **values: Any) -> None:
        self.msgid, self.name, self.values = msgid, name, values
        problem = _untranslated(msgid, **values)
        super().__init__(f"{name}: {problem}" if name else problem)


# TELEGRAM_BOT_TOKENS / ZALO_BOT_TOKENS: several bots on one platform, each serving unit
# subtrees (docs/deploy.md, "Several bots"): `TOKEN=79:26734,26737;TOKEN=...`.
_UNIT_CODE = re.compile(r"[^\s,;=]{1,64}")
_TELEGRAM_TOKEN = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{1,100}")


@dataclass(frozen=True)
class BotToken:
    """One bot of a platform: its own channel instance, pace, webhook path or poller.

    key: what a chat account records as its bot (ChatAccount.bot, NULL for ""): "" the
    default bot (TELEGRAM_BOT_TOKEN, else the first of TELEGRAM_BOT_TOKENS), which every
    account made before there were several bots talks to; for the others the bot's id, the
    digits before the token's ':' (kept when the token is revoked and renewed), so no secret
    is stored.
    units: the codes of the unit subtrees it serves (its invite cards' deep links); empty:
    every unit no other bot serves."""

    key: str
    token: str
    units: tuple[str, ...] = ()


def parse_bot_tokens(value: str, name: str) -> list[BotToken]:
    """`TOKEN=UNIT,UNIT;TOKEN=UNIT;TOKEN` (';' or new lines between bots); keys as above,
    the first entry's key "" (the caller re-keys when TELEGRAM_BOT_TOKEN is the default)."""
    bots: list[BotToken] = []
    for number, entry in enumerate(filter(None, (piece.strip() for piece in
                                                 re.split(r"[;\n]", value))), start=1):
        token, _, codes = (part.strip() for part in entry.partition("="))
        units = tuple(filter(None, (code.strip() for code in codes.split(","))))
        if not token:
            raise Invalid(N_("entry {number} has no token before '='"), name, number=number)
        bad = next((code for code in units if not _UNIT_CODE.fullmatch(code)), None)
        if bad is not None:
            raise Invalid(N_("entry {number}: {code} is not a unit code"), name,
                          number=number, code=repr(bad[:20]))
        bots.append(BotToken(bot_key(token), token, units))
    return bots


def bot_key(token: str) -> str:
    """The bot's id (the digits before ':'), else a digest of the token: never the secret."""
    head, sep, _ = token.partition(":")
    if sep and head.isdigit() and len(head) <= 20:
        return head
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite+aiosqlite:///./coso.db", alias="COSO_DATABASE_URL")
    timezone: str = Field("Asia/Ho_Chi_Minh", alias="COSO_TIMEZONE")
    default_locale: str = Field("vi", alias="COSO_DEFAULT_LOCALE")
    web_host: str = Field("127.0.0.1", alias="COSO_WEB_HOST")
    web_port: int = Field(8080, ge=0, le=65535, alias="COSO_WEB_PORT")
    conversation_idle_minutes: int = Field(60, ge=1, alias="COSO_CONVERSATION_IDLE_MINUTES")
    invite_expiry_days: int = Field(7, ge=1, alias="COSO_INVITE_EXPIRY_DAYS")
    log_level: str = Field("INFO", alias="COSO_LOG_LEVEL")
    # asyncio's own loop; "uvloop" (the optional extra `fast`), or "auto": uvloop where it is
    # installed. Not the default: it measured within 1-2% of asyncio's (docs/performance.md).
    event_loop: Literal["auto", "asyncio", "uvloop"] = Field("asyncio",
                                                             alias="COSO_EVENT_LOOP")
    # Files the bot keeps: directive attachments, digest charts, exports sent in chat.
    # Made absolute when read (see _absolute_dir): paths stored in the database under it
    # must not depend on the working directory of whichever process reads them.
    data_dir: Path = Field(Path("./data"), alias="COSO_DATA_DIR")

    # City-wide schedule defaults (a ward may override each); HH:MM in COSO_TIMEZONE.
    check_in_at: str = Field("16:00", alias="COSO_CHECK_IN_AT")
    reminder_at: str = Field("18:00", alias="COSO_REMINDER_AT")
    digest_at: str = Field("19:30", alias="COSO_DIGEST_AT")
    weekdays_only: bool = Field(False, alias="COSO_WEEKDAYS_ONLY")
    # Ward staff hear of units still silent this long after the reminder (capped at the
    # digest time), so leaders have time to answer the reminder first.
    escalation_after_minutes: int = Field(60, ge=0, le=720,
                                          alias="COSO_ESCALATION_AFTER_MINUTES")
    scheduler: bool = Field(True, alias="COSO_SCHEDULER")  # run the daily and periodic jobs

    # Delivery limits per channel (Telegram's published limits by default).
    telegram_rate_per_second: float = Field(30.0, gt=0, alias="TELEGRAM_RATE_PER_SECOND")
    telegram_chat_rate_per_second: float = Field(1.0, gt=0,
                                                 alias="TELEGRAM_CHAT_RATE_PER_SECOND")
    # Paid broadcast (allow_paid_broadcast): urgent directives sent with --urgent-paid go at
    # up to 1,000 messages/s for 0.1 Star a message from the bot's balance. Unset: refused.
    telegram_paid_broadcast_max_stars: float | None = Field(
        None, ge=0, alias="TELEGRAM_PAID_BROADCAST_MAX_STARS")
    telegram_paid_rate_per_second: float = Field(1000.0, gt=0,
                                                 alias="TELEGRAM_PAID_RATE_PER_SECOND")
    zalo_rate_per_second: float = Field(20.0, gt=0, alias="ZALO_RATE_PER_SECOND")
    zalo_chat_rate_per_second: float = Field(1.0, gt=0, alias="ZALO_CHAT_RATE_PER_SECOND")

    telegram_bot_token: str | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    # Several bots, each with the unit subtrees it serves: `TOKEN=79:26734,26737;TOKEN=...`
    # (docs/deploy.md, "Several bots"). With TELEGRAM_BOT_TOKEN set too, that one is the
    # default bot; else the first listed is (and TELEGRAM_BOT_TOKEN is read as it).
    telegram_bot_tokens: str = Field("", alias="TELEGRAM_BOT_TOKENS")
    telegram_api_base: str = Field("https://api.telegram.org", alias="TELEGRAM_API_BASE")
    telegram_webhook_url: str | None = Field(None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: str | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")

    zalo_bot_token: str | None = Field(None, alias="ZALO_BOT_TOKEN")
    zalo_bot_tokens: str = Field("", alias="ZALO_BOT_TOKENS")  # as TELEGRAM_BOT_TOKENS
    zalo_api_base: str = Field("https://bot-api.zaloplatforms.com", alias="ZALO_API_BASE")
    zalo_webhook_url: str | None = Field(None, alias="ZALO_WEBHOOK_URL")
    zalo_webhook_secret: str | None = Field(None, alias="ZALO_WEBHOOK_SECRET")

    # --- ops: metrics (bot/ops/metrics.py) ---
    # off; on: /metrics on its own listener (below); public: on the public web server too.
    metrics: str = Field("off", alias="COSO_METRICS")
    metrics_host: str = Field("127.0.0.1", alias="COSO_METRICS_HOST")
    metrics_port: int = Field(9108, ge=0, le=65535, alias="COSO_METRICS_PORT")
    # --- ops: nightly SQLite backups (bot/ops/backup.py); off while COSO_BACKUP_DIR is unset ---
    backup_dir: Path | None = Field(None, alias="COSO_BACKUP_DIR")
    backup_keep_days: int = Field(14, ge=1, alias="COSO_BACKUP_KEEP_DAYS")
    backup_at: str = Field("02:00", alias="COSO_BACKUP_AT")
    # The web chat's page and API on the web server (off: only the webhooks are served).
    web_chat: bool = Field(True, alias="COSO_WEB_CHAT")
    # Reverse proxies (comma-separated CIDRs) whose X-Forwarded-For is believed, so that rate
    # limits and logs see the client's address rather than the proxy's.
    trusted_proxies: str = Field("", alias="COSO_TRUSTED_PROXIES")
    # The HTTPS base that reaches this web server (e.g. https://coso.example.vn): signed links
    # to charts, exports and attachments, for Zalo, which takes photos by URL only; the
    # dashboard's login links; coso doctor checks that it reaches this server.
    public_url: str | None = Field(None, alias="COSO_PUBLIC_URL")
    # Signs those links; when unset, one is generated and kept in COSO_DATA_DIR (0600).
    file_secret: str | None = Field(None, min_length=16, alias="COSO_FILE_SECRET")
    # Updates a minute one chat account gets answers to (bot/handlers/flood.py).
    flood_per_minute: int = Field(20, ge=1, alias="COSO_FLOOD_PER_MINUTE")
    dashboard: bool = Field(True, alias="COSO_DASHBOARD")  # the ward dashboard and /web

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise Invalid(N_("unknown time zone “{zone}” (e.g. Asia/Ho_Chi_Minh)"),
                          zone=value[:50]) from exc
        return value

    @field_validator("check_in_at", "reminder_at", "digest_at", "backup_at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        hours, _, minutes = value.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2
                and int(hours) < 24 and int(minutes) < 60):
            raise Invalid(N_("must be a time HH:MM (e.g. 16:00), not “{value}”"),
                          value=value[:20])
        return f"{int(hours):02d}:{minutes}"

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics_mode(cls, value: object) -> str:
        mode = {"true": "on", "1": "on", "false": "off", "0": "off", "": "off"}.get(
            str(value).strip().lower(), str(value).strip().lower())
        if mode not in ("off", "on", "public"):
            raise Invalid(N_("must be off, on (its own listener) or public"))
        return mode

    @field_validator("default_locale")
    @classmethod
    def _supported_locale(cls, value: str) -> str:
        if value not in SUPPORTED_LOCALES:
            raise Invalid(_ONE_OF, choices=", ".join(SUPPORTED_LOCALES), value=value[:20])
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise Invalid(N_("must start with sqlite+aiosqlite:// or postgresql+asyncpg://"))
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute_dir(cls, value: Path) -> Path:
        """Resolved once, against the working directory at start: a photo's path stored
        as data/photos/….png was read as a platform's file id (and would break for a
        process started elsewhere, e.g. `coso` from another directory)."""
        return Path(os.path.abspath(value.expanduser()))

    @field_validator("public_url")
    @classmethod
    def _public_base(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise Invalid(N_("must start with https:// (or http:// on a test machine)"))
        return value.rstrip("/")

    @field_validator("telegram_api_base", "zalo_api_base")
    @classmethod
    def _http_base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise Invalid(N_("must be an http(s) URL"))
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        for part in filter(None, (piece.strip() for piece in value.split(","))):
            try:
                ip_network(part, strict=False)
            except ValueError:
                raise Invalid(N_("not an address or CIDR: {part} (e.g. 10.0.0.0/8, ::1)"),
                              part=repr(part[:50])) from None
        return value

    @model_validator(mode="after")
    def _webhook_secrets(self) -> Self:
        """A webhook without a secret would take updates from anyone who finds its URL."""
        if self.telegram_webhook_url:
            secret = self.telegram_webhook_secret
            if not secret:
                raise Invalid(REQUIRED_WITH, "TELEGRAM_WEBHOOK_SECRET",
                              other="TELEGRAM_WEBHOOK_URL")
            if not _TELEGRAM_SECRET.fullmatch(secret):
                raise Invalid(N_("1 to 256 characters, only A-Z, a-z, 0-9, _ and -"),
                              "TELEGRAM_WEBHOOK_SECRET")
        if self.zalo_webhook_url:
            secret = self.zalo_webhook_secret
            if not secret:
                raise Invalid(REQUIRED_WITH, "ZALO_WEBHOOK_SECRET", other="ZALO_WEBHOOK_URL")
            if not _ZALO_SECRET.fullmatch(secret):
                raise Invalid(N_("8 to 256 characters (Zalo's rule for setWebhook), printable "
                                 "ASCII without spaces"), "ZALO_WEBHOOK_SECRET")
        return self

    @model_validator(mode="after")
    def _several_bots(self) -> Self:
        """Checks both lists; the default bot's token stands in TELEGRAM_BOT_TOKEN /
        ZALO_BOT_TOKEN, so what knows one bot only (invite cards, doctor) uses it."""
        for platform in ("telegram", "zalo"):
            name = f"{platform.upper()}_BOT_TOKENS"
            bots = self._bots(platform)
            listed = parse_bot_tokens(getattr(self, f"{platform}_bot_tokens"), name)
            if platform == "telegram":  # (TELEGRAM_BOT_TOKEN alone is checked as before)
                number, bad = next(((n, b) for n, b in enumerate(listed, start=1)
                                    if not _TELEGRAM_TOKEN.fullmatch(b.token)), (0, None))
                if bad is not None:
                    raise Invalid(N_("entry {number}: not a bot token (expected "
                                     "'<digits>:<secret>' from @BotFather)"), name,
                                  number=number)
            keys = [bot.key for bot in listed]
            if len(set(keys)) != len(keys):
                raise Invalid(N_("a bot is listed twice"), name)
            codes = [code for bot in bots for code in bot.units]
            twice = next((code for code in codes if codes.count(code) > 1), None)
            if twice is not None:
                raise Invalid(N_("unit {unit} is given to two bots"), name,
                              unit=repr(twice[:20]))
            if bots and not getattr(self, f"{platform}_bot_token"):
                setattr(self, f"{platform}_bot_token", bots[0].token)
        return self

    def _bots(self, platform: str) -> list[BotToken]:
        name = f"{platform.upper()}_BOT_TOKENS"
        listed = parse_bot_tokens(getattr(self, f"{platform}_bot_tokens"), name)
        single = getattr(self, f"{platform}_bot_token")
        default = next((bot for bot in listed if bot.token == single), None) if single else None
        if single and default is None:
            default = BotToken("", single)
        elif default is None and listed:
            default = listed[0]
        if default is None:
            return []
        others = [bot for bot in listed if bot.token != default.token]
        return [BotToken("", default.token, default.units), *others]

    @property
    def telegram_bots(self) -> list[BotToken]:
        """Every Telegram bot, the default (key "") first; [] without a token."""
        return self._bots("telegram")

    @property
    def zalo_bots(self) -> list[BotToken]:
        return self._bots("zalo")

    def for_bot(self, platform: str, bot: BotToken) -> Settings:
        """The settings one bot's channel sees: its token, and its own webhook path (the
        default bot's is the URL as set; another bot's is that URL followed by /<bot id>)."""
        if not bot.key:
            return self
        url = getattr(self, f"{platform}_webhook_url")
        return self.model_copy(update={
            f"{platform}_bot_token": bot.token,
            f"{platform}_webhook_url": f"{url.rstrip('/')}/{bot.key}" if url else None})

    def bot_serving(self, platform: str, codes: Sequence[str]) -> BotToken | None:
        """The bot that serves a unit, given the codes of the unit and those above it,
        nearest first: the bot listing the nearest of them, else the first bot that lists
        none (the default when it lists none); None without a token."""
        bots = self._bots(platform)
        for code in codes:
            found = next((bot for bot in bots if code in bot.units), None)
            if found is not None:
                return found
        return next((bot for bot in bots if not bot.units), bots[0] if bots else None)

    def refused_token(self, platform: str, reason: str) -> SettingsError:
        """What start-up says when the platform refuses this bot's token (these settings as
        Settings.for_bot gave them): the setting that holds it and the bot's id, never the
        secret."""
        token = getattr(self, f"{platform}_bot_token") or ""
        name = f"{platform.upper()}_BOT_TOKENS"
        listed = any(bot.token == token
                     for bot in parse_bot_tokens(getattr(self, f"{platform}_bot_tokens"), name))
        return SettingsError(N_("{setting}: {platform} refused the token of bot {bot} "
                                "({reason}): check it, or take a new one from the platform"),
                             setting=name if listed else name[:-1],
                             platform=platform.capitalize(), bot=bot_key(token), reason=reason)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def proxies(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return tuple(ip_network(part.strip(), strict=False)
                     for part in self.trusted_proxies.split(",") if part.strip())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


REQUIRED_WITH = N_("required when {other} is set")
# Pydantic's own checks, said for a person: its messages are English and name types
# ("Input should be a valid integer, unable to parse string as an integer").
_WHOLE = N_("must be a whole number, not “{value}”")
_NUMBER = N_("must be a number, not “{value}”")
_YES_NO = N_("must be true or false (also 1/0, yes/no, on/off), not “{value}”")
_ONE_OF = N_("must be one of {choices}, not “{value}”")
PYDANTIC_PROBLEMS = {
    "int_parsing": _WHOLE, "int_type": _WHOLE, "int_from_float": _WHOLE,
    "float_parsing": _NUMBER, "float_type": _NUMBER,
    "bool_parsing": _YES_NO, "bool_type": _YES_NO,
    "literal_error": _ONE_OF, "enum": _ONE_OF,
    "missing": N_("is required"),
    "greater_than_equal": N_("must be at least {limit}"),
    "greater_than": N_("must be more than {limit}"),
    "less_than_equal": N_("must be at most {limit}"),
    "less_than": N_("must be less than {limit}"),
    "string_too_short": N_("must be at least {limit} characters long"),
}
_LIMITS = ("ge", "gt", "le", "lt", "min_length")


def load_settings(**overrides: object) -> Settings:
    """Read settings; a bad value raises SettingsError with one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise settings_error(exc.errors()[0]) from None


def settings_error(error: ErrorDetails) -> SettingsError:
    """Pydantic's first error as one line naming the variable, its msgid in the catalogs.
    A value is repeated only where it cannot be a secret (a number, a flag, a choice)."""
    field = str(error["loc"][0]) if error["loc"] else None
    name = _env_name(field) if field else None
    context = error.get("ctx", {})
    cause = context.get("error")
    if isinstance(cause, Invalid):  # the validators above
        return SettingsError(cause.msgid, cause.name or name, **cause.values)
    if cause is not None:  # "Value error, ...": a ValueError of another kind
        return SettingsError(str(cause), name)
    msgid = PYDANTIC_PROBLEMS.get(error["type"])
    if msgid is None:
        return SettingsError(error["msg"], name)
    values = {"value": str(error.get("input", ""))[:40],
              "choices": _choices(field, context)}
    values.update(("limit", context[key]) for key in _LIMITS if key in context)
    return SettingsError(msgid, name,
                         **{key: value for key, value in values.items() if f"{{{key}}}" in msgid})


def _choices(field: str | None, context: dict[str, Any]) -> str:
    """'auto, asyncio, uvloop' from a Literal field (pydantic's own says 'or', in English)."""
    info = next((info for key, info in Settings.model_fields.items()
                 if field in (key, info.alias)), None)
    if info is not None and typing.get_origin(info.annotation) is Literal:
        return ", ".join(str(choice) for choice in typing.get_args(info.annotation))
    return str(context.get("expected", ""))


def _env_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    return info.alias if info is not None and info.alias else field


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
