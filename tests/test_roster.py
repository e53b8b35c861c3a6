"""A ward's roster: posts and people imported from the ward's CSV, one invite per person
redeemed on Telegram and Zalo (through the doubles), and handovers; on both databases."""

from __future__ import annotations

import json
import re
import stat
import unicodedata
from datetime import timedelta
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import zxingcpp
from pypdf import PdfReader
from sqlalchemy import func, select

from storage import demo, purge, roster, units
from storage.db import Database
from storage.models import (
    Conversation,
    Directive,
    DirectiveRecipient,
    Invite,
    Person,
    PostHolding,
    RoleAssignment,
    utcnow,
)
from tests.conftest import Coso, StartBot
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import next_reply

WARD = "26734"
QUARTERS = 12
GROUPS_PER_QUARTER = 6
# Each quarter: head, deputy, party secretary, Front head; each group its head. 12*4 + 72 = 120.
QUARTER_POSTS = ("Trưởng khu phố", "phó trưởng khu phố", "BI THU CHI BO",
                 "truong_ban_mttq")


async def seed_units(db: Database) -> None:
    async with db.transaction() as session:
        city = await units.upsert(session, "79", "Thành phố Hồ Chí Minh", "province", None)
        ward = await units.upsert(session, WARD, "Phường Bến Thành", "ward", city)
        other = await units.upsert(session, "26737", "Phường Sài Gòn", "ward", city)
        await units.upsert(session, "26737-KP1", "Khu phố 1", "quarter", other)
        for q in range(1, QUARTERS + 1):
            quarter = await units.upsert(session, f"{WARD}-KP{q}", f"Khu phố {q}", "quarter",
                                         ward)
            for g in range(1, GROUPS_PER_QUARTER + 1):
                await units.upsert(session, f"{WARD}-KP{q}-T{g}", f"Tổ dân phố {g}", "group",
                                   quarter)


def name_of(q: int, post: int) -> str:
    return f"Nguyễn Thị Ánh {q}-{post}"


def ward_csv(tmp: Path, *, vacant: int = 1) -> Path:
    """The ward's Excel export: BOM, CRLF, a Vietnamese header order, quoted cells; the
    deputy of the first `vacant` quarters left blank."""
    lines = ["unit_code,post,full_name,phone"]
    for q in range(1, QUARTERS + 1):
        for index, post in enumerate(QUARTER_POSTS):
            name = "" if index == 1 and q <= vacant else name_of(q, index)
            lines.append(f'{WARD}-KP{q},"{post}",{name},0903 {q:03d} {index:03d}')
        for g in range(1, GROUPS_PER_QUARTER + 1):
            lines.append(f"{WARD}-KP{q}-T{g},Tổ trưởng tổ dân phố,Trần Văn Bảo {q}-{g},")
    path = tmp / "roster.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8-sig"))
    return path


async def listing(coso: Coso, unit: str = WARD) -> list[dict[str, object]]:
    code, out, err = await coso("people", "list", "--unit", unit, "--json")
    assert code == 0, err
    return list(json.loads(out))


