"""The commands as words a person types and as buttons: one table.

A leader on Zalo or a phone keyboard types "báo cáo" or "diemdanh" rather than /report or
/checkin: each command has Vietnamese words that run it on every channel, in every language,
matched folded (case and diacritics aside), and only when no question is open
(bot/handlers/router.py), so a word never takes an answer away from a question. A whole
message that is one of the words runs its command; a word followed by more text counts only
for the commands in TAKES_TEXT ("báo cáo 12 Lê Lợi F0" is "/report 12 Lê Lợi F0", the
one-message report), so "hộ 12" stays text. The first word is the one /help shows.

The label is the command's button in the web chat's menu (the role's commands, shown when no
question is open).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.i18n import N_
from wording import fold


@dataclass(frozen=True)
class CommandWords:
    label: str  # msgid: the menu button
    words: tuple[str, ...]  # typed instead of the slash command; the first shown in /help


TABLE: dict[str, CommandWords] = {
    "report": CommandWords(N_("Report"), ("báo cáo", "baocao")),
    "open": CommandWords(N_("Open reports"), ("báo cáo mở", "đang mở", "baocaomo", "dangmo")),
    "checkin": CommandWords(N_("Daily check-in"),
                            ("báo cáo ngày", "điểm danh", "baocaongay", "diemdanh")),
    "household": CommandWords(N_("Households"), ("hộ", "hộ gia đình", "hogiadinh")),
    "support": CommandWords(N_("Support"), ("hỗ trợ", "hotro", "trao hỗ trợ")),
    "eligible": CommandWords(N_("Eligibility"), ("diện hỗ trợ", "dienhotro")),
    "deliveries": CommandWords(N_("Deliveries"), ("đã trao", "datrao")),
    "dispute": CommandWords(N_("Dispute"), ("phản ánh", "phananh")),
    "disputes": CommandWords(N_("Disputes"), ("xử lý phản ánh", "xulyphananh")),
    "summary": CommandWords(N_("Summary"), ("tổng hợp", "tonghop")),
    "directive": CommandWords(N_("Directive"), ("chỉ đạo", "chidao")),
    "drill": CommandWords(N_("Drill"), ("diễn tập", "dientap")),
    "export": CommandWords(N_("Export"), ("xuất excel", "xuất", "xuatexcel")),
    "schedule": CommandWords(N_("Schedule"), ("lịch", "lịch báo cáo")),
    "people": CommandWords(N_("Roster"), ("cán bộ", "canbo")),
    "invite": CommandWords(N_("Invite card"), ("thẻ mời", "mã mời", "themoi", "mamoi")),
    "handover": CommandWords(N_("Handover"), ("bàn giao", "bangiao")),
    "web": CommandWords(N_("Dashboard"), ("bảng điều khiển", "bangdieukhien")),
    "lang": CommandWords(N_("Language"), ("ngôn ngữ", "ngonngu")),
    "help": CommandWords(N_("Help"),
                         ("trợ giúp", "giúp", "hướng dẫn", "trogiup", "huongdan")),
    "cancel": CommandWords(N_("Cancel"), ("hủy", "thoát")),
    "start": CommandWords(N_("Register"), ("đăng ký", "dangky")),
}

# Commands whose word may lead a message with more after it, handed to them as /cmd's text.
TAKES_TEXT = frozenset({"report"})

# Not offered in the web chat's menu: the menu shows only when no question is open.
NOT_IN_MENU = frozenset({"cancel"})


def _by_word() -> dict[str, str]:
    found: dict[str, str] = {}
    for name, entry in TABLE.items():
        for word in entry.words:
            if found.setdefault(fold(word), name) != name:
                raise ValueError(f"the word {word!r} names two commands")
    return found


BY_WORD = _by_word()
LONGEST = max(len(word.split()) for word in BY_WORD)  # in words: "bao cao ngay" is 3


def named(text: str | None) -> str | None:
    """The command a whole message names by one of its words ("Báo cáo", "diemdanh."), or
    None."""
    if not text:
        return None
    return BY_WORD.get(fold(text).rstrip(".!?").strip())


def leading(text: str | None) -> tuple[str, str] | None:
    """("report", "12 Lê Lợi F0") for "Báo cáo 12 Lê Lợi F0": the longest word of a command
    that takes text, at the start of the message, and what follows it; else None."""
    if not text:
        return None
    found: tuple[str, str] | None = None
    for size in range(1, 1 + LONGEST):
        parts = text.split(maxsplit=size)
        if len(parts) <= size:
            break
        name = BY_WORD.get(fold(" ".join(parts[:size])))
        if name is not None:
            found = (name, parts[size]) if name in TAKES_TEXT else None
    return found
