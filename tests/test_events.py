"""Events and the log (gateway.data.events): every event in the database; in the log at the default level, one line per
step of a flow, and a delivery's failure on its own; each event's line at debug level; all of it once the
transaction commits, and nothing of a transaction rolled back."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from sqlmodel import select

from gateway.data import events
from gateway.data.db import session_scope
from gateway.data.models import Event
from gateway.ops.log import configure_logging


@pytest.fixture
def logged(tmp_path):
    """configure(level): the gateway's logging to a file at level; lines(): the file's JSON lines. The logging
    configured before is restored after."""
    saved, handlers = structlog.get_config(), logging.getLogger().handlers[:]
    file = tmp_path / "gateway.log"

    def lines() -> list[dict]:
        return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []

    yield (lambda level: configure_logging(level, file)), lines
    structlog.configure(**saved)
    logging.getLogger().handlers[:] = handlers


def judged(app, *, fail: bool = False) -> None:
    """A worker's judgement step for flow F1 of account acme: two events, then the step's line."""
    with session_scope(app.engine) as session, structlog.contextvars.bound_contextvars(account="acme"):
        events.record(session, "F1", "xsd_checked", invoice_id="I1", valid=True)
        events.record(session, "F1", "routed", invoice_id="I1", recipient="city")
        events.step(session, "F1", "flow_judged", invoices=1, accepted=1)
        if fail:
            raise RuntimeError("the transaction fails")


def kinds(app) -> list[str]:
    with session_scope(app.engine, write=False) as session:
        return list(session.exec(select(Event.kind).where(Event.flow_id == "F1").order_by(Event.id)))


def test_at_the_default_level_a_step_is_one_line_and_every_event_is_in_the_database(app, logged):
    configure, lines = logged
    configure("info")
    judged(app)
    assert [(line["event"], line["level"], line["flow_id"], line["account"], line["invoices"], line["accepted"])
            for line in lines()] == [("flow_judged", "info", "F1", "acme", 1, 1)]
    assert kinds(app) == ["xsd_checked", "routed"]


def test_at_debug_level_each_event_has_its_line_before_the_steps(app, logged):
    configure, lines = logged
    configure("debug")
    judged(app)
    assert [(line["event"], line["level"], line.get("invoice_id"), line["account"]) for line in lines()] == [
        ("xsd_checked", "debug", "I1", "acme"), ("routed", "debug", "I1", "acme"),
        ("flow_judged", "info", None, "acme")]
    assert lines()[1]["recipient"] == "city" and "by" in lines()[1]


def test_a_delivery_failure_keeps_its_own_line_at_the_default_level(app, logged):
    configure, lines = logged
    configure("info")
    with session_scope(app.engine) as session:
        events.record(session, "F1", "delivery_failed", invoice_id="I1", error="refused")
        events.record(session, "F1", "delivered", invoice_id="I1")
    assert [(line["event"], line["level"], line["error"]) for line in lines()] == [
        ("delivery_failed", "info", "refused")]


def test_lines_follow_the_commit_and_a_transaction_rolled_back_logs_and_records_nothing(app, logged):
    configure, lines = logged
    configure("debug")
    with session_scope(app.engine) as session:
        events.step(session, "F1", "flow_judged")
        session.flush()
        assert lines() == []  # not before the commit
    assert [line["event"] for line in lines()] == ["flow_judged"]
    with pytest.raises(RuntimeError):
        judged(app, fail=True)
    assert [line["event"] for line in lines()] == ["flow_judged"] and kinds(app) == []
