"""The conversation engine: flows declared as data, one saved step at a time.

A flow is an ordered tuple of steps. Each step asks for a choice, several choices (multi), a
number, a text, a photo or a confirmation; the engine validates the answer, re-asks with the
reason when it does not fit, and saves the conversation after every step, so a restart resumes
where the person was. Every question carries a fresh token in its buttons: a button from an
older question is refused instead of answering the current one.

Steering is a row of buttons under the question: Skip on optional steps, Back after the first,
Cancel on the first step and the confirmation; on Zalo they are numbers ("0" is Back) or, under
a question whose answer is a number or a text, the word itself. A tapped question loses its
keyboard (an edit of that message), and a multi-select's ticks change in place.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_, Translator, pick_locale
from bot.messages import (
    EDIT,
    KEYBOARD_ONLY,
    LAST_QUESTION,
    QUESTION,
    TYPED_LABEL,
    Button,
    Outgoing,
    parse_id,
)
from bot.settings import Settings
from bot.turn import Turn
from storage import conversations, outbox
from storage.conversations import History, empty_history
from storage.models import Conversation, Platform
from storage.people import person_of
from wording import fold, normalize, normalize_multiline, typed_answer, within

StepKind = Literal["choice", "multi", "number", "text", "photo", "confirm"]
END = ""  # a step key meaning "finish the flow after this step"
BUTTON_PREFIX = "f"
# Past this many options a choice is typed, not tapped: Telegram refuses a keyboard of more
# than 100 buttons, and nobody scrolls through a city's 168 ward names on a phone.
BUTTONS_AT_MOST = 12
NAMES_IN_REFUSAL = 5
# Channels that show a numbered list instead of buttons: typed numbers are their taps.
TEXT_ONLY = frozenset({Platform.ZALO.value})
# A steering button's payload: f:<token>:<action>.
SKIP, BACK, CANCEL, DONE = "skip", "back", "cancel", "done"

OptionSource = Sequence["Option"] | Callable[[Turn], Awaitable[Sequence["Option"]]]
Bound = int | Callable[[Turn], Awaitable[int]]
Validator = Callable[[Turn, Any], Awaitable[str | None]]
# Chooses the next step from the answers, and only that: it sees them read-only.
Branch = Callable[[Mapping[str, Any]], str]
AnswerHook = Callable[[Turn, Any], Awaitable[None]]
Ticked = Callable[[Turn], Awaitable[Sequence[str]]]


@dataclass(frozen=True)
class Option:
    value: str
    label: str  # a msgid, unless literal (a computed name such as a unit's)
    literal: bool = False
    aliases: tuple[str, ...] = ()  # typed exactly, they choose it too (a unit's code, "all")

    def shown(self, t: Translator) -> str:
        return self.label if self.literal else t(self.label)


@dataclass(frozen=True)
class Step:
    key: str
    kind: StepKind
    prompt: str  # msgid, formatted with the answers so far and {min} {max} {max_length}
    options: OptionSource = ()
    minimum: Bound = 0
    maximum: Bound = 1_000_000
    max_length: int = 500
    optional: bool = False
    validate: Validator | None = None  # returns a msgid explaining why the answer is refused
    summary: Callable[[Turn], Awaitable[str]] | None = None  # confirm steps: what is confirmed
    # Where the flow goes after this step: with `next`, whichever of goes_to it returns; with
    # one goes_to and no next, there; with neither, the following step (or the end).
    goes_to: tuple[str, ...] = ()
    next: Branch | None = None
    # Writes derived from the answer (the picked household's id, a search's matches): the
    # one place an answer changes turn.data besides being stored under its key. A confirm
    # step's hook sees "yes" or the value of the option tapped beside it (see `options`).
    on_answer: AnswerHook | None = None
    # multi steps: what is ticked when the step is first asked (a household's own flags).
    ticked: Ticked | None = None
    # A photo sent at this step is kept under this key and the step asked again (a report's
    # photo at its confirmation, instead of a step of its own).
    attach: str | None = None
    # Confirm steps: a typed text that is no answer is kept under this key (up to
    # max_length) and the step asked again: the note a one-message report never asked for.
    text_to: str | None = None
    # Choice steps: the option ("Another amount") that a typed answer matching no option
    # chooses, the text then answering the step that follows it: "3 túi" needs no two turns.
    typed_to: str | None = None


@dataclass(frozen=True)
class Flow:
    name: str
    steps: tuple[Step, ...]
    finish: Callable[[Turn], Awaitable[None]]
    title: str  # msgid naming the flow to the person ("the household report")
    # A prompt nobody asked for (the daily check-in) just closes when left unanswered.
    quiet_lapse: bool = False

    def step(self, key: str) -> Step | None:
        return next((s for s in self.steps if s.key == key), None)

    def after(self, step: Step, data: Mapping[str, Any]) -> Step | None:
        """The step that follows `step` given the answers; None when the flow is done."""
        if step.next is not None:
            key = step.next(MappingProxyType(data))
            if key not in step.goes_to:
                raise FlowError(f"flow {self.name!r}: step {step.key!r} went to {key!r}, "
                                f"not one of its goes_to {step.goes_to!r}")
        elif step.goes_to:
            key = step.goes_to[0]
        else:
            index = self.steps.index(step) + 1
            return self.steps[index] if index < len(self.steps) else None
        if key == END:
            return None
        following = self.step(key)
        if following is None:  # register() checked the declaration; a flow changed since
            raise FlowError(f"flow {self.name!r}: step {step.key!r} went to unknown {key!r}")
        return following


class FlowError(Exception):
    """A flow declared wrong: a duplicate or unknown step key, an undeclared target."""


class BadAnswer(Exception):
    """An answer that does not fit; the msgid says why, formatted with values."""

    def __init__(self, msgid: str, **values: Any) -> None:
        super().__init__(msgid)
        self.msgid, self.values = msgid, values


FLOWS: dict[str, Flow] = {}

# Words that steer any flow, matched folded: "Hủy", "huy" and "HUY" alike. Each is also a
# command (/cancel...) that the router hands to the open flow rather than run on its own.
STEERING: dict[str, frozenset[str]] = {
    "cancel": frozenset({"cancel", "huy", "/cancel", "thoat", "dung"}),
    "back": frozenset({"back", "quay lai", "/back", "tro lai"}),
    "help": frozenset({"help", "?", "/help", "giup", "tro giup"}),
    "skip": frozenset({"skip", "bo qua", "/skip", "-", "khong co"}),
}
HELP = "help"
YES_WORDS = {"yes", "y", "ok", "co", "dong y", "xac nhan", "confirm"}
NO_WORDS = {"no", "n", "khong", "khong dong y"}
LAPSE_NOTICE = N_("Your previous conversation lapsed after a long pause; "
                  "nothing from it was saved.")
_NUMBER = re.compile(r"^[+]?\d{1,9}$")
WAITING = "_waiting"  # turn.data's typed answers waiting for their steps (begin's answers)


def register(flow: Flow) -> Flow:
    """Add the flow, once its step keys are checked: a typo fails at import, not mid-talk."""
    _check(flow)
    if FLOWS.get(flow.name, flow) is not flow:
        raise FlowError(f"flow {flow.name!r} is registered twice")
    FLOWS[flow.name] = flow
    return flow


def _check(flow: Flow) -> None:
    keys = [step.key for step in flow.steps]
    if not keys:
        raise FlowError(f"flow {flow.name!r} has no steps")
    for key in keys:
        if key == END or keys.count(key) > 1:
            raise FlowError(f"flow {flow.name!r}: step key {key!r} is empty or not unique")
    for step in flow.steps:
        if step.next is not None and not step.goes_to:
            raise FlowError(f"flow {flow.name!r}: step {step.key!r} has a next but no "
                            "goes_to naming where it may go")
        if step.next is None and len(step.goes_to) > 1:
            raise FlowError(f"flow {flow.name!r}: step {step.key!r} goes to several steps "
                            "but has no next to choose")
        for key in step.goes_to:
            if key != END and key not in keys:
                raise FlowError(f"flow {flow.name!r}: step {step.key!r} goes to unknown "
                                f"step {key!r}")


async def current(turn: Turn) -> Conversation | None:
    """The person's open conversation; a lapsed one is closed here with a notice."""
    conversation = await conversations.of_account(turn.session, turn.account.id)
    if conversation is None:
        return None
    if _lapsed(conversation, turn):
        await conversations.close(turn.session, conversation)
        if not _is_quiet(conversation):
            turn.say(turn.t(LAPSE_NOTICE))
        return None
    turn.data = dict(conversation.data)
    return conversation


