"""Invite cards for the meeting where a ward onboards its leaders: an A4 PDF, 8 cards a page,
each with the person's name, post and unit, a QR code of the Telegram deep link, the code in
large letters and how to join on Zalo, in Vietnamese.

DejaVu Sans (shipped in bot/fonts/, free to redistribute: see LICENSE-DejaVu.txt) carries
every Vietnamese diacritic; fpdf2 embeds the subset the cards use, so the file prints the
same on any machine.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import segno
from fpdf import FPDF

from bot.i18n import Translator
from storage.private import folder_for, private_file

FONTS = Path(__file__).parent / "fonts"
FONT = "DejaVu"
PAGE_W, PAGE_H = 210.0, 297.0  # A4, mm
COLUMNS, ROWS = 2, 4
MARGIN = 8.0
CARD_W = (PAGE_W - 2 * MARGIN) / COLUMNS
CARD_H = (PAGE_H - 2 * MARGIN) / ROWS
PAD = 4.0
QR_SIZE = 40.0


@dataclass(frozen=True)
class Card:
    name: str
    post: str
    unit_path: str
    code: str
    link: str  # the Telegram deep link the QR code carries


def spaced(code: str) -> str:
    """'ABCD EFGH': easier to read aloud and type; the bot ignores the space."""
    return f"{code[:4]} {code[4:]}" if len(code) == 8 else code


def write_pdf(cards: Sequence[Card], t: Translator, path: Path) -> Path:
    """The cards as an A4 PDF at `path` (0600: names are personal data)."""
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


def _card(pdf: FPDF, t: Translator, card: Card, x: float, y: float) -> None:
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
    qr = io.BytesIO()
    segno.make(card.link, error="m").save(qr, kind="png", scale=8, border=2)
    qr.seek(0)
    size = min(QR_SIZE, y + CARD_H - PAD - top)
    pdf.image(qr, x=x + PAD, y=top, w=size, h=size)
    right = x + PAD + size + 3
    width = x + CARD_W - PAD - right
    pdf.set_xy(right, top)
    pdf.set_font(FONT, "", 7)
    pdf.multi_cell(width, 3.2, t("Invite code"), new_x="LEFT", new_y="NEXT", align="L")
    pdf.set_font(FONT, "B", 20)
    pdf.multi_cell(width, 9, spaced(card.code), new_x="LEFT", new_y="NEXT", align="L")
    pdf.set_font(FONT, "", 7)
    pdf.multi_cell(width, 3.2, t("Telegram: scan the QR code with the phone's camera."),
                   new_x="LEFT", new_y="NEXT", align="L")
    pdf.set_y(pdf.get_y() + 1)
    pdf.set_x(right)
    pdf.multi_cell(width, 3.2, t("Zalo: scan the Coso bot's QR code (ask the ward staff), "
                                 "then send the message /start {code}", code=card.code),
                   new_x="LEFT", new_y="NEXT", align="L")
