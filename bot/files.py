"""The files the bot writes under COSO_DATA_DIR, how long they stay, and the signed links
that let a platform fetch them (Zalo takes photos by URL only).

Digest charts are kept a week, so the link in a digest works for its 7 days; an export holds
household records (Decree 13/2023/ND-CP), so its link lasts 24 hours and the file two days.
Directive attachments stay: they are the directive's own record. An invite card sent in
chat carries a live code and a name: its link lasts 24 hours and the file two days. A photo
sent in the web chat (a report's, a receipt's, a directive's) is kept here as Telegram keeps
one sent there: it is the record's own, so it stays; a signed link to it (for Zalo) lasts 7
days. A photo Telegram holds (a report's, by its file id), shown to someone on Zalo, is
fetched through the Telegram bot and kept in relayed/ for the link's 24 hours and two days
in all: a copy for the link, not a second record. All of it is personal data: the folders
are 0700 and the files 0600 (storage/private.py).

A link is `{COSO_PUBLIC_URL}/files/{folder}/{name}?e={expiry}&s={signature}`: the signature
is an HMAC-SHA256 of folder, name and expiry under a secret of this installation, so a link
cannot be guessed or stretched; after its expiry, or with anything altered, it is a 404 (as is
a file that is gone). File names are random or built from unit codes and dates: never a
person's data.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import secrets
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from bot.jobs import periodic
from bot.settings import Settings
from storage.db import Database
from storage.models import utcnow
from storage.private import private_dir

if TYPE_CHECKING:  # aiohttp is imported where the routes are made: the command line
    from aiohttp import web  # writes files here and serves none (~0.3 s less at its start)

log = logging.getLogger(__name__)

# How long each folder's files stay, and how long a link to one works.
# An invite card (/invite) carries a live code: a day to fetch it, two to delete it.
# A photo another platform holds (a Telegram file id), fetched for Zalo, which takes photos
# by URL only: a copy for the link's day, not a second record.
KEEP = {"charts": timedelta(days=8), "exports": timedelta(days=2),
        "cards": timedelta(days=2), "relayed": timedelta(days=2)}
LINK_LIFE = {"charts": timedelta(days=7), "exports": timedelta(hours=24),
             "directives": timedelta(days=7), "cards": timedelta(hours=24),
             "photos": timedelta(days=7), "relayed": timedelta(hours=24)}
SECRET_FILE = "file-secret"
PHOTOS = "photos"
RELAYED = "relayed"
FOLDERS = ("charts", "exports", "directives", "cards", PHOTOS, RELAYED)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_FILE_ID = re.compile(r"[A-Za-z0-9_-]+")
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                 ".webp": "image/webp",
                 ".pdf": "application/pdf",
                 ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 ".csv": "text/csv"}


def prepare_data_dir(settings: Settings) -> Path:
    """COSO_DATA_DIR and its folders, 0700 (an older, world-readable one is closed too)."""
    root = private_dir(settings.data_dir)
    for folder in FOLDERS:
        private_dir(root / folder)
    return root


@periodic("old-files", timedelta(hours=1))
async def remove_old_files(db: Database, settings: Settings, now: datetime) -> None:
    removed = sum([await asyncio.to_thread(remove_older, settings.data_dir / folder, keep)
                   for folder, keep in KEEP.items()])
    if removed:
        log.info("removed %d old chart and export files", removed)


def remove_older(folder: Path, age: timedelta) -> int:
    """Delete the files in `folder` (and the folders of CSV exports) last written more than
    `age` ago; returns how many."""
    if not folder.is_dir():
        return 0
    cutoff = time.time() - age.total_seconds()
    old = [path for path in folder.iterdir() if path.stat().st_mtime < cutoff]
    for path in old:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return len(old)


# --- photos people send (the web chat) ------------------------------------------------------

def photo_suffix(data: bytes) -> str | None:
    """".jpg", ".png" or ".webp" when the bytes begin as that image format does, else None.
    The content decides, never a file name or a browser's content type: both are the
    sender's to choose."""
    if data.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return None


def store_photo(settings: Settings, name: str, data: bytes) -> Path:
    """Write the photo as COSO_DATA_DIR/photos/name (0600) and return its path. `name` is
    ours (random, see bot/channels/web.py), never the sender's; a retried upload with the
    same name finds its file already there and keeps it."""
    return _write(settings, PHOTOS, name, data)


