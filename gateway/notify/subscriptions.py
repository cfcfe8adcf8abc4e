"""An account's subscriptions: what `gateway accounts notify` and the API's /subscriptions do.

A subscription is a webhook (an http(s) URL and the secret its requests are signed with) or an e-mail
address, and the events it receives (gateway.notify.EVENTS, all by default). Every check is made before
anything is written; a refusal is a SubscriptionError naming what is wrong (WebhookRefused: a target on a
loopback, link-local or private address). A webhook's secret, made by the gateway unless given, is shown
once, when it is made; listings never show it.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace as copy

from sqlmodel import Session, select

from gateway.access.accounts import AccountError, require
from gateway.app import App
from gateway.data import events
from gateway.data.db import session_scope
from gateway.data.models import Delivery, DeliveryState, Subscription
from gateway.notify import EVENTS, KINDS, ssrf, webhook
from gateway.ops.log import log

MAX_PER_ACCOUNT = 20
_SECRET = re.compile(r"[\x21-\x7e]{16,200}")  # printable ASCII, no spaces
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+")


class SubscriptionError(AccountError):
    """A subscription that cannot be made."""


class WebhookRefused(SubscriptionError):
    """A webhook whose target is not a public address (server-side request forgery)."""


@dataclass(frozen=True)
class Wanted:
    """A subscription asked for: kind webhook (target a URL, secret optional) or email (target an address)."""

    kind: str
    target: str
    secret: str | None = None
    events: Sequence[str] | None = None  # None: every event


def add(app: App, account: str, wanted: Wanted) -> dict:
    """Add one subscription to the account's; returns it, with the secret if the gateway made one."""
    wanted = _checked(app, wanted)
    with session_scope(app.engine) as session:
        require(session, account)
        rows = session.exec(select(Subscription).where(Subscription.account == account)).all()
        same = next((row for row in rows if (row.kind, row.target) == (wanted.kind, wanted.target)), None)
        if same is not None:
            raise SubscriptionError(f"{account} already has subscription {same.id} to {wanted.target}: "
                                    "remove it first", f"--{wanted.kind}")
        if len(rows) >= MAX_PER_ACCOUNT:
            raise SubscriptionError(f"{account} has {len(rows)} subscriptions, the most an account may have")
        row, made = _new(account, wanted)
        session.add(row)
        session.flush()
        shown = _dict(row, made)
    log.info("subscription_added", account=account, subscription=row.id, channel=row.kind, events=shown["events"])
    return shown


def replace(app: App, account: str, wanted: list[Wanted]) -> list[dict]:
    """Make the account's subscriptions exactly wanted; returns them, with the secrets the gateway made.

    One already there (same kind and target) is kept, with its id, its pending notifications and, unless
    another is given, its secret: sending the same list again changes nothing."""
    wanted = [_checked(app, w) for w in wanted]
    keys = [(w.kind, w.target) for w in wanted]
    doubled = next((key for n, key in enumerate(keys) if key in keys[:n]), None)
    if doubled:
        raise SubscriptionError(f"{doubled[1]} is given twice")
    if len(wanted) > MAX_PER_ACCOUNT:
        raise SubscriptionError(f"{len(wanted)} subscriptions: an account may have {MAX_PER_ACCOUNT} at most")
    with session_scope(app.engine) as session:
        require(session, account)
        existing = {(row.kind, row.target): row for row in
                    session.exec(select(Subscription).where(Subscription.account == account)).all()}
        kept = []
        for w in wanted:
            row, made = existing.pop((w.kind, w.target), None), None
            if row is None:
                row, made = _new(account, w)
            else:
                row.events, row.secret = json.dumps(list(_events(w.events))), w.secret or row.secret
            session.add(row)
            kept.append((row, made))
        for row in existing.values():
            _delete(session, row)
        session.flush()
        shown = [_dict(row, made) for row, made in kept]
    log.info("subscriptions_replaced", account=account, subscriptions=[s["id"] for s in shown],
             removed=sorted(row.id for row in existing.values()))
    return shown