async def begin(turn: Turn, flow: Flow, first_answer: str | None = None, *,
                at: str | None = None, data: Mapping[str, Any] | None = None,
                answers: Mapping[str, str | None] | None = None) -> None:
    """Open the flow; with first_answer ('/lang en') the first question is answered at once.

    Prefilled (the one-message report): `data` are answers already settled by the caller (a
    household it looked up in scope), `at` the step to start from, and `answers` typed
    answers waiting for their steps (None: skip it). Each waiting answer goes through its
    step's ordinary parse, check and on_answer when the flow reaches that step; one that does
    not fit is dropped and the step is asked with the reason, as if the person had typed it.
    """
    start = flow.step(at) if at else flow.steps[0]
    if start is None:
        raise FlowError(f"flow {flow.name!r} has no step {at!r} to start at")
    conversation = Conversation(chat_account_id=turn.account.id, flow=flow.name,
                                step=start.key, data={}, history=empty_history(),
                                started_at=turn.now, updated_at=turn.now)
    # Inserted by its first save (_ask: one INSERT with the question already set, not an
    # INSERT and then an UPDATE), or by the autoflush of a read before that.
    turn.session.add(conversation)
    turn.data = dict(data or {})
    if answers:
        turn.data[WAITING] = dict(answers)
    if first_answer:
        await _answer(turn, conversation, flow, start, text=first_answer)
    else:
        await _ask(turn, conversation, flow, start)


