"""Invite cards for the meeting where a ward onboards its leaders: an A4 PDF, 8 cards a page,
each with the person's name, post and unit, a QR code of the Telegram deep link, the code in
large letters and how to join on Zalo, in Vietnamese. The same card as a PNG image, for ward
staff to send to one person in chat (/invite).

DejaVu Sans (shipped in bot/fonts/, free to redistribute: see LICENSE-DejaVu.txt) carries
every Vietnamese diacritic; fpdf2 embeds the subset the cards use, so the file prints the
same on any machine.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.i18n import Translator
from bot.settings import Settings
from storage.private import folder_for, private_file

if TYPE_CHECKING:  # fpdf, Pillow, segno and aiohttp are imported where a card is made:
    from fpdf import FPDF  # `coso --help` and the other commands need none of them
    from PIL import ImageDraw, ImageFont

FONTS = Path(__file__).parent / "fonts"
FONT = "DejaVu"
PAGE_W, PAGE_H = 210.0, 297.0  # A4, mm
COLUMNS, ROWS = 2, 4
MARGIN = 8.0
CARD_W = (PAGE_W - 2 * MARGIN) / COLUMNS
CARD_H = (PAGE_H - 2 * MARGIN) / ROWS
PAD = 4.0
QR_SIZE = 40.0
GETME_TIMEOUT_SECONDS = 5
PX_PER_MM = 12  # the PNG card: about 300 dpi, sharp on a phone and when printed
PT = 0.3528  # mm per typographic point


@dataclass(frozen=True)
class Card:
    name: str
    post: str
    unit_path: str
    code: str
    # The Telegram deep link the QR code carries; None where the bot has no Telegram (a web
    # chat or Zalo only set-up): the card then carries the code and the other ways in alone.
    link: str | None
    zalo: bool = True  # the installation has a Zalo bot: the card says how to reach it
    web: str | None = None  # the web chat's address (COSO_PUBLIC_URL), where there is one

    @classmethod
    def for_settings(cls, settings: Settings, name: str, post: str, unit_path: str, code: str,
                     link: str | None) -> Card:
        """The card with the ways in this installation has besides Telegram's QR code: Zalo
        when a Zalo bot is configured, the web chat's address when COSO_PUBLIC_URL is set."""
        return cls(name, post, unit_path, code, link, zalo=bool(settings.zalo_bots),
                   web=settings.public_url or None)


def other_ways(card: Card, t: Translator) -> list[str]:
    """How to join other than Telegram, for the card and the chat message alike; with
    neither Zalo nor a public address, the web chat the ward will point to."""
    lines = []
    if card.zalo:
        lines.append(t("Zalo: scan the Coso bot's QR code (ask the ward staff), then send the "
                       "message /start {code}", code=card.code))
    if card.web:
        lines.append(t("Web: open {url} and type the code.", url=card.web))
    elif not card.zalo and card.link is None:
        lines.append(t("Web: open the Coso address the ward staff give you and type the code."))
    return lines


@dataclass(frozen=True)
class TelegramBot:
    """The bot's username for deep links, or why there is none."""

    username: str | None
    problem: str | None = None

    def link(self, code: str) -> str | None:
        return f"https://t.me/{self.username}?start={code}" if self.username else None


