"""/handover in chat: ward staff (here on Zalo, by typed numbers and names without diacritics)
hand a post over; the effects are those of `coso people assign`, and the old and the new
holder (on Telegram) are told. On both databases."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from storage import units
from storage.db import Database
from storage.models import Conversation, Directive, DirectiveRecipient, Person, PostHolding
from tests.conftest import Coso, StartBot
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.test_roster import WARD, _invite, count, listing, name_of, seed_units, ward_csv

OLD, NEW = 801, 802


async def say(zalo: ZaloDouble, text: str) -> str:
    await zalo.send_text("staff", text)
    return (await zalo.next_message("staff")).text or ""


async def test_ward_staff_hand_a_post_over_in_chat(
        db: Database, coso: Coso, tmp_path: Path, start_bot: StartBot, tg: TelegramDouble,
        zalo: ZaloDouble) -> None:
    await seed_units(db)
    assert (await coso("people", "import", str(ward_csv(tmp_path))))[0] == 0
    entries = await listing(coso)
    old = next(e for e in entries if e["unit"] == f"{WARD}-KP4" and e["post"] ==
               "truong_khu_pho")
    new = next(e for e in entries if e["unit"] == f"{WARD}-KP4-T1")
    staff = await _invite(coso, "--unit", WARD, "--role", "ward_staff")
    codes = {OLD: await _invite(coso, "--person", str(old["person_id"])),
             NEW: await _invite(coso, "--person", str(new["person_id"]))}
    await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url,
                    ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url)
    for user, code in codes.items():
        await tg.send_text(user, f"/start {code}", language_code="en", first_name="x")
        await tg.next_message(user)
    await tg.send_text(OLD, "/report", language_code="en")  # a conversation left open
    await tg.wait_messages(OLD, 1)
    async with db.transaction() as session:
        kp4 = await units.by_code(session, f"{WARD}-KP4")
        assert kp4 is not None
        directive = Directive(scope_unit_id=kp4.id, text="Kiểm tra")
        session.add(directive)
        await session.flush()
        session.add(DirectiveRecipient(directive_id=directive.id, unit_id=kp4.id,
                                       person_id=int(str(old["person_id"]))))
    await say(zalo, f"/start {staff}")

    pick = await say(zalo, "/handover")
    # The one vacant post first; then a search by unit, typed without diacritics.
    assert "1. Khu phố 1 · Deputy head of quarter / hamlet · vacant" in pick
    assert "2. Search by unit" in pick
    await say(zalo, "2")
    posts = await say(zalo, "khu pho 4")
    assert f"1. Khu phố 4 · Head of quarter / hamlet · {name_of(4, 0)}" in posts
    people = await say(zalo, "1")
    assert people.startswith("Who holds it from now on?")
    assert name_of(4, 0) not in people  # not to the one who holds it already
    assert "9. Search by name" in people
    await say(zalo, "9")
    matches = await say(zalo, "tran van bao 4-1")
    assert "1. Trần Văn Bảo 4-1 · Khu phố 4 › Tổ dân phố 1" in matches
    confirm = await say(zalo, "1")
    assert (f"Head of quarter / hamlet of Khu phố 4 passes from {name_of(4, 0)} to Trần "
            "Văn Bảo 4-1") in confirm
    done = await say(zalo, "1")
    assert done.startswith("Done: Trần Văn Bảo 4-1 now holds Head of quarter / hamlet of "
                           "Khu phố 4.")
    assert "1 open directive passed on" in done

    # The same effects as `coso people assign`, and both holders told.
    told_new = (await tg.next_message(NEW)).text or ""
    assert "The ward has made you Head of quarter / hamlet of Khu phố 4" in told_new
    assert "1 open directive of the unit passed to you" in told_new
    told_old = (await tg.next_message(OLD)).text or ""
    assert "you no longer hold Head of quarter / hamlet of Khu phố 4" in told_old
    head = next(e for e in await listing(coso, f"{WARD}-KP4") if e["post"] ==
                "truong_khu_pho")
    assert head["person_id"] == new["person_id"]
    assert await count(db, Conversation) == 0
    async with db.read() as session:
        moved = (await session.execute(select(DirectiveRecipient))).scalar_one()
        held = (await session.execute(select(PostHolding).where(
            PostHolding.unit_post_id.in_(select(PostHolding.unit_post_id).where(
                PostHolding.person_id == old["person_id"]))).order_by(PostHolding.id)
        )).scalars().all()
    assert moved.person_id == new["person_id"]
    assert [h.person_id for h in held] == [old["person_id"], new["person_id"]]
    assert held[0].ended_at is not None
    await tg.send_text(OLD, "/report", language_code="en")
    assert "not registered" in ((await tg.next_message(OLD)).text or "")

    # The new holder may not hand posts over: that is ward staff's.
    await tg.send_text(NEW, "/handover", language_code="en")
    assert "only for" in ((await tg.next_message(NEW)).text or "")


async def test_a_vacant_post_goes_to_someone_new_typed_in_chat(
        db: Database, coso: Coso, tmp_path: Path, start_bot: StartBot,
        zalo: ZaloDouble) -> None:
    """Nobody on the roster will do: ward staff type the new holder's name and phone, and
    the post is theirs at once (a new person, the same effects as an import), with the
    invite card to send next."""
    await seed_units(db)
    assert (await coso("people", "import", str(ward_csv(tmp_path))))[0] == 0
    staff = await _invite(coso, "--unit", WARD, "--role", "ward_staff")
    await start_bot(ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url)
    await say(zalo, f"/start {staff}")
    await say(zalo, "/handover")
    people = await say(zalo, "1")  # the vacant deputy head of Khu phố 1
    assert "10. Someone new (not on the roster)" in people
    assert "full name" in await say(zalo, "10")
    assert "in letters" in await say(zalo, "12345")
    assert "phone number" in await say(zalo, "Nguyễn  Thị Hoa")
    assert "not a phone number" in await say(zalo, "09 03")
    confirm = await say(zalo, "0903 123 456")
    assert "Nguyễn Thị Hoa becomes Deputy head of quarter / hamlet of Khu phố 1" in confirm
    assert "New on the roster, phone 0903123456." in confirm
    done = await say(zalo, "1")
    assert done.startswith("Done: Nguyễn Thị Hoa now holds Deputy head of quarter / hamlet "
                           "of Khu phố 1.")
    assert "send their card with /invite" in done
    [entry] = [e for e in await listing(coso, f"{WARD}-KP1")
               if e.get("full_name") == "Nguyễn Thị Hoa"]
    assert entry["post"] == "pho_truong" and entry["unit"] == f"{WARD}-KP1"
    async with db.read() as session:
        person = await session.get(Person, entry["person_id"])
    assert person is not None and person.phone == "0903123456"
