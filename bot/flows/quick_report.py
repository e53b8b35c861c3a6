"""The whole report in one message: "12 Lê Lợi F0 3 người khẩn ghi chú sốt cao".

read() turns the text into what the report flow would have asked, without the database:

  situation  a catalogue name or alias ("F0", "thiếu ăn", "thieu an"), folded; an alias of
             4 letters or more also with one letter wrong, missing or extra ("thieu thuc")
  people     a number followed by người / ng / people / persons ("3 người", "3ng")
  urgency    khẩn / gấp / khẩn cấp / urgent → urgent; bình thường / normal → normal
  note       everything after "ghi chú" / "note" / "gc:"
  the rest   runs of words between those: the flow looks the first that names a household up
             (code or head's name, folded); the other runs join the note

The words read as urgency, people or the note are storage.catalog.RESERVED, so that a city's
catalogue cannot give a situation an alias the reader takes for something else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from wording import fold, normalize

URGENT_WORDS = {("khan", "cap"), ("cap", "cuu"), ("khan",), ("gap",), ("urgent",),
                ("cap", "bach")}
NORMAL_WORDS = {("binh", "thuong"), ("khong", "khan"), ("normal",), ("not", "urgent")}
NOTE_MARKERS = {("ghi", "chu"), ("ghichu",), ("note",), ("notes",), ("gc",)}
PEOPLE_WORDS = {"nguoi", "ng", "people", "person", "persons", "nhan", "khau"}
_PEOPLE_JOINED = re.compile(r"^(\d{1,3})(nguoi|ng|people|persons|person)$")
_NUMBER = re.compile(r"^\d{1,3}$")
_EDGES = ",.;:!?()[]\"'-–—"
FUZZY_FROM = 4  # letters: a shorter alias ("F0", "y te") must be typed exactly


@dataclass(frozen=True)
class Situation:
    """One catalogue entry as the reader sees it: the names a person might type."""

    key: str
    names: tuple[str, ...]  # labels: matched exactly (folded)
    aliases: tuple[str, ...] = ()  # short names: exactly, or one letter off when long enough


@dataclass
class Reading:
    category: str | None = None
    people: int | None = None
    urgent: bool | None = None
    note: str | None = None
    runs: list[str] = field(default_factory=list)  # the words left, in order, by run
    typo: str | None = None  # the word read as an alias with one letter off

    @property
    def found_anything(self) -> bool:
        return self.category is not None or self.people is not None or self.urgent is not None


def _tokens(text: str) -> list[str]:
    return normalize(text).split(" ") if normalize(text) else []


def _key(token: str) -> str:
    return fold(token).strip(_EDGES)


def read(text: str, situations: Sequence[Situation]) -> Reading:
    """What a one-message report says; nothing found leaves a field None."""
    words = _tokens(text)
    keys = [_key(word) for word in words]
    used = [not key for key in keys]  # lone punctuation counts as read
    reading = Reading()
    note_at = _find(keys, used, NOTE_MARKERS)
    if note_at is not None:
        start, end = note_at
        reading.note = " ".join(words[end:]).strip(" :-") or None
        for index in range(start, len(words)):
            used[index] = True
    _read_people(keys, used, reading)
    for phrases, urgent in ((URGENT_WORDS, True), (NORMAL_WORDS, False)):
        found = _find(keys, used, phrases)
        if found is not None and reading.urgent is None:
            reading.urgent = urgent
            _use(used, *found)
    _read_situation(keys, used, situations, reading)
    reading.runs = _runs(words, used)
    return reading


def _find(keys: list[str], used: list[bool], phrases: set[tuple[str, ...]]
          ) -> tuple[int, int] | None:
    """The first free window of tokens that is one of the phrases (longest first)."""
    for start in range(len(keys)):
        for size in (3, 2, 1):
            end = start + size
            if end <= len(keys) and not any(used[start:end]) and tuple(keys[start:end]) in phrases:
                return start, end
    return None


def _use(used: list[bool], start: int, end: int) -> None:
    for index in range(start, end):
        used[index] = True


def _read_people(keys: list[str], used: list[bool], reading: Reading) -> None:
    for index, key in enumerate(keys):
        if used[index]:
            continue
        joined = _PEOPLE_JOINED.match(key)
        if joined:
            reading.people = int(joined.group(1))
            used[index] = True
            return
        if (_NUMBER.match(key) and index + 1 < len(keys) and not used[index + 1]
                and keys[index + 1] in PEOPLE_WORDS):
            reading.people = int(key)
            used[index] = used[index + 1] = True
            if index + 2 < len(keys) and (keys[index + 1], keys[index + 2]) == ("nhan", "khau"):
                used[index + 2] = True
            return


def _read_situation(keys: list[str], used: list[bool], situations: Sequence[Situation],
                    reading: Reading) -> None:
    """The best free window naming a situation: exact before one letter off, longer before
    shorter, earlier before later; two situations equally near is no answer (the flow asks)."""
    found: list[tuple[int, int, int, int, str]] = []  # (distance, -size, start, end, key)
    for situation in situations:
        phrases = [(fold(name), False) for name in situation.names]
        phrases += [(fold(alias), True) for alias in situation.aliases]
        for phrase, fuzzy in phrases:
            target = "".join(_key(word) for word in phrase.split())
            if target:
                found.extend((*match, situation.key)
                             for match in _windows(keys, used, target, len(phrase.split()),
                                                   fuzzy and len(target) >= FUZZY_FROM))
    if not found:
        return
    best = min(found)
    if any(other[:2] == best[:2] and other[4] != best[4] for other in found):
        return
    distance, _, start, end, reading.category = best
    if distance:
        reading.typo = " ".join(keys[start:end])
    _use(used, start, end)


def _windows(keys: list[str], used: list[bool], target: str, words: int, fuzzy: bool
             ) -> list[tuple[int, int, int, int]]:
    """Free windows of up to one word more than the phrase that spell it (spaces aside:
    "thieuan" is "thieu an"), exactly or, when fuzzy, one letter off."""
    matches = []
    for start in range(len(keys)):
        for size in range(1, words + 2):
            end = start + size
            if end > len(keys) or any(used[start:end]):
                break
            typed = "".join(keys[start:end])
            if typed == target:
                matches.append((0, -size, start, end))
            elif fuzzy and _one_off(typed, target):
                matches.append((1, -size, start, end))
    return matches


def _one_off(typed: str, target: str) -> bool:
    """Edit distance exactly 1: one letter changed, missing, extra, or two swapped."""
    if typed == target or abs(len(typed) - len(target)) > 1:
        return False
    if len(typed) == len(target):
        diffs = [i for i, (a, b) in enumerate(zip(typed, target, strict=True)) if a != b]
        if len(diffs) == 1:
            return True
        return (len(diffs) == 2 and diffs[1] == diffs[0] + 1
                and typed[diffs[0]] == target[diffs[1]] and typed[diffs[1]] == target[diffs[0]])
    shorter, longer = sorted((typed, target), key=len)
    return any(longer[:index] + longer[index + 1:] == shorter for index in range(len(longer)))


def _runs(words: list[str], used: list[bool]) -> list[str]:
    runs: list[list[str]] = [[]]
    for word, taken in zip(words, used, strict=True):
        if taken:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(word)
    return [" ".join(run).strip(_EDGES + " ") for run in runs if run
            and " ".join(run).strip(_EDGES + " ")]
