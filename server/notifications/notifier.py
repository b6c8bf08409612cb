"""Notifications: the right people told once, through Apprise channels configured per site.

The notifier is wiring. It subscribes to the domain events (an alert raised, acknowledged
or resolved; a work order opened), picks the audience (routing.py) and the words
(render.py), and queues the messages for the delivery worker (dispatch.py, on the thread
of delivery.py), which claims each one in the log once, asks the policy (policy.py)
whether to hold it for a digest, and sends. `tick()` queues what time has made due:
escalation steps, reminders, digests and retry rounds.

Acknowledgement and resolution go to every channel that was told about the alert. Work
orders go to maintenance; gateway and other system alerts go to maintenance.
"""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.site import SiteConfig
from server.events.bus import EventBus
from server.events.types import (
    AlertAcknowledged,
    AlertRaised,
    AlertResolved,
    AlertSnapshot,
    PatrolRoundMissed,
    WorkOrderOpened,
    WorkOrderOverdue,
)
from server.notifications import log_store, policy, subjects
from server.notifications.delivery import (
    Counters,
    Send,
    Sender,
    Sleep,
    Ticker,
    Worker,
    apprise_send,
)
from server.notifications.dispatch import Digest, Dispatcher, FollowUp, Job, Message, Retry
from server.notifications.render import (
    alert_text,
    escalation_note,
    overdue_text,
    patrol_text,
    work_order_text,
)
from server.notifications.routing import NotifyRoles, Routing