async def abandon(turn: Turn, conversation: Conversation) -> None:
    """Another command takes over: close the open flow and say so."""
    flow = FLOWS.get(conversation.flow)
    await conversations.close(turn.session, conversation)
    if flow is not None:
        turn.say(turn.t("Stopped {flow}; nothing from it was saved.", flow=turn.t(flow.title)))


async def resume(turn: Turn, conversation: Conversation) -> None:
    """Feed this turn's update to the open flow."""
    flow = FLOWS.get(conversation.flow)
    step = flow.step(conversation.step) if flow else None
    if flow is None or step is None:  # the flow changed under a deploy
        await conversations.close(turn.session, conversation)
        turn.say(turn.t("That conversation can no longer go on; please start again."))
        return
    incoming = turn.incoming
    if incoming.payload is not None:
        await _button(turn, conversation, flow, step, incoming.payload)
        return
    _drop_keyboard(turn)  # typed: the question's buttons go all the same
    if incoming.photo is not None and step.attach is not None:
        await _attach(turn, conversation, flow, step)
        return
    tapped = await _typed_tap(turn, step, conversation, fold(incoming.text or ""))
    if tapped is not None:
        await _button(turn, conversation, flow, step, tapped)
        return
    steering = steering_word(turn, incoming.text or "")
    if steering in (CANCEL, BACK, HELP):
        await _steer(turn, conversation, flow, step, steering)
        return
    await _answer(turn, conversation, flow, step, text=incoming.text, photo=incoming.photo,
                  other=incoming.document is not None)


async def _attach(turn: Turn, conversation: Conversation, flow: Flow, step: Step) -> None:
    """A photo where the step keeps one aside: at a confirmation it is added and the summary
    shown again; at a text step its caption is the answer (none: the step is skipped)."""
    assert step.attach is not None
    turn.data[step.attach] = turn.incoming.photo
    _answers_changed(turn)
    caption = turn.incoming.text
    if step.kind == "confirm":
        await _ask(turn, conversation, flow, step)
    else:
        await _answer(turn, conversation, flow, step, text=caption, skip=not caption)


def steering_word(turn: Turn, text: str) -> str | None:
    """The steering word the text is (CANCEL, BACK, HELP or SKIP), or None: matched folded,
    a full stop or spaces around it ignored, and its button's label in the person's language
    counting as well as the words of every language."""
    word = fold(text).strip(" .")
    for action, words in STEERING.items():
        label = LABELS.get(action)
        if word in words or (label is not None and word == fold(turn.t(label))):
            return action
    return None


