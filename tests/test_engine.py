"""The engine's own rules: step keys checked when a flow registers, branches kept pure."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

import bot.flows  # noqa: F401  (every real flow registers on import: each passed the checks)
from bot.flows import engine
from bot.flows.engine import END, FLOWS, Flow, FlowError, Step
from wording import fold, typed_answer, within


async def _finish(turn: Any) -> None:
    return None


def _flow(*steps: Step, name: str = "probe") -> Flow:
    return Flow(name=name, title="probe", steps=steps, finish=_finish)


MISSPELT = '''
from bot.flows.engine import Flow, Step, register


async def _finish(turn):
    return None


FLOW = register(Flow(name="misspelt", title="misspelt", finish=_finish, steps=(
    Step("count", "number", "How many?", goes_to=("confrim",)),
    Step("confirm", "confirm", "Save?"),
)))
'''


def test_a_misspelt_step_key_fails_at_import_naming_flow_and_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "misspelt_flow.py").write_text(MISSPELT)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(FlowError, match=r"flow 'misspelt': step 'count' goes to unknown "
                                        r"step 'confrim'"):
        importlib.import_module("misspelt_flow")
    sys.modules.pop("misspelt_flow", None)
    assert "misspelt" not in FLOWS


@pytest.mark.parametrize(("steps", "message"), [
    ((Step("a", "text", "A?"), Step("a", "text", "A again?")), "step key 'a' is empty or not"),
    ((Step(END, "text", "?"),), "step key '' is empty"),
    ((Step("a", "text", "A?", next=lambda data: "b"), Step("b", "text", "B?")),
     "step 'a' has a next but no goes_to"),
    ((Step("a", "text", "A?", goes_to=("b", END)), Step("b", "text", "B?")),
     "step 'a' goes to several steps but has no next"),
    ((Step("a", "choice", "A?", goes_to=("b", "c"), next=lambda data: "b"),
      Step("b", "text", "B?")), "step 'a' goes to unknown step 'c'"),
    ((), "has no steps"),
])
def test_register_refuses_a_badly_declared_flow(steps: tuple[Step, ...], message: str) -> None:
    with pytest.raises(FlowError, match=message):
        engine.register(_flow(*steps))
    assert "probe" not in FLOWS


def test_register_refuses_a_second_flow_under_a_taken_name() -> None:
    taken = next(iter(FLOWS))
    with pytest.raises(FlowError, match=f"flow '{taken}' is registered twice"):
        engine.register(_flow(Step("a", "text", "A?"), name=taken))
    assert engine.register(FLOWS[taken]) is FLOWS[taken]  # the same flow again is harmless


def test_an_undeclared_key_at_run_time_raises_instead_of_finishing() -> None:
    a = Step("a", "text", "A?", goes_to=("b", END),
             next=lambda data: "c" if data.get("a") == "typo" else END)
    flow = _flow(a, Step("b", "text", "B?"), Step("c", "text", "C?"))
    engine._check(flow)
    assert flow.after(a, {"a": "fine"}) is None
    with pytest.raises(FlowError, match=r"step 'a' went to 'c', not one of its goes_to"):
        flow.after(a, {"a": "typo"})


def test_goes_to_and_the_default_order() -> None:
    a = Step("a", "text", "A?", goes_to=("c",))
    b = Step("b", "text", "B?")
    c = Step("c", "text", "C?")
    flow = _flow(a, b, c)
    assert flow.after(a, {}) is c
    assert flow.after(b, {}) is c
    assert flow.after(c, {}) is None


def test_a_branch_sees_the_answers_read_only() -> None:
    def writes(data: Any) -> str:
        data["household_id"] = 1  # the old way: branching and writing mixed
        return "b"

    a = Step("a", "text", "A?", goes_to=("b",), next=writes)
    flow = _flow(a, Step("b", "text", "B?"))
    answers = {"a": "x"}
    with pytest.raises(TypeError):
        flow.after(a, answers)
    assert answers == {"a": "x"}



class _Vietnamese:
    """A turn's translator, alone: the one thing steering_word reads of a turn."""

    @staticmethod
    def t(msgid: str) -> str:
        return {"Skip": "Bỏ qua", "Back": "Quay lại", "Cancel": "Hủy"}.get(msgid, msgid)


@pytest.mark.parametrize(("typed", "meaning"), [
    ("Hủy", engine.CANCEL), ("HUY.", engine.CANCEL), ("  huỷ ", engine.CANCEL),
    ("quay lại", engine.BACK), ("Back", engine.BACK), ("/back", engine.BACK),
    ("Bỏ qua.", engine.SKIP), ("-", engine.SKIP), ("khong co", engine.SKIP),
    ("?", engine.HELP), ("giúp", engine.HELP),
    ("Hủy bỏ hộ tôi", None), ("3", None), ("", None), ("bo", None),
])
def test_one_reader_of_steering_words_for_every_step(typed: str, meaning: str | None) -> None:
    assert engine.steering_word(_Vietnamese(), typed) == meaning  # type: ignore[arg-type]


@pytest.mark.parametrize(("typed", "label", "stretch", "found"), [
    ("khong thay doi", "Hôm nay không có gì thay đổi", True, True),  # its words, in order
    ("KHÔNG THAY ĐỔI.", "Hôm nay không có gì thay đổi", False, True),
    ("  khong   co gi . ", "Hôm nay không có gì thay đổi", False, True),
    ("thay doi khong", "Hôm nay không có gì thay đổi", True, False),  # out of order
    ("khong", "Hôm nay không có gì thay đổi", False, False),  # a lone word: only a stretch
    ("ben thanh", "Phường Bến Thành", True, True),
    ("ben than", "Phường Bến Thành", False, False),
    ("", "Phường Bến Thành", True, False),
])
def test_a_typed_answer_is_within_a_label_without_case_or_diacritics(
        typed: str, label: str, stretch: bool, found: bool) -> None:
    assert within(typed_answer(typed), fold(label), stretch=stretch) is found
