"""The flow state machine: what a worker does with the flows it has claimed (a batch: gateway.engine.worker).

It orchestrates; what is decided of a flow is gateway.judge's. Every step is idempotent and recorded, so a flow
taken again after a crash resumes where the previous worker stopped: acknowledge (if intake could not), judge
the flow and record its verdict (gateway.judge.flow; once: the invoice rows are the proof), make a first attempt
at the invoices' deliveries that judgement created, then at the status-returns queued meanwhile (with, for an
account reading CDAR, the flow's own 500 Recevable or 501 Irrecevable, queued once the flow is judged:
gateway.lifecycle.receivability), write the integration report last and record the final state at once (with
the status-returns' outcomes): the supplier's report closes the flow. Deliveries and the report have fixed
names, so repeating a step replaces a file instead of adding one. A delivery that fails is retried by the
delivery queue (gateway.route.delivery); the flow does not wait for it. Notifications (gateway.notify) are
queued with the statuses and the final state, and left to the delivery workers: a slow receiver holds up no
flow.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import structlog
from sqlmodel import Session, select

from gateway.app import App
from gateway.data import deferred, events, store
from gateway.data.db import session_scope
from gateway.data.findings import Finding, loads
from gateway.data.models import (
    Delivery,
    DeliveryState,
    Flow,
    FlowState,
    Invoice,
    Verdict,
    utcnow,
)
from gateway.engine import faults, queue
from gateway.judge import flow as judging
from gateway.judge.flow import STATUSES, Judgement, Work
from gateway.lifecycle import inbound, receivability
from gateway.notify import outbox as notifications
from gateway.ops import metrics
from gateway.returns import build_report
from gateway.returns.acknowledge import acknowledge_all
from gateway.route import delivery
from gateway.route.channels import DeliveryError

Prepared = tuple[list[Work], list[tuple[Work, Judgement]]]  # a batch's flows, and the judgements to record


def prepare(app: App, claimed: list[tuple[str, int]], owner: str) -> Prepared:
    """The first steps of the flows claimed by owner ((id, attempts) in claim order), which leave nothing for the
    batch's transactions to undo: its flows loaded, acknowledged if intake could not, and judged (their documents
    outside any transaction, by the validators together). A worker prepares its next batch while it finishes one
    (gateway.engine.worker)."""
    works = _load(app, dict(claimed), owner)
    unacknowledged = [work.flow for work in works if not work.flow.acknowledged]
    if unacknowledged:  # intake died, or found no room to write them
        acknowledge_all(app, unacknowledged)
    return works, _judge_all(app, [work for work in works if judging.unjudged(work)])


def finish(app: App, prepared: Prepared, owner: str) -> dict[str, FlowState]:
    """Bring a prepared batch's flows to their final states; returns them.

    A batch costs each step one transaction, not one a flow: its verdicts recorded together, its deliveries tried,
    then recorded together with the status-returns they queued, and last its reports, all recorded in one
    transaction. Every step is idempotent per flow, so a batch taken again (a crash, a full disk) resumes each of its
    flows where it stopped, and a failing batch is taken again flow by flow (gateway.engine.worker). A flow no longer
    leased to owner, or already finished, is left out, when loaded and in each step's transaction (_hold). The files
    of each step are fsynced together and named at the step's end, then their folders once each, before the commit
    that records them (store.synced_dirs).
    """
    works, judged = prepared
    if judged:
        with session_scope(app.engine) as session, store.synced_dirs():  # the files' names before the commit
            works = _hold(session, works, owner)
            recorded = [(work, judgement) for work, judgement in judged if work in works]
            ledger = judging.ledger(session, [judgement for _work, judgement in recorded])
            for work, judgement in recorded:
                with _about(work):
                    judging.record(app, session, work, *judgement, ledger)
                    _judged(session, work, judgement[0])
            session.flush()  # the batch's rows together, before the foreign keys of their statuses
            judging.integrate(app, session, [work for work, _verdict in recorded])
            judging.make_deliveries(app, session, [work for work, _judgement in recorded])
        faults.point("batch_judged")
    with store.synced_dirs():
        tried = delivery.try_all(app, [d for work in works for d in work.deliveries])
    with session_scope(app.engine) as session, store.synced_dirs():
        works = _hold(session, works, owner)
        delivery.record_all(app, session, tried)
        told = receivability.told(session, [work.flow.id for work in works])
        for work in works:
            with _about(work):
                receivability.tell(app, session, work.flow, told)  # the flow is judged: its 500 or 501
                _delivered(session, work, tried)
        deferred.write(session)  # the status-returns queued, to lease them now
        returns = queue.lease_deliveries(session, owner, app.settings.worker.lease_seconds,
                                         [work.flow.id for work in works])
    with store.synced_dirs():
        tried = delivery.try_all(app, returns)  # the status-returns that judgement and deliveries queued
        record_reports = {work.flow.id: _write_report(app, work) for work in works}
    faults.point("batch_reports_written")
    with session_scope(app.engine) as session, store.synced_dirs():
        works = _hold(session, works, owner)
        delivery.record_all(app, session, tried)
        for work in works:
            with _about(work):
                record_reports[work.flow.id](session)
    for work in works:
        _count_rejections(work)
    return {work.flow.id: work.flow.state for work in works}


def _about(work: Work):
    """The log context of what is done for work's flow."""
    return structlog.contextvars.bound_contextvars(flow_id=work.flow.id, account=work.flow.account)


