"""Urgent directives with Telegram's paid broadcast (allow_paid_broadcast): the cost in Stars
is shown before anything is sent, TELEGRAM_PAID_BROADCAST_MAX_STARS caps it, the Telegram cards
carry the flag and draw on the bot's Star balance (the double refuses them without one, as
Telegram does), Zalo recipients get the same card at Zalo's ordinary pace."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.channels.base import SendRate
from bot.delivery import Pace
from storage.models import Directive, OutboxMessage
from tests.conftest import Coso, StartBot
from tests.doubles.telegram_api import SentMessage, TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import WardTeam, data_for, eventually, say, tap, ward_team

ADMIN, STAFF, KP1, T1, OTHER = 901, 902, 903, 904, 905
ZALO_KP2 = "zalo-kp2-paid"
TEAM = WardTeam(staff=STAFF, kp1=KP1, t1=T1, other=OTHER, zalo_kp2=ZALO_KP2, admin=ADMIN)
TEXT = "Khẩn: sơ tán các hộ ven kênh trước 18 giờ."


def _paid_calls(tg: TelegramDouble) -> list[int]:
    return [int(params["chat_id"]) for method, params in tg.calls
            if method == "sendMessage" and params.get("allow_paid_broadcast") in (True, "true")]


async def test_paid_broadcast_is_priced_capped_and_paid_from_the_bot_balance(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot, coso: Coso, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    runtime, _ = await ward_team(start_bot, tg, zalo, TEAM)
    text = tmp_path / "urgent.txt"
    text.write_text(TEXT, encoding="utf-8")
    send = ("directive", "send", "--scope", "26734", "--role", "leader", "--text-file",
            str(text), "--urgent-paid")

    # Off until an operator sets a cap.
    code, _, err = await coso(*send)
    assert code == 1 and "TELEGRAM_PAID_BROADCAST_MAX_STARS" in err, err

    # Priced, not sent: two Telegram leaders, 0.1 Star each; the Zalo leader is not charged.
    monkeypatch.setenv("TELEGRAM_PAID_BROADCAST_MAX_STARS", "5")
    code, out, err = await coso(*send)
    assert code == 0, err
    assert "2 Telegram messages for 0.2 Stars" in out and "--yes" in out, out
    code, out, err = await coso(*send, "--json")
    assert json.loads(out) == {"id": None, "sent": False, "recipients": 3, "messages": 3,
                               "paid_messages": 2, "stars": "0.2", "unconnected": []}

    # Over the cap: refused, clearly.
    monkeypatch.setenv("TELEGRAM_PAID_BROADCAST_MAX_STARS", "0.1")
    code, _, err = await coso(*send, "--yes")
    assert code == 1 and "0.2 Stars" in err and "(0.1)" in err, err
    async with runtime.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Directive)) == 0
        assert await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.ref.startswith("directive:"))) == 0

    # Sent, on a bot with no Stars: Telegram refuses the flag with a 400; the row fails.
    monkeypatch.setenv("TELEGRAM_PAID_BROADCAST_MAX_STARS", "5")
    code, out, err = await coso(*send, "--yes", "--json")
    assert code == 0, err
    first = json.loads(out)
    # (PostgreSQL's sequence moved on with the priced, rolled-back tries: any id.)
    assert first == {"id": first["id"], "recipients": 3, "messages": 3, "paid_messages": 2,
                     "stars": "0.2", "unconnected": []}
    zalo_card = await zalo.next_message(ZALO_KP2)  # Zalo: the ordinary card, at its pace
    assert TEXT in (zalo_card.text or "")

    async def refused() -> bool:
        return sum(1 for f in tg.failures if f.status == 400
                   and "not enough Stars" in f.description) == 2
    await eventually(refused)
    await tg.expect_silence(KP1, 0.2)

    # With a balance the cards go, each drawing 0.1 Star.
    tg.star_balance = 1.0
    code, out, err = await coso(*send, "--yes")
    assert code == 0 and f"Directive #{first['id'] + 1} sent to 3 recipients" in out, err
    [kp1_card] = await tg.wait_messages(KP1)
    [t1_card] = await tg.wait_messages(T1)
    assert TEXT in (kp1_card.text or "") and TEXT in (t1_card.text or "")
    assert sorted(_paid_calls(tg)) == [KP1, KP1, T1, T1]  # two refused, two paid
    assert tg.paid_sends == 2 and tg.star_balance == pytest.approx(0.8)
    assert TEXT in ((await zalo.next_message(ZALO_KP2)).text or "")


PAID_CHOICE = "Urgent: paid broadcast, every Telegram recipient within a minute"


async def _to_urgency(tg: TelegramDouble, user: int) -> SentMessage:
    """/directive to the whole ward's leaders, no photo, no deadline: the next question."""
    [scopes] = await say(tg, user, "/directive")
    [roles] = await tap(tg, user, data_for(scopes, "Phường Bến Thành"))
    [text] = await tap(tg, user, data_for(roles, "Leaders"))
    [photo] = await say(tg, user, TEXT)
    [deadline] = await tap(tg, user, data_for(photo, "Skip"))
    [after] = await say(tg, user, "/skip")
    return after


