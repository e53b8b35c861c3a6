"""The command registry: each feature declares its commands here, with who may use them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.i18n import Translator
from bot.text import fold
from bot.turn import Turn

Run = Callable[[Turn, str], Awaitable[None]]
Handler = Callable[[Turn], Awaitable[None]]
StatusHandler = Callable[[Turn, str], Awaitable[None]]  # gets what follows the word: an id


@dataclass(frozen=True)
class Command:
    name: str
    description: str  # msgid, shown in /help and in Telegram's command menu
    run: Run
    roles: frozenset[str] = frozenset()  # empty: open to everyone, strangers included
    in_menu: bool = True
    position: int = 50  # order in /help and the platform's menu: daily work first


COMMANDS: dict[str, Command] = {}


def command(name: str, description: str, *, roles: frozenset[str] = frozenset(),
            in_menu: bool = True, position: int = 50) -> Callable[[Run], Run]:
    """Declare a command: @command("lang", N_("Change language"))."""

    def register(run: Run) -> Run:
        COMMANDS[name] = Command(name, description, run, roles, in_menu, position)
        return run

    return register


# '/drill status', '/directive kết quả': the report instead of starting a new one.
STATUS_WORDS = frozenset({"status", "ketqua", "ket qua"})


async def start_or_status(turn: Turn, args: str, start: Handler, status: StatusHandler
                          ) -> None:
    """'/drill status' and '/drill status 3' (an id after the word) open the report, never
    the flow that starts a new one."""
    folded = fold(args)
    for word in sorted(STATUS_WORDS, key=len, reverse=True):  # "ket qua" before "ket"
        if folded == word or folded.startswith(word + " "):
            await status(turn, folded[len(word):].strip())
            return
    await start(turn)


def listed() -> list[Command]:
    """The commands shown in /help and menus, in their positions."""
    return sorted((c for c in COMMANDS.values() if c.in_menu), key=lambda c: c.position)


def menu(t: Translator) -> list[tuple[str, str]]:
    """(name, description) for a platform's command menu, in one language."""
    return [(c.name, t(c.description)) for c in listed()]
