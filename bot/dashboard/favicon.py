"""The site's icon (static/favicon.svg, the dashboard's navy), for the web chat and the
dashboard alike: linked from every page at a URL that names its content, so it can be cached
for a year, and also answered at /favicon.ico, where a browser looks for a page without the
link (a JSON answer, a downloaded file). Without it every page left a 404 in the log."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # bot.dashboard.links' readers need no aiohttp; neither does URL
    from aiohttp import web

FILE = Path(__file__).resolve().parent / "static" / "favicon.svg"
PATH = "/favicon.svg"
# The content's hash in the link: a changed icon is a new URL, never a stale cached one.
URL = f"{PATH}?v={hashlib.sha256(FILE.read_bytes()).hexdigest()[:10]}"
HEADERS = {"Content-Type": "image/svg+xml", "X-Content-Type-Options": "nosniff"}
LINKED = "public, max-age=31536000, immutable"  # a year: the linked URL changes with the file
UNLINKED = "public, max-age=86400"  # /favicon.ico's URL never changes: a day


def routes() -> list[web.RouteDef]:
    from aiohttp import web

    async def linked(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(FILE, headers={**HEADERS, "Cache-Control": LINKED})

    async def unlinked(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(FILE, headers={**HEADERS, "Cache-Control": UNLINKED})

    return [web.get(PATH, linked), web.get("/favicon.ico", unlinked)]