async def count(db: Database, model: type) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_ward_of_120_posts_from_its_csv(db: Database, coso: Coso,
                                                tmp_path: Path) -> None:
    await seed_units(db)
    path = ward_csv(tmp_path)
    code, out, err = await coso("people", "import", str(path))
    assert code == 0, err
    assert "120 posts" in out and "119 new people" in out
    entries = await listing(coso)
    assert len(entries) == 120
    vacant = [e for e in entries if e["person_id"] is None]
    assert [(e["unit"], e["post"]) for e in vacant] == [(f"{WARD}-KP1", "pho_truong")]
    assert vacant[0]["vacant_since"] is not None
    # The tree's order (KP2 before KP10), each unit's posts in the catalogue's order.
    quarters = [e["unit"] for e in entries if e["post"] == "truong_khu_pho"]
    assert quarters == [f"{WARD}-KP{q}" for q in range(1, QUARTERS + 1)]
    assert [e["post"] for e in entries[:5]] == ["truong_khu_pho", "pho_truong",
                                                "bi_thu_chi_bo", "truong_ban_mttq", "to_truong"]
    assert entries[4]["place"] == "Tổ dân phố 1 · Khu phố 1"
    code, out, _ = await coso("people", "list", "--unit", f"{WARD}-KP1")
    lines = out.splitlines()
    # A header over padded columns, as the other lists print (a trial found none here).
    assert lines[0].split() == ["Unit", "Post", "Holder"], lines[0]
    assert re.fullmatch(r"Khu phố 1 +Phó trưởng khu phố / Phó trưởng ấp +vacant less than a "
                        r"day \(since [^)]+ \d{4}\)", lines[2]), lines[2]
    assert lines[0].index("Post") == lines[2].index("Phó") and (
        lines[0].index("Holder") == lines[2].index("vacant"))
    assert re.match(r"Tổ dân phố 1 +Tổ trưởng tổ dân phố +#", lines[5])  # below the root
    assert "(not connected) since " in lines[5] and str(utcnow().year) in lines[5]
    code, out, _ = await coso("--lang", "vi", "people", "list", "--unit", f"{WARD}-KP1")
    header = out.splitlines()[0]
    assert re.fullmatch(r"Đơn vị +Chức danh +Người giữ", header), header
    head = next(e for e in entries if e["unit"] == f"{WARD}-KP3" and e["post"] ==
                "truong_khu_pho")
    assert head["full_name"] == name_of(3, 0) and head["phone"] == "0903003000"
    assert head["connected"] is False and head["channels"] == []
    # The holders got the post's role: every scope check reads these grants.
    async with db.read() as session:
        roles = (await session.execute(select(RoleAssignment.role, func.count())
                                       .group_by(RoleAssignment.role))).all()
    assert dict(roles) == {"leader": 12 + 11 + 72, "monitor": 24}
    # The same file again changes nothing: no new person, no handover.
    code, out, err = await coso("people", "import", str(path))
    assert code == 0 and "0 new people, 0 handovers" in out, err
    assert await count(db, Person) == 119
    assert len(await listing(coso, f"{WARD}-KP2")) == 4 + GROUPS_PER_QUARTER
    # The party secretary of KP7 (same name and phone) becomes KP8's head too: one person.
    moved = tmp_path / "moved.csv"
    moved.write_text(f"unit_code,post,full_name,phone\n{WARD}-KP8,truong_khu_pho,"
                     f"{name_of(7, 2)},0903.007.002\n", encoding="utf-8")
    code, out, err = await coso("people", "import", str(moved))
    assert code == 0 and "0 new people, 1 handovers" in out, err
    entries = {(e["unit"], e["post"]): e for e in await listing(coso)}
    assert entries[(f"{WARD}-KP8", "truong_khu_pho")]["person_id"] == \
        entries[(f"{WARD}-KP7", "bi_thu_chi_bo")]["person_id"]


async def test_a_bad_row_refuses_the_whole_file(db: Database, coso: Coso,
                                                tmp_path: Path) -> None:
    await seed_units(db)
    cases = {
        f"{WARD}-KP1,Chủ tịch,Lê Văn A,": "unknown post “Chủ tịch”",
        f"{WARD}-KP9X,to_truong,Lê Văn A,": "unknown unit",
        "26737-KP1,truong_khu_pho,Lê Văn A,": "is not in 26734: one file is one ward",
        f"{WARD}-KP1,to_truong,Lê Văn A,": "does not exist on a unit of level quarter",
        f"{WARD}-KP1,truong_khu_pho,Lê Văn B,": "already appears on line 2",
        f"{WARD}-KP2,truong_khu_pho,Lê Văn A,09-SECRET-77": "phone must be 9 to 15 digits",
    }
    for bad, reason in cases.items():
        path = tmp_path / "bad.csv"
        path.write_text(f"unit_code,post,full_name,phone\n{WARD}-KP1,truong_khu_pho,"
                        f"Lê Văn A,\n{bad}\n", encoding="utf-8")
        code, _, err = await coso("people", "import", str(path))
        assert code != 0 and err.startswith(f"{path}:3: ") and reason in err, (bad, err)
        assert "SECRET" not in err
    assert await count(db, Person) == 0 and await count(db, PostHolding) == 0