async def test_an_admin_chooses_paid_broadcast_in_chat_and_sees_the_cost_first(
        tg: TelegramDouble, zalo: ZaloDouble, start_bot: StartBot,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_PAID_BROADCAST_MAX_STARS", "0.1")
    runtime, _ = await ward_team(start_bot, tg, zalo, TEAM)
    tg.star_balance = 1.0

    # Ward staff are not offered it: the deadline leads straight to the confirmation.
    staff_next = await _to_urgency(tg, STAFF)
    assert "Send this directive now?" in (staff_next.text or ""), staff_next.describe()
    await say(tg, STAFF, "/cancel")

    # Over the cap: refused with the price and the cap; the question stays open.
    urgency = await _to_urgency(tg, ADMIN)
    assert "0.1 Star a message" in (urgency.text or ""), urgency.describe()
    assert urgency.button_texts[:2] == ["Normal pace (free)", PAID_CHOICE]
    [refused] = await tap(tg, ADMIN, data_for(urgency, PAID_CHOICE))
    assert ("would cost 0.2 Stars for 2 Telegram messages, more than one directive may spend "
            "(0.1 Stars)") in (refused.text or ""), refused.describe()

    # Within the cap (the operator raised it): the summary prices it before Confirm.
    runtime.settings.telegram_paid_broadcast_max_stars = 5.0
    [summary] = await tap(tg, ADMIN, data_for(refused, PAID_CHOICE))
    assert ("Paid broadcast: 2 Telegram messages for 0.2 Stars from the bot's balance; Zalo "
            "and web chat recipients get it at the normal pace.") in (summary.text or "")
    [sent] = await tap(tg, ADMIN, data_for(summary, "Confirm"))
    assert (sent.text or "").startswith("Directive #1 sent to 3 recipients"), sent.describe()
    assert "0.2 Stars" in (sent.text or "")
    [kp1_card] = await tg.wait_messages(KP1)
    [t1_card] = await tg.wait_messages(T1)
    assert TEXT in (kp1_card.text or "") and TEXT in (t1_card.text or "")
    assert sorted(_paid_calls(tg)) == [KP1, T1]
    assert tg.star_balance == pytest.approx(0.8)
    assert TEXT in ((await zalo.next_message(ZALO_KP2)).text or "")  # Zalo: not charged


async def test_the_double_refuses_paid_sends_beyond_1000_a_second(tg: TelegramDouble) -> None:
    tg.star_balance = 2000
    tg.paid_rate_limit_per_second = 3
    async with aiohttp.ClientSession() as http:
        url = f"{tg.base_url}/bot{tg.token}/sendMessage"
        answers = []
        for chat in range(1, 6):
            async with http.post(url, json={"chat_id": chat, "text": "x",
                                            "allow_paid_broadcast": True}) as response:
                answers.append(response.status)
        # The free limit's window is separate: a plain send still goes.
        async with http.post(url, json={"chat_id": 9, "text": "x"}) as response:
            answers.append(response.status)
    assert answers == [200, 200, 200, 429, 429, 200]
    assert tg.paid_sends == 3 and tg.star_balance == pytest.approx(1999.7)


async def test_paid_rows_take_their_slots_at_the_paid_rate() -> None:
    pace = Pace(SendRate(per_second=30, per_chat_per_second=1, paid_per_second=1000))
    assert pace.paid_interval == pytest.approx(1 / (1000 * 0.97))
    assert pace.interval == pytest.approx(1 / (30 * 0.97))
    for chat in range(50):
        await pace.wait_turn(chat, paid=True)
    # Fifty paid slots handed out one paid interval apart; the free clock is untouched, so
    # a free row (an interactive reply) is not queued behind them.
    first_free = pace._next  # noqa: SLF001
    assert first_free == 0.0
    await pace.wait_turn(1000)
    assert pace._next > 0.0  # noqa: SLF001