class Notifier:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        site: SiteConfig,
        notify_roles: NotifyRoles,
        clock: Clock,
        registry: CollectorRegistry,
        *,
        send: Send = apprise_send,
        sleep: Sleep = time.sleep,
    ) -> None:
        """`notify_roles(device_id, rule)`: the roles a device rule notifies (None: not a
        device rule); `send` and `sleep` are Apprise and time.sleep unless tests say."""
        self.sessions = sessions
        self.config = site.notifications
        self.site_name = site.name
        self.clock = clock
        self.routing = Routing(self.config, notify_roles, site.role_book)
        self.counters = Counters(registry)
        # Expands every channel's secrets once: a missing one stops start-up, naming it.
        self.sender = Sender(self.config.channels, self.counters, send, sleep)
        self.sender.mask_secrets()
        self.dispatcher = Dispatcher(
            sessions, self.config, site.name, self.sender, self.counters, clock
        )
        self._worker: Worker[Job] = Worker(self.dispatcher.handle)
        self._ticker: Ticker | None = None

    # -- wiring ----------------------------------------------------------------------------
    def subscribe(self, bus: EventBus) -> None:
        """Listen to the events that notify. The handlers run in the publisher's thread
        after its commit, and only queue work."""
        bus.subscribe(AlertRaised, self.on_alert_raised, name="notifier.alert_raised")
        bus.subscribe(AlertAcknowledged, self.on_alert_acknowledged, name="notifier.alert_ack")
        bus.subscribe(AlertResolved, self.on_alert_resolved, name="notifier.alert_resolved")
        bus.subscribe(WorkOrderOpened, self.on_work_order_opened, name="notifier.wo_opened")
        bus.subscribe(WorkOrderOverdue, self.on_work_order_overdue, name="notifier.wo_overdue")
        bus.subscribe(PatrolRoundMissed, self.on_patrol_missed, name="notifier.patrol_missed")

    def start(self, tick_seconds: float | None = None) -> None:
        """The delivery worker, and (with `tick_seconds`) a thread running `tick()`."""
        if not self.config.channels:
            return
        self._worker.start()
        if tick_seconds and self._ticker is None:
            self._ticker = Ticker(self.tick, tick_seconds)
            self._ticker.start()

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self._worker.stop()
        self.sender.unmask_secrets()

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything queued so far was handled (tests, shutdown)."""
        self._worker.drain(timeout)

    # -- events (publisher's thread: decide and queue, never send) -------------------------
    def on_alert_raised(self, event: AlertRaised) -> None:
        if self.config.channels:
            self._tell(event.alert, "raised", self.routing.roles(event.alert))

    def on_alert_acknowledged(self, event: AlertAcknowledged) -> None:
        self._follow_up(event.alert, "acknowledged")

    def on_alert_resolved(self, event: AlertResolved) -> None:
        self._follow_up(event.alert, "resolved")

    def on_work_order_opened(self, event: WorkOrderOpened) -> None:
        order = event.order
        text = work_order_text(self.site_name, order)
        subject = subjects.work_order_subject(order.id)
        for ch in self.routing.work_order_channels(order):
            self._worker.put(Message(subject, "opened", ch, text))

    def on_work_order_overdue(self, event: WorkOrderOverdue) -> None:
        """Once per order (it is marked when the event is made) and per channel (the log)."""
        order = event.order
        text = overdue_text(self.site_name, order)
        subject = subjects.work_order_subject(order.id)
        for ch in self.routing.overdue_channels(order):
            self._worker.put(Message(subject, "overdue", ch, text))

    def on_patrol_missed(self, event: PatrolRoundMissed) -> None:
        """A missed or incomplete round, to the route's roles for its building, once."""
        text = patrol_text(self.site_name, event)
        subject = subjects.patrol_subject(event.round_id)
        for ch in self.routing.channels(event.notify, event.building, "warning"):
            self._worker.put(Message(subject, event.status, ch, text))

    def _tell(self, alert: AlertSnapshot, event: str, roles: tuple[str, ...]) -> None:
        for msg in self._alert_messages(alert, event, roles):
            self._worker.put(msg)

    def _alert_messages(
        self, alert: AlertSnapshot, event: str, roles: tuple[str, ...]
    ) -> list[Message]:
        text = alert_text(self.site_name, alert, event)
        subject, key = subjects.alert_subject(alert.id), subjects.flap_key(alert)
        return [
            Message(subject, event, ch, text, key)
            for ch in self.routing.alert_channels(alert, roles)
        ]

    def _follow_up(self, alert: AlertSnapshot, event: str) -> None:
        if self.config.channels:
            text = alert_text(self.site_name, alert, event)
            subject = subjects.alert_subject(alert.id)
            self._worker.put(FollowUp(subject, event, text, subjects.flap_key(alert)))

    # -- escalation, reminders, digests, retries (time-driven) -----------------------------
    def tick(self, now: datetime | None = None) -> None:
        """Decide what time has made due and queue it; the worker sends."""
        if not self.config.channels:
            return
        now = now or self.clock.now()
        jobs: list[Job] = []
        with self.sessions.begin() as s:
            for alert, escalated in subjects.active_alerts(s):
                jobs += self._unacknowledged(s, alert, escalated, now)
            jobs += [Retry(row_id) for row_id in log_store.take_due_retries(s, now)]
            for channel in log_store.channels_holding(s):
                last, oldest = log_store.digest_times(s, channel)
                every = self.config.digest_every
                if policy.digest_due(last_digest=last, oldest_held=oldest, now=now, every=every):
                    jobs.append(Digest(channel))
        for job in jobs:
            self._worker.put(job)

    def _unacknowledged(
        self, s: Session, alert: AlertSnapshot, escalated: int, now: datetime
    ) -> list[Job]:
        """Escalation steps (recorded in the alert's history) and the reminder now due."""
        esc = self.config.escalation
        subject = subjects.alert_subject(alert.id)
        logged = log_store.subject_log(s, subject)
        since = policy.unacknowledged_since(
            alert.raised_at, [at for _, event, at in logged if event == "raised"]
        )
        age = now - since
        jobs: list[Job] = []
        for step in policy.escalations_due(
            age=age,
            after=policy.escalation_after(esc.after, alert.severity),
            chain=self.routing.chain(alert),
            done=escalated,
        ):
            msgs = self._alert_messages(alert, f"escalated-{step.step}", (step.role,))
            note = escalation_note(step.step, step.waited, step.role, told=bool(msgs))
            subjects.record_escalation(s, alert.id, at=now, comment=note)
            jobs += msgs
        n = policy.reminder_due(age=age, every=esc.remind_every, max_reminders=esc.max_reminders)
        if n is not None:
            event = f"reminder-{n}"
            text = alert_text(self.site_name, alert, event)
            targets = policy.reminder_channels({(ch, ev) for ch, ev, _ in logged}, event)
            jobs += [
                Message(subject, event, self.routing.by_id[ch], text, subjects.flap_key(alert))
                for ch in targets
                if ch in self.routing.by_id  # a channel since removed from the site file
            ]
        return jobs
