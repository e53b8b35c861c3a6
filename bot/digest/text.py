"""The digest as phone-readable text, in the reader's locale (numbers, money, dates by Babel).

Sections without anything to say are left out (no drills yet: no drill section). The whole
stays within Telegram's 4,096 characters: long name lists are cut with "and N more".
"""

from __future__ import annotations

from datetime import date
from datetime import timedelta as _td

from babel.numbers import format_percent

from bot.i18n import Translator
from storage.digest import PolicyFigures, Rollup, WardFigures
from storage.households import FLAG_LABELS

LIMIT = 4096
NAMES_LISTED = 15

def percent(t: Translator, value: float | None) -> str:
    return "—" if value is None else format_percent(value, locale=t.locale)


def _label(t: Translator, vi: str, en: str) -> str:
    return vi if t.locale == "vi" else en


def _amount(t: Translator, policy: PolicyFigures, amount: int) -> str:
    return t.money(amount) if policy.measure == "vnd" else t.number(amount)


def _names(t: Translator, names: list[str]) -> list[str]:
    lines = [f"  • {name}" for name in names[:NAMES_LISTED]]
    if len(names) > NAMES_LISTED:
        lines.append(t("  … and {n} more", n=t.number(len(names) - NAMES_LISTED)))
    return lines


def period_title(t: Translator, figures: WardFigures) -> str:
    day = date.fromisoformat(figures.day)
    if figures.days == 1:
        return t("{ward} — digest for {day}", ward=figures.ward_name, day=t.date(day))
    return t("{ward} — summary {first} to {last}", ward=figures.ward_name,
             first=t.date(day - _td(days=figures.days - 1)), last=t.date(day))


def render(t: Translator, f: WardFigures) -> str:
    """The ward's digest text."""
    lines = [period_title(t, f), ""]
    lines += _reports(t, f)
    lines += _compliance(t, f)
    lines += _households(t, f)
    lines += _support(t, f)
    if f.drills is not None:
        d = f.drills
        lines += [t("🧯 Drills: {drills}, response {rate}; median to acknowledge {ack} min, "
                    "to complete {done} min",
                    drills=t.number(d.drills), rate=percent(t, d.response_rate),
                    ack=_minutes(t, d.median_ack_minutes),
                    done=_minutes(t, d.median_complete_minutes)), ""]
    if f.directives is not None:
        lines += [t("📨 Directives: {n}, acknowledged {acked}/{total} ({rate})",
                    n=t.number(f.directives.directives), acked=t.number(f.directives.acknowledged),
                    total=t.number(f.directives.recipients),
                    rate=percent(t, f.directives.acknowledged_rate)), ""]
    if f.vacancies:
        lines.append(t("🪑 Units with no leader: {n}", n=t.number(len(f.vacancies))))
        lines += _names(t, f.vacancies) + [""]
    if f.blocked:
        lines.append(t("🚫 Leaders who blocked the bot: {n}", n=t.number(len(f.blocked))))
        lines += _names(t, f.blocked) + [""]
    return _fit("\n".join(lines).strip())


def _minutes(t: Translator, value: float | None) -> str:
    return "—" if value is None else t.number(value)


def _reports(t: Translator, f: WardFigures) -> list[str]:
    if not f.categories:
        return [t("📋 Reports: none yet."), ""]
    lines = [t("📋 Reports (new · open · resolved · to date):")]
    for c in f.categories:
        lines.append(f"  • {_label(t, c.label_vi, c.label_en)}: {t.number(c.new)} · "
                     f"{t.number(c.open)} · {t.number(c.resolved)} · {t.number(c.to_date)}")
    if f.urgent_open:
        lines.append(t("🔴 Urgent open cases: {n}", n=t.number(f.urgent_open)))
        labels = {c.key: _label(t, c.label_vi, c.label_en) for c in f.categories}
        for case in f.urgent:
            lines.append(t("  • {unit}: {category}, {hours} h", unit=case.unit,
                           category=labels.get(case.category_key, case.category_key),
                           hours=t.number(case.age_hours)))
    return lines + [""]


def _compliance(t: Translator, f: WardFigures) -> list[str]:
    c = f.compliance
    if not c.expected:
        return []
    lines = [t("✅ Check-in: {reported}/{expected} units ({rate}); on time {on_time}, late {late}",
               reported=t.number(c.reported), expected=t.number(c.expected),
               rate=percent(t, c.rate), on_time=t.number(c.on_time), late=t.number(c.late))]
    if c.silent:
        lines.append(t("Not reported: {n}", n=t.number(len(c.silent))))
        lines += _names(t, [f"{s['unit']} — {', '.join(s['leaders'])}" for s in c.silent])
    return lines + [""]


def _households(t: Translator, f: WardFigures) -> list[str]:
    lines = [t("🏠 Households: {n}", n=t.number(f.households))]
    lines += [f"  • {t(FLAG_LABELS[flag])}: {t.number(n)}" for flag, n in f.flags.items() if n]
    return lines + [""]


def _support(t: Translator, f: WardFigures) -> list[str]:
    if not f.policies:
        return []
    lines = [t("🎁 Support (today · to date · coverage):")]
    for p in f.policies:
        lines.append(t("  • {policy}: {today_h} hh {today_a} · {total_h} hh {total_a} · {cover}",
                       policy=_label(t, p.label_vi, p.label_en),
                       today_h=t.number(p.households_today), today_a=_amount(t, p, p.amount_today),
                       total_h=t.number(p.households_to_date),
                       total_a=_amount(t, p, p.amount_to_date), cover=percent(t, p.coverage)))
    return lines + [""]


def render_rollup(t: Translator, r: Rollup) -> str:
    """A province/city unit's wards summed and ranked."""
    lines = [t("{unit} — {n} wards, {day}", unit=r.unit_name, n=t.number(r.wards),
               day=t.date(date.fromisoformat(r.day))),
             t("✅ Check-in: {reported}/{expected} units ({rate})", reported=t.number(r.reported),
               expected=t.number(r.expected), rate=percent(t, r.rate)),
             t("📋 Open reports: {open}; urgent: {urgent}", open=t.number(r.open),
               urgent=t.number(r.urgent_open)), "",
             t("By check-in rate:")]
    lines += [f"  {i}. {w['ward']}: {percent(t, w['rate'])}"
              for i, w in enumerate(r.by_compliance[:NAMES_LISTED], 1)]
    lines += ["", t("By urgent open cases:")]
    lines += [f"  {i}. {w['ward']}: {t.number(w['urgent_open'])}"
              for i, w in enumerate(r.by_urgent[:NAMES_LISTED], 1)]
    return _fit("\n".join(lines))


def _fit(text: str) -> str:
    return text if len(text) <= LIMIT else text[:LIMIT - 1] + "…"
