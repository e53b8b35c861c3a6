"""The local web chat: how a newcomer or a trainer tries the bot with no platform token.

One page (no build step, no CDN) talks JSON to a few routes on the bot's own web server. A
login redeems an invite code through the core, exactly as `/start CODE` on Telegram does, and
binds a cookie to the new web chat account. For this channel the outbox IS the mailbox: the
page reads its rows back by id, and deliver() only wakes the long polls waiting for them.

A photo the person sends (POST /api/photo, the bytes themselves) is checked by its content,
kept under COSO_DATA_DIR/photos (bot/files.py) and handed to the core as Incoming.photo, the
file's path, as Telegram hands it a file id. Its name is random plus a MAC of the account, so
GET /api/photo/{name} shows it to that account only: anyone else gets a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import mimetypes
import re
import secrets
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from bot import files
from bot.channels.base import HandleIncoming
from bot.client_address import client_address
from bot.dashboard import favicon
from bot.i18n import N_, Translator, pick_locale
from bot.messages import (
    BIG_ID_MAX,
    LAST_QUESTION,
    MENU,
    PHOTO_NOTE,
    QUESTION,
    URGENT_ALERT,
    Incoming,
    Outgoing,
    parse_id,
)
from bot.settings import Settings
from storage import invites, outbox, web_chat
from storage.db import Database
from storage.models import OutboxMessage, utcnow
from storage.web_chat import SESSION_LIFETIME

log = logging.getLogger(__name__)

CHANNEL = "web"
SESSION_COOKIE = "coso_session"
# Which web chat account this browser last signed in as, signed, and kept at logout: with the
# code it redeemed, the owner signs in again; the code alone lets no one else in.
DEVICE_COOKIE = "coso_device"
DEVICE_LIFETIME_SECONDS = 365 * 24 * 3600
MAX_BODY = 16 * 1024
MAX_TEXT = 4096
MAX_CHOICE = 64  # Telegram's callback_data limit; the core's payloads fit in it
LONG_POLL_SECONDS = 25.0
# Another process's sender may deliver our rows and wake nobody here, so a waiting poll
# looks at the database again this often rather than only when woken.
RECHECK_SECONDS = 5.0
PAGE_SIZE = 50
LOGIN_ATTEMPTS = 10
LOGIN_WINDOW_SECONDS = 60.0
CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}
PHOTO_MB = 10  # Telegram's own limit for a photo a bot sends: it can go on from here as is
MAX_PHOTO = PHOTO_MB * 1024 * 1024
PHOTO_NAME = re.compile(r"([0-9a-f]{32})-([0-9a-f]{32})\.(?:jpg|png|webp)")
PHOTO_TOO_BIG = N_("This photo is larger than {limit} MB, so it was not sent. Please send a "
                   "smaller one (a phone camera's photo is usually 2 to 5 MB).")
NOT_A_PHOTO = N_("Only a photo (JPEG, PNG or WebP) can be sent here, and this file is not "
                 "one.")
TOO_MANY_LOGINS = N_("Too many login attempts. Please wait a minute and try again.")
# The same words as the chat's lock-out (bot/flows/registration.py): one catalog entry.
LOCKED = N_("Too many wrong invite codes. For safety, codes are not checked for the next "
            "10 minutes; please try again later, or ask your ward staff for help.")

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
# The page's own words (labels, placeholders, its few notes): the catalogs supply them in the
# language the person chose with /lang (stored on their person), before login the browser's;
# bot/web/app.js only puts them in place, and asks again when the language changes.
PAGE_TEXTS = {
    "intro": N_("Enter the invite code from your ward staff to start chatting with Coso."),
    "code": N_("Invite code"),
    "name": N_("Your name (optional)"),
    "login": N_("Log in"),
    "logout": N_("Log out"),
    "placeholder": N_("Type a message…"),
    "send": N_("Send"),
    "offline": N_("Connection lost, retrying…"),
    "loginFailed": N_("Could not log in. Please try again."),
    "sendFailed": N_("This message could not be sent."),
    "file": N_("Attachment"),
    "attach": N_("Send a photo"),
    "photoSending": N_("Sending the photo…"),
    "photoSent": N_("The photo you sent"),
    "photoRefused": N_("The chosen file"),
}
PAGE = jinja2.Environment(loader=jinja2.FileSystemLoader(WEB_DIR), autoescape=True,
                          undefined=jinja2.StrictUndefined)
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' https: data:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
NO_STORE = {"Cache-Control": "no-store"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """Answered as {ok: false, message} with this status."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_TYPED_START = re.compile(r"^\s*(?:/start(?:@\w+)?|start\s)\s*", re.IGNORECASE)


