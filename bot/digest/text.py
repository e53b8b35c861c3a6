"""The digest as a person reads it on a phone at 8 p.m.: short sentences that need no legend,
what asks for action first (urgent cases, the check-in and who has not answered, post
holders not yet connected, vacancies), then the figures.

Each section is a paragraph (separated by a blank line) so that a channel with a shorter limit
(Zalo, 2,000 characters) can split at section boundaries (`parts`). A zero says so in words or
the line is left out. The period is named for what it is: today, the last 7 days, the last 30.
Numbers, money and dates go through the reader's Translator (Babel). The whole stays within
Telegram's 4,096 characters: long name lists are cut with "and N more".
"""

from __future__ import annotations

from datetime import date, timedelta

from bot.drill_change import improvement
from bot.i18n import Translator
from storage.digest import (
    CategoryFigures,
    DirectiveFigures,
    DrillFigures,
    PolicyFigures,
    Rollup,
    UrgentCase,
    Vacancy,
    WardFigures,
    compliance_level,
)
from storage.households import FLAG_LABELS

LIMIT = 4096
NAMES_LISTED = 15
DIRECTIVES_LISTED = 3  # directives named with who has not acknowledged; the rest counted
BULLET = "• "
# The check-in line's mark by storage.digest.compliance_level (the dashboard colours by it).
MARKS = {"good": "✅", "low": "⚠️", "none": "⚠️", "": "⚠️"}


def percent(t: Translator, value: float | None) -> str:
    return t("no one expected") if value is None else t.percent(value)


def _late(t: Translator, on_time: int, late: int) -> str:
    """'3 on time, 1 late', or 'all on time' when none was late."""
    if not late:
        return t("all on time")
    return t("{on_time} on time, {late} late", on_time=t.number(on_time), late=t.number(late))


def _label(t: Translator, vi: str, en: str) -> str:
    return vi if t.locale == "vi" else en


def _amount(t: Translator, policy: PolicyFigures, amount: int) -> str:
    return t.money(amount) if policy.measure == "vnd" else t.number(amount)


def _listed(t: Translator, lines: list[str]) -> list[str]:
    shown = [BULLET + line for line in lines[:NAMES_LISTED]]
    if len(lines) > NAMES_LISTED:
        shown.append(t("… and {n} more", n=t.number(len(lines) - NAMES_LISTED)))
    return shown


def _day(t: Translator, day: date, today: date) -> str:
    """'today (20/11/2026)', or 'Friday, Nov 20, 2026' for a day further back."""
    word = t.day(day, today)
    return t("{word} ({date})", word=word, date=t.date(day)) if abs(
        (day - today).days) <= 1 else word


def period_title(t: Translator, f: WardFigures, today: date | None = None) -> str:
    day = date.fromisoformat(f.day)
    today = today or t.today()
    if f.days == 1:
        return t("📊 {ward}: digest for {day}", ward=f.ward_name, day=_day(t, day, today))
    return t("📊 {ward}: the last {n} days, {first} to {last}", ward=f.ward_name,
             n=t.number(f.days), first=t.date(day - timedelta(days=f.days - 1)),
             last=t.date(day))


def render(t: Translator, f: WardFigures, today: date | None = None) -> str:
    """The ward's digest text; `today` (default: the local date now) words the day."""
    today = today or t.today()
    when = _when(t, f, today)
    sections = [[period_title(t, f, today)], _urgent(t, f), _check_in(t, f, when, today),
                _unconnected(t, f), _vacancies(t, f), _blocked(t, f), _reports(t, f, when),
                _households(t, f), _support(t, f, when),
                _directives(t, f.directives, f.recent_days), _drills(t, f.drills, f.recent_days)]
    return _fit("\n\n".join("\n".join(lines) for lines in sections if lines))


def _when(t: Translator, f: WardFigures, today: date) -> str:
    if f.days > 1:
        return t("in the last {n} days", n=t.number(f.days))
    day = date.fromisoformat(f.day)
    return t("today") if day == today else t("on {day}", day=t.day(day, today))


def _age(t: Translator, hours: int) -> str:
    if hours >= 48:
        return t("open {n} days", n=t.number(hours // 24))
    if hours >= 24:
        return t("open 1 day")
    if hours < 1:
        return t("open less than an hour")
    return t.plural("open {n} hour", "open {n} hours", hours)


def _urgent(t: Translator, f: WardFigures) -> list[str]:
    if not f.urgent_open:
        return [t("🟢 No urgent report is open.")] if f.categories else []
    labels = {c.key: _label(t, c.label_vi, c.label_en) for c in f.categories}
    lines = [t.plural("🔴 {n} urgent report is open:", "🔴 {n} urgent reports are open:",
                      f.urgent_open)]
    lines += [BULLET + _case(t, case, labels) for case in f.urgent]
    if f.urgent_open > len(f.urgent):
        lines.append(t("… and {n} more", n=t.number(f.urgent_open - len(f.urgent))))
    return lines


def _case(t: Translator, case: UrgentCase, labels: dict[str, str]) -> str:
    """One open urgent case as staff tell it from the others and act on it: its number (what
    /open and the alert name), where, what, how long, who reported it and who took it."""
    line = t("Report #{id}, household {household}, {unit}: {category}, {age}.",
             id=case.report_id, household=case.household, unit=case.unit,
             category=labels.get(case.category_key, case.category_key),
             age=_age(t, case.age_hours))
    if case.reported_by is None:  # recorded from the command line: nobody to name
        who = (t("Taken by {name}.", name=case.taken_by) if case.taken_by
               else t("Not taken by anyone yet."))
    else:
        who = t("Reported by {name}; {taken}.", name=case.reported_by,
                taken=t("taken by {name}", name=case.taken_by) if case.taken_by
                else t("not taken by anyone yet"))
    return f"{line} {who}"


def _unconnected(t: Translator, f: WardFigures) -> list[str]:
    """Who holds a post but has not connected a chat: by name, so staff can phone them."""
    if not f.unconnected:
        return []
    lines = [t("{unit} › {post}: {person}", unit=u.unit, post=_label(t, u.label_vi, u.label_en),
               person=u.person) for u in f.unconnected]
    return [t.plural("📵 {n} post holder has not connected a chat yet (phone them; /invite "
                     "sends their card):",
                     "📵 {n} post holders have not connected a chat yet (phone them; /invite "
                     "sends their cards):", len(f.unconnected)), *_listed(t, lines)]


def _vacancies(t: Translator, f: WardFigures) -> list[str]:
    """The roster's posts with no holder, each with its days vacant."""
    if not f.vacancies:
        return []
    return [t.plural("🪑 {n} post is vacant:", "🪑 {n} posts are vacant:", len(f.vacancies)),
            *_listed(t, [_vacant(t, v) for v in f.vacancies])]


def _vacant(t: Translator, v: Vacancy) -> str:
    post = _label(t, v.label_vi, v.label_en)
    if not v.days:
        return t("{unit} › {post}: vacant less than a day", unit=v.unit, post=post)
    return t.plural("{unit} › {post}: vacant {n} day", "{unit} › {post}: vacant {n} days",
                    v.days, unit=v.unit, post=post)


def _blocked(t: Translator, f: WardFigures) -> list[str]:
    if not f.blocked:
        return []
    return [t.plural("🚫 {n} leader has blocked the bot (phone them):",
                     "🚫 {n} leaders have blocked the bot (phone them):", len(f.blocked)),
            *_listed(t, f.blocked)]


def _check_in(t: Translator, f: WardFigures, when: str, today: date) -> list[str]:
    """The period's check-in figure, then who has not answered on its last day (who to chase
    now): each unit by its leaders with a chat; a unit whose leaders have none yet is only
    counted here, its people are named under 📵."""
    c = f.compliance
    if not c.expected:
        return []
    return [_check_in_line(t, f, when), *_silent(t, f, today)]


def _check_in_line(t: Translator, f: WardFigures, when: str) -> str:
    c = f.compliance
    if not c.reported:
        return t("⚠️ Check-in {when}: none of the {units} units has reported.", when=when,
                 units=t.number(c.units))
    mark = MARKS[compliance_level(c.rate)]
    if f.days == 1:
        return t("{mark} Check-in {when}: {reported} of {expected} units reported ({rate}), "
                 "{timing}.", mark=mark, when=when, reported=t.number(c.reported),
                 expected=t.number(c.expected), rate=percent(t, c.rate),
                 timing=_late(t, c.on_time, c.late))
    return t("{mark} Check-ins {when}: {reported} of the {expected} owed by {units} units "
             "({rate}), {timing}.", mark=mark, when=when, reported=t.number(c.reported),
             expected=t.number(c.expected), units=t.number(c.units),
             rate=percent(t, c.rate), timing=_late(t, c.on_time, c.late))


def _silent(t: Translator, f: WardFigures, today: date) -> list[str]:
    chased, waiting = [], 0
    for s in f.compliance.silent:
        leaders = [name for name in s["leaders"] if name not in s.get("unconnected", [])]
        if leaders:
            chased.append(t("{unit}: {leaders}", unit=s["unit"], leaders=", ".join(leaders)))
        else:
            waiting += 1
    if not chased:
        return [t.plural("⏳ The {n} unit that has not reported has no leader on a chat yet "
                         "(📵 below).",
                         "⏳ The {n} units that have not reported have no leader on a chat "
                         "yet (📵 below).", waiting)] if waiting else []
    day = date.fromisoformat(f.day)
    n = len(f.compliance.silent)
    head = (t("⏳ Not reported yet ({n}):", n=t.number(n)) if f.days == 1 and day == today
            else t("⏳ Not reported {when} ({n}):", n=t.number(n), when=t("today")
                   if day == today else t("on {day}", day=t.day(day, today))))
    more = [BULLET + t.plural("{n} more unit with no leader on a chat yet (📵 below)",
                              "{n} more units with no leader on a chat yet (📵 below)",
                              waiting)] if waiting else []
    return [head, *_listed(t, chased), *more]


def _category(t: Translator, c: CategoryFigures, when: str) -> str:
    parts = []
    if c.new:
        parts.append(t("{n} new {when}", n=t.number(c.new), when=when))
    if c.resolved:
        parts.append(t("{n} resolved {when}", n=t.number(c.resolved), when=when))
    parts.append(t("{n} still open", n=t.number(c.open)) if c.open else t("none open"))
    parts.append(t("{n} in all", n=t.number(c.to_date)))
    return BULLET + t("{category}: {parts}.", category=_label(t, c.label_vi, c.label_en),
                      parts=", ".join(parts))


def _reports(t: Translator, f: WardFigures, when: str) -> list[str]:
    if not f.categories:
        return [t("📋 No reports yet.")]
    new = sum(c.new for c in f.categories)
    head = (t.plural("📋 Reports: {n} new {when}.", "📋 Reports: {n} new {when}.", new,
                     when=when) if new else t("📋 Reports: none new {when}.", when=when))
    return [head, *(_category(t, c, when) for c in f.categories)]


def _households(t: Translator, f: WardFigures) -> list[str]:
    if not f.households:
        return [t("🏠 No households on record yet.")]
    lines = [t.plural("🏠 {n} household on record, of which:",
                      "🏠 {n} households on record, of which:", f.households)
             if any(f.flags.values()) else
             t.plural("🏠 {n} household on record.", "🏠 {n} households on record.",
                      f.households)]
    lines += [BULLET + t("{flag}: {n}", flag=t(FLAG_LABELS[flag]), n=t.number(n))
              for flag, n in f.flags.items() if n]
    return lines


def _policy(t: Translator, p: PolicyFigures, when: str) -> str:
    today, to_date = _amount(t, p, p.amount_today), _amount(t, p, p.amount_to_date)
    recent = (t.plural("{n} household {when} ({amount})", "{n} households {when} ({amount})",
                       p.households_today, when=when, amount=today)
              if p.households_today else t("none {when}", when=when))
    total = t.plural("{n} household to date ({amount})", "{n} households to date ({amount})",
                     p.households_to_date, amount=to_date)
    cover = (t("{rate} of the {eligible} eligible", rate=percent(t, p.coverage),
               eligible=t.number(p.eligible)) if p.eligible else t("no eligibility list"))
    return BULLET + t("{policy}: {recent}; {total}, {cover}.",
                      policy=_label(t, p.label_vi, p.label_en), recent=recent, total=total,
                      cover=cover)


def _support(t: Translator, f: WardFigures, when: str) -> list[str]:
    if not f.policies:
        return []
    return [t("🎁 Support handed out:"), *(_policy(t, p, when) for p in f.policies)]


def _directives(t: Translator, d: DirectiveFigures | None, days: int) -> list[str]:
    """The week's directives: the share acknowledged, then per directive (by its number) who
    has not acknowledged it yet, by unit, so staff can phone them."""
    if d is None:
        return []
    lines = [t.plural("📨 {n} directive in the last {days} days: acknowledged by {acked} of "
                      "{total} recipients ({rate}).",
                      "📨 {n} directives in the last {days} days: acknowledged by {acked} of "
                      "{total} recipients ({rate}).",
                      d.directives, days=t.number(days), acked=t.number(d.acknowledged),
                      total=t.number(d.recipients), rate=percent(t, d.acknowledged_rate))]
    for pending in d.pending[:DIRECTIVES_LISTED]:
        lines.append(t.plural("Directive #{id} ({title}): {n} person has not acknowledged:",
                              "Directive #{id} ({title}): {n} people have not acknowledged:",
                              pending.missing, id=pending.directive_id, title=pending.title))
        by_unit: dict[str, list[str]] = {}
        for unit, name in pending.people:
            by_unit.setdefault(unit, []).append(name)
        lines += [BULLET + t("{unit}: {leaders}", unit=unit, leaders=", ".join(names))
                  for unit, names in by_unit.items()]
        if pending.missing > len(pending.people):
            lines.append(BULLET + t.plural(
                "… and {n} other (/directive status {id})",
                "… and {n} others (/directive status {id})",
                pending.missing - len(pending.people), id=pending.directive_id))
    if len(d.pending) > DIRECTIVES_LISTED:
        lines.append(t.plural("… and {n} more directive not acknowledged by all "
                              "(/directive status).",
                              "… and {n} more directives not acknowledged by all "
                              "(/directive status).", len(d.pending) - DIRECTIVES_LISTED))
    return lines


def _minutes(t: Translator, value: float | None) -> str:
    return t("not yet") if value is None else t.duration(timedelta(minutes=value))


def _drills(t: Translator, d: DrillFigures | None, days: int) -> list[str]:
    if d is None:
        return []
    change = improvement(t, [(c.step, timedelta(seconds=c.seconds)) for c in d.step_changes],
                         d.previous)
    return [t.plural("🧯 {n} drill in the last {days} days: {acked} of {units} units "
                     "responded ({rate}), {done} completed; half acknowledged within {ack}, "
                     "half completed within {complete}.",
                     "🧯 {n} drills in the last {days} days: {acked} of {units} units "
                     "responded ({rate}), {done} completed; half acknowledged within {ack}, "
                     "half completed within {complete}.",
                     d.drills, days=t.number(days), acked=t.number(d.acknowledged),
                     units=t.number(d.participants), rate=percent(t, d.response_rate),
                     done=t.number(d.completed), ack=_minutes(t, d.median_ack_minutes),
                     complete=_minutes(t, d.median_complete_minutes)),
            *([change] if change else [])]


def parts(text: str, limit: int) -> list[str]:
    """The text in messages of at most `limit` characters, split between sections (a blank
    line) where it can be, inside a section at a line break only when one is too long."""
    pieces: list[str] = []
    current = ""
    for section in text.split("\n\n"):
        for chunk in _chunks(section, limit):
            joined = f"{current}\n\n{chunk}" if current else chunk
            if len(joined) <= limit:
                current = joined
            else:
                pieces.append(current)
                current = chunk
    return [*pieces, current] if current else pieces


def _chunks(section: str, limit: int) -> list[str]:
    if len(section) <= limit:
        return [section]
    chunks: list[str] = []
    current = ""
    for line in section.split("\n"):
        joined = f"{current}\n{line}" if current else line
        if len(joined) <= limit:
            current = joined
        else:
            chunks.append(current)
            current = line[:limit]
    return [*chunks, current] if current else chunks


def render_rollup(t: Translator, r: Rollup) -> str:
    """A province/city unit's wards summed and ranked."""
    day = date.fromisoformat(r.day)
    mark = MARKS[compliance_level(r.rate)]
    if r.days == 1:
        title = t("📊 {unit}: {n} wards, {day}", unit=r.unit_name, n=t.number(r.wards),
                  day=_day(t, day, t.today()))
        check_in = t("{mark} Check-in: {reported} of {expected} units reported ({rate}).",
                     mark=mark, reported=t.number(r.reported), expected=t.number(r.expected),
                     rate=percent(t, r.rate))
    else:
        title = t("📊 {unit}: {n} wards, the last {days} days, {first} to {last}",
                  unit=r.unit_name, n=t.number(r.wards), days=t.number(r.days),
                  first=t.date(day - timedelta(days=r.days - 1)), last=t.date(day))
        check_in = t("{mark} Check-ins in the last {days} days: {reported} of the {expected} owed "
                     "({rate}).", mark=mark, days=t.number(r.days), reported=t.number(r.reported),
                     expected=t.number(r.expected), rate=percent(t, r.rate))
    lines = [title, check_in,
             t("📋 {open} reports open, {urgent} of them urgent.", open=t.number(r.open),
               urgent=t.number(r.urgent_open)), "",
             t("Wards by check-in rate:")]
    lines += [f"  {i}. {w['ward']}: {percent(t, w['rate'])}"
              for i, w in enumerate(r.by_compliance[:NAMES_LISTED], 1)]
    lines += ["", t("Wards by urgent open reports:")]
    lines += [f"  {i}. {w['ward']}: {t.number(w['urgent_open'])}"
              for i, w in enumerate(r.by_urgent[:NAMES_LISTED], 1)]
    return _fit("\n".join(lines))


def _fit(text: str) -> str:
    return text if len(text) <= LIMIT else text[:LIMIT - 1] + "…"

