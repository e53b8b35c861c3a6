"""What handler modules offer the router: commands (with who may use them) and buttons.

Each handler module declares its own in a Handlers (`HANDLERS = Handlers()`, then
`@HANDLERS.command(...)` and `HANDLERS.button(prefix, handler)`); importing it registers
nothing. bot.handlers.included lists every module's HANDLERS once, in one place, and
include() puts them in COMMANDS and BUTTONS, refusing a name or prefix offered twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.handlers.access import permits
from bot.i18n import Translator
from bot.messages import parse_id
from bot.turn import Turn
from wording import fold

Run = Callable[[Turn, str], Awaitable[None]]
Handler = Callable[[Turn], Awaitable[None]]
# Button payloads that are not a flow's answers ("ack:<id>" for a directive, say).
ButtonHandler = Callable[[Turn, str], Awaitable[None]]
StatusHandler = Callable[[Turn, str], Awaitable[None]]  # gets what follows the word: an id


@dataclass(frozen=True)
class Command:
    name: str
    description: str  # msgid, shown in /help and in Telegram's command menu
    run: Run
    roles: frozenset[str] = frozenset()  # empty: open to everyone, strangers included
    in_menu: bool = True
    position: int = 50  # order in /help and the platform's menu: daily work first
    newcomers_only: bool = False  # offered in /help and menus only to the unregistered


class Handlers:
    """One handler module's commands and button prefixes, declared, not yet included."""

    def __init__(self) -> None:
        self.commands: dict[str, Command] = {}
        self.buttons: dict[str, ButtonHandler] = {}

    def command(self, name: str, description: str, *, roles: frozenset[str] = frozenset(),
                in_menu: bool = True, position: int = 50, newcomers_only: bool = False
                ) -> Callable[[Run], Run]:
        """Declare a command: @HANDLERS.command("lang", N_("Change language"))."""

        def declare(run: Run) -> Run:
            if name in self.commands:
                raise ValueError(f"command /{name} declared twice")
            self.commands[name] = Command(name, description, run, roles, in_menu, position,
                                          newcomers_only)
            return run

        return declare

    def button(self, prefix: str, handler: ButtonHandler) -> None:
        """Declare the handler of buttons whose payload starts '<prefix>:'."""
        if prefix in self.buttons:
            raise ValueError(f"button prefix {prefix!r} declared twice")
        self.buttons[prefix] = handler


# Filled by include(), from bot.handlers.included's one list.
COMMANDS: dict[str, Command] = {}
BUTTONS: dict[str, ButtonHandler] = {}


def include(*groups: Handlers) -> None:
    """Serve these modules' commands and buttons; a name or prefix served twice is refused."""
    for group in groups:
        for name, declared in group.commands.items():
            if COMMANDS.get(name, declared) is not declared:
                raise ValueError(f"command /{name} is included twice")
            COMMANDS[name] = declared
        for prefix, handler in group.buttons.items():
            if BUTTONS.get(prefix, handler) is not handler:
                raise ValueError(f"button prefix {prefix!r} is included twice")
            BUTTONS[prefix] = handler


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


Item = TypeVar("Item")


async def asked_items(turn: Turn, asked: str, one: Callable[[int], Awaitable[Item | None]],
                      latest: Callable[[], Awaitable[list[Item]]], *, hint: str,
                      not_found: str, none_yet: str) -> list[Item]:
    """What a status command shows: the item whose number follows the word ("#3", "3"), or
    the latest ones; none (after saying why) for a bad number, one out of scope, or none
    yet. The msgids are the caller's: hint, not_found (with {id}) and none_yet."""
    if not asked:
        found = await latest()
        if not found:
            turn.say(turn.t(none_yet))
        return found
    number = asked.removeprefix("#")
    wanted = parse_id(number)
    if wanted is None:
        turn.say(turn.t(hint))
        return []
    item = await one(wanted)
    if item is None:
        turn.say(turn.t(not_found, id=number))
        return []
    return [item]


def listed() -> list[Command]:
    """The commands shown in /help and menus, in their positions."""
    return sorted((c for c in COMMANDS.values() if c.in_menu), key=lambda c: c.position)


def offered(turn: Turn) -> list[Command]:
    """The commands /help lists to this person: their roles', and /start only to the
    unregistered."""
    registered = turn.person is not None and bool(turn.grants)
    return [c for c in listed() if permits(turn, c.roles)
            and not (registered and c.newcomers_only)]


def menu(t: Translator) -> list[tuple[str, str]]:
    """(name, description) for a platform's command menu, in one language."""
    return [(c.name, t(c.description)) for c in listed()]
