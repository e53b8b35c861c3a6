"""`coso --help` and every subcommand's help in COSO_DEFAULT_LOCALE (Vietnamese first),
English with --lang en; argparse's own words and errors too."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.cli import build_parser, localized_help, main

ROOT = Path(__file__).resolve().parent.parent
# Descriptions built with an f-string (CSV columns, catalogue kinds from storage): not a catalog
# entry, so they stay English.
COMPUTED = {("households", "import"), ("catalog",)}


def paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
          ) -> Iterator[tuple[str, ...]]:
    """Every command line that has a help of its own: (), ("db",), ("db", "upgrade")..."""
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub.prog.endswith(" " + name):  # an alias ("invites") once
                    yield from paths(sub, (*prefix, name))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def vietnamese(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    monkeypatch.setenv("COSO_DEFAULT_LOCALE", "vi")


def test_top_level_help_in_vietnamese_and_in_english(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert out.startswith("cách dùng: coso")
    for text in ("tuỳ chọn:", "lệnh:", "hiện trợ giúp này rồi thoát", "khởi động bot",
                 "kiểm tra cài đặt"):
        assert text in out, text

    code, out, _ = run(capsys, "--lang", "en", "--help")
    assert code == 0 and out.startswith("usage: coso")
    assert "start the bot" in out and "khởi động" not in out


def test_every_subcommand_help_is_vietnamese(capsys: pytest.CaptureFixture[str]) -> None:
    english = build_parser()  # untranslated: the texts as written
    commands = [p for p in paths(english) if p]
    assert len(commands) > 30
    for command in commands:
        code, out, _ = run(capsys, *command, "--help")
        assert code == 0, command
        assert out.startswith("cách dùng: coso"), command
        assert "hiện trợ giúp này rồi thoát" in out, command
        described = _parser_at(english, command).description
        if described and command not in COMPUTED:  # its own description, in Vietnamese
            assert described.split()[0] not in out.split(), (command, out)
        code, out, _ = run(capsys, *command, "--help", "--lang", "en")
        assert out.startswith("usage: coso"), command


def test_usage_errors_in_vietnamese_and_argparse_left_as_it_was(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "schedule", "set")
    assert code == 2
    assert "coso schedule set: lỗi: thiếu các tham số bắt buộc: --unit" in err
    assert argparse._("usage: ") == "usage: "  # type: ignore[attr-defined]


def test_every_help_text_has_its_vietnamese() -> None:
    with open(ROOT / "locales" / "vi" / "LC_MESSAGES" / "coso.po", "rb") as po:
        catalog = read_po(po)
    missing = []
    for module in sorted((ROOT / "bot" / "cli").glob("*.py")):
        with open(module, "rb") as source:
            for _line, funcname, message, _comments in localized_help.extract(
                    source, {"N_": None, "t": None}, [], {}):
                if funcname is not None:  # t() and N_(): tests/test_catalogs.py's part
                    continue
                msgid = message
                found = catalog.get(msgid)
                if found is None or not found.string:
                    missing.append(f"{module.name}: {msgid}")
    assert not missing, "run `make i18n-extract` and translate: " + "; ".join(missing[:5])


def _parser_at(parser: argparse.ArgumentParser, command: tuple[str, ...]
               ) -> argparse.ArgumentParser:
    for name in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser
