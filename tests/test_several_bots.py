"""Several bots on one channel (TELEGRAM_BOT_TOKENS, issue 17 item 8), on both databases.

Two Telegram bots, each on its own double, serve two wards: bot A (the default) Phường Bến
Thành, bot B Phường Sài Gòn. A leader of each ward registers through their ward's bot; their
replies, the 16:00 check-in and a city-wide directive come through that bot only; and each
bot's sender keeps its own token's rate, so two bots send side by side, each within its
limit. The Bot API base is one URL, as in production: a small proxy in front of the two
doubles sends each call to the double of its token.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from alembic import command
from sqlalchemy import select

from bot.app import Runtime
from bot.scheduler import Scheduler
from bot.settings import BotToken, SettingsError, load_settings
from storage import households, outbox, units
from storage.db import Database
from storage.migrate import alembic_config, upgrade_async
from storage.models import ChatAccount, OutboxMessage, utcnow
from tests.conftest import Coso, StartBot, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.token_proxy import TokenProxy
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import data_for, eventually, free_port, next_reply, register
from tests.test_invite_card import decoded, tap
from tests.test_roster import WARD, _invite, decoded_links, listing, seed_units, ward_csv
from tests.test_zalo_channel import coso_run, only_sqlite

TOKEN_A, TOKEN_B = "111111:bot-A-secret", "222222:bot-B-secret"
KEY_B = "222222"
BEN_THANH, SAI_GON = "26734", "26737"
DEMO_WARD = "26743"  # coso demo's ward
TOKENS = f"{TOKEN_A}={BEN_THANH};{TOKEN_B}={SAI_GON}"
LEADER_A, LEADER_B = 501, 502  # Telegram users: Khu phố 1 of each ward
STAFF_USER = 503
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = date(2026, 11, 24)  # a Tuesday


def at(clock: str) -> datetime:
    hours, minutes = (int(part) for part in clock.split(":"))
    return datetime(DAY.year, DAY.month, DAY.day, hours, minutes, tzinfo=HCM)


@pytest.fixture
async def bots() -> AsyncIterator[tuple[TelegramDouble, TelegramDouble, TokenProxy]]:
    """Listed before start_bot in a test, so the bot stops before the doubles do."""
    tg_a = TelegramDouble(TOKEN_A, username="coso_a_bot")
    tg_b = TelegramDouble(TOKEN_B, username="coso_b_bot")
    await tg_a.start()
    await tg_b.start()
    proxy = TokenProxy(tg_a, tg_b)
    await proxy.start()
    yield tg_a, tg_b, proxy
    await proxy.stop()
    await tg_b.stop()
    await tg_a.stop()


async def bot_of(runtime: Runtime, user: int) -> str:
    async with runtime.db.read() as session:
        return await session.scalar(select(ChatAccount.bot).where(
            ChatAccount.channel == "telegram", ChatAccount.external_id == str(user))) or ""


def chats(double: TelegramDouble) -> set[int]:
    return {message.chat_id for message in double.sent}


async def test_each_leader_hears_replies_check_in_and_directive_through_their_own_bot(
        bots: tuple[TelegramDouble, TelegramDouble, TokenProxy], start_bot: StartBot,
        coso: Coso, tmp_path: Path) -> None:
    tg_a, tg_b, proxy = bots
    with time_machine.travel(at("15:00"), tick=True) as clock:
        runtime = await start_bot(TELEGRAM_BOT_TOKENS=TOKENS, TELEGRAM_API_BASE=proxy.base_url,
                                  COSO_DEFAULT_LOCALE="en")
        assert sorted(runtime.senders) == ["telegram", f"telegram-{KEY_B}", "web"]
        seeded = await seed_ward(runtime.db)
        # New people belong to the bot they arrive on: the welcome comes back through it.
        # Both doubles number their updates from 1: the ledger keeps them apart.
        await register(tg_a, LEADER_A, seeded.codes["leader:KP1"])
        await register(tg_b, LEADER_B, seeded.codes["leader:OTHER"], unit="Phường Sài Gòn")
        assert (await bot_of(runtime, LEADER_A), await bot_of(runtime, LEADER_B)) == ("", KEY_B)

        # A reply in a conversation.
        await tg_b.send_text(LEADER_B, "/help", language_code="en")
        [help_b] = await tg_b.wait_messages(LEADER_B)
        assert "/report" in (help_b.text or ""), help_b.describe()

        # The 16:00 check-in of both wards, each through its leader's bot.
        clock.move_to(at("16:00"))
        scheduler = Scheduler(runtime.db, runtime.settings)
        assert {due.job for due in await scheduler.tick()} == {"prompt"}
        [prompt_a] = await tg_a.wait_messages(LEADER_A)
        [prompt_b] = await tg_b.wait_messages(LEADER_B)
        assert "Khu phố 1" in (prompt_a.text or "") and "Khu phố 1" in (prompt_b.text or "")

        # A city-wide directive, queued by another process (the command line).
        text = tmp_path / "d.txt"
        text.write_text("Kiểm tra cống thoát nước trước mùa mưa.", encoding="utf-8")
        code, _, err = await coso("directive", "send", "--scope", "79", "--role", "leader",
                                  "--text-file", str(text))
        assert code == 0, err
        [card_a] = await tg_a.wait_messages(LEADER_A, timeout=10)
        [card_b] = await tg_b.wait_messages(LEADER_B, timeout=10)
        assert "Kiểm tra cống" in (card_a.text or "") and "Kiểm tra cống" in (card_b.text or "")

    # Nothing crossed over: bot A never wrote to B's leader, nor bot B to A's.
    assert chats(tg_a) == {LEADER_A} and chats(tg_b) == {LEADER_B}
    assert not tg_a.failures and not tg_b.failures
    async with runtime.db.read() as session:
        rows = (await session.execute(select(OutboxMessage.bot, ChatAccount.external_id)
                                      .join(ChatAccount))).all()
    assert {(bot, chat) for bot, chat in rows} == {("", str(LEADER_A)),
                                                  (KEY_B, str(LEADER_B))}


async def test_each_bot_sends_at_its_own_pace_side_by_side(
        bots: tuple[TelegramDouble, TelegramDouble, TokenProxy], start_bot: StartBot,
        db_url: str) -> None:
    """40 rows per bot at 10/s per token: each double's limit holds (no 429), and the two
    bots send at the same time, so all 80 take about 4 s, not the 8 s of one token. The
    doubles allow 12/s: the proxy in front of them can bunch a few evenly paced sends into
    one second on a loaded machine (it did, at a load average of 6 on 2 cores)."""
    tg_a, tg_b, proxy = bots
    rate, each = 10, 40
    for double in (tg_a, tg_b):
        double.rate_limit_per_second = rate * 1.2
        double.chat_rate_limit_per_second = 1
    runtime = await start_bot(TELEGRAM_BOT_TOKENS=TOKENS, TELEGRAM_API_BASE=proxy.base_url,
                              TELEGRAM_RATE_PER_SECOND=rate)
    async with runtime.db.transaction() as session:
        for n in range(2 * each):
            account = ChatAccount(channel="telegram", external_id=str(9000 + n), locale="vi",
                                  bot=None if n % 2 == 0 else KEY_B)
            session.add(account)
            await session.flush()
            outbox.enqueue(session, account, {"text": f"Tin {n}"}, priority=outbox.BULK)
    started = time.monotonic()

    async def all_sent() -> bool:
        return len(tg_a.sent) + len(tg_b.sent) >= 2 * each

    await eventually(all_sent, seconds=30)
    assert chats(tg_a) == {9000 + n for n in range(0, 2 * each, 2)}
    assert chats(tg_b) == {9000 + n for n in range(1, 2 * each, 2)}
    assert [f.status for f in tg_a.failures + tg_b.failures] == []  # no 429 on either token
    for double in (tg_a, tg_b):  # each kept its token's pace: 40 at 10/s take ~4 s
        times = sorted(message.at for message in double.sent)
        assert times[-1] - times[0] >= (each - rate - 1) / rate
    first = min(m.at for m in tg_a.sent + tg_b.sent)
    last = max(m.at for m in tg_a.sent + tg_b.sent)
    assert max(m.at for m in tg_a.sent) > min(m.at for m in tg_b.sent)  # side by side
    assert max(m.at for m in tg_b.sent) > min(m.at for m in tg_a.sent)
    assert last - first < 2 * each / rate - 1.5, (last - first, time.monotonic() - started)


async def test_webhooks_each_bot_on_its_own_path(
        bots: tuple[TelegramDouble, TelegramDouble, TokenProxy], start_bot: StartBot) -> None:
    tg_a, tg_b, proxy = bots
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/telegram"
    runtime = await start_bot(TELEGRAM_BOT_TOKENS=TOKENS, TELEGRAM_API_BASE=proxy.base_url,
                              TELEGRAM_WEBHOOK_URL=url, TELEGRAM_WEBHOOK_SECRET="s3cret-hook",
                              COSO_WEB_PORT=port, COSO_DEFAULT_LOCALE="en")
    assert (tg_a.webhook_url, tg_b.webhook_url) == (url, f"{url}/{KEY_B}")
    seeded = await seed_ward(runtime.db)
    await register(tg_b, LEADER_B, seeded.codes["leader:OTHER"], unit="Phường Sài Gòn")
    await register(tg_a, LEADER_A, seeded.codes["leader:KP1"])
    assert chats(tg_a) == {LEADER_A} and chats(tg_b) == {LEADER_B}
    assert await bot_of(runtime, LEADER_B) == KEY_B


async def test_a_person_moves_to_the_bot_they_write_to(
        bots: tuple[TelegramDouble, TelegramDouble, TokenProxy], start_bot: StartBot) -> None:
    """A Telegram user has one chat id for every bot: writing to bot B after bot A moves
    their account to B, and what is sent to them then goes through B."""
    tg_a, tg_b, proxy = bots
    runtime = await start_bot(TELEGRAM_BOT_TOKENS=TOKENS, TELEGRAM_API_BASE=proxy.base_url,
                              COSO_DEFAULT_LOCALE="en")
    seeded = await seed_ward(runtime.db)
    await register(tg_a, LEADER_A, seeded.codes["leader:KP1"])
    await tg_b.send_text(LEADER_A, "/help", language_code="en")
    await tg_b.wait_messages(LEADER_A)
    assert await bot_of(runtime, LEADER_A) == KEY_B
    await tg_a.expect_silence(LEADER_A, seconds=0.3)


async def test_two_zalo_bots_each_answer_their_own_leader(
        start_bot: StartBot) -> None:
    """ZALO_BOT_TOKENS alike: a leader of each ward on their ward's Zalo bot."""
    zalo_a, zalo_b = ZaloDouble("zalo-token-A"), ZaloDouble("zalo-token-B")
    await zalo_a.start()
    await zalo_b.start()
    proxy = TokenProxy(zalo_a, zalo_b)
    await proxy.start()
    try:
        runtime = await start_bot(
            ZALO_BOT_TOKENS=f"zalo-token-A={BEN_THANH};zalo-token-B={SAI_GON}",
            ZALO_API_BASE=proxy.base_url, COSO_DEFAULT_LOCALE="en")
        seeded = await seed_ward(runtime.db)
        await zalo_a.send_text("za", f"/start {seeded.codes['leader:KP1']}")
        await zalo_b.send_text("zb", f"/start {seeded.codes['leader:OTHER']}")
        assert "Khu phố 1" in ((await zalo_a.next_message("za")).text or "")
        assert "Phường Sài Gòn" in ((await zalo_b.next_message("zb")).text or "")
        await zalo_b.send_text("zb", "/help")
        await zalo_b.next_message("zb")
        assert {m.chat_id for m in zalo_a.sent} == {"za"}
        assert {m.chat_id for m in zalo_b.sent} == {"zb"}
        async with runtime.db.read() as session:
            keys = dict((await session.execute(select(ChatAccount.external_id, ChatAccount.bot)
                                               .where(ChatAccount.channel == "zalo"))).all())
        assert keys["za"] is None and keys["zb"] and "zalo" not in keys["zb"]
        await runtime.stop()
    finally:
        await proxy.stop()
        await zalo_b.stop()
        await zalo_a.stop()