async def _steer(turn: Turn, conversation: Conversation, flow: Flow, step: Step,
                 action: str) -> None:
    if action == HELP:
        await _ask(turn, conversation, flow, step, notice=N_(
            "Answer the question below. Type 'back' to change your previous answer, "
            "or 'cancel' to stop."))
    else:
        await _steer_action(turn, conversation, flow, step, action)


async def _steer_action(turn: Turn, conversation: Conversation, flow: Flow, step: Step,
                        action: str) -> None:
    if action == CANCEL:
        await conversations.close(turn.session, conversation)
        turn.say(turn.t("Cancelled; nothing was saved."))
    elif action == BACK:
        await _back(turn, conversation, flow, step)
    else:
        await _answer(turn, conversation, flow, step, skip=True)


async def _back(turn: Turn, conversation: Conversation, flow: Flow, step: Step) -> None:
    history = History.from_json(conversation.history)
    visit = history.pop()
    if visit is None:
        await _ask(turn, conversation, flow, step, notice=N_("This is the first question."))
        return
    previous = flow.step(visit.step) or flow.steps[0]
    # The answers as they stood when that question was asked: a loop (search again) may
    # have overwritten what its prompt shows. Kept: a photo sent aside (it was no answer to
    # any step) and the ticks of the multi-select gone back to, which its buttons show.
    kept = {key: turn.data[key] for key in _kept_on_back(flow, previous) if key in turn.data}
    turn.data = {**visit.answers, **kept}
    conversation.history = history.to_json()
    _answers_changed(turn)
    await _ask(turn, conversation, flow, previous)


def _kept_on_back(flow: Flow, previous: Step) -> list[str]:
    keys = [step.attach for step in flow.steps if step.attach]
    return [*keys, previous.key] if previous.kind == "multi" else keys


async def _button(turn: Turn, conversation: Conversation, flow: Flow, step: Step,
                  payload: str) -> None:
    prefix, _, rest = payload.partition(":")
    token, _, choice = rest.partition(":")
    if prefix != BUTTON_PREFIX or token != conversation.question_token:
        turn.say(turn.t("This question is no longer open."))
        return
    options = await _options(turn, step)
    index = parse_id(choice, low=0, high=len(options) - 1)
    if step.kind == "multi" and index is not None:
        _toggle(turn, step, options[index].value)
        await _ask(turn, conversation, flow, step, edit=turn.incoming.message_ref)
        return
    steering = choice in (SKIP, BACK, CANCEL) or (step.kind == "multi" and choice == DONE)
    if index is None and not steering:
        turn.say(turn.t("This question is no longer open."))
        return
    _drop_keyboard(turn)
    if step.kind == "multi" and choice == DONE:
        await _settle(turn, conversation, flow, step, list(turn.data.get(step.key) or []))
    elif index is None:
        await _steer_action(turn, conversation, flow, step, choice)
    else:
        await _settle(turn, conversation, flow, step, options[index].value)


def _drop_keyboard(turn: Turn) -> None:
    """The question is answered: its buttons go (Telegram, the web chat), so what is left on
    screen is what can still be tapped. A tap names its message; a typed answer, the last."""
    if turn.account.channel not in TEXT_ONLY:
        turn.say("", extra={EDIT: turn.incoming.message_ref or LAST_QUESTION,
                            KEYBOARD_ONLY: True})


def _toggle(turn: Turn, step: Step, value: str) -> None:
    ticked = list(turn.data.get(step.key) or [])
    turn.data[step.key] = [v for v in ticked if v != value] if value in ticked else [
        *ticked, value]
    _answers_changed(turn)