async def _invite(coso: Coso, *args: str) -> str:
    code, out, err = await coso("invite", "create", *args, "--json")
    assert code == 0, err
    return str(json.loads(out)[0]["code"])


async def test_one_invite_per_person_on_telegram_and_zalo(
        db: Database, coso: Coso, tmp_path: Path, start_bot: StartBot,
        tg: TelegramDouble, zalo: ZaloDouble) -> None:
    await seed_units(db)
    assert (await coso("people", "import", str(ward_csv(tmp_path))))[0] == 0
    head = next(e for e in await listing(coso) if e["unit"] == f"{WARD}-KP2"
                and e["post"] == "truong_khu_pho")
    person = str(head["person_id"])
    lost = await _invite(coso, "--person", person)
    card = await _invite(coso, "--person", person)  # re-issued: the lost card is withdrawn
    await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url,
                    ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url)
    await tg.send_text(501, f"/start {lost}", language_code="en", first_name="Ánh")
    assert "withdrawn" in ((await tg.next_message(501)).text or "")
    # The registration asks again; the new card's code is the answer.
    await tg.send_text(501, card, language_code="en", first_name="Some nickname")
    welcome = (await next_reply(tg, 501)).text or ""  # past the question's keyboard removal
    assert name_of(2, 0) in welcome and "Khu phố 2" in welcome
    await zalo.send_text("zalo-7", f"/start {await _invite(coso, '--person', person)}",
                         display_name="Ánh Zalo")
    assert name_of(2, 0) in ((await zalo.next_message("zalo-7")).text or "")
    assert await count(db, Person) == 119  # no person was added
    head = next(e for e in await listing(coso) if e["person_id"] == int(person))
    assert head["connected"] is True and head["channels"] == ["telegram", "zalo"]
    # The Zalo chat is the same person: they may report on their quarter.
    await zalo.send_text("zalo-7", "/help")
    assert "/report" in ((await zalo.next_message("zalo-7")).text or "")
    # A lost phone: the re-issued card on a new Telegram account cuts the old one off.
    await tg.send_text(509, f"/start {await _invite(coso, '--person', person)}",
                       language_code="en", first_name="x")
    assert name_of(2, 0) in ((await tg.next_message(509)).text or "")
    await tg.send_text(501, "/report", language_code="en")
    assert "not registered" in ((await tg.next_message(501)).text or "")
    await zalo.send_text("zalo-7", "/help")  # the Zalo chat stays theirs
    assert "/report" in ((await zalo.next_message("zalo-7")).text or "")


async def test_an_invite_for_a_vacant_post_fills_it(
        db: Database, coso: Coso, tmp_path: Path, start_bot: StartBot,
        tg: TelegramDouble) -> None:
    await seed_units(db)
    assert (await coso("people", "import", str(ward_csv(tmp_path))))[0] == 0
    code, _, err = await coso("invite", "create", "--unit", f"{WARD}-KP3", "--post",
                              "truong_khu_pho")
    assert code != 0 and "held" in err
    invite = await _invite(coso, "--unit", f"{WARD}-KP1", "--post", "Phó trưởng khu phố")
    await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url)
    await tg.send_text(502, f"/start {invite}", language_code="en", first_name="Hà Mới")
    assert "Welcome, Hà Mới" in ((await tg.next_message(502)).text or "")
    deputy = next(e for e in await listing(coso, f"{WARD}-KP1") if e["post"] == "pho_truong")
    assert deputy["full_name"] == "Hà Mới" and deputy["channels"] == ["telegram"]
    assert deputy["vacant_since"] is None