def login_code(typed: str) -> str:
    """The invite code in what was typed in the code field: "/start AB12CD34", copied
    whole from the invite ("/START ab12 cd34" too), is the code "AB12CD34"; spaces inside and
    the case are the core's (storage.invites folds them)."""
    return _TYPED_START.sub("", typed, count=1).strip()


def api(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return web.json_response({"ok": False, "message": exc.message},
                                     status=exc.status, headers=NO_STORE)
    return wrapped


@dataclass(frozen=True)
class Who:
    """The logged-in web chat account behind a request's cookie."""

    account_id: int
    external_id: str
    token_hash: str


class LoginLimiter:
    """A sliding window of attempts per client address, in memory (one process is enough
    to slow down guessing 8-character codes from 31 symbols)."""

    def __init__(self, attempts: int = LOGIN_ATTEMPTS,
                 window: float = LOGIN_WINDOW_SECONDS) -> None:
        self.attempts = attempts
        self.window = window
        self._seen: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str, now: float) -> bool:
        if len(self._seen) > 10_000:  # bound the memory an address sweep could take
            self._forget_idle(now)
        seen = self._seen[key]
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= self.attempts:
            return False
        seen.append(now)
        return True

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._seen.items() if not v or v[-1] <= now - self.window]:
            del self._seen[key]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def language_hint(request: web.Request) -> str | None:
    """The browser's first language ('vi-VN'), the same hint Telegram gives the core."""
    first = request.headers.get("Accept-Language", "").split(",")[0].split(";")[0].strip()
    return first[:16] or None


def page_texts(t: Translator) -> dict[str, str]:
    return {key: t(msgid) for key, msgid in PAGE_TEXTS.items()}


def script_data(value: object) -> Markup:
    """JSON to sit inside a <script type="application/json"> block: no "<" can end it (the
    block is data, never run, so the page's CSP needs no exception for it)."""
    text = json.dumps(value, ensure_ascii=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e")
                  .replace("&", "\\u0026"))


def is_https(request: web.Request) -> bool:
    # Trusting the proxy's header here can only make the cookie stricter, never looser.
    return request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; other content types, big bodies and non-objects refused."""
    if request.content_type != "application/json":
        raise ApiError(415, "JSON only")
    if (request.content_length or 0) > MAX_BODY:
        raise ApiError(413, "too large")
    body = bytearray()
    while chunk := await request.content.read(MAX_BODY + 1 - len(body)):
        body += chunk
        if len(body) > MAX_BODY:
            raise ApiError(413, "too large")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError included; too deep a nesting
        log.warning("web: a request body that is not JSON, refused")
        raise ApiError(400, "bad JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad JSON")
    return data


def tidy(value: object, limit: int) -> str | None:
    """A one-line string of at most `limit` characters, or None."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split())[:limit] or None


