"""The sender: drains one channel's outbox rows through that channel, with retries.

Woken in-process when a transaction that queued messages for the channel commits, so a reply
goes out at once; otherwise it polls, to pick up rows written by other processes and rows
whose retry time has come.

Sends to different chats go in parallel, paced by two limits: the channel's overall rate and
one chat's rate. Only a small window of rows is claimed ahead of the pace (about a quarter of
a second's worth), so an interactive reply queued during a broadcast waits behind that window
only, never behind the whole broadcast. The window holds at most one row per chat, and no row
of a chat whose next turn is not near (storage.outbox.claim skips them), so a chat with a
thousand replies queued, each waiting its 1/s turn, never holds up another chat's reply.

A channel with several bots (TELEGRAM_BOT_TOKENS) has one sender per bot, each draining its
own bot's rows at its own pace: the limits are per token, so two bots send twice as fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import UNLIMITED, Channel, DeliveryError, SendRate
from bot.messages import PAID_BROADCAST, Outgoing
from bot.ops import metrics
from storage import outbox
from storage.claimants import Claimant
from storage.db import Database, unavailable
from storage.models import ChatAccount, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
IDLE_POLL_SECONDS = 2.0
MAX_ATTEMPTS = 8
STOP_GRACE_SECONDS = 5.0
WINDOW_SECONDS = 0.25  # how far ahead of the pace rows are claimed
MIN_WINDOW, MAX_WINDOW = 4, 64  # rows in flight: enough to hide latency, not to hog the queue
# Paid broadcast rows (1,000/s): a quarter second of them in flight. Only while the claims
# bring paid rows: an interactive reply (claimed first, by priority) then waits behind
# 0.25 s of paid sends, and a free row claimed along with them waits its free-rate turn.
MAX_PAID_WINDOW = 256
# Pace a little under the limit: requests reach the platform with network jitter, and a burst
# over its window costs a 429 and a second's wait for that message.
HEADROOM = 0.97
# A platform that does not answer at all (refused, dropped, timed out) is away, not slow:
# after this many unanswered sends in a row the sender holds the channel's queue and sends
# one message at a time as a probe, 1 s, 2 s, 4 s... apart but never more than
# PROBE_MAX_SECONDS, so delivery resumes within that long of the platform coming back,
# however long the outage, and the queue is not cycled through a dead connection.
OUTAGE_AFTER = 3
PROBE_MAX_SECONDS = 5.0
# Recording a send (or a failure) retries this long while the database is away: a row sent
# but not recorded would go again once its lease (60 s) runs out.
RECORD_RETRY_SECONDS = 45.0


def backoff(attempt: int, retry_after: float | None) -> float:
    """Seconds before the next try: the platform's word if it gave one, else exponential."""
    if retry_after is not None:
        return retry_after
    base = min(60.0, 0.5 * 2 ** (attempt - 1))
    return base * random.uniform(0.75, 1.25)


def _paid(payload: dict[str, object]) -> bool:
    extra = payload.get("extra")
    return isinstance(extra, dict) and bool(extra.get(PAID_BROADCAST))


class Pace:
    """Hands out send times: at most `rate` a second overall, `chat_rate` a second per chat
    (chats by their account id). Paid rows (Telegram's allow_paid_broadcast) take their
    global slot from a second clock at the paid rate; the per-chat limit holds for both."""

    def __init__(self, rate: SendRate) -> None:
        self.interval = 1.0 / (rate.per_second * HEADROOM) if rate.per_second else 0.0
        self.chat_interval = 1.0 / rate.per_chat_per_second if rate.per_chat_per_second else 0.0
        paid = rate.paid_per_second or rate.per_second
        self.paid_interval = 1.0 / (paid * HEADROOM) if paid else 0.0
        self._next = 0.0
        self._next_paid = 0.0
        self._next_by_chat: dict[int, float] = {}

    async def wait_turn(self, chat: int, paid: bool = False) -> None:
        now = time.monotonic()
        at = max(now, self._next_by_chat.get(chat, 0.0))
        if self.chat_interval:
            self._next_by_chat[chat] = at + self.chat_interval
        if at > now:
            await asyncio.sleep(at - now)  # this chat's turn first, then a global slot
            now = time.monotonic()
        if paid:
            at = max(now, self._next_paid)
            self._next_paid = at + self.paid_interval
        else:
            at = max(now, self._next)
            self._next = at + self.interval
        if at > now:
            await asyncio.sleep(at - now)

    def hold_chat(self, chat: int, seconds: float) -> None:
        """The platform asked to wait before this chat's next message (429 retry_after), or
        its message waits for a retry: the chat's later messages wait behind it."""
        self._next_by_chat[chat] = max(self._next_by_chat.get(chat, 0.0),
                                       time.monotonic() + seconds)

    def resting(self, ahead: float) -> tuple[list[int], float | None]:
        """The chats whose next turn is more than `ahead` seconds away (not worth claiming
        a row for yet), and in how many seconds the first of them may be claimed. Chats
        whose turn has come are forgotten, so this stays as small as the chats sent to in
        the last second or so."""
        now = time.monotonic()
        self._next_by_chat = {c: t for c, t in self._next_by_chat.items() if t > now}
        later = [t for t in self._next_by_chat.values() if t > now + ahead]
        chats = [c for c, t in self._next_by_chat.items() if t > now + ahead]
        return chats, (min(later) - now - ahead if later else None)