def _hold(session: Session, works: list[Work], owner: str) -> list[Work]:
    """Of works, those whose flows are still leased to owner and unfinished, their rows locked until the commit (FOR
    UPDATE on PostgreSQL; on SQLite the write transaction holds the database): a flow whose lease expired
    meanwhile and that another worker took is left to it, which records it once.

    The flows and their invoices are read into the transaction at once and held for its life: a session's
    identity map keeps an object only while something refers to it, so that each session.get of them (the
    lifecycle's, the notifications') would read its row again."""
    flows = session.exec(select(Flow).where(Flow.id.in_([work.flow.id for work in works]), Flow.lease_owner == owner,
                                            Flow.state == FlowState.RECU).with_for_update()).all()
    kept = {flow.id for flow in flows}
    session.info["held"] = [*flows, *session.exec(select(Invoice).where(Invoice.flow_id.in_(kept)))]
    return [work for work in works if work.flow.id in kept]


def _load(app: App, attempts: dict[str, int], owner: str) -> list[Work]:
    """The flows still leased to owner and still to finish, in the order given, with their invoices so far and
    the attempts at their deliveries that this process began but could not record (no room in the database):
    made again now, for the heartbeat would hold their leases for ever."""
    with session_scope(app.engine, write=False) as session:
        flows = session.exec(select(Flow).where(Flow.id.in_(attempts), Flow.lease_owner == owner,
                                                Flow.state == FlowState.RECU)).all()
        ids = [flow.id for flow in flows]
        invoices = session.exec(select(Invoice).where(Invoice.flow_id.in_(ids)).order_by(Invoice.seq)).all()
        held = session.exec(select(Delivery.flow_id, Delivery.id).where(
            Delivery.flow_id.in_(ids), Delivery.lease_owner == owner, Delivery.state == DeliveryState.PENDING,
            Delivery.kind.in_(queue.FLOW_KINDS)).order_by(Delivery.id)).all()
        accounts = {name: app.reference.account(session, name) for name in {flow.account for flow in flows}}
        roles = {name: account.role for name, account in accounts.items() if account is not None}
    works = {flow.id: Work(flow, attempts[flow.id], owner, roles.get(flow.account)) for flow in flows}
    for invoice in invoices:
        works[invoice.flow_id].invoices.append(invoice)
    for flow_id, delivery_id in held:
        works[flow_id].deliveries.append(delivery_id)
    for work in works.values():
        if work.flow.kind == STATUSES:  # its report lists the requests it carried, shaped as invoices
            work.invoices = [outcome.as_invoice(work.flow.id) for outcome in inbound.outcomes_from(work.flow.outcomes)]
    return [works[flow_id] for flow_id in attempts if flow_id in works]


