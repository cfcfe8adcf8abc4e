"""Deliveries: each accepted invoice handed to its recipient, retried until delivered or dead-lettered.

A delivery row is created by the worker that judged the invoice, already leased to it, so that worker
makes the first attempt at once; any later attempt is made by whichever worker claims the row when it is
due. One attempt is one call to the recipient's channel; its outcome is recorded with its event.
"""

from __future__ import annotations

import random
from datetime import timedelta

import structlog
from sqlalchemy import update
from sqlalchemy.engine import Row
from sqlmodel import Session, select

from gateway.app import App
from gateway.data import events
from gateway.data.db import session_scope
from gateway.data.models import Delivery, DeliveryState, Invoice, utcnow
from gateway.data.store import StoreCorrupted
from gateway.engine import wakeups
from gateway.lifecycle import service as lifecycle
from gateway.notify import KINDS as NOTIFICATIONS
from gateway.notify.mail import MailChannel
from gateway.notify.webhook import WebhookChannel
from gateway.ops.diskfull import is_disk_full
from gateway.ops.log import log
from gateway.route.channels import DeliveryChannel, DeliveryError, PermanentDeliveryError, ZoneChannel
from gateway.route.sftp_push import SftpPushChannel


def channel_for(app: App, delivery: Delivery, endpoint: Row | None, subscription: Row | None) -> DeliveryChannel:
    """The channel that reaches an account: a notification goes to its subscription (webhook or e-mail; one
    removed meanwhile, whose id may be another's now, dead-letters it); a file to the account's own SFTP server
    if it has a push endpoint (for every file it receives, invoices and status-returns alike), else to its zone
    on this gateway."""
    if delivery.kind in NOTIFICATIONS:
        if subscription is None or (subscription.account, subscription.kind) != (delivery.destination, delivery.kind):
            raise PermanentDeliveryError(f"subscription {delivery.subscription_id} was removed")
        if subscription.kind == "webhook":
            return WebhookChannel(subscription, app.settings.notify)
        return MailChannel(subscription, app.settings.smtp)
    if endpoint is None:
        return ZoneChannel(app.zones)
    return SftpPushChannel(endpoint, app.remote)


def attempt(app: App, delivery_id: int) -> DeliveryState:
    """Try one delivery once and record the outcome; returns the delivery's new state."""
    tried = try_all(app, [delivery_id])
    with session_scope(app.engine) as session:
        return record_all(app, session, tried)[0]


Tried = list[tuple[Delivery, str | DeliveryError]]  # each delivery, and where its file went or why not


def try_all(app: App, delivery_ids: list[int]) -> Tried:
    """Try each delivery once, in order, recording nothing: record_all records the outcomes afterwards,
    in one transaction with whatever the caller adds to it.

    A crash before the outcomes are recorded only repeats the attempts: a delivery's file has a fixed name,
    so a second attempt replaces the file the first one made.
    """
    if not delivery_ids:
        return []
    deliveries, endpoints, subscriptions = _read(app, delivery_ids)
    return [(delivery, _try(app, delivery, endpoints.get(delivery.destination),
                            subscriptions.get(delivery.subscription_id))) for delivery in deliveries]


def record_all(app: App, session: Session, tried: Tried) -> list[DeliveryState]:
    """Record what try_all did in the caller's transaction; returns the deliveries' new states."""
    now = utcnow()
    done = [{"id": d.id, "state": DeliveryState.DELIVERED, "delivered_at": now, "where": where, "lease_owner": None,
             "lease_expires_at": None} for d, where in tried if not isinstance(where, DeliveryError)]
    if done:
        session.execute(update(Delivery), done)  # one statement for them all (executemany by primary key)
    states = [_failed(app, session, delivery, outcome) if isinstance(outcome, DeliveryError)
              else _delivered(session, delivery, outcome) for delivery, outcome in tried]
    lifecycle.delivered(app, session, [(session.get_one(Invoice, d.invoice_id), d.flow_id) for d, where in tried
                                       if d.kind == "invoice" and not isinstance(where, DeliveryError)])
    return states