async def test_a_handover_moves_the_post_and_ends_the_old_access(
        db: Database, coso: Coso, tmp_path: Path, start_bot: StartBot,
        tg: TelegramDouble) -> None:
    await seed_units(db)
    assert (await coso("people", "import", str(ward_csv(tmp_path))))[0] == 0
    entries = await listing(coso)
    old = next(e for e in entries if e["unit"] == f"{WARD}-KP4" and e["post"] ==
               "truong_khu_pho")
    new = next(e for e in entries if e["unit"] == f"{WARD}-KP4-T1")
    invite = await _invite(coso, "--person", str(old["person_id"]))
    await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url)
    await tg.send_text(503, f"/start {invite}", language_code="en", first_name="x")
    await tg.next_message(503)
    await tg.send_text(503, "/report", language_code="en")  # a conversation left open
    await tg.wait_messages(503, 1)
    async with db.transaction() as session:
        kp4 = await units.by_code(session, f"{WARD}-KP4")
        assert kp4 is not None
        directive = Directive(scope_unit_id=kp4.id, text="Kiểm tra")
        session.add(directive)
        await session.flush()
        session.add(DirectiveRecipient(directive_id=directive.id, unit_id=kp4.id,
                                       person_id=int(str(old["person_id"]))))
    assert await count(db, Conversation) == 1
    code, out, err = await coso("people", "assign", "--unit", f"{WARD}-KP4", "--post",
                                "truong_khu_pho", "--person", str(new["person_id"]))
    assert code == 0 and "1 open directives" in out, err
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
    assert held[0].ended_at is not None and held[0].ended_at == held[1].started_at
    await tg.send_text(503, "/report", language_code="en")
    assert "not registered" in ((await tg.next_message(503)).text or "")


async def test_purge_forgets_the_phone_of_people_deactivated_before(
        db: Database, coso: Coso, tmp_path: Path) -> None:
    await seed_units(db)
    assert (await coso("people", "import", str(ward_csv(tmp_path))))[0] == 0
    head = next(e for e in await listing(coso) if e["phone"])
    assert (await coso("users", "deactivate", str(head["person_id"])))[0] == 0
    after = next(e for e in await listing(coso) if e["unit"] == head["unit"]
                 and e["post"] == head["post"])
    assert after["person_id"] is None and after["vacant_since"] is not None
    async with db.transaction() as session:
        await purge.purge(session, utcnow() + timedelta(seconds=1))
    async with db.read() as session:
        gone = await session.get(Person, head["person_id"])
        kept = await session.scalar(select(func.count()).select_from(Person)
                                    .where(Person.phone.is_not(None)))
    assert gone is not None and gone.phone is None and gone.full_name == purge.PURGED_NAME
    assert kept and kept > 0
    assert await count(db, Invite) == 0


async def test_redeeming_a_demo_invite_claims_that_person(
        db: Database, start_bot: StartBot, tg: TelegramDouble) -> None:
    async with db.transaction() as session:
        built = await demo.build(session, timedelta(days=7))
    people_before = await count(db, Person)
    async with db.read() as session:
        by_person = {(await session.get(Person, new.invite.person_id)).full_name: new.code
                     for new in built.invites if new.invite.person_id is not None}
    await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url)
    await tg.send_text(504, f"/start {by_person['Trần Thị Bình']}", language_code="en",
                       first_name="Bình")
    assert "Welcome, Trần Thị Bình" in ((await tg.next_message(504)).text or "")
    assert await count(db, Person) == people_before  # the demo's leader, not a second one
    async with db.read() as session:
        leaders = await session.scalar(select(func.count()).select_from(RoleAssignment).where(
            RoleAssignment.role == "leader", RoleAssignment.active.is_(True)))
    assert leaders == 8  # 3 quarter heads and 5 group heads: each a person who can log in


