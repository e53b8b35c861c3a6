"""/lang: choose Tiếng Việt or English; the reply already comes in the new language."""

from __future__ import annotations

from bot.flows.engine import Flow, Option, Step, register
from bot.i18n import N_
from bot.turn import Turn


async def _switch(turn: Turn) -> None:
    turn.set_locale(turn.data["locale"])
    turn.say(turn.t("Language set to English."))


FLOW = register(Flow(
    name="language",
    title=N_("language choice"),
    steps=(
        Step("locale", "choice", N_("Choose your language:"),
             options=(Option("vi", "Tiếng Việt", literal=True),
                      Option("en", "English", literal=True))),
    ),
    finish=_switch,
))
