"""One Bot API base for several Telegram doubles, as api.telegram.org is for several bots:
/bot<token>/... goes to the double of that token (tests/test_several_bots.py, bench delivery
--bots)."""

from __future__ import annotations

from typing import Protocol

from aiohttp import ClientError, ClientSession, ClientTimeout, web


class Double(Protocol):
    """A Telegram or Zalo double: both serve /bot<token>/<method>."""

    @property
    def token(self) -> str: ...

    @property
    def base_url(self) -> str: ...


class TokenProxy:
    """One API base for several doubles: /bot<token>/... goes to the double of that token
    (Telegram's /file/bot<token>/... too)."""

    def __init__(self, *doubles: Double) -> None:
        self.doubles = {double.token: double for double in doubles}
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None
        self.base_url = ""

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._forward)
        app.router.add_route("*", "/file/bot{token}/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._client = ClientSession(timeout=ClientTimeout(total=120))

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        double = self.doubles.get(request.match_info["token"])
        if double is None:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        assert self._client is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() == "content-type"}
        try:
            async with self._client.request(request.method, double.base_url + request.path_qs,
                                            data=await request.read(), headers=headers
                                            ) as answer:
                return web.Response(status=answer.status, body=await answer.read(),
                                    content_type=answer.content_type)
        except (ClientError, OSError):  # a double stopping under a long poll
            return web.Response(status=502)