async def _answer(turn: Turn, conversation: Conversation, flow: Flow, step: Step, *,
                  text: str | None = None, photo: str | None = None, other: bool = False,
                  skip: bool = False) -> None:
    try:
        if skip or (step.optional and text is not None and steering_word(turn, text) == SKIP):
            if not step.optional:
                raise BadAnswer(N_("This answer is needed; it cannot be skipped."))
            value: Any = None
        else:
            value = await _parse(turn, step, text, photo, other)
    except BadAnswer as bad:
        if step.text_to and text and not skip and photo is None and _free_text(turn, text):
            await _keep_text(turn, conversation, flow, step, text)
            return
        if step.typed_to and text and not skip and photo is None and _no_pick(turn, text):
            await _pass_on(turn, conversation, flow, step, text)
            return
        await _ask(turn, conversation, flow, step, notice=bad.msgid, **bad.values)
        return
    await _settle(turn, conversation, flow, step, value)


def _free_text(turn: Turn, text: str) -> bool:
    """Words, not a number or a steering word that missed its step."""
    return not fold(text).strip(" .").isdigit() and steering_word(turn, text) is None


def _no_pick(turn: Turn, text: str) -> bool:
    """Not a steering word, nor a number that may be a mistyped option's ("3" of two)."""
    word = fold(text).strip(" .")
    return steering_word(turn, text) is None and not (
        word.isdigit() and int(word) <= BUTTONS_AT_MOST)


async def _pass_on(turn: Turn, conversation: Conversation, flow: Flow, step: Step,
                   text: str) -> None:
    """A typed answer that is none of the options: its typed_to option is chosen and the
    text waits for the step that option leads to, which reads (or refuses) it."""
    assert step.typed_to is not None
    following = flow.after(step, {**turn.data, step.key: step.typed_to})
    if following is not None:
        turn.data[WAITING] = {**(turn.data.get(WAITING) or {}), following.key: text}
    await _settle(turn, conversation, flow, step, step.typed_to)


async def _keep_text(turn: Turn, conversation: Conversation, flow: Flow, step: Step,
                     text: str) -> None:
    assert step.text_to is not None
    try:
        turn.data[step.text_to] = await _parse_text(turn, step, text)
    except BadAnswer as bad:
        await _ask(turn, conversation, flow, step, notice=bad.msgid, **bad.values)
        return
    _answers_changed(turn)
    await _ask(turn, conversation, flow, step)


async def _settle(turn: Turn, conversation: Conversation, flow: Flow, step: Step,
                  value: Any) -> None:
    """The step's check, for a tapped answer as for a typed one, then the answer taken."""
    try:
        if step.validate is not None and value is not None:
            problem = await step.validate(turn, value)
            if problem:
                raise BadAnswer(problem)
    except BadAnswer as bad:
        await _ask(turn, conversation, flow, step, notice=bad.msgid, **bad.values)
        return
    await _accept(turn, conversation, flow, step, value)


async def _parse(turn: Turn, step: Step, text: str | None, photo: str | None,
                 other: bool) -> Any:
    if step.kind == "photo":
        if photo is None:
            raise BadAnswer(N_("Please send a photo."))
        return photo
    if photo is not None or other or text is None:
        raise BadAnswer(N_("Please answer in text; a photo or file does not fit here."))
    parsers = {"choice": _parse_choice, "confirm": _parse_confirm, "multi": _parse_multi,
               "number": _parse_number, "text": _parse_text}
    return await parsers[step.kind](turn, step, text)


async def _parse_choice(turn: Turn, step: Step, text: str) -> str:
    """The option's number (when listed), its name, value or an alias; else the one option
    whose name holds what was typed ("ben thanh" finds "Phường Bến Thành")."""
    options = await _options(turn, step)
    listed = len(options) <= BUTTONS_AT_MOST
    wanted = typed_answer(text)
    for index, option in enumerate(options, start=1):
        exact = (option.shown(turn.t), option.value, *option.aliases)
        if (listed and wanted == str(index)) or wanted in map(fold, exact):
            return option.value
    found = [option for option in options if within(wanted, fold(option.shown(turn.t)))]
    if len(found) == 1:
        return found[0].value
    if listed and turn.account.channel not in TEXT_ONLY:
        raise BadAnswer(N_("Please tap one of the buttons below, or type its name."))
    if listed:
        raise BadAnswer(N_("Please choose one of the options: reply with its number (1 to {n})."),
                      n=len(options))
    if not found:
        raise BadAnswer(N_("Nothing matches “{typed}”; type part of the name, or the code."),
                      typed=text.strip()[:40])
    raise BadAnswer(N_("{n} match “{typed}” ({names}…); type more of the name, or the code."),
                  n=turn.t.number(len(found)), typed=text.strip()[:40],
                  names=", ".join(option.shown(turn.t) for option in found[:NAMES_IN_REFUSAL]))