def _read(app: App, delivery_ids: list[int]) -> tuple[list[Delivery], dict[str, Row | None], dict[int, Row | None]]:
    """The deliveries, in the order given, the push endpoints of their destinations and the subscriptions of
    the notifications among them (gateway.data.reference)."""
    with session_scope(app.engine, write=False) as session:
        found = {d.id: d for d in session.exec(select(Delivery).where(Delivery.id.in_(delivery_ids)))}
        deliveries = [found[delivery_id] for delivery_id in delivery_ids]
        endpoints = {account: app.reference.push_endpoint(session, account)
                     for account in {d.destination for d in deliveries}}
        subscriptions = {s: app.reference.subscription(session, s)
                         for s in {d.subscription_id for d in deliveries if d.subscription_id is not None}}
    return deliveries, endpoints, subscriptions


def _try(app: App, delivery: Delivery, endpoint: Row | None, subscription: Row | None) -> str | DeliveryError:
    """Where the delivery's file went, or why it did not."""
    with structlog.contextvars.bound_contextvars(flow_id=delivery.flow_id, invoice_id=delivery.invoice_id):
        try:
            content = app.store.verified(delivery.sha256)
        except StoreCorrupted as exc:  # never a silent send of bytes other than those judged and acknowledged
            log.error("store_integrity_alarm", delivery_id=delivery.id, sha256=delivery.sha256, error=str(exc))
            return PermanentDeliveryError(f"{exc}: not sent; an operator must look into the store")
        try:
            return channel_for(app, delivery, endpoint, subscription).deliver(delivery.destination,
                                                                              delivery.file_name, content)
        except DeliveryError as exc:
            return exc


def _delivered(session: Session, delivery: Delivery, where: str) -> DeliveryState:
    """What follows a delivery made (its row is updated by record_all, the status its invoice takes then by the
    lifecycle)."""
    events.record(session, delivery.flow_id, "delivered", invoice_id=delivery.invoice_id, what=delivery.kind,
                  recipient=delivery.destination, to=where, attempt=delivery.attempts)
    return DeliveryState.DELIVERED


def _failed(app: App, session: Session, delivery: Delivery, error: DeliveryError) -> DeliveryState:
    """Dead-letter the delivery, or schedule its next attempt; one that found the gateway's own disk full
    is tried again after retry_base, and that attempt is not counted: it is no fault of the recipient."""
    settings = app.settings.delivery
    no_room = is_disk_full(error)
    dead = isinstance(error, PermanentDeliveryError) or (delivery.attempts >= settings.max_attempts and not no_room)
    if no_room:
        app.disk.report("delivery", error, invoice_id=delivery.invoice_id, recipient=delivery.destination)
    stored = session.get_one(Delivery, delivery.id)
    stored.last_error = str(error)
    stored.lease_owner = stored.lease_expires_at = None
    if no_room:
        stored.attempts = delivery.attempts - 1
    if dead:
        stored.state = DeliveryState.DEAD
        events.record(session, delivery.flow_id, "delivery_dead", invoice_id=delivery.invoice_id,
                      recipient=delivery.destination, attempt=delivery.attempts, error=str(error))
    else:
        delay = settings.retry_base if no_room else _backoff(settings, delivery.attempts)
        stored.next_attempt_at = utcnow() + timedelta(seconds=delay)
        events.record(session, delivery.flow_id, "delivery_failed", invoice_id=delivery.invoice_id,
                      recipient=delivery.destination, attempt=delivery.attempts, error=str(error),
                      next_attempt_at=stored.next_attempt_at)
    return stored.state


def _backoff(settings, attempts: int) -> float:
    """Exponential, capped, with full jitter so that many failed deliveries do not retry in step."""
    return random.uniform(0.5, 1.0) * min(settings.retry_max, settings.retry_base * 2 ** (attempts - 1))



def retry(app: App, delivery_id: int) -> Delivery | None:
    """Requeue a delivery (a dead one, typically) for an attempt now, with a fresh count."""
    with session_scope(app.engine) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.state is DeliveryState.DELIVERED:
            return delivery
        delivery.state, delivery.attempts, delivery.next_attempt_at = DeliveryState.PENDING, 0, utcnow()
        delivery.lease_owner = delivery.lease_expires_at = None
        events.record(session, delivery.flow_id, "delivery_requeued", invoice_id=delivery.invoice_id,
                      recipient=delivery.destination)
        wakeups.at_commit(app, session)
    return delivery
