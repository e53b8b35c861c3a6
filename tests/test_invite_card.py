"""/invite in chat: ward staff pick a person of their roster and get that person's invite card
(a PNG whose QR code is the Telegram link, and the code as text), through the Telegram and
Zalo doubles, on both databases."""

from __future__ import annotations

import io
from pathlib import Path

import zxingcpp
from PIL import Image

from tests.conftest import Coso, StartBot
from tests.doubles.telegram_api import SentMessage, TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.telegram_helpers import free_port, next_reply
from tests.test_roster import WARD, _invite, listing, name_of, seed_units, ward_csv

STAFF, LEADER, OTHER_WARD, NEWCOMER = 701, 702, 703, 704


def decoded(photo: bytes | str | None) -> list[str]:
    assert isinstance(photo, bytes) and photo[:8] == b"\x89PNG\r\n\x1a\n"
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(photo)))]


async def tap(tg: TelegramDouble, user: int, label: str) -> SentMessage:
    """Tap a button of the newest message sent (not an edit), and return the reply past the
    answered question's keyboard taken away."""
    shown = [m for m in tg.messages_to(user) if m.method != "editMessageReplyMarkup"][-1]
    data = dict(zip(shown.button_texts, shown.button_data, strict=True))
    assert label in data, (label, shown.button_texts)
    await tg.tap(user, data[label])
    return await next_reply(tg, user)


async def test_ward_staff_send_a_persons_card_on_telegram(
        coso: Coso, db: object, tmp_path: Path, start_bot: StartBot,
        tg: TelegramDouble) -> None:
    await seed_units(db)  # type: ignore[arg-type]
    assert (await coso("people", "import", str(ward_csv(tmp_path))))[0] == 0
    entries = await listing(coso)
    head = next(e for e in entries if e["unit"] == f"{WARD}-KP1" and e["post"] ==
                "truong_khu_pho")
    group = next(e for e in entries if e["unit"] == f"{WARD}-KP3-T2")
    staff = await _invite(coso, "--unit", WARD, "--role", "ward_staff")
    joined = await _invite(coso, "--person", str(head["person_id"]))
    lost = await _invite(coso, "--person", str(group["person_id"]))  # the card they lost
    other = await _invite(coso, "--unit", "26737", "--role", "ward_staff")
    await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url)
    for user, code in ((STAFF, staff), (LEADER, joined), (OTHER_WARD, other)):
        await tg.send_text(user, f"/start {code}", language_code="en", first_name="x")
        await tg.next_message(user)

    await tg.send_text(STAFF, "/invite", language_code="en")
    pick = await tg.next_message(STAFF)
    assert (pick.text or "").startswith("Whose invite card?")
    labels = pick.button_texts
    # Not yet connected first, in the unit tree's order, then the posts catalogue's: the
    # quarter head who joined is not offered; no vacant post.
    assert len(labels) == 10 and labels[-2:] == ["Search by name", "Cancel"]
    assert labels[0] == f"{name_of(1, 2)} · Khu phố 1 · Party cell secretary"
    assert labels[2].startswith("Trần Văn Bảo 1-1 · Khu phố 1 › Tổ dân phố 1 · Head of")
    assert not any(name_of(1, 0) in label for label in labels)
    search = await tap(tg, STAFF, "Search by name")
    assert "without diacritics" in (search.text or "")
    await tg.send_text(STAFF, "tran van bao 3-2", language_code="en")  # no diacritics
    match = await next_reply(tg, STAFF)
    found = [label for label in match.button_texts if label not in ("Search again", "Back")]
    assert len(found) == 1 and found[0].startswith("Trần Văn Bảo 3-2 · Khu phố 3 › Tổ dân phố 2")
    confirm = await tap(tg, STAFF, found[0])
    assert "The code they had before stops working" in (confirm.text or "")
    card = await tap(tg, STAFF, "Confirm")

    assert card.method == "sendPhoto"
    assert isinstance(card.photo, bytes)
    (tmp_path / "card.png").write_bytes(card.photo)  # to look at when a test fails
    [link] = decoded(card.photo)
    assert link.startswith("https://t.me/coso_test_bot?start=")
    code = link.rsplit("=", 1)[1]
    text = card.text or ""
    assert text.startswith("Invite for Trần Văn Bảo 3-2 (Head of residential group, Tổ dân phố "
                           "2), valid until")
    assert f"{code[:4]} {code[4:]}" in text and link in text
    assert "Zalo" not in text  # no Zalo bot here: no words about one
    # The card re-issued the invite: the lost code is refused, the new one claims the person.
    await tg.send_text(NEWCOMER, f"/start {lost}", language_code="en", first_name="y")
    assert "withdrawn" in ((await tg.next_message(NEWCOMER)).text or "")
    await tg.send_text(NEWCOMER, code, language_code="en", first_name="y")  # asked again
    assert "Welcome, Trần Văn Bảo 3-2" in ((await next_reply(tg, NEWCOMER)).text or "")

    # Staff of another ward find nobody of this one; a leader may not send cards.
    await tg.send_text(OTHER_WARD, "/invite", language_code="en")
    assert "Nobody holds a post in your area" in ((await tg.next_message(OTHER_WARD)).text
                                                   or "")
    await tg.send_text(LEADER, "/invite", language_code="en")
    assert "only for" in ((await tg.next_message(LEADER)).text or "")