async def _parse_confirm(turn: Turn, step: Step, text: str) -> str:
    """Confirm (1, yes, its label or aliases), or an option beside it by its label or
    aliases; on Zalo the numbers of the list are taps, read before this."""
    wanted = typed_answer(text)
    for option in await _options(turn, step):  # numbers: Zalo's are taps, read before this
        if wanted in (fold(option.shown(turn.t)), option.value, *map(fold, option.aliases)):
            return option.value
    if wanted in YES_WORDS or wanted == "1":
        return "yes"
    if wanted in NO_WORDS:
        return "no"
    if turn.account.channel in TEXT_ONLY:
        raise BadAnswer(N_("Please reply 1 to confirm, or the number of another choice in "
                           "the list."))
    raise BadAnswer(N_("Please tap one of the buttons below."))


async def _parse_multi(turn: Turn, step: Step, text: str) -> list[str]:
    """Several options in one message, by their numbers ("1 3 5", "1,3") or names separated
    by commas: each ticks or unticks its option, as a tap would, and the answer is taken
    (the confirmation shows it). Done alone keeps the ticks; in a list it is ignored."""
    options = await _options(turn, step)
    done = {str(len(options) + 1), fold(turn.t("Done")), "xong", "done"}
    wanted = fold(text).strip(" .")
    ticked = list(turn.data.get(step.key) or [])
    if wanted in done:
        return ticked
    if wanted in NO_WORDS:
        return []
    parts = [part.strip() for part in re.split(
        r"[,;]+" if re.search(r"[a-z]", wanted) else r"[\s,;.]+", wanted) if part.strip()]
    for part in (part for part in parts if part not in done):
        option = _one_option(turn, options, part)
        if option is None:
            raise BadAnswer(N_("Please choose by the numbers of the list (1 to {n}), several "
                               "at once like “1 3”, or send {done} for {done_label}."),
                            n=len(options), done=len(options) + 1, done_label=turn.t("Done"))
        ticked = [v for v in ticked if v != option.value] if option.value in ticked else [
            *ticked, option.value]
    return ticked


def _one_option(turn: Turn, options: Sequence[Option], wanted: str) -> Option | None:
    for index, option in enumerate(options, start=1):
        if wanted in (str(index), fold(option.shown(turn.t)), option.value):
            return option
    found = [option for option in options if within(wanted, fold(option.shown(turn.t)))]
    return found[0] if len(found) == 1 else None


# A number, perhaps with its unit after it: "3", "3 người", "3ng", "12 hộ".
_NUMBER_AND_WORD = re.compile(r"^([+]?\d{1,9})\s*[^\W\d_]*\.?$")


async def _parse_number(turn: Turn, step: Step, text: str) -> int:
    low, high = await _bound(turn, step.minimum), await _bound(turn, step.maximum)
    given = normalize(text)
    match = _NUMBER_AND_WORD.match(given)
    digits = match.group(1) if match else given.replace(" ", "")
    if not _NUMBER.match(digits) or not low <= int(digits) <= high:
        raise BadAnswer(N_("Please enter a number from {min} to {max}."),
                      min=turn.t.number(low), max=turn.t.number(high))
    return int(digits)


async def _parse_text(turn: Turn, step: Step, text: str) -> str:
    value = normalize_multiline(text)
    if not value:
        raise BadAnswer(N_("Please type an answer; an empty message does not count."))
    if len(value) > step.max_length:
        raise BadAnswer(N_("That is {length} characters; please keep it within {max_length}."),
                      length=turn.t.number(len(value)), max_length=turn.t.number(step.max_length))
    return value


