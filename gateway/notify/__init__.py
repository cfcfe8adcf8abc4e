"""Notifications: an account's subscriptions (webhooks, e-mail addresses) told of its flows' outcomes and of
its invoices' status changes.

An event is queued as one delivery per subscription in the transaction that makes it (gateway.notify.outbox),
and handed over by the delivery queue like any file (gateway.notify.webhook, gateway.notify.mail): retried with
backoff, dead-lettered, never lost across a crash, at least once (a receiver deduplicates by the event id).
"""

from __future__ import annotations

FLOW_FINISHED = "flow.finished"
INVOICE_STATUS = "invoice.status"
EVENTS = (FLOW_FINISHED, INVOICE_STATUS)
KINDS = ("webhook", "email")  # Delivery.kind and Subscription.kind of a notification