async def test_on_zalo_the_card_comes_by_signed_link_with_the_code_as_text(
        coso: Coso, db: object, tmp_path: Path, start_bot: StartBot,
        tg: TelegramDouble, zalo: ZaloDouble) -> None:
    await seed_units(db)  # type: ignore[arg-type]
    assert (await coso("people", "import", str(ward_csv(tmp_path))))[0] == 0
    staff = await _invite(coso, "--unit", WARD, "--role", "ward_staff")
    port = free_port()
    zalo.fetch_photos = True  # the double fetches the photo's URL, as Zalo does
    await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url,
                    ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url,
                    COSO_WEB_PORT=port, COSO_PUBLIC_URL=f"http://127.0.0.1:{port}")
    await zalo.send_text("staff", f"/start {staff}")
    await zalo.next_message("staff")
    await zalo.send_text("staff", "/invite")
    pick = (await zalo.next_message("staff")).text or ""
    assert "1. Nguyễn Thị Ánh 1-0" in pick and "9. Search by name" in pick
    await zalo.send_text("staff", "9")
    await zalo.next_message("staff")
    await zalo.send_text("staff", "nguyen thi anh 12-3")
    assert "1. Nguyễn Thị Ánh 12-3" in ((await zalo.next_message("staff")).text or "")
    await zalo.send_text("staff", "1")
    assert "Nguyễn Thị Ánh 12-3" in ((await zalo.next_message("staff")).text or "")
    await zalo.send_text("staff", "co")  # yes, typed without diacritics
    card = await zalo.next_message("staff")
    assert card.method == "sendPhoto"
    url = card.photo or ""
    assert url.startswith(f"http://127.0.0.1:{port}/files/cards/") and "Anh" not in url
    [link] = decoded(card.photo_bytes)
    code = link.rsplit("=", 1)[1]
    assert link.startswith("https://t.me/coso_test_bot?start=")
    assert f"/start {code}" in (card.text or "") and link in (card.text or "")
    await zalo.send_text("newcomer", f"/start {code}")
    assert "Nguyễn Thị Ánh 12-3" in ((await zalo.next_message("newcomer")).text or "")


