"""The one-message report's reader (bot/flows/quick_report.py): real-looking messages, with
and without diacritics, with typos in the alias and in different orders, and what each
becomes. The catalogue is the seeded one (storage/migrations 0002 and 0005)."""

from __future__ import annotations

import pytest

from bot.flows import quick_report
from bot.flows.quick_report import Situation, read
from storage.catalog import RESERVED

SEEDED = [
    Situation("f0", ("Ca bệnh xác nhận (F0)", "Confirmed case (F0)"), ("F0", "ca benh")),
    Situation("f1", ("Tiếp xúc gần (F1)", "Close contact (F1)"), ("F1", "tiep xuc")),
    Situation("home_isolation", ("Đang cách ly tại nhà", "Isolating at home"), ("cach ly",)),
    Situation("hospital", ("Đang điều trị tại bệnh viện", "In hospital"),
              ("benh vien", "nhap vien")),
    Situation("recovered", ("Đã khỏi bệnh", "Recovered"), ("khoi benh",)),
    Situation("short_food", ("Thiếu lương thực, thực phẩm", "Short of food"),
              ("thieu an", "thieu luong thuc")),
    Situation("short_medicine", ("Thiếu thuốc", "Short of medicine"), ("thieu thuoc",)),
    Situation("lost_income", ("Mất thu nhập", "Lost income"), ("mat thu nhap",)),
    Situation("medical_visit", ("Cần nhân viên y tế đến nhà", "Needs a medical visit"),
              ("y te", "can bac si")),
    Situation("alone_vulnerable", ("Người yếu thế sống một mình", "Vulnerable person alone"),
              ("mot minh",)),
    Situation("other", ("Khác", "Other"), ("khac",)),
]
N = None
# message → (situation, people, urgent, note, runs of words left for the household)
MESSAGES = [
    ("12 Lê Lợi F0 3 người khẩn ghi chú sốt cao", ("f0", 3, True, "sốt cao", ["12 Lê Lợi"])),
    ("12 le loi f0 3 nguoi khan ghi chu sot cao", ("f0", 3, True, "sot cao", ["12 le loi"])),
    ("F0 12 Lê Lợi 3 người khẩn", ("f0", 3, True, N, ["12 Lê Lợi"])),
    ("khẩn F0 3 người 12 Lê Lợi", ("f0", 3, True, N, ["12 Lê Lợi"])),
    ("3 người F0 12 Lê Lợi gấp", ("f0", 3, True, N, ["12 Lê Lợi"])),
    ("12 Lê Lợi f0 3ng", ("f0", 3, N, N, ["12 Lê Lợi"])),
    ("12 Lê Lợi F1 2 người", ("f1", 2, N, N, ["12 Lê Lợi"])),
    ("12 Lê Lợi tiếp xúc 2 người", ("f1", 2, N, N, ["12 Lê Lợi"])),
    ("12 Lê Lợi thiếu ăn 4 người", ("short_food", 4, N, N, ["12 Lê Lợi"])),
    ("12 le loi thieu an 4 nguoi", ("short_food", 4, N, N, ["12 le loi"])),
    ("12 le loi thieuan 4 nguoi", ("short_food", 4, N, N, ["12 le loi"])),
    ("12 le loi thieu am 4 nguoi", ("short_food", 4, N, N, ["12 le loi"])),  # typo
    ("12 Lê Lợi thiếu thuốc 1 người khẩn cấp", ("short_medicine", 1, True, N, ["12 Lê Lợi"])),
    ("12 Lê Lợi thiêu thuôc 1 người", ("short_medicine", 1, N, N, ["12 Lê Lợi"])),
    ("12 le loi thieu thuco 1 nguoi", ("short_medicine", 1, N, N, ["12 le loi"])),  # swap
    ("12 le loi thieu thuc 1 nguoi", ("short_medicine", 1, N, N, ["12 le loi"])),  # missing
    ("Nguyễn Văn An cách ly 5 người", ("home_isolation", 5, N, N, ["Nguyễn Văn An"])),
    ("nguyen van an cach li 5 nguoi", ("home_isolation", 5, N, N, ["nguyen van an"])),
    ("nguyen van an cachly 5 nguoi", ("home_isolation", 5, N, N, ["nguyen van an"])),
    ("45/2 Hàm Nghi nhập viện 1 người", ("hospital", 1, N, N, ["45/2 Hàm Nghi"])),
    ("45/2 ham nghi benh vien 1 nguoi gap", ("hospital", 1, True, N, ["45/2 ham nghi"])),
    ("45/2 Hàm Nghi bệnh viên 1 người", ("hospital", 1, N, N, ["45/2 Hàm Nghi"])),
    ("7 Pasteur khỏi bệnh 2 người", ("recovered", 2, N, N, ["7 Pasteur"])),
    ("7 Pasteur mất thu nhập 3 người ghi chú: chồng mất việc",
     ("lost_income", 3, N, "chồng mất việc", ["7 Pasteur"])),
    ("7 pasteur mat thu nhap 3 nguoi", ("lost_income", 3, N, N, ["7 pasteur"])),
    ("Bà Tư y tế 1 người khẩn", ("medical_visit", 1, True, N, ["Bà Tư"])),
    ("ba tu can bac si 1 nguoi", ("medical_visit", 1, N, N, ["ba tu"])),
    ("Cụ Bảy một mình 1 người", ("alone_vulnerable", 1, N, N, ["Cụ Bảy"])),
    ("12 Lê Lợi khác 2 người ghi chú nhà dột", ("other", 2, N, "nhà dột", ["12 Lê Lợi"])),
    ("12 Lê Lợi F0 khẩn sốt cao", ("f0", N, True, N, ["12 Lê Lợi", "sốt cao"])),
    ("12 Lê Lợi, F0, 3 người, khẩn.", ("f0", 3, True, N, ["12 Lê Lợi"])),
    ("12 Lê Lợi - F0 - 3 người - bình thường", ("f0", 3, False, N, ["12 Lê Lợi"])),
    ("12 Lê Lợi F0 3 nhân khẩu", ("f0", 3, N, N, ["12 Lê Lợi"])),
    ("12 Lê Lợi Ca bệnh xác nhận (F0) 3 người", ("f0", 3, N, N, ["12 Lê Lợi"])),
    ("12 Le Loi short of food 2 people urgent", ("short_food", 2, True, N, ["12 Le Loi"])),
    ("12 Le Loi F0 3 people note fever since Monday",
     ("f0", 3, N, "fever since Monday", ["12 Le Loi"])),
    ("F0", ("f0", N, N, N, [])),
    ("F0 khẩn", ("f0", N, True, N, [])),
    ("12 Lê Lợi 3 người", (N, 3, N, N, ["12 Lê Lợi"])),
    ("12 Lê Lợi", (N, N, N, N, ["12 Lê Lợi"])),
    ("chào", (N, N, N, N, ["chào"])),
    ("chao anh", (N, N, N, N, ["chao anh"])),
    ("cảm ơn", (N, N, N, N, ["cảm ơn"])),
    ("ok", (N, N, N, N, ["ok"])),
    ("F0 F1 12 Lê Lợi", (N, N, N, N, ["F0 F1 12 Lê Lợi"])),  # two situations: asked
    ("12 Lê Lợi y te 1 nguoi", ("medical_visit", 1, N, N, ["12 Lê Lợi"])),
    ("12 Lê Lợi yt 1 nguoi", (N, 1, N, N, ["12 Lê Lợi yt"])),  # short alias: exact only
    ("12 Lê Lợi F9 1 người", (N, 1, N, N, ["12 Lê Lợi F9"])),  # 2 letters: no typo allowed
]