async def _accept(turn: Turn, conversation: Conversation, flow: Flow, step: Step,
                  value: Any) -> None:
    if step.kind == "confirm" and value == "no":
        await conversations.close(turn.session, conversation)
        turn.say(turn.t("Cancelled; nothing was saved."))
        return
    turn.data[step.key] = value
    if step.on_answer is not None:
        await step.on_answer(turn, value)
    _answers_changed(turn)
    following = flow.after(step, turn.data)
    if following is None:
        await conversations.close(turn.session, conversation)
        await flow.finish(turn)
        return
    history = History.from_json(conversation.history)
    history.push(step.key, conversation.data)
    conversation.history = history.to_json()
    await _ask(turn, conversation, flow, following)


async def _ask(turn: Turn, conversation: Conversation, flow: Flow, step: Step,
               notice: str | None = None, *, edit: str | None = None, **values: Any) -> None:
    """Put the step's question to the person and save where the conversation stands; a
    step with an answer waiting (prefilled) takes it instead of asking. `edit`: the message
    that showed this question, changed in place (a multi-select's ticks)."""
    waiting = turn.data.get(WAITING) or {}
    if step.key in waiting and notice is None:
        answer = waiting.pop(step.key)
        turn.data[WAITING] = waiting
        conversation.step, conversation.data = step.key, dict(turn.data)
        await _answer(turn, conversation, flow, step, text=answer, skip=answer is None)
        return
    if step.kind == "multi" and step.key not in turn.data:
        turn.data[step.key] = list(await step.ticked(turn)) if step.ticked else []
        _answers_changed(turn)
    conversation.question_token = secrets.token_hex(3)
    conversation.step = step.key
    conversation.data = dict(turn.data)
    conversation.updated_at = turn.now
    await conversations.save(turn.session, conversation)  # before the prompt's reads
    text = turn.t(step.prompt, **await _prompt_values(turn, step))
    if step.kind == "confirm" and step.summary is not None:
        text = f"{await step.summary(turn)}\n\n{text}"
    if notice:
        text = f"{turn.t(notice, **values)}\n\n{text}"
    extra: dict[str, Any] = {QUESTION: True}
    if edit is not None:
        extra[EDIT] = edit
    turn.say(text + await _hint(turn, step), await _buttons(turn, step, conversation),
             extra=extra)


async def _prompt_values(turn: Turn, step: Step) -> dict[str, Any]:
    values = {key: value for key, value in turn.data.items() if isinstance(value, str | int)}
    if step.kind == "number":
        values["min"] = turn.t.number(await _bound(turn, step.minimum))
        values["max"] = turn.t.number(await _bound(turn, step.maximum))
    values["max_length"] = turn.t.number(step.max_length)
    return values


async def _hint(turn: Turn, step: Step) -> str:
    """Only what the buttons cannot say; the steering words are listed once, in /help."""
    if step.kind == "choice" and len(options := await _options(turn, step)) > BUTTONS_AT_MOST:
        return "\n" + turn.t("(Too many to list: type part of the name, or the code; "
                             "{n} to choose from.)", n=turn.t.number(len(options)))
    if step.kind == "multi" and turn.account.channel in TEXT_ONLY:
        return "\n" + turn.t("(Type the numbers to tick or untick, several at once like "
                             "“1 3”.)")
    return ""


async def _buttons(turn: Turn, step: Step, conversation: Conversation) -> tuple[Button, ...]:
    token = conversation.question_token
    options = await _options(turn, step)
    answers: list[Button] = []
    if step.kind == "multi":
        ticked = turn.data.get(step.key) or []
        answers = [Button(f"{'☑' if option.value in ticked else '☐'} {option.shown(turn.t)}",
                          f"{BUTTON_PREFIX}:{token}:{index}",
                          toggle="on" if option.value in ticked else "off")
                   for index, option in enumerate(options)]
        answers.append(Button(turn.t("Done"), f"{BUTTON_PREFIX}:{token}:{DONE}"))
    elif step.kind in ("choice", "confirm") and len(options) <= BUTTONS_AT_MOST:
        answers = [Button(option.shown(turn.t), f"{BUTTON_PREFIX}:{token}:{index}")
                   for index, option in enumerate(options)]
    steering = [Button(turn.t(LABELS[action]), f"{BUTTON_PREFIX}:{token}:{action}", key=key,
                       steer=True)
                for action, key in await _steering(turn, step, conversation)]
    if step.kind == "confirm":  # Cancel right after Confirm: "2. Hủy" on Zalo, as it always was
        cancel = [b for b in steering if b.payload.endswith(f":{CANCEL}")]
        return (answers[0], *cancel, *answers[1:], *(b for b in steering if b not in cancel))
    return (*answers, *steering)