def listing(app: App, account: str) -> list[dict]:
    """The account's subscriptions, oldest first, without their secrets."""
    with session_scope(app.engine, write=False) as session:
        require(session, account)
        rows = session.exec(select(Subscription).where(Subscription.account == account)
                            .order_by(Subscription.id)).all()
    return [_dict(row) for row in rows]


def remove(app: App, account: str, subscription_id: int) -> None:
    """Remove one of the account's subscriptions."""
    with session_scope(app.engine) as session:
        require(session, account)
        row = session.get(Subscription, subscription_id)
        if row is None or row.account != account:
            raise SubscriptionError(f"{account} has no subscription {subscription_id}", "--remove")
        _delete(session, row)
    log.info("subscription_removed", account=account, subscription=subscription_id)


def _delete(session: Session, row: Subscription) -> None:
    """Remove a subscription; its notifications not yet delivered go dead at once, as its id may be given to
    another (SQLite reuses the highest)."""
    for delivery in session.exec(select(Delivery).where(Delivery.subscription_id == row.id,
                                                        Delivery.state == DeliveryState.PENDING)).all():
        delivery.state, delivery.last_error = DeliveryState.DEAD, f"subscription {row.id} was removed"
        delivery.lease_owner = delivery.lease_expires_at = None
        events.record(session, delivery.flow_id, "delivery_dead", invoice_id=delivery.invoice_id,
                      recipient=delivery.destination, attempt=delivery.attempts, error=delivery.last_error)
    session.delete(row)


def _checked(app: App, wanted: Wanted) -> Wanted:
    """wanted with its events listed, or SubscriptionError."""
    if wanted.kind not in KINDS:
        raise SubscriptionError(f"kind {wanted.kind!r}: a subscription is a {' or an '.join(KINDS)}")
    option = f"--{wanted.kind}"
    if wanted.kind == "webhook":
        try:
            webhook.target(wanted.target, app.settings.notify.allow_private)
        except ssrf.TargetRefused as exc:
            raise WebhookRefused(f"webhook {wanted.target} refused: {exc}", option) from exc
        except (ValueError, ssrf.Unresolved) as exc:
            raise SubscriptionError(f"webhook {wanted.target!r} refused: {exc}", option) from exc
        if wanted.secret is not None and not _SECRET.fullmatch(wanted.secret):
            raise SubscriptionError("a secret is 16 to 200 printable ASCII characters, without spaces", "--secret")
    else:
        if not (len(wanted.target) <= 254 and _ADDRESS.fullmatch(wanted.target)):
            raise SubscriptionError(f"{wanted.target!r} is not an e-mail address", option)
        if wanted.secret is not None:
            raise SubscriptionError("an e-mail subscription has no secret", "--secret")
    return copy(wanted, events=_events(wanted.events))


def _events(names: Sequence[str] | None) -> tuple[str, ...]:
    if names is None:
        return EVENTS
    unknown = sorted(set(names) - set(EVENTS))
    if unknown or not names:
        raise SubscriptionError(f"{', '.join(unknown) or 'none given'}: the events are {', '.join(EVENTS)}",
                                "--events")
    return tuple(e for e in EVENTS if e in names)


def _new(account: str, wanted: Wanted) -> tuple[Subscription, str | None]:
    """A new subscription row, and the secret the gateway made for it (None if given, or an e-mail)."""
    made = "whsec_" + secrets.token_urlsafe(32) if wanted.kind == "webhook" and not wanted.secret else None
    return Subscription(account=account, kind=wanted.kind, target=wanted.target, secret=wanted.secret or made,
                        events=json.dumps(list(_events(wanted.events)))), made


def _dict(row: Subscription, made: str | None = None) -> dict:
    data = {"id": row.id, "account": row.account, "kind": row.kind, "target": row.target,
            "events": json.loads(row.events), "created_at": row.created_at}
    return {**data, "secret": made} if made else data