def relay_photo(settings: Settings, file_id: str, data: bytes) -> Path | None:
    """Keep another platform's photo (its file id, fetched) as COSO_DATA_DIR/relayed/<hash>,
    for a signed link; None when the bytes are no photo."""
    suffix = photo_suffix(data)
    if suffix is None:
        return None
    name = hashlib.sha256(file_id.encode()).hexdigest()[:32] + suffix
    return _write(settings, RELAYED, name, data)


def relayed_copy(settings: Settings, file_id: str) -> Path | None:
    """The copy relay_photo kept of that file id, while it is kept (a directive to fifty
    Zalo chats fetches its photo from Telegram once, not fifty times)."""
    stem = hashlib.sha256(file_id.encode()).hexdigest()[:32]
    for suffix in (".jpg", ".png", ".webp"):
        path = settings.data_dir / RELAYED / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def is_file_id(ref: str) -> bool:
    """A platform's file id (Telegram's), not a URL or a path: what only that platform's bot
    can fetch."""
    return bool(_FILE_ID.fullmatch(ref))


# Folders whose files a reference stored in the database may name.
STORED = (PHOTOS, "directives", RELAYED)


def own_file(settings: Settings, ref: str) -> Path | None:
    """The file under COSO_DATA_DIR that a stored reference names (a photo sent in the web
    chat, a directive's attachment), or None for a URL, a platform's file id or anything
    else. Only the folder's name and the file's are read, and the file is looked for in
    this installation's own folder: a row written as a relative data/photos/….png (before
    the data directory was made absolute at start) still finds its file, and no value
    becomes a path outside those folders."""
    if ref.startswith(("http://", "https://")) or "/" not in ref:
        return None
    given = PurePosixPath(ref)
    if given.parent.name not in STORED or not _NAME.match(given.name):
        return None
    path = settings.data_dir / given.parent.name / given.name
    return path if path.is_file() else None


def _write(settings: Settings, folder_name: str, name: str, data: bytes) -> Path:
    if not _NAME.match(name):
        raise ValueError("not a file name of ours")
    folder = private_dir(settings.data_dir / folder_name)
    path = folder / name
    if path.is_file():
        return path
    # Written aside, then renamed: a reader never sees half a photo.
    part = folder / f".{name}.{secrets.token_hex(4)}"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(part, path)
    return path


# --- signed links -----------------------------------------------------------------------------

def secret(settings: Settings) -> bytes:
    """COSO_FILE_SECRET, or this installation's own, made once and kept 0600."""
    if settings.file_secret:
        return settings.file_secret.encode()
    path = settings.data_dir / SECRET_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    private_dir(settings.data_dir)
    made = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(made)
    return made


def _signature(key: bytes, folder: str, name: str, expires: int) -> str:
    message = f"{folder}/{name}:{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:40]


def signed_url(settings: Settings, path: Path | str, now: datetime | None = None,
               life: timedelta | None = None) -> str | None:
    """A link that reaches the file under COSO_DATA_DIR until it expires, or None when no
    COSO_PUBLIC_URL is set or the file is not in a served folder."""
    if not settings.public_url:
        return None
    file = Path(path).resolve()
    folder = file.parent.name
    if folder not in LINK_LIFE or file.parent != (settings.data_dir / folder).resolve() or (
            not _NAME.match(file.name)):
        return None
    expires = int(((now or utcnow()) + (life or LINK_LIFE[folder])).timestamp())
    signature = _signature(secret(settings), folder, file.name, expires)
    return f"{settings.public_url}/files/{folder}/{file.name}?e={expires}&s={signature}"


def routes(settings: Settings) -> list[web.RouteDef]:
    from aiohttp import web

    async def serve(request: web.Request) -> web.StreamResponse:
        folder, name = request.match_info["folder"], request.match_info["name"]
        expires = request.query.get("e", "")
        given = request.query.get("s", "")
        if (folder not in LINK_LIFE or not _NAME.match(name) or not expires.isdigit()
                or int(expires) < time.time()
                or not hmac.compare_digest(given, _signature(secret(settings), folder, name,
                                                             int(expires)))):
            raise web.HTTPNotFound()
        path = settings.data_dir / folder / name
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={
            "Content-Type": CONTENT_TYPES.get(path.suffix.casefold(),
                                              "application/octet-stream"),
            "Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"})

    return [web.get("/files/{folder}/{name}", serve)]