LABELS = {SKIP: N_("Skip"), BACK: N_("Back"), CANCEL: N_("Cancel")}


async def _steering(turn: Turn, step: Step, conversation: Conversation
                    ) -> list[tuple[str, str | None]]:
    """The steering buttons this question shows, each with its key where there are no
    buttons: None (the next number) under a list; under a question answered by a number or a
    text, the word itself (a number there is the answer), but Back keeps "0" unless 0 is an
    answer too."""
    typed = step.kind in ("text", "number") or (
        step.kind == "choice" and len(await _options(turn, step)) > BUTTONS_AT_MOST)
    first = not History.from_json(conversation.history)
    shown: list[tuple[str, str | None]] = []
    if step.optional:
        shown.append((SKIP, TYPED_LABEL if step.kind == "number" else None))
    if not first:
        zero_answers = step.kind == "number" and await _bound(turn, step.minimum) <= 0
        shown.append((BACK, TYPED_LABEL if zero_answers else "0"))
    if first or step.kind == "confirm":
        shown.append((CANCEL, TYPED_LABEL if typed else None))
    return shown


async def _typed_tap(turn: Turn, step: Step, conversation: Conversation, word: str
                     ) -> str | None:
    """On Zalo, the payload of the button whose number was typed: the numbered list is its
    keyboard. Elsewhere a number is an answer (Back and Cancel are buttons there), and in a
    multi-select's list the numbers are ticks, read by its parser."""
    if turn.account.channel not in TEXT_ONLY or not word.isdigit():
        return None
    keyed = Outgoing(text="", buttons=await _buttons(turn, step, conversation)).keyed_buttons()
    return next((button.payload for key, button in keyed
                 if key == word and (button.steer or step.kind != "multi")), None)


async def _options(turn: Turn, step: Step) -> Sequence[Option]:
    if step.kind == "confirm":  # an option "yes" among the step's own relabels Confirm
        extra = await step.options(turn) if callable(step.options) else step.options
        yes = next((o for o in extra if o.value == "yes"), Option("yes", N_("Confirm")))
        return (yes, *(o for o in extra if o.value != "yes"))
    if not callable(step.options):
        return step.options
    # Looked up once per step and turn (buttons, hint and the answer's check all need them)
    # until an answer changes: options may show the answers so far (ticked flags).
    known: dict[int, Sequence[Option]] = turn.looked_up.setdefault("options", {})
    if id(step) not in known:  # steps are module constants: their ids are stable
        known[id(step)] = await step.options(turn)
    return known[id(step)]


def _answers_changed(turn: Turn) -> None:
    turn.looked_up.pop("options", None)


async def _bound(turn: Turn, bound: Bound) -> int:
    return bound if isinstance(bound, int) else await bound(turn)


def _lapsed(conversation: Conversation, turn: Turn) -> bool:
    idle = timedelta(minutes=turn.settings.conversation_idle_minutes)
    return conversation.updated_at + idle < turn.now


async def lapse_idle(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Close conversations idle past the limit and tell each person; returns how many."""
    cutoff = now - timedelta(minutes=settings.conversation_idle_minutes)
    lapsed = await conversations.idle_since(session, cutoff)
    for conversation, account in lapsed:
        await conversations.close(session, conversation)
        if _is_quiet(conversation):
            continue
        person = await person_of(session, account)
        locale = pick_locale(person.locale if person else None, account.locale,
                             default=settings.default_locale)
        t = Translator(locale, settings.tz)
        outbox.enqueue(session, account, Outgoing(text=t(LAPSE_NOTICE)).to_payload())
    return len(lapsed)


def _is_quiet(conversation: Conversation) -> bool:
    flow = FLOWS.get(conversation.flow)
    return flow is not None and flow.quiet_lapse