async def telegram_bot(settings: Settings, t: Translator,
                       unit_codes: Sequence[str] = ()) -> TelegramBot:
    """Ask Telegram's getMe for the username; a failure is a reason, never an exception.
    unit_codes: the invite's unit and those above it, nearest first: with several bots
    (TELEGRAM_BOT_TOKENS) the link is to the bot serving that unit; without, the default's."""
    serving = settings.bot_serving("telegram", unit_codes) if unit_codes else None
    token = serving.token if serving is not None else settings.telegram_bot_token
    if not token:
        return TelegramBot(None, t("TELEGRAM_BOT_TOKEN is not set"))
    import aiohttp

    url = f"{settings.telegram_api_base}/bot{token}/getMe"
    timeout = aiohttp.ClientTimeout(total=GETME_TIMEOUT_SECONDS)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as response:
            if response.status != 200:
                return TelegramBot(None, t("Telegram answered getMe with HTTP {status}",
                                           status=response.status))
            body = await response.json(content_type=None)
    except TimeoutError:
        return TelegramBot(None, t("Telegram did not answer getMe within {seconds} seconds",
                                   seconds=GETME_TIMEOUT_SECONDS))
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        error = (str(exc) or type(exc).__name__).replace(token, "<token>")
        return TelegramBot(None, t("could not reach Telegram: {error}", error=error))
    username = (body.get("result") or {}).get("username") if isinstance(body, dict) else None
    if not username:
        return TelegramBot(None, t("Telegram's getMe answer has no username"))
    return TelegramBot(str(username))


def spaced(code: str) -> str:
    """'ABCD EFGH': easier to read aloud and type; the bot ignores the space."""
    return f"{code[:4]} {code[4:]}" if len(code) == 8 else code