async def test_0012_keeps_every_earlier_account_and_row_on_the_default_bot(
        db_url: str) -> None:
    """A chat account and a pending outbox row from before 0012 come through it on the
    default bot ("") and are claimed by its sender; the downgrade drops the columns."""
    config = alembic_config(db_url)
    await asyncio.to_thread(command.downgrade, config, "0011_report_assignee")
    database = Database(db_url)
    now = utcnow()
    async with database.transaction() as session:
        account = await session.scalar(sa.text(
            "INSERT INTO chat_accounts (channel, external_id, created_at, flood_count) "
            "VALUES ('telegram', '42', :now, 0) RETURNING id").bindparams(now=now))
        await session.execute(sa.text(
            "INSERT INTO outbox (channel, chat_account_id, payload, priority, status, "
            "attempts, available_at, created_at, parts_sent) VALUES ('telegram', :account, "
            "'{\"text\": \"x\"}', 0, 'pending', 0, :now, :now, 0)").bindparams(
                account=account, now=now))
    await database.dispose()
    await upgrade_async(db_url)
    database = Database(db_url)
    try:
        async with database.transaction() as session:
            assert await session.scalar(select(ChatAccount.bot)) is None
            assert await outbox.claim(session, "telegram", 5, timedelta(seconds=60),
                                      bot=KEY_B) == []
            [(row, chat)] = await outbox.claim(session, "telegram", 5, timedelta(seconds=60))
            assert (row.bot, chat) == ("", "42")
    finally:
        await database.dispose()
    await asyncio.to_thread(command.downgrade, config, "0011_report_assignee")
    database = Database(db_url)
    async with database.engine.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("outbox")})
    await database.dispose()
    assert "bot" not in columns and "parts_sent" in columns
    await upgrade_async(db_url)


# ---------------------------------------------------------------- the setting


def _settings(**env: object) -> object:
    values: dict[str, object] = {"_env_file": None, "TELEGRAM_BOT_TOKEN": None,
                                 "TELEGRAM_BOT_TOKENS": "", "ZALO_BOT_TOKEN": None,
                                 "ZALO_BOT_TOKENS": ""}
    return load_settings(**{**values, **env})


def test_the_setting_names_each_bot_and_its_subtrees() -> None:
    settings = _settings(TELEGRAM_BOT_TOKENS=f" {TOKEN_A}=79:26734 , 26737 ;\n{TOKEN_B}= ;")
    assert settings.telegram_bots == [  # type: ignore[attr-defined]
        BotToken("", TOKEN_A, ("79:26734", "26737")), BotToken(KEY_B, TOKEN_B)]
    # The default bot stands in TELEGRAM_BOT_TOKEN for what knows one bot (invite cards).
    assert settings.telegram_bot_token == TOKEN_A  # type: ignore[attr-defined]
    # TELEGRAM_BOT_TOKEN stays the default bot, listed or not; alone, it works as before.
    both = _settings(TELEGRAM_BOT_TOKEN=TOKEN_B, TELEGRAM_BOT_TOKENS=f"{TOKEN_A}=79")
    assert both.telegram_bots == [BotToken("", TOKEN_B),  # type: ignore[attr-defined]
                                  BotToken("111111", TOKEN_A, ("79",))]
    assert _settings(TELEGRAM_BOT_TOKEN=TOKEN_A).telegram_bots == [  # type: ignore[attr-defined]
        BotToken("", TOKEN_A)]
    assert _settings().telegram_bots == []  # type: ignore[attr-defined]
    zalo = _settings(ZALO_BOT_TOKENS="zalo-one=26734;zalo-two=26737")
    keys = [bot.key for bot in zalo.zalo_bots]  # type: ignore[attr-defined]
    assert keys[0] == "" and len(keys[1]) == 16 and "zalo" not in keys[1]  # no secret kept


@pytest.mark.parametrize(("value", "says"), [
    ("not-a-token=26734", "TELEGRAM_BOT_TOKENS: entry 1: not a bot token"),
    (f"{TOKEN_A};bad=26737", "TELEGRAM_BOT_TOKENS: entry 2: not a bot token"),
    (f"{TOKEN_A}=26734;{TOKEN_A}=26737", "listed twice"),
    (f"{TOKEN_A}=26734;{TOKEN_B}=26734", "unit '26734' is given to two bots"),
    ("=26734", "entry 1 has no token"),
])
def test_a_bad_setting_is_one_line_naming_it(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as raised:
        _settings(TELEGRAM_BOT_TOKENS=value)
    message = str(raised.value)
    assert says in message and TOKEN_A not in message and TOKEN_B not in message


async def test_an_invite_links_to_the_bot_serving_its_unit(
        bots: tuple[TelegramDouble, TelegramDouble, TokenProxy], coso: Coso, db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """New leaders of Phường Sài Gòn are sent to bot B, those of Bến Thành to bot A."""
    _, _, proxy = bots
    monkeypatch.setenv("TELEGRAM_BOT_TOKENS", TOKENS)
    monkeypatch.setenv("TELEGRAM_API_BASE", proxy.base_url)
    db = Database(db_url)
    try:
        await seed_ward(db)
    finally:
        await db.dispose()
    links = {}
    for unit in ("26734-KP1", "26737-KP1", "79"):
        code, out, err = await coso("invite", "create", "--unit", unit, "--role", "leader",
                                    "--json")
        assert code == 0, err
        links[unit] = json.loads(out)[0]["telegram_link"].split("?")[0]
    assert links == {"26734-KP1": "https://t.me/coso_a_bot",
                     "26737-KP1": "https://t.me/coso_b_bot",
                     "79": "https://t.me/coso_a_bot"}  # served by no listed bot: the default


async def test_a_chat_invite_card_links_to_the_bot_serving_the_persons_unit(
        bots: tuple[TelegramDouble, TelegramDouble, TokenProxy], coso: Coso, db: Database,
        start_bot: StartBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bot B serves Khu phố 3 of Bến Thành alone: the ward's staff, on bot A, hand a group
    head of Khu phố 3 a card whose QR code opens bot B, and a quarter head of Khu phố 1 one
    that opens bot A; `coso invite create --person` links the same way."""
    tg_a, _, proxy = bots
    tokens = f"{TOKEN_A};{TOKEN_B}={WARD}-KP3"
    monkeypatch.setenv("TELEGRAM_BOT_TOKENS", tokens)
    monkeypatch.setenv("TELEGRAM_API_BASE", proxy.base_url)
    await seed_units(db)
    assert (await coso("people", "import", str(ward_csv(tmp_path))))[0] == 0
    entries = await listing(coso)
    person = {entry["unit"]: entry["person_id"] for entry in entries}
    staff = await _invite(coso, "--unit", WARD, "--role", "ward_staff")
    for unit, bot in ((f"{WARD}-KP3-T2", "coso_b_bot"), (f"{WARD}-KP1", "coso_a_bot")):
        code, out, err = await coso("invite", "create", "--person", str(person[unit]),
                                    "--json")
        assert code == 0, err
        assert json.loads(out)[0]["telegram_link"].startswith(f"https://t.me/{bot}?start=")
    await start_bot(TELEGRAM_BOT_TOKENS=tokens, TELEGRAM_API_BASE=proxy.base_url)
    await tg_a.send_text(STAFF_USER, f"/start {staff}", language_code="en", first_name="x")
    await tg_a.next_message(STAFF_USER)

    for query, bot in (("tran van bao 3-2", "coso_b_bot"), ("tran van bao 1-1", "coso_a_bot")):
        await tg_a.send_text(STAFF_USER, "/invite", language_code="en")
        await tg_a.next_message(STAFF_USER)
        await tap(tg_a, STAFF_USER, "Search by name")
        await tg_a.send_text(STAFF_USER, query, language_code="en")
        match = await next_reply(tg_a, STAFF_USER)
        [found] = [label for label in match.button_texts if label not in ("Search again",
                                                                          "Back")]
        await tap(tg_a, STAFF_USER, found)
        card = await tap(tg_a, STAFF_USER, "Confirm")
        [link] = decoded(card.photo)
        assert link.startswith(f"https://t.me/{bot}?start="), (query, link)
        assert link in (card.text or "")


async def test_demo_invites_link_to_the_bot_serving_their_unit(
        bots: tuple[TelegramDouble, TelegramDouble, TokenProxy], coso: Coso, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Bot B serves the demo ward's Khu phố 3: its quarter's and groups' invites (and their
    printed cards) open bot B, the rest bot A. Before: every demo invite opened the default
    bot, so Khu phố 3's leaders would have joined through the wrong one."""
    _, _, proxy = bots
    monkeypatch.setenv("TELEGRAM_BOT_TOKENS", f"{TOKEN_A};{TOKEN_B}={DEMO_WARD}-KP3")
    monkeypatch.setenv("TELEGRAM_API_BASE", proxy.base_url)
    code, out, err = await coso("demo", "--json")
    assert code == 0, err
    made = json.loads(out)
    opens = {i["unit"]: i["telegram_link"].split("?")[0] for i in made["invites"]}
    assert opens == {unit: "https://t.me/coso_b_bot" if unit.startswith(f"{DEMO_WARD}-KP3")
                     else "https://t.me/coso_a_bot" for unit in opens}
    assert {f"{DEMO_WARD}-KP3", f"{DEMO_WARD}-KP3-T1", f"{DEMO_WARD}-KP1"} <= set(opens)
    links = {i["telegram_link"] for i in made["invites"] if i["person"]}
    assert sorted(decoded_links(Path(made["cards"]))) == sorted(links)


async def test_doctor_checks_every_bot_and_names_the_one_that_fails(
        bots: tuple[TelegramDouble, TelegramDouble, TokenProxy], coso: Coso,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, proxy = bots
    monkeypatch.setenv("TELEGRAM_API_BASE", proxy.base_url)
    monkeypatch.setenv("TELEGRAM_BOT_TOKENS", TOKENS)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://coso.example.vn/webhook/telegram")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s3cret-path")
    code, out, err = await coso("doctor", "--json")
    found = {item["check"]: item for item in json.loads(out)}
    assert found["telegram.token"]["detail"] == "accepted: @coso_a_bot"
    assert found[f"telegram.token.{KEY_B}"]["detail"] == "accepted: @coso_b_bot"
    assert found[f"telegram.token.{KEY_B}"]["bot"] == KEY_B
    assert found[f"telegram.webhook.{KEY_B}"]["status"] == "warn"  # coso run sets it

    revoked = "222222:renewed-at-botfather"  # bot B's old token, revoked
    monkeypatch.setenv("TELEGRAM_BOT_TOKENS", f"{TOKEN_A}={BEN_THANH};{revoked}={SAI_GON}")
    monkeypatch.setenv("COSO_DEFAULT_LOCALE", "vi")
    code, out, _ = await coso("doctor")
    assert code == 1
    [line] = [line for line in out.splitlines() if KEY_B in line]
    assert "LỖI" in line and "401" in line
    # The default bot is named by its id too (before: "Token Telegram" alone).
    assert [line for line in out.splitlines() if line.startswith("Token Telegram 111111 ")]
    assert revoked not in out and "renewed" not in out  # no secret printed


async def test_a_report_photo_taken_by_one_bot_shows_through_another(
        bots: tuple[TelegramDouble, TelegramDouble, TokenProxy], start_bot: StartBot) -> None:
    """Bot B serves Khu phố 1 of Bến Thành, the ward's staff are on bot A. A file id is one
    bot's own: the photo of a report filed through bot B, viewed by staff on bot A, is fetched
    through bot B and uploaded by bot A (before, bot A passed B's file id, Telegram refused
    it, and the whole view was lost)."""
    tg_a, tg_b, proxy = bots
    runtime = await start_bot(TELEGRAM_BOT_TOKENS=f"{TOKEN_A};{TOKEN_B}={BEN_THANH}-KP1",
                              TELEGRAM_API_BASE=proxy.base_url, COSO_DEFAULT_LOCALE="en")
    seeded = await seed_ward(runtime.db)
    async with runtime.db.transaction() as session:
        kp1 = await units.by_code(session, f"{BEN_THANH}-KP1")
        assert kp1 is not None
        await households.add(session, kp1, "12 Lê Lợi", head_name="Trần Văn Bình", members=4)
    await register(tg_a, STAFF_USER, seeded.codes["ward_staff:WARD"], unit="Phường Bến Thành")
    await register(tg_b, LEADER_A, seeded.codes["leader:KP1"])

    await tg_b.send_text(LEADER_A, "/report 12 Lê Lợi F0 3 người khẩn", language_code="en")
    await tg_b.wait_messages(LEADER_A)
    await tg_b.send_photo(LEADER_A, file_id="AgAC-kp1-receipt")  # at the confirmation
    summary = await next_reply(tg_b, LEADER_A)
    assert "Photo: attached" in (summary.text or ""), summary.describe()
    await tg_b.tap(LEADER_A, data_for(summary, "🚨 Save as URGENT"))
    [alert] = await tg_a.wait_messages(STAFF_USER, timeout=10)
    assert "#1" in (alert.text or ""), alert.describe()

    await tg_a.tap(STAFF_USER, data_for(alert, "View"))
    view = await next_reply(tg_a, STAFF_USER)
    assert view.method == "sendPhoto" and "Report #1" in (view.text or ""), view.describe()
    assert view.photo == tg_b.files["AgAC-kp1-receipt"]  # the bytes, uploaded by bot A
    assert chats(tg_a) == {STAFF_USER} and chats(tg_b) == {LEADER_A}


# ---------------------------------------------------------------- a token refused at start


@pytest.mark.parametrize(("env", "line"), [
    ({"TELEGRAM_BOT_TOKEN": "123456:not-the-token"},
     "coso: TELEGRAM_BOT_TOKEN: Telegram từ chối token của bot 123456 (401 Unauthorized): "
     "hãy kiểm tra lại, hoặc lấy token mới từ nền tảng"),
    ({"TELEGRAM_BOT_TOKENS": f"{TOKEN_A}={BEN_THANH};333333:revoked-secret={SAI_GON}"},
     "coso: TELEGRAM_BOT_TOKENS: Telegram từ chối token của bot 333333 (401 Unauthorized): "
     "hãy kiểm tra lại, hoặc lấy token mới từ nền tảng"),
    ({"TELEGRAM_BOT_TOKENS": f"{TOKEN_A}={BEN_THANH};333333:revoked-secret={SAI_GON}",
      "TELEGRAM_WEBHOOK_URL": "http://127.0.0.1:9/hooks/telegram",
      "TELEGRAM_WEBHOOK_SECRET": "s3cret-hook"},
     "coso: TELEGRAM_BOT_TOKENS: Telegram từ chối token của bot 333333 (401 Unauthorized): "
     "hãy kiểm tra lại, hoặc lấy token mới từ nền tảng"),
], ids=["one bot, polling", "second bot, polling", "second bot, webhook"])
async def test_coso_run_with_a_token_telegram_refuses_says_which_bot_in_one_line(
        bots: tuple[TelegramDouble, TelegramDouble, TokenProxy], db_url: str, tmp_path: Path,
        env: dict[str, str], line: str) -> None:
    """Before: a traceback ending in RuntimeError, naming TELEGRAM_BOT_TOKEN whichever bot
    it was. The bot's id (before ':') says which one; the secret part is never printed."""
    only_sqlite(db_url)
    _, _, proxy = bots
    stderr = await coso_run(tmp_path, TELEGRAM_API_BASE=proxy.base_url, **env)
    assert stderr == [line]
    assert "not-the-token" not in line and "revoked" not in line


async def test_coso_run_with_a_token_zalo_refuses_says_which_bot_in_one_line(
        db_url: str, tmp_path: Path) -> None:
    only_sqlite(db_url)
    zalo = ZaloDouble("4455:zalo-secret-A")
    await zalo.start()
    try:
        stderr = await coso_run(tmp_path, ZALO_API_BASE=zalo.base_url,
                                ZALO_BOT_TOKENS=f"4455:zalo-secret-A={BEN_THANH};"
                                                f"6677:zalo-revoked={SAI_GON}")
    finally:
        await zalo.stop()
    assert stderr == ["coso: ZALO_BOT_TOKENS: Zalo từ chối token của bot 6677 (401 "
                      "Unauthorized): hãy kiểm tra lại, hoặc lấy token mới từ nền tảng"]
