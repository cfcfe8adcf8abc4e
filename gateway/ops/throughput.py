"""Throughput: what the gateway has done lately, as an operator looks at it (the console's charts).

Flows received per minute over the last hour and per hour over the last week; invoices judged, accepted and
rejected, per hour over the last week; the rules that rejected most that week. The database counts, grouped
by a UTC time bucket written as text (strftime on SQLite, to_char on PostgreSQL): a busy hour is one row, not
one per flow. The rules are counted from the findings of the week's rejected invoices and flows (JSON text,
never queried inside), each rule once per invoice or flow it rejected.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from gateway.app import App
from gateway.data.db import session_scope
from gateway.data.findings import loads
from gateway.data.models import Flow, Invoice, Verdict, utcnow
from gateway.judge.flow import STATUSES  # a status flow's requests are not invoices

MINUTES, HOURS = 60, 7 * 24  # the buckets of each series, the last one the current minute or hour
TOP_RULES = 10
# A bucket's label: (strftime, as SQLite and Python write it; PostgreSQL's to_char for the same).
_MINUTE = ("%Y-%m-%dT%H:%M", 'YYYY-MM-DD"T"HH24:MI')
_HOUR = ("%Y-%m-%dT%H", 'YYYY-MM-DD"T"HH24')


def throughput(app: App, now: datetime | None = None) -> dict[str, Any]:
    """The figures of the throughput page at now (default: this instant), every time in UTC:
    flows_per_minute and flows_per_hour ({start, flows} for each bucket, oldest first), invoices_per_hour
    ({start, accepted, rejected}), invoices (the week's totals), rules ({rule, rejected}: the most frequent
    first)."""
    now = now or utcnow()
    minute = now.replace(second=0, microsecond=0) - timedelta(minutes=MINUTES - 1)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    engine = app.engine
    flows_minute = _counted(engine, _MINUTE, Flow.received_at, minute)
    flows_hour = _counted(engine, _HOUR, Flow.received_at, hour)
    judged = _counted(engine, _HOUR, Flow.finished_at, hour, verdicts=True)
    week = {verdict: sum(n for (_label, v), n in judged.items() if v == verdict) for verdict in Verdict}
    return {
        "flows_per_minute": [{"start": start, "flows": flows_minute.get(label, 0)}
                             for start, label in _buckets(minute, timedelta(minutes=1), MINUTES, _MINUTE)],
        "flows_per_hour": [{"start": start, "flows": flows_hour.get(label, 0)}
                           for start, label in _buckets(hour, timedelta(hours=1), HOURS, _HOUR)],
        "invoices_per_hour": [{"start": start, **{v.value: judged.get((label, v), 0) for v in Verdict}}
                              for start, label in _buckets(hour, timedelta(hours=1), HOURS, _HOUR)],
        "invoices": {verdict.value: count for verdict, count in week.items()},
        "rules": _rules(engine, hour),
    }


def _bucket(engine: Engine, formats: tuple[str, str], column: Any) -> Any:
    if engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), formats[1])
    return func.strftime(formats[0], column)  # SQLite keeps UTC times as ISO text


def _counted(engine: Engine, formats: tuple[str, str], column: Any, since: datetime,
             verdicts: bool = False) -> dict[Any, int]:
    """Flows counted by time bucket of column since since: {label: n}; or, with verdicts, their invoices
    counted by bucket and verdict: {(label, verdict): n}."""
    bucket = _bucket(engine, formats, column).label("bucket")
    by = [bucket, Invoice.verdict] if verdicts else [bucket]
    query = select(*by, func.count()).select_from(Flow)
    if verdicts:
        query = query.join(Invoice, Invoice.flow_id == Flow.id).where(Flow.kind != STATUSES)
    query = query.where(column >= since).group_by(*by)
    with session_scope(engine, write=False) as session:
        rows = session.execute(query).all()
    return {(tuple(row[:-1]) if verdicts else row[0]): row[-1] for row in rows}


def _buckets(first: datetime, step: timedelta, count: int,
             formats: tuple[str, str]) -> list[tuple[datetime, str]]:
    """Each bucket's start (aware, UTC) and label, oldest first."""
    starts = [(first + n * step).astimezone(UTC) for n in range(count)]
    return [(start, start.strftime(formats[0])) for start in starts]


def _rules(engine: Engine, since: datetime) -> list[dict[str, Any]]:
    """The rules that rejected most invoices and flows since since, counted as the metrics count them: the
    fatal findings of a flow refused whole, and of each invoice rejected."""
    counted: Counter[str] = Counter()
    invoices = (select(Invoice.findings).join(Flow, Flow.id == Invoice.flow_id)
                .where(Flow.finished_at >= since, Flow.kind != STATUSES, Invoice.verdict == Verdict.REJECTED))
    flows = select(Flow.findings).where(Flow.finished_at >= since, Flow.findings != "[]")
    with session_scope(engine, write=False) as session:
        for query in (invoices, flows):
            for (findings,) in session.execute(query.execution_options(yield_per=1000)):
                counted.update({f.rule for f in loads(findings) if f.fatal})
    return [{"rule": rule, "rejected": n} for rule, n in counted.most_common(TOP_RULES)]