class Sender:
    def __init__(self, db: Database, channel: Channel, rate: SendRate | None = None,
                 bot: str = "", claimant: Claimant | None = None) -> None:
        self.db = db
        # This process, written into the rows it claims (storage.claimants): when it dies,
        # another process frees them at once instead of after their lease.
        self.claimant = claimant
        self.channel = channel
        # Which of the channel's bots this sends for (TELEGRAM_BOT_TOKENS): its own rows
        # (OutboxMessage.bot) at its own pace, so each token's limit is its own.
        self.bot = bot
        # Telegram and Zalo carry their limits; the web chat only writes to the database.
        rate = rate or getattr(channel, "send_rate", None) or UNLIMITED
        self.pace = Pace(rate)
        ahead = (rate.per_second or 4 * MAX_WINDOW) * WINDOW_SECONDS
        self.window = max(MIN_WINDOW, min(MAX_WINDOW, math.ceil(ahead)))
        # While paid rows are being sent, the window is a quarter second at the paid rate.
        paid_ahead = (rate.paid_per_second or 0.0) * WINDOW_SECONDS
        self.paid_window = max(self.window, min(MAX_PAID_WINDOW, math.ceil(paid_ahead)))
        self._paid_mode = False  # the last claim took paid rows
        self._progress = asyncio.Event()  # a wake-up, or a send finished (room in the window)
        # Each send, and its outbox row's chat account: one row per chat at a time.
        self._in_flight: dict[asyncio.Task[None], int] = {}
        self._rest_wake: asyncio.Handle | None = None  # when a resting chat may go
        self._rest_wake_at = 0.0  # its loop time (uvloop's handle for a time past has none)
        self._task: asyncio.Task[None] | None = None
        self._unanswered = 0  # sends in a row that got no answer from the platform
        self._down_since: float | None = None  # the platform is away: the queue is held
        self._hold_until = 0.0
        self._probe_delay = 0.0
        self._claim_trouble: str | None = None  # why claiming fails (database away)
        self._to_mark: list[int] = []  # sent, waiting to be recorded as sent
        self._marking: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._progress.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"sender-{self.channel.name}"
                                         + (f"-{self.bot}" if self.bot else ""))

    @property
    def running(self) -> bool:
        """Started and its loop alive (for /readyz)."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Stops claiming, lets the sends under way finish briefly, then cancels the rest
        (their rows go out again when their lease runs out)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=STOP_GRACE_SECONDS)
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._in_flight.clear()
        if self._marking is not None:  # the last sends' marks: shielded from the cancels
            await asyncio.wait([self._marking], timeout=STOP_GRACE_SECONDS)
            self._marking.cancel()

    async def _run(self) -> None:
        while True:
            # Cleared before looking at the queue, so a wake that comes while claiming is kept.
            self._progress.clear()
            try:
                window_full = await self._fill_window()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._claim_failed(exc)
                window_full = False
            await self._wait(None if window_full else IDLE_POLL_SECONDS)

    async def _wait(self, seconds: float | None) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that arrives as the event is set (a send finishing while the bot stops), and then
        # stop() waits for this loop forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._progress.wait()

    def _claim_failed(self, exc: Exception) -> None:
        reason = unavailable(exc)
        if reason is None:
            log.exception("outbox claim failed on %s; retrying", self.channel.name)
        elif self._claim_trouble is None:  # one line per outage, not one per poll
            log.warning("%s sender: cannot claim outbox rows: %s; retrying every %.0fs",
                        self.channel.name, reason, IDLE_POLL_SECONDS)
        self._claim_trouble = reason or self._claim_trouble

    async def _fill_window(self) -> bool:
        """Claim due rows into the free room and start sending them; True when room ran out
        (or the channel is held: a wake comes when the hold ends)."""
        while True:
            room = (self.paid_window if self._paid_mode else self.window) - len(self._in_flight)
            if self._down_since is not None:  # the platform is away: one probe at a time
                held = self._hold_until - time.monotonic()
                if held > 0:
                    asyncio.get_running_loop().call_later(held, self.wake)
                    return True
                room = 1 - len(self._in_flight)
            if room <= 0:
                return True
            claimed = await self._claim(room)
            if claimed == room:
                return True
            # Short: none left, or the rows looked at were mostly of chats just taken (one
            # row each a claim). Again, with those chats now in flight, until none comes.
            if claimed == 0:
                return False

    async def _claim(self, room: int) -> int:
        """Claim up to `room` rows, one per chat, of chats not in flight and whose turn is
        near; start sending them. How many were claimed."""
        resting, rest_ends = self.pace.resting(WINDOW_SECONDS)
        skip = {*self._in_flight.values(), *resting}
        async with self.db.transaction(inline=True) as session:  # a few small statements
            claimed = await outbox.claim(
                session, self.channel.name, room, LEASE, skip_chats=skip, bot=self.bot,
                claimant=self.claimant.key if self.claimant is not None else None)
            work = [(row.id, row.attempts, row.chat_account_id, external_id, row.payload,
                     row.parts_sent) for row, external_id in claimed]
        if self._claim_trouble is not None:
            log.info("%s sender: the database is back; sending again", self.channel.name)
            self._claim_trouble = None
        self._paid_mode = any(_paid(item[4]) for item in work)
        for item in work:
            task = asyncio.create_task(self._send_one(*item))
            self._in_flight[task] = item[2]
            task.add_done_callback(self._sent)
        if rest_ends is not None:
            self._wake_in(rest_ends)
        return len(work)

    def _wake_in(self, seconds: float) -> None:
        """One timer for the earliest resting chat: its rows wait for nobody else's wake."""
        loop = asyncio.get_running_loop()
        at = loop.time() + seconds
        if self._rest_wake is not None and not self._rest_wake.cancelled() and (
                loop.time() < self._rest_wake_at <= at):
            return
        if self._rest_wake is not None:
            self._rest_wake.cancel()
        self._rest_wake, self._rest_wake_at = loop.call_at(at, self.wake), at

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._progress.set()

    async def _send_one(self, row_id: int, attempts: int, account_id: int, external_id: str,
                        payload: dict[str, object], parts_sent: int) -> None:
        try:
            await self.pace.wait_turn(account_id, _paid(payload))
            await self.channel.deliver(external_id, Outgoing.from_payload(payload),
                                       skip_parts=parts_sent)
        except DeliveryError as exc:
            exc.parts_sent = max(exc.parts_sent, parts_sent)
            await self._settle_failure(row_id, attempts, account_id, exc,
                                       progressed=exc.parts_sent > parts_sent)
            return
        except asyncio.CancelledError:
            raise  # stopping: the lease runs out and the row is sent again
        except Exception as exc:  # a channel bug must not stop the queue
            log.exception("delivery raised on %s row %s", self.channel.name, row_id)
            await self._settle_failure(row_id, attempts, account_id,
                                       DeliveryError(type(exc).__name__, parts_sent=parts_sent))
            return
        self._answered()
        metrics.sent(self.channel.name)
        self._to_mark.append(row_id)
        if self._marking is None:
            self._marking = asyncio.create_task(self._mark_sent())
        # Shielded: a send cancelled now must not cancel the marks of the others.
        await asyncio.shield(self._marking)

    async def _mark_sent(self) -> None:
        """Record the sent rows, in one transaction each time: rows that finish while one
        commits go in the next, so under load a commit settles many rows, not one.
        Sent but not recorded would send the row again when its lease runs out (a duplicate
        across a fault is the price of never losing one): _record holds on a while."""
        try:
            while self._to_mark:
                rows, self._to_mark = self._to_mark, []
                await self._record(f"{len(rows)} outbox rows as sent",
                                   functools.partial(outbox.mark_sent, row_ids=rows))
        finally:
            self._marking = None

    async def _record(self, what: str, write: Callable[[AsyncSession], Awaitable[None]]
                      ) -> None:
        """Commit a settling write, retrying while the database is away (restarting, locked);
        logs and gives up on any other error or after RECORD_RETRY_SECONDS."""
        deadline = time.monotonic() + RECORD_RETRY_SECONDS
        pause = 0.5
        while True:
            try:
                async with self.db.transaction(inline=True) as session:  # one UPDATE or two
                    await write(session)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = unavailable(exc)
                if reason is None or time.monotonic() + pause > deadline:
                    log.exception("could not record %s", what)
                    return
                log.warning("could not record %s yet: %s; retrying in %.1fs",
                            what, reason, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 8.0)

    def _answered(self) -> None:
        """The platform answered (a success, or an error it sent): it is reachable."""
        self._unanswered = 0
        if self._down_since is not None:
            log.warning("%s: API answering again after %.0fs unreachable; sending the queue",
                        self.channel.name, time.monotonic() - self._down_since)
            self._down_since, self._hold_until, self._probe_delay = None, 0.0, 0.0
            self.wake()

    def _unreachable(self, reason: str) -> float | None:
        """Notes a send that got no answer; the seconds until the channel's next try once
        the platform counts as away, else None (an isolated drop: the row's own backoff)."""
        self._unanswered += 1
        now = time.monotonic()
        if self._down_since is None:
            if self._unanswered < OUTAGE_AFTER:
                return None
            self._down_since = now
            log.warning("%s: API unreachable (%s); holding the queue and trying one message "
                        "every %.0fs at most until it answers",
                        self.channel.name, reason, PROBE_MAX_SECONDS)
        if now >= self._hold_until:  # the outage's first failure, or a probe failed
            self._probe_delay = min(PROBE_MAX_SECONDS, max(1.0, self._probe_delay * 2))
            self._hold_until = now + self._probe_delay
            log.info("%s: still unreachable after %.0fs; next try in %.0fs",
                     self.channel.name, now - self._down_since, self._probe_delay)
        return self._hold_until - now

    async def _settle_failure(self, row_id: int, attempts: int, account_id: int,
                              exc: DeliveryError, *, progressed: bool = False) -> None:
        """progressed: this try sent more parts of the message than the last one did, so it
        does not count against the row (a long message meeting a 429 part after part)."""
        metrics.send_failed(self.channel.name, exc)
        if exc.unreachable:
            outage_delay = self._unreachable(exc.reason)
        else:
            self._answered()
            outage_delay = None
        # Tries the platform never answered do not count: an outage fails no row for good.
        if exc.permanent or (attempts >= MAX_ATTEMPTS and not exc.unreachable):
            log.warning("outbox row %s on %s failed for good: %s",
                        row_id, self.channel.name, exc.reason)

            async def fail(session: AsyncSession) -> None:
                await outbox.mark_failed(session, row_id, exc.reason)
                if exc.blocked:
                    account = await session.get(ChatAccount, account_id)
                    if account is not None and account.blocked_at is None:
                        account.blocked_at = utcnow()

            await self._record(f"outbox row {row_id} as failed", fail)
            return
        if outage_delay is not None:
            delay = outage_delay  # the channel's hold; _answered() wakes the queue
            log.debug("outbox row %s on %s waits for the platform: %s",
                      row_id, self.channel.name, exc.reason)
        else:
            delay = backoff(attempts, exc.retry_after)
            # The chat's later rows wait behind this one (claim takes a chat's first row):
            # not looked at until it is due.
            self.pace.hold_chat(account_id, delay)
            # Look again when it is due, not at the next idle poll.
            asyncio.get_running_loop().call_later(delay, self.wake)
            log.info("outbox row %s on %s retry in %.1fs: %s",
                     row_id, self.channel.name, delay, exc.reason)
        due = utcnow() + timedelta(seconds=delay)
        await self._record(f"outbox row {row_id} for a retry", lambda session: outbox.mark_retry(
            session, row_id, due, exc.reason, parts_sent=exc.parts_sent,
            count_attempt=not (exc.unreachable or progressed)))