async def test_the_welcome_and_help_name_the_post_not_the_role(
        db: Database, start_bot: StartBot, tg: TelegramDouble) -> None:
    """A group's head reads 'Tổ trưởng tổ dân phố 1, Khu phố 1, …', as the ward calls them,
    not the role it maps to ('trưởng khu phố, ấp hoặc tổ dân phố')."""
    async with db.transaction() as session:
        built = await demo.build(session, timedelta(days=7))
        by_person = {(await session.get(Person, new.invite.person_id)).full_name: new.code
                     for new in built.invites if new.invite.person_id is not None}
    await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url)
    await tg.send_text(506, f"/start {by_person['Võ Thị Hoa']}", language_code="vi",
                       first_name="Hoa")
    welcome = (await tg.next_message(506)).text or ""
    assert ("Anh/chị đã đăng ký với chức danh Tổ trưởng tổ dân phố 1, Khu phố 1, "
            "Phường Bến Thành, Thành phố Hồ Chí Minh.") in welcome, welcome
    await tg.send_text(506, "/help", language_code="vi")
    shown = (await tg.next_message(506)).text or ""
    assert "• Tổ trưởng tổ dân phố 1, Khu phố 1, Phường Bến Thành" in shown, shown
    assert "hoặc tổ dân phố" not in shown


async def test_invite_cards_decode_to_each_persons_link(
        db: Database, coso: Coso, tmp_path: Path, tg: TelegramDouble, start_bot: StartBot,
        monkeypatch: pytest.MonkeyPatch) -> None:
    await seed_units(db)
    assert (await coso("people", "import", str(ward_csv(tmp_path))))[0] == 0
    out_file = tmp_path / "cards.pdf"
    code, out, err = await coso("invite", "cards", "--unit", f"{WARD}-KP1", "--out",
                                str(out_file))
    # Without Telegram the cards carry no QR code: the code and how to open the web chat
    # (found by a new-user trial: this refused, so a Zalo or web chat ward printed none).
    assert code == 0 and "Wrote 9 invite cards" in out, err
    plain = " ".join("".join(page.extract_text() for page in PdfReader(out_file).pages).split())
    assert not decoded_links(out_file) and "Telegram" not in plain and "Zalo" not in plain
    assert "Trên web: mở địa chỉ Coso do cán bộ phường cung cấp rồi nhập mã." in plain, plain
    out_file.unlink()
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", tg.token)
    monkeypatch.setenv("TELEGRAM_API_BASE", tg.base_url)
    code, out, err = await coso("invite", "cards", "--unit", f"{WARD}-KP1", "--out",
                                str(out_file))
    assert code == 0 and "Wrote 9 invite cards" in out, err  # 3 quarter posts + 6 groups
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    links = decoded_links(out_file)
    assert len(links) == 9 and len(set(links)) == 9
    assert all(link.startswith("https://t.me/coso_test_bot?start=") for link in links)
    text = "".join(page.extract_text() for page in PdfReader(out_file).pages)
    names = [e["full_name"] for e in await listing(coso, f"{WARD}-KP1") if e["full_name"]]
    assert len(names) == 9 and all(name in unicodedata.normalize("NFC", text)
                                   for name in names)
    # Each QR code is that person's live invite: redeem the first card's on Telegram.
    await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url)
    first = links[0].rsplit("=", 1)[1]
    assert first.replace(" ", "") in text.replace(" ", "")
    await tg.send_text(505, f"/start {first}", language_code="en", first_name="x")
    assert f"Welcome, {name_of(1, 0)}" in ((await tg.next_message(505)).text or "")
    # Only the people not yet connected: the one who joined gets no new card.
    code, out, err = await coso("invite", "cards", "--unit", f"{WARD}-KP1",
                                "--only-unconnected", "--out", str(out_file))
    assert code == 0 and "Wrote 8 invite cards" in out, err
    assert len(decoded_links(out_file)) == 8


def decoded_links(path: Path) -> list[str]:
    """Every QR code of every page, rendered as a printer would (150 dpi)."""
    links = []
    document = pdfium.PdfDocument(str(path))
    for page in document:
        image = page.render(scale=150 / 72).to_pil()
        links += [result.text for result in zxingcpp.read_barcodes(image)]
    return links


async def test_people_in_chat_shows_who_has_not_joined_and_the_vacant_posts(
        db: Database, coso: Coso, tmp_path: Path, start_bot: StartBot,
        tg: TelegramDouble) -> None:
    await seed_units(db)
    assert (await coso("people", "import", str(ward_csv(tmp_path, vacant=2))))[0] == 0
    async with db.transaction() as session:
        for seat in await roster.seats_in(session, await units.by_code(session, WARD)):
            if seat.holder is None:
                seat.unit_post.vacant_since = utcnow() - timedelta(days=5, hours=1)
    staff = await _invite(coso, "--unit", WARD, "--role", "ward_staff")
    head = next(e for e in await listing(coso) if e["unit"] == f"{WARD}-KP5")
    leader = await _invite(coso, "--person", str(head["person_id"]))
    await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url)
    for user, code in ((601, staff), (602, leader)):
        await tg.send_text(user, f"/start {code}", language_code="en", first_name="Staff")
        await tg.next_message(user)
    await tg.send_text(601, "/people", language_code="en")
    text = (await tg.next_message(601)).text or ""
    assert text.startswith("Posts in Phường Bến Thành: 120, 1 connected to a chat.")
    assert "Not connected yet (117):" in text and "… and 87 more" in text
    assert "Vacant (2):" in text
    assert "• Khu phố 2 — Deputy head of quarter / hamlet: vacant for 5 days (since " in text
    # Roster order, units as places: Khu phố 2 before Khu phố 10, a group under its quarter.
    waiting = [line for line in text.splitlines() if line.startswith("• ")]
    assert waiting[:3] == [f"• Khu phố 1 — Head of quarter / hamlet: {name_of(1, 0)}",
                           f"• Khu phố 1 — Party cell secretary: {name_of(1, 2)}",
                           f"• Khu phố 1 — Head of the Front work committee: {name_of(1, 3)}"]
    assert "• Tổ dân phố 1 · Khu phố 1 — Head of residential group: Trần Văn Bảo 1-1" in text
    assert name_of(5, 0) not in text  # joined: not in the list of those still to come
    await tg.send_text(602, "/people", language_code="en")
    assert "only for" in ((await tg.next_message(602)).text or "")


async def test_roster_commands_refuse_bad_input_plainly(db: Database, coso: Coso,
                                                       tmp_path: Path) -> None:
    await seed_units(db)
    assert (await coso("people", "import", str(ward_csv(tmp_path))))[0] == 0
    head = next(e for e in await listing(coso) if e["unit"] == f"{WARD}-KP1")
    cases = [
        (("people", "assign", "--unit", "NOPE", "--post", "to_truong", "--person", "1"),
         "unknown unit NOPE"),
        (("people", "assign", "--unit", f"{WARD}-KP1", "--post", "chủ tịch", "--person", "1"),
         "unknown post chủ tịch"),
        (("people", "assign", "--unit", f"{WARD}-KP1", "--post", "to_truong", "--person",
          "1"), "does not exist on a unit of level quarter"),
        (("people", "assign", "--unit", f"{WARD}-KP1", "--post", "truong_khu_pho",
          "--person", "99999"), "no active person with id 99999"),
        (("people", "list", "--unit", "NOPE"), "unknown unit NOPE"),
        (("invite", "create", "--person", "99999"), "no active person with id 99999"),
        (("invite", "create", "--person", str(head["person_id"]), "--role", "admin"),
         "give either --person ID"),
        (("invite", "create", "--post", "to_truong"), "give either --person ID"),
        (("invite", "create", "--unit", WARD), "give --unit and --role"),
        (("invite", "cards", "--unit", "NOPE", "--out", str(tmp_path / "x.pdf")),
         "unknown unit NOPE"),
    ]
    for argv, reason in cases:
        code, _, err = await coso(*argv)
        assert code != 0 and reason in err and "Traceback" not in err, (argv, err)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"\xef\xbb\xbfunit_code,post,full_name,phone\r\n")
    code, _, err = await coso("people", "import", str(empty))
    assert code != 0 and "has no rows" in err
    assert await count(db, PostHolding) == 119  # nothing changed