def _judge_all(app: App, works: list[Work]) -> list[tuple[Work, Judgement]]:
    """The judgements of works' flows, in their order (gateway.judge.flow): each screened in turn (a recipient's
    status messages are applied in the order it sent them), then the documents of those let through judged by as
    many threads as there are validator processes, so that the validators judge the batch's flows together."""
    screened: dict[Work, Judgement | None] = {}
    for work in works:
        with _about(work):
            refusal = judging.screen(app, work)
        if refusal is not True:  # True: a status message, applied
            screened[work] = (refusal, []) if refusal else None
    unread = [work for work, judgement in screened.items() if judgement is None]
    threads = min(len(unread), app.rules.pool.processes if app.rules else 1)
    if threads > 1:
        with ThreadPoolExecutor(threads, thread_name_prefix="judge") as pool:
            screened.update(zip(unread, pool.map(lambda work: _judgement(app, work), unread), strict=True))
    else:
        screened.update((work, _judgement(app, work)) for work in unread)
    return [(work, judgement) for work, judgement in screened.items() if judgement is not None]


def _judgement(app: App, work: Work) -> Judgement:
    """The judgement of the flow's documents, in its log context."""
    with _about(work):
        return judging.judge(app, work)


def _judged(session: Session, work: Work, refusal: list[Finding] | None) -> None:
    """The judgement's line in the log, when its transaction commits."""
    if refusal:
        events.step(session, work.flow.id, "flow_judged", refused=sorted({f.rule for f in refusal}))
    else:
        events.step(session, work.flow.id, "flow_judged", syntax=work.flow.syntax, invoices=len(work.invoices),
                    accepted=sum(i.verdict is Verdict.ACCEPTED for i in work.invoices))


def _delivered(session: Session, work: Work, tried: delivery.Tried) -> None:
    """The first attempt at the flow's deliveries, its line in the log when its transaction commits."""
    outcomes = [where for d, where in tried if d.flow_id == work.flow.id]
    failed = sum(isinstance(where, DeliveryError) for where in outcomes)
    events.step(session, work.flow.id, "flow_delivered", delivered=len(outcomes) - failed, failed=failed)


def _count_rejections(work: Work) -> None:
    """Count the fatal rules of a flow refused whole, or of each invoice it rejected, once its final state is
    committed: a flow taken again after a crash is counted once."""
    metrics.rejected(f.rule for f in loads(work.flow.findings) if f.fatal)
    if work.flow.kind != STATUSES:  # a status message's requests are not invoices
        for invoice in work.invoices:
            if invoice.verdict is Verdict.REJECTED:
                metrics.rejected(f.rule for f in loads(invoice.findings) if f.fatal)


def _write_report(app: App, work: Work) -> Callable[[Session], None]:
    """Write the report; returns what records it, with the final state, in the caller's transaction."""
    flow, invoices = work.flow, work.invoices
    state = judging.final_state(loads(flow.findings), invoices)
    flow.state, processed_at = state, utcnow()
    report_name = f"{flow.id}.report.xml"
    digest = app.emit(flow.account, report_name, build_report(flow, invoices, processed_at))

    def record(session: Session) -> None:
        stored = session.get_one(Flow, flow.id)
        stored.state, stored.reported, stored.finished_at = state, True, processed_at
        stored.lease_owner = stored.lease_expires_at = None
        events.record(session, flow.id, "report_written", name=report_name, sha256=digest)
        events.record(session, flow.id, "flow_finished", state=state.value, invoices=len(invoices),
                      accepted=sum(i.verdict is Verdict.ACCEPTED for i in invoices))
        notifications.flow_finished(app, session, flow, invoices, processed_at)
        events.step(session, flow.id, "flow_reported", state=state.value, invoices=len(invoices))
    return record