def write_pdf(cards: Sequence[Card], t: Translator, path: Path) -> Path:
    """The cards as an A4 PDF at `path` (0600: names are personal data)."""
    from fpdf import FPDF

    # fpdf2's font subsetting logs ~90 INFO lines per file through fontTools; under `coso run`
    # (logging at INFO) they buried the demo's invite codes.
    logging.getLogger("fontTools.subset").setLevel(logging.WARNING)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_font(FONT, "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_title(t("Coso invite cards"))
    for index, card in enumerate(cards):
        if index % (COLUMNS * ROWS) == 0:
            pdf.add_page()
        slot = index % (COLUMNS * ROWS)
        _card(pdf, t, card, MARGIN + (slot % COLUMNS) * CARD_W,
              MARGIN + (slot // COLUMNS) * CARD_H)
    folder_for(path)
    pdf.output(str(private_file(path)))
    return path


def texts(card: Card, t: Translator) -> tuple[str, str, list[str]]:
    """The card's wording (PDF and PNG alike): the code's label, the code, and how to join
    (Telegram, Zalo, the web chat: those the installation has)."""
    telegram = [t("Telegram: scan the QR code with the phone's camera.")] if card.link else []
    return t("Invite code"), spaced(card.code), telegram + other_ways(card, t)


def _card(pdf: FPDF, t: Translator, card: Card, x: float, y: float) -> None:
    import segno

    pdf.set_draw_color(150, 150, 150)
    pdf.set_dash_pattern(dash=1.5, gap=1.5)  # where to cut
    pdf.rect(x, y, CARD_W, CARD_H)
    pdf.set_dash_pattern()
    inner = CARD_W - 2 * PAD
    pdf.set_xy(x + PAD, y + PAD)
    pdf.set_font(FONT, "B", 12)
    pdf.multi_cell(inner, 5.5, card.name, new_x="LEFT", new_y="NEXT", align="L")
    pdf.set_font(FONT, "", 9)
    pdf.multi_cell(inner, 4.2, card.post, new_x="LEFT", new_y="NEXT", align="L")
    pdf.set_text_color(90, 90, 90)
    pdf.set_font(FONT, "", 7.5)
    pdf.multi_cell(inner, 3.5, card.unit_path, new_x="LEFT", new_y="NEXT", align="L")
    pdf.set_text_color(0, 0, 0)
    top = max(pdf.get_y() + 1.5, y + 20)
    right = x + PAD
    if card.link is not None:
        qr = io.BytesIO()
        segno.make(card.link, error="m").save(qr, kind="png", scale=8, border=2)
        qr.seek(0)
        size = min(QR_SIZE, y + CARD_H - PAD - top)
        pdf.image(qr, x=x + PAD, y=top, w=size, h=size)
        right = x + PAD + size + 3
    width = x + CARD_W - PAD - right
    pdf.set_xy(right, top)
    label, code, ways = texts(card, t)
    pdf.set_font(FONT, "", 7)
    pdf.multi_cell(width, 3.2, label, new_x="LEFT", new_y="NEXT", align="L")
    pdf.set_font(FONT, "B", _pdf_fitting(pdf, code, 20, width))
    pdf.multi_cell(width, 9, code, new_x="LEFT", new_y="NEXT", align="L")
    pdf.set_font(FONT, "", 7)
    for index, way in enumerate(ways):
        if index:
            pdf.set_y(pdf.get_y() + 1)
            pdf.set_x(right)
        pdf.multi_cell(width, 3.2, way, new_x="LEFT", new_y="NEXT", align="L")


def _pdf_fitting(pdf: FPDF, text: str, size: int, width: float) -> int:
    """The largest bold size up to `size` that keeps the code on one line: split over two
    beside the QR code, it reads as two codes."""
    while size > 8:
        pdf.set_font(FONT, "B", size)
        if pdf.get_string_width(text) <= width - 2 * pdf.c_margin:
            break
        size -= 1
    return size


# --- the same card as a PNG image ------------------------------------------------------------

def write_png(card: Card, t: Translator, path: Path) -> Path:
    """One card as a PNG at `path` (0600), laid out as on the PDF: name, post, unit path,
    the QR code on the left, the code and the instructions beside it."""
    import segno
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (_px(CARD_W), _px(CARD_H)), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, image.width - 1, image.height - 1), outline=(150, 150, 150), width=3)
    inner = _px(CARD_W - 2 * PAD)
    y = _px(PAD)
    y = _paragraph(draw, card.name, _font(True, 12), _px(PAD), y, inner, 5.5)
    y = _paragraph(draw, card.post, _font(False, 9), _px(PAD), y, inner, 4.2)
    y = _paragraph(draw, card.unit_path, _font(False, 7.5), _px(PAD), y, inner, 3.5,
                   fill=(90, 90, 90))
    top = max(y + _px(1.5), _px(20))
    size = min(_px(QR_SIZE), image.height - _px(PAD) - top)
    right = _px(PAD)
    if card.link is not None:
        qr = segno.make(card.link, error="m")
        # Whole pixels per module keep the code crisp for a camera.
        scale = max(1, size // (qr.symbol_size(border=2)[0]))
        buffer = io.BytesIO()
        qr.save(buffer, kind="png", scale=scale, border=2)
        buffer.seek(0)
        code_image = Image.open(buffer).convert("RGB")
        image.paste(code_image, (_px(PAD), top))
        right = _px(PAD) + code_image.width + _px(3)
    width = image.width - _px(PAD) - right
    label, code, ways = texts(card, t)
    y = _paragraph(draw, label, _font(False, 7), right, top, width, 3.2)
    y = _paragraph(draw, code, _fitting(draw, code, 20, width), right, y, width, 9)
    for index, way in enumerate(ways):
        y = _paragraph(draw, way, _font(False, 7), right, y + (_px(1) if index else 0),
                       width, 3.2)
    folder_for(path)
    with private_file(path).open("wb") as handle:
        image.save(handle, format="PNG")
    return path


def _px(mm: float) -> int:
    return round(mm * PX_PER_MM)


def _font(bold: bool, points: float) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(FONTS / name), _px(points * PT))


def _fitting(draw: ImageDraw.ImageDraw, text: str, points: float, width: int
             ) -> ImageFont.FreeTypeFont:
    """The bold font at `points`, smaller if need be, that keeps `text` on one line: a code
    broken in two is misread."""
    font = _font(True, points)
    while points > 8 and draw.textlength(text, font=font) > width:
        points -= 1
        font = _font(True, points)
    return font


def _paragraph(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, x: int,
               y: int, width: int, line_mm: float, fill: tuple[int, int, int] = (0, 0, 0)
               ) -> int:
    """Draw `text` wrapped at word boundaries within `width`; returns the y below it."""
    for line in _wrap(draw, text, font, width):
        draw.text((x, y), line, font=font, fill=fill)
        y += _px(line_mm)
    return y


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int
          ) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines
