"""`coso directive send | status`: send a directive to a unit subtree, and follow it."""

from __future__ import annotations

import argparse
import shutil
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.cli.common import CliError, Context, show_record, with_db
from bot.files import prepare_data_dir
from bot.flows.directive import (
    paid_stars,
    parse_deadline,
    refusal_text,
    send,
    unconnected_line,
    within_cap,
)
from bot.handlers.directives import report
from storage import directives, units
from storage.db import Database
from storage.directives import Draft, Refusal
from storage.models import Role, utcnow
from storage.private import private_file


def register(commands: Any) -> None:
    group = commands.add_parser("directive", help="directives that must be acknowledged",
                                description="Send directives and follow who acknowledged.")
    sub = group.add_subparsers(title="directive commands", metavar="COMMAND", required=True)
    send_cmd = sub.add_parser("send", help="send a directive to a unit and everything under it",
                              description="Every active holder of the role (any role when "
                                          "--role is left out) on a unit in the scope gets "
                                          "it on each chat account, with a Received button.")
    send_cmd.add_argument("--scope", required=True, metavar="CODE", help="unit code")
    send_cmd.add_argument("--role", choices=[str(r) for r in Role], help="only this role")
    send_cmd.add_argument("--text-file", required=True, type=Path, metavar="F",
                          help="UTF-8 text, at most 3,500 characters")
    send_cmd.add_argument("--attach", type=Path, metavar="FILE", help="a photo or a PDF")
    send_cmd.add_argument("--deadline", metavar="YYYY-MM-DDTHH:MM",
                          help="local time by which each unit reports done")
    send_cmd.add_argument("--no-ack", action="store_true", help="no acknowledgement asked")
    send_cmd.add_argument("--urgent-paid", action="store_true",
                          help="urgent: Telegram's paid broadcast, up to 1,000 messages/s for "
                               "0.1 Star a message from the bot's balance (capped by "
                               "TELEGRAM_PAID_BROADCAST_MAX_STARS); Zalo goes at its pace")
    send_cmd.add_argument("--yes", action="store_true",
                          help="with --urgent-paid: send; without it the cost is shown only")
    send_cmd.add_argument("--json", action="store_true",
                          help="print {id, recipients, messages, paid_messages, stars}")
    send_cmd.set_defaults(handler=handle_send)
    status = sub.add_parser("status", help="sent, delivered, failed, acknowledged, done, "
                                           "outstanding, by unit")
    status.add_argument("id", type=int, metavar="ID")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=handle_status)


def _text(ctx: Context, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(ctx.t("cannot read {path}: {error}", path=str(path),
                             error=type(exc).__name__)) from exc


def _stored(ctx: Context, attach: Path) -> Path:
    """The attachment checked against the platform limits, then copied under the data dir."""
    if not attach.is_file():
        raise CliError(ctx.t("cannot read {path}: {error}", path=str(attach),
                             error="FileNotFoundError"))
    problem = directives.attachment_refusal(attach.name, attach.stat().st_size)
    if problem is not None:
        raise CliError(refusal_text(ctx.t, problem, attach.name))
    folder = prepare_data_dir(ctx.settings).resolve() / "directives"
    target = private_file(folder / f"{uuid.uuid4().hex}{attach.suffix.casefold()}")
    shutil.copyfile(attach, target)
    return target


def handle_send(ctx: Context, args: argparse.Namespace) -> int:
    text = _text(ctx, args.text_file)
    deadline = None
    if args.deadline:
        deadline = parse_deadline(args.deadline, ctx.settings, utcnow())
        if deadline is None:
            raise CliError(ctx.t("--deadline must look like 2026-12-31T17:00"))
    stored = _stored(ctx, args.attach) if args.attach else None

    cap = ctx.settings.telegram_paid_broadcast_max_stars
    if args.urgent_paid and cap is None:
        raise CliError(ctx.t("Paid broadcast is off: set TELEGRAM_PAID_BROADCAST_MAX_STARS "
                             "to the most Stars one directive may spend."))

    async def work(db: Database) -> dict[str, Any] | Refusal:
        async with db.transaction() as session:
            scope = await units.by_code(session, args.scope)
            if scope is None:
                raise CliError(ctx.t("unknown unit {code}", code=args.scope))
            draft = Draft(scope=scope, role=args.role, text=text,
                          attachment=str(stored) if stored else None,
                          attachment_name=args.attach.name if args.attach else None,
                          requires_ack=not args.no_ack, deadline=deadline)
            sent = await send(session, ctx.settings, draft, None, utcnow(),
                              paid=args.urgent_paid)
            if isinstance(sent, Refusal):
                return sent
            directive, _, queued, calls = sent
            entries = await directives.recipients(session, scope, draft.role)
            missing = await directives.unconnected(session, {p for p, _ in entries})
            away = {person for person, _ in missing}
            # "recipients": those a chat reached; "unconnected": whom none reaches yet.
            result: dict[str, Any] = {
                "id": directive.id, "messages": queued,
                "recipients": sum(1 for person, _ in entries if person not in away),
                "unconnected": [name for _, name in missing]}
            if args.urgent_paid:
                result |= {"paid_messages": calls, "stars": paid_stars(calls)}
            if args.urgent_paid and (not within_cap(ctx.settings, calls) or not args.yes):
                raise NotSent(result)  # rolled back: nothing queued
            return result

    try:
        result = with_db(ctx, work)
    except NotSent as preview:
        if stored:
            stored.unlink(missing_ok=True)
        return _paid_preview(ctx, args, preview.result, cap or 0.0)
    except BaseException:
        if stored:
            stored.unlink(missing_ok=True)
        raise
    if isinstance(result, Refusal):
        if stored:
            stored.unlink(missing_ok=True)
        raise CliError(refusal_text(ctx.t, result))
    if args.json:
        ctx.json(result)
    else:
        ctx.out(ctx.t("Directive #{id} sent to {n} recipients.", id=result["id"],
                      n=ctx.t.number(result["recipients"])))
        if result["unconnected"]:
            ctx.out(unconnected_line(ctx.t, result["unconnected"]))
    return 0


class NotSent(Exception):
    """The paid directive was only priced (no --yes) or costs more than the cap."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("not sent")
        self.result = result


def _paid_preview(ctx: Context, args: argparse.Namespace, result: dict[str, Any],
                  cap: float) -> int:
    stars = ctx.t.number(Decimal(result["stars"]))
    over = not within_cap(ctx.settings, result["paid_messages"])
    if over:
        message = ctx.t("Not sent: the paid broadcast would cost {stars} Stars for {n} "
                        "Telegram messages, more than TELEGRAM_PAID_BROADCAST_MAX_STARS "
                        "({cap}).", stars=stars, n=ctx.t.number(result["paid_messages"]),
                        cap=ctx.t.number(Decimal(str(cap))))
        raise CliError(message)
    if args.json:
        ctx.json({**result, "id": None, "sent": False})
    else:
        ctx.out(ctx.t("Paid broadcast: {n} Telegram messages for {stars} Stars from the "
                      "bot's balance; Zalo and web recipients get it at the normal pace. "
                      "Nothing sent: run again with --yes to send.",
                      n=ctx.t.number(result["paid_messages"]), stars=stars))
    return 0


def handle_status(ctx: Context, args: argparse.Namespace) -> int:
    return show_record(ctx, args.json, lambda session: directives.status(session, args.id),
                       ctx.t("no directive with id {id}", id=args.id), report, as_json)


COUNTS = ("recipients", "sent", "delivered", "failed", "acknowledged", "outstanding")


def as_json(result: directives.Status) -> dict[str, Any]:
    directive = result.directive
    totals = {name: result.total(name) for name in COUNTS}
    return {"id": directive.id, "role": directive.role,
            "created_at": directive.created_at.isoformat(),
            "deadline": directive.deadline.isoformat() if directive.deadline else None,
            **totals, "units_total": len(result.units), "units_done": result.total("done"),
            "units": [{"code": u.code, "name": u.name, "path": u.label, "done": u.done,
                       **{name: getattr(u, name) for name in COUNTS},
                       "missing": [missing_json(m) for m in u.missing]}
                      for u in result.units]}


def missing_json(missing: directives.Missing) -> dict[str, Any]:
    """Who owes an answer; "connected": false means no chat reaches them (phone them)."""
    return {"person_id": missing.person_id, "name": missing.name,
            "connected": missing.connected, "phone": missing.phone}