@pytest.mark.parametrize(("message", "expected"), MESSAGES, ids=[m for m, _ in MESSAGES])
def test_a_message_becomes(message: str, expected: tuple[object, ...]) -> None:
    reading = read(message, SEEDED)
    assert (reading.category, reading.people, reading.urgent, reading.note,
            reading.runs) == expected


def test_there_are_at_least_forty_messages() -> None:
    assert len(MESSAGES) >= 40


def test_a_typo_is_told() -> None:
    assert read("12 le loi thieu am", SEEDED).typo == "thieu am"
    assert read("12 le loi thieu an", SEEDED).typo is None


def test_every_word_the_reader_takes_is_reserved_from_aliases() -> None:
    words = {" ".join(phrase) for phrase in (*quick_report.URGENT_WORDS,
                                             *quick_report.NORMAL_WORDS,
                                             *quick_report.NOTE_MARKERS)}
    assert words | quick_report.PEOPLE_WORDS <= RESERVED


def test_the_catalogue_refuses_aliases_the_reader_would_misread() -> None:
    from storage import catalog

    data = ("kind: situations\nentries:\n"
            "- {key: f0, label_vi: Ca F0, label_en: F0 case, aliases: [F0, khẩn]}\n"
            "- {key: f1, label_vi: Ca F1, label_en: F1 case, aliases: ['12']}\n"
            "- {key: f2, label_vi: Ca F2, label_en: F2 case, aliases: [F2, f2]}\n"
            "- {key: f3, label_vi: Ca F3, label_en: F3 case, aliases: [F3, tiep xuc 3]}\n")
    with pytest.raises(catalog.CatalogError) as refused:
        catalog.parse(catalog.SITUATIONS, data.encode())
    found = {(p.line, p.where, p.values.get("alias")) for p in refused.value.problems}
    assert found == {(3, "f0.aliases", "khẩn"), (4, "f1.aliases", "12"),
                     (5, "f2.aliases", "f2")}