async def test_in_the_web_chat_without_telegram_the_card_still_comes_as_an_image(
        coso: Coso, db: object, tmp_path: Path, start_bot: StartBot) -> None:
    """Found by a new-user trial: /invite in the web chat (no Telegram bot set) showed no
    card. The card comes without a QR code: the code and how to open the web chat."""
    from tests.test_web_chat import WebUser

    await seed_units(db)  # type: ignore[arg-type]
    assert (await coso("people", "import", str(ward_csv(tmp_path))))[0] == 0
    staff = await _invite(coso, "--unit", WARD, "--role", "ward_staff")
    runtime = await start_bot()
    user = WebUser(runtime)
    try:
        assert await user.login(staff) == (200, {"ok": True})
        await user.reply()
        await user.say(text="/invite")
        pick = await user.reply(lambda m: bool(m["buttons"]))
        first = pick["buttons"][0]
        await user.say(choice=first["payload"])
        confirm = await user.reply(lambda m: bool(m["buttons"]))
        await user.say(choice=next(b["payload"] for b in confirm["buttons"]
                                   if b["label"] in ("Confirm", "Xác nhận")))
        card = await user.reply(lambda m: "photo" in m)
        assert card["photo"].startswith("/api/file/"), card
        async with user.http.get(user.base + card["photo"]) as got:
            assert got.status == 200 and got.content_type == "image/png"
            png = await got.read()
        (tmp_path / "web-card.png").write_bytes(png)  # to look at when a test fails
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert zxingcpp.read_barcodes(Image.open(io.BytesIO(png))) == []  # no Telegram: no QR
        assert "Web: open the Coso address" in card["text"] and "t.me" not in card["text"]
    finally:
        await user.close()


async def test_on_zalo_without_a_public_url_the_card_says_why_no_image(
        coso: Coso, db: object, tmp_path: Path, start_bot: StartBot, zalo: ZaloDouble) -> None:
    """Zalo fetches a photo by URL only: without COSO_PUBLIC_URL no image can reach it, and
    the ward staff are told so instead of getting the text alone unexplained."""
    await seed_units(db)  # type: ignore[arg-type]
    assert (await coso("people", "import", str(ward_csv(tmp_path))))[0] == 0
    staff = await _invite(coso, "--unit", WARD, "--role", "ward_staff")
    await start_bot(ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url)
    await zalo.send_text("staff", f"/start {staff}")
    await zalo.next_message("staff")
    await zalo.send_text("staff", "/invite")
    await zalo.next_message("staff")
    await zalo.send_text("staff", "1")
    await zalo.next_message("staff")
    await zalo.send_text("staff", "co")
    card = await zalo.next_message("staff")
    assert card.method == "sendMessage" and "/start " in (card.text or "")
    assert "cannot reach Zalo until the operator sets COSO_PUBLIC_URL" in (card.text or "")


def test_a_card_made_for_the_settings_names_the_ways_in_they_have(db_url: str) -> None:
    """Card.for_settings: Zalo with a Zalo bot, the web chat with COSO_PUBLIC_URL, and the
    card's wording follows (the same lines /invite, `coso invite cards` and the demo print)."""
    from bot import cards
    from bot.i18n import Translator
    from tests.conftest import make_settings

    person = ("Võ Thị Hoa", "Tổ trưởng tổ dân phố", "Tổ dân phố 1, Khu phố 1", "ABCD2345")
    bare = cards.Card.for_settings(make_settings(db_url), *person, None)
    assert (bare.zalo, bare.web, bare.link) == (False, None, None)
    full = cards.Card.for_settings(
        make_settings(db_url, ZALO_BOT_TOKEN="123:zalo", COSO_PUBLIC_URL="https://coso.vn"),
        *person, "https://t.me/coso_bot?start=ABCD2345")
    assert full == cards.Card(*person, "https://t.me/coso_bot?start=ABCD2345", zalo=True,
                              web="https://coso.vn")
    t = Translator("vi", make_settings(db_url).tz)
    assert [line.split(":")[0] for line in cards.texts(full, t)[2]] == ["Telegram", "Zalo",
                                                                          "Trên web"]
    assert [line.split(":")[0] for line in cards.texts(bare, t)[2]] == ["Trên web"]
