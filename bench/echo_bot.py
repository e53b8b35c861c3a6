"""The reference for `python -m bench load`: a bare aiogram 3 echo bot.

One message handler (echoes the text with one inline button) and one callback handler
(answers the query, then sends a message with the button again), in long polling or webhook
mode, against any Bot API base (the load benchmark points it at the Telegram double):

    python -m bench.echo_bot --token T --api-base http://127.0.0.1:PORT --mode polling
    python -m bench.echo_bot ... --mode webhook --port 8081 --webhook-url URL --secret S

Like Coso it handles each webhook request in the foreground (the answer waits for the
handler), so the comparison measures the bots, not the webhook's queueing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

KEYBOARD = InlineKeyboardMarkup(inline_keyboard=[[
    InlineKeyboardButton(text="Tiếp", callback_data="next")]])


def build_dispatcher() -> Dispatcher:
    router = Router(name="echo")

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "…", reply_markup=KEYBOARD)

    @router.callback_query()
    async def tapped(query: CallbackQuery, bot: Bot) -> None:
        await query.answer()
        if query.message is not None:
            await bot.send_message(query.message.chat.id, query.data or "…",
                                   reply_markup=KEYBOARD)

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    return dispatcher


async def serve(args: argparse.Namespace) -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(args.api_base))
    bot = Bot(args.token, session=session)
    dispatcher = build_dispatcher()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if args.mode == "polling":
        await bot.delete_webhook(drop_pending_updates=False)
        polling = asyncio.create_task(dispatcher.start_polling(
            bot, handle_signals=False, close_bot_session=False, polling_timeout=10))
        await stop.wait()
        await dispatcher.stop_polling()
        await asyncio.gather(polling, return_exceptions=True)
    else:
        app = web.Application()
        SimpleRequestHandler(dispatcher, bot, handle_in_background=False,
                             secret_token=args.secret).register(app, path=args.path)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port).start()
        await bot.set_webhook(args.webhook_url, secret_token=args.secret,
                              allowed_updates=dispatcher.resolve_used_update_types())
        await stop.wait()
        await runner.cleanup()
    await bot.session.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.echo_bot", description=__doc__)
    parser.add_argument("--token", required=True)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--mode", choices=("polling", "webhook"), default="polling")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--path", default="/webhook/telegram")
    parser.add_argument("--webhook-url")
    parser.add_argument("--secret", default="echo-secret")
    args = parser.parse_args()
    if args.mode == "webhook" and not args.webhook_url:
        args.webhook_url = f"http://127.0.0.1:{args.port}{args.path}"
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