def text_or_choice(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """Exactly one of a typed text or a tapped button's payload."""
    text, choice = data.get("text"), data.get("choice")
    if (text is None) == (choice is None):
        raise ApiError(400, "send text or choice")
    if text is not None and (not isinstance(text, str) or not text.strip()
                             or len(text) > MAX_TEXT):
        raise ApiError(400, "bad text")
    if choice is not None and (not isinstance(choice, str) or not choice
                               or len(choice.encode()) > MAX_CHOICE):
        raise ApiError(400, "bad choice")
    return text, choice


def client_update_id(external_id: str, data: dict[str, Any]) -> str:
    """The ledger key of a send: the page's id, scoped to the account so no one can spend
    another person's ids; a retried POST with the same id is then handled once."""
    given = data.get("id")
    if given is None:
        given = uuid.uuid4().hex
    elif not isinstance(given, str) or not CLIENT_ID.fullmatch(given):
        raise ApiError(400, "bad id")
    return hashlib.sha256(f"{external_id}\n{given}".encode()).hexdigest()


def media_url(row_id: int, kind: str, value: str | None, relays: bool = False) -> str | None:
    """Where the page fetches a photo or document: URLs as they are, local files through us,
    and a platform's file id (meaningless in a browser) through us when we can fetch it
    (`relays`: Telegram is on), else not at all."""
    if not value:
        return None
    if kind == "photo" and value.startswith("https://"):
        return value
    if kind == "photo" and relays and files.is_file_id(value):
        return f"/api/file/{row_id}/{kind}"
    return f"/api/file/{row_id}/{kind}" if local_file(kind, value) else None


def local_file(kind: str, value: str) -> Path | None:
    path = Path(value)
    if kind == "photo" and path.suffix.lower() not in PHOTO_SUFFIXES:
        return None
    return path if path.is_file() else None


def render(row: OutboxMessage, relays: bool = False) -> dict[str, Any]:
    """One bubble as the page shows it; `relays`: a Telegram photo can be fetched."""
    message = Outgoing.from_payload(row.payload)
    item: dict[str, Any] = {
        "id": row.id, "text": message.text,
        "buttons": [{"label": b.label, "payload": b.payload,
                     **({"steer": True} if b.steer else {}),
                     **({"toggle": b.toggle} if b.toggle else {})}
                    for b in message.buttons],
    }
    edit = parse_id(message.edit_of, high=BIG_ID_MAX)
    if edit is not None:  # the page changes that bubble instead of adding one
        item["edit"] = edit
        if message.keyboard_only:
            item["keyboard_only"] = True
    elif message.edit_of == LAST_QUESTION:  # the page knows which bubble that is
        item["retire"] = True
    if message.extra.get(QUESTION):  # only the newest question's buttons stay live
        item["question"] = True
    for kind in ("photo", "document"):
        url = media_url(row.id, kind, getattr(message, kind), relays)
        if url is not None:
            item[kind] = url
    if message.photo and "photo" not in item and message.extra.get(PHOTO_NOTE):
        item["text"] = f"{message.text}\n{message.extra[PHOTO_NOTE]}"  # where the photo is
    if "document" in item:
        item["filename"] = message.filename or Path(message.document or "").name
    if message.extra.get(URGENT_ALERT):  # styled apart by the page: a flag, not the text
        item["urgent"] = True
    if MENU in message.extra:  # the reply left no question open: the role's commands
        item["menu"] = [{"label": label, "text": text}
                        for label, text in message.extra[MENU]]
    return item


def attachment_header(filename: str) -> str:
    """Content-Disposition for a Vietnamese file name: an ASCII fallback and the UTF-8 name."""
    fallback = filename.encode("ascii", "ignore").decode().replace('"', "") or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def photo_mac(key: bytes, account_id: int, random_part: str) -> str:
    return hmac.new(key, f"web-photo:{account_id}:{random_part}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def photo_name(key: bytes, account_id: int, update_id: str, suffix: str) -> str:
    """The stored photo's name: random (the update's id is a hash of the page's random id,
    so a retried upload gets the same name and one file), and the account's MAC beside it."""
    random_part = hashlib.sha256(f"web-photo-name:{update_id}".encode()).hexdigest()[:32]
    return f"{random_part}-{photo_mac(key, account_id, random_part)}{suffix}"


def owns_photo(key: bytes, account_id: int, name: str) -> bool:
    found = PHOTO_NAME.fullmatch(name)
    return found is not None and hmac.compare_digest(
        found[2], photo_mac(key, account_id, found[1]))


def device_signature(key: bytes, external_id: str) -> str:
    return hmac.new(key, f"web-device:{external_id}".encode(), hashlib.sha256).hexdigest()


def device_account(request: web.Request, key: bytes) -> str | None:
    """The external id the browser's device cookie names, if its signature holds."""
    external_id, _, given = request.cookies.get(DEVICE_COOKIE, "")[:200].partition(".")
    if not external_id or not hmac.compare_digest(given, device_signature(key, external_id)):
        return None
    return external_id


class WebChannel:
    name = CHANNEL

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._handle: HandleIncoming | None = None
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._limiter = LoginLimiter()
        self._closing = False
        # The content of a photo another platform holds (a Telegram file id), when Telegram
        # is on too (bot.app.build_channels): fetched once, kept as relayed/ keeps it.
        self.fetch_photo: Callable[[str], Awaitable[bytes | None]] | None = None

    def routes(self) -> list[web.RouteDef]:
        if not self.settings.web_chat:  # COSO_WEB_CHAT=off: every route of ours is a 404
            return []
        return [
            web.get("/", self._page),
            web.get("/static/{name}", self._asset),
            web.get("/api/strings", self._strings),
            web.post("/api/login", api(self._login)),
            web.post("/api/send", api(self._send)),
            web.post("/api/photo", api(self._photo)),
            web.get("/api/photo/{name}", api(self._own_photo)),
            web.get("/api/messages", api(self._messages)),
            web.get("/api/file/{row_id}/{kind}", api(self._file)),
            web.post("/api/logout", api(self._logout)),
        ]

    async def start(self, handle: HandleIncoming) -> None:
        self._handle = handle
        self._closing = False

    async def stop(self) -> None:
        """End every waiting long poll, so the server can shut down at once."""
        self._closing = True
        for events in self._waiters.values():
            for event in events:
                event.set()

    async def deliver(self, external_id: str, message: Outgoing, skip_parts: int = 0) -> None:
        """The row is already readable; only wake that person's open polls."""
        for event in self._waiters.get(external_id, ()):
            event.set()

    # --- the page -------------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.StreamResponse:
        """The page, its words in the person's language (see PAGE_TEXTS)."""
        t = await self._page_translator(request)
        texts = page_texts(t)
        html = PAGE.get_template("index.html").render(
            lang=t.locale, s=texts, strings=script_data({"lang": t.locale, "strings": texts}),
            favicon=favicon.URL)
        return web.Response(text=html, content_type="text/html", charset="utf-8",
                            headers=PAGE_HEADERS)

    async def _strings(self, request: web.Request) -> web.StreamResponse:
        """The page's words again, when the person's language changed (/lang, a login)."""
        t = await self._page_translator(request)
        return web.json_response({"lang": t.locale, "strings": page_texts(t)},
                                 headers={**NO_STORE, "Content-Language": t.locale})

    async def _page_translator(self, request: web.Request) -> Translator:
        """The logged-in person's language, else the browser's."""
        try:
            who = await self._who(request)
        except ApiError:
            return Translator(pick_locale(language_hint(request),
                                          default=self.settings.default_locale),
                              self.settings.tz)
        return await self._translator(who, request)

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in ASSETS:  # a fixed list: no path ever reaches the file system
            raise web.HTTPNotFound()
        return web.FileResponse(WEB_DIR / name, headers={
            **PAGE_HEADERS, "Content-Type": f"{ASSETS[name]}; charset=utf-8"})

    # --- the API --------------------------------------------------------------------------

    async def _login(self, request: web.Request) -> web.StreamResponse:
        hint = language_hint(request)
        t = Translator(pick_locale(hint, default=self.settings.default_locale), self.settings.tz)
        client = client_address(request, self.settings.proxies)
        if not self._limiter.allow(client, time.monotonic()):
            log.info("web: login attempts from %s refused for a while", client)
            raise ApiError(429, t(TOO_MANY_LOGINS))
        # Each login is a new chat account, so the chat's per-account back-off would never
        # trip here: the web login's refused codes count per client address instead.
        key = f"web-login:{client}"
        async with self.db.transaction() as session:
            if await invites.locked_until(session, key, utcnow()) is not None:
                log.info("web: login from %s not checked: locked out after refused codes",
                         client)
                raise ApiError(429, t(LOCKED))
        data = await read_json(request)
        if not isinstance(data.get("code"), str):
            raise ApiError(400, "code missing")
        code = login_code(tidy(data["code"], 100) or "")  # the core explains a too long one
        returning = await self._owner_returning(request, code)
        external_id = returning or secrets.token_urlsafe(12)
        # The owner is registered already: a bare /start greets them back.
        await self._feed(Incoming(
            channel=CHANNEL, external_id=external_id, update_id=str(uuid.uuid4()),
            text="/start" if returning else f"/start {code}".strip(),
            display_name=tidy(data.get("name"), 100), language=hint))
        token = secrets.token_urlsafe(32)
        if not await self._open_session(external_id, token):
            async with self.db.transaction() as session:
                await invites.record_failure(session, key, utcnow())
            raise ApiError(400, await self._replies_to(external_id))
        log.info("web: a login opened a session%s", " (the code's owner again)" if returning
                 else "")
        response = web.json_response({"ok": True}, headers=NO_STORE)
        secure = is_https(request) or None
        response.set_cookie(
            SESSION_COOKIE, token, max_age=int(SESSION_LIFETIME.total_seconds()), path="/",
            httponly=True, samesite="Strict", secure=secure)
        signature = device_signature(files.secret(self.settings), external_id)
        response.set_cookie(
            DEVICE_COOKIE, f"{external_id}.{signature}", max_age=DEVICE_LIFETIME_SECONDS,
            path="/api/login", httponly=True, samesite="Strict", secure=secure)
        return response

    async def _owner_returning(self, request: web.Request, code: str) -> str | None:
        """The account this browser signed in as before, when the code is the one its person
        redeemed (logging out must not lock its owner out); None for everyone else."""
        external_id = device_account(request, files.secret(self.settings))
        if external_id is None or not code:
            return None
        async with self.db.read() as session:
            owner = await web_chat.redeemed_by(session, external_id, code, utcnow())
        return external_id if owner else None

    async def _open_session(self, external_id: str, token: str) -> bool:
        """Bind the cookie's token to the account if the code registered it."""
        async with self.db.transaction() as session:
            return await web_chat.open_login(session, external_id, token_hash(token))

    async def _replies_to(self, external_id: str) -> str:
        """What the bot told a refused login (the reason, in the person's language)."""
        async with self.db.read() as session:
            account = await web_chat.account(session, external_id)
            rows = await outbox.mailbox(session, account.id, 0) if account else []
        return "\n\n".join(str(row.payload.get("text", "")) for row in rows)

    async def _send(self, request: web.Request) -> web.StreamResponse:
        who = await self._who(request)
        data = await read_json(request)
        text, choice = text_or_choice(data)
        bubble = parse_id(str(data.get("message", "")), high=BIG_ID_MAX) if choice else None
        await self._feed(Incoming(
            channel=CHANNEL, external_id=who.external_id,
            update_id=client_update_id(who.external_id, data), text=text, payload=choice,
            language=language_hint(request),
            message_ref=str(bubble) if bubble is not None else None))
        return web.json_response({"ok": True}, headers=NO_STORE)

    async def _photo(self, request: web.Request) -> web.StreamResponse:
        """The photo's bytes as the body (application/octet-stream: no plain form can send
        that), ?id= the page's id for a retry; answered with where the page shows it."""
        who = await self._who(request)
        if request.content_type != "application/octet-stream":
            raise ApiError(415, "application/octet-stream only")
        update_id = client_update_id(who.external_id, {"id": request.query.get("id")})
        data = await self._read_photo(request, who)
        suffix = files.photo_suffix(data)
        if suffix is None:
            log.info("web: an upload that is not a JPEG, PNG or WebP photo, refused")
            raise ApiError(415, (await self._translator(who, request))(NOT_A_PHOTO))
        key = files.secret(self.settings)
        name = photo_name(key, who.account_id, update_id, suffix)
        path = await asyncio.to_thread(files.store_photo, self.settings, name, data)
        await self._feed(Incoming(
            channel=CHANNEL, external_id=who.external_id, update_id=update_id,
            photo=str(path), language=language_hint(request)))
        return web.json_response({"ok": True, "photo": f"/api/photo/{name}"},
                                 headers=NO_STORE)

    async def _read_photo(self, request: web.Request, who: Who) -> bytes:
        """The body, up to MAX_PHOTO: aiohttp stops reading at the limit, and a declared
        length over it is refused before a byte is read."""
        try:
            if (request.content_length or 0) > MAX_PHOTO:
                raise web.HTTPRequestEntityTooLarge(MAX_PHOTO, request.content_length or 0)
            return await request.clone(client_max_size=MAX_PHOTO).read()
        except web.HTTPRequestEntityTooLarge:
            log.info("web: a photo over %d MB, refused", PHOTO_MB)
            t = await self._translator(who, request)
            raise ApiError(413, t(PHOTO_TOO_BIG, limit=t.number(PHOTO_MB))) from None

    async def _own_photo(self, request: web.Request) -> web.StreamResponse:
        who = await self._who(request)
        name = request.match_info["name"]
        # Another account's photo, a guessed or altered name: all the same 404.
        if not owns_photo(files.secret(self.settings), who.account_id, name):
            raise ApiError(404, "not found")
        path = self.settings.data_dir / files.PHOTOS / name
        if not path.is_file():
            raise ApiError(404, "not found")
        return web.FileResponse(path, headers={
            "Content-Type": files.CONTENT_TYPES[path.suffix],
            "Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        who = await self._who(request)
        after = parse_id(request.query.get("after", "0"), low=0, high=BIG_ID_MAX)
        if after is None:
            raise ApiError(400, "bad after")
        wait = request.query.get("wait") != "0"  # the page's first look must not hang
        rows, locale = await self._wait_for_rows(who, after, wait, language_hint(request))
        relays = self.fetch_photo is not None
        # The language the messages are in, read after them: once a /lang reply arrives, the
        # page sees the new one and asks for its own words in it (/api/strings).
        return web.json_response([render(row, relays) for row in rows],
                                 headers={**NO_STORE, "Content-Language": locale})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        who = await self._who(request)
        kind = request.match_info["kind"]
        row_id = parse_id(request.match_info["row_id"], high=BIG_ID_MAX)
        if kind not in ("photo", "document") or row_id is None:
            raise ApiError(404, "not found")
        async with self.db.read() as session:
            row = await outbox.mailbox_message(session, who.account_id, row_id)
        if row is None:  # someone else's row answers exactly like a missing one
            raise ApiError(404, "not found")
        message = Outgoing.from_payload(row.payload)
        value = getattr(message, kind)
        path = local_file(kind, value) if value else None
        if path is None and kind == "photo" and value and files.is_file_id(value):
            path = await self._relayed(value)
        if path is None:
            raise ApiError(404, "not found")
        headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
        if kind == "document":
            headers["Content-Disposition"] = attachment_header(message.filename or path.name)
            headers["Content-Type"] = "application/octet-stream"
        else:
            headers["Content-Type"] = mimetypes.guess_type(path.name)[0] or "image/jpeg"
        return web.FileResponse(path, headers=headers)

    async def _relayed(self, file_id: str) -> Path | None:
        """A Telegram photo for this page: the copy relayed/ keeps (a day's link for Zalo,
        two days in all), else fetched through the Telegram bot and kept there the same."""
        path = await asyncio.to_thread(files.relayed_copy, self.settings, file_id)
        if path is None and self.fetch_photo is not None:
            data = await self.fetch_photo(file_id)
            path = None if data is None else await asyncio.to_thread(
                files.relay_photo, self.settings, file_id, data)
        return path

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        who = await self._who(request)
        await read_json(request)  # JSON like every POST, so no plain form can reach it
        async with self.db.transaction() as session:
            await web_chat.close_login(session, who.token_hash)
        response = web.json_response({"ok": True}, headers=NO_STORE)
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    # --- helpers --------------------------------------------------------------------------

    async def _who(self, request: web.Request) -> Who:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token or len(token) > 128:
            raise ApiError(401, "not logged in")
        hashed = token_hash(token)
        async with self.db.read() as session:
            found = await web_chat.login(session, hashed, utcnow())
        if found is None:
            raise ApiError(401, "not logged in")
        return Who(account_id=found.account_id, external_id=found.external_id,
                   token_hash=hashed)

    async def _translator(self, who: Who, request: web.Request) -> Translator:
        """The person's language, as the core would pick it, for what the channel says."""
        async with self.db.read() as session:
            locale = await self._locale(session, who, language_hint(request))
        return Translator(locale, self.settings.tz)

    async def _locale(self, session: AsyncSession, who: Who, hint: str | None) -> str:
        person_locale, account_locale = await web_chat.locales(session, who.account_id)
        return pick_locale(person_locale, account_locale, hint,
                           default=self.settings.default_locale)

    async def _feed(self, incoming: Incoming) -> None:
        """Hand the update to the core; once this returns, its replies are committed."""
        if self._handle is None or self._closing:
            raise ApiError(503, "not running")
        try:
            await self._handle(incoming)
        except Exception:
            # The page retries with the same id, and the ledger makes that safe.
            log.exception("web: handling an update failed")
            raise ApiError(500, "try again") from None

    async def _wait_for_rows(self, who: Who, after: int, wait: bool, hint: str | None
                             ) -> tuple[Sequence[OutboxMessage], str]:
        """The person's new rows, and the language they are in (read after them)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LONG_POLL_SECONDS
        while True:
            # Listen before looking, so a delivery between the two is not missed.
            event = asyncio.Event()
            self._waiters[who.external_id].add(event)
            try:
                async with self.db.read() as session:
                    rows = await outbox.mailbox(session, who.account_id, after)
                    remaining = deadline - loop.time()
                    if rows or not wait or self._closing or remaining <= 0:
                        return rows, await self._locale(session, who, hint)
                with contextlib.suppress(TimeoutError):  # not wait_for: see bot/delivery.py
                    async with asyncio.timeout(min(remaining, RECHECK_SECONDS)):
                        await event.wait()
            finally:
                self._forget(who.external_id, event)

    def _forget(self, external_id: str, event: asyncio.Event) -> None:
        events = self._waiters.get(external_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self._waiters[external_id]
