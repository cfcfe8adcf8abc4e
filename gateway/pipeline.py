"""The flow state machine: what a worker does with the flows it has claimed (a batch: gateway.worker).

Every step is idempotent and recorded, so a flow taken again after a crash resumes where the previous worker
stopped: acknowledge (if intake could not), judge the invoices (once: the invoice rows are the proof), make
a first attempt at the invoices' deliveries that judgement created, then at the status-returns queued
meanwhile (with, for an account reading CDAR, the flow's own 500 Recevable or 501 Irrecevable, queued once the
flow is judged: gateway.lifecycle.receivability), write the integration report last and record the final
state at once (with the status-returns' outcomes): the supplier's report closes the flow. Deliveries and the
report have fixed names, so repeating a step replaces a file instead of adding one. A delivery that fails is
retried by the delivery queue (gateway.route.delivery); the flow does not wait for it. Notifications
(gateway.notify) are queued with the statuses and the final state, and left to the delivery workers: a slow
receiver holds up no flow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlmodel import Session, select
from stdnum.fr import siret as siret_number

from gateway import events, faults, metrics, queue, store, tables
from gateway.app import App
from gateway.db import session_scope
from gateway.findings import Finding, any_fatal, dumps, loads
from gateway.lifecycle import inbound, receivability
from gateway.lifecycle import service as lifecycle
from gateway.lifecycle.notice import StatusMessageError
from gateway.lifecycle.statuses import Status
from gateway.models import (
    Delivery,
    DeliveryState,
    Flow,
    FlowState,
    Invoice,
    Role,
    Verdict,
    utcnow,
)
from gateway.notify import outbox as notifications
from gateway.returns import build_report
from gateway.returns.acknowledge import acknowledge_all
from gateway.route import delivery, route
from gateway.route.controls import Deposit, DuplicateKey, check_deposit, duplicate_key
from gateway.validate import Checked
from gateway.validate.contents import ArchiveRefused, is_batch, kind_of, members
from gateway.validate.extract import InvoiceData
from gateway.validate.judge import file_refusal, judge_member, limits_of
from gateway.validate.rules import RulesVerdict
from gateway.validate.safexml import RefusedXML, parse, root_tag

STATUSES = "statuses"  # Flow.kind of a status message
ROLE_REFUSED = "FLOW-ROLE-REFUSED"
REJECTED_WHOLE = frozenset({"FLOW-DUPLICATE", ROLE_REFUSED})  # refusals that processing again would not change
# A document's name, its stored SHA-256, its verdicts: not its bytes, so a batch is never all in memory.
Judged = tuple[str, str, Checked, RulesVerdict | None]


@dataclass(eq=False)  # a work is itself: "in" asks for identity
class _Work:
    """A flow and what has been decided about it so far."""

    flow: Flow
    attempts: int
    owner: str
    role: Role | None  # its account's; None for an account removed since
    invoices: list[Invoice] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)  # leased to owner for an attempt now


def process(app: App, claimed: list[tuple[str, int]], owner: str) -> dict[str, FlowState]:
    """Bring the flows claimed by owner ((id, attempts) in claim order) to their final states; returns them.

    A batch costs each step one transaction, not one a flow: its flows are judged one by one (their documents
    outside any transaction), then their verdicts recorded together, their deliveries tried, then recorded
    together with the status-returns they queued, and last their reports, all recorded in one transaction.
    Every step is idempotent per flow, so a batch taken again (a crash, a full disk) resumes each of its flows
    where it stopped, and a failing batch is taken again flow by flow (gateway.worker). A flow no longer leased
    to owner, or already finished, is left out, when loaded and in each step's transaction (_hold). The files
    of each step are fsynced one by one, their folders once each at the step's end, before the commit that
    records them (store.synced_dirs).
    """
    works = _load(app, dict(claimed), owner)
    unacknowledged = [work.flow for work in works if not work.flow.acknowledged]
    if unacknowledged:  # intake died, or found no room to write them
        acknowledge_all(app, unacknowledged)
    judged = [(work, judgement) for work in works if _unjudged(work)
              if (judgement := _judgement(app, work)) is not None]  # None: a status flow, applied
    if judged:
        with session_scope(app.engine) as session, store.synced_dirs():  # the files' names before the commit
            works = _hold(session, works, owner)
            for work, judgement in judged:
                if work in works:
                    with _about(work):
                        _record_judgement(app, session, work, *judgement)
        faults.point("batch_judged")
    with store.synced_dirs():
        tried = delivery.try_all(app, [d for work in works for d in work.deliveries])
    with session_scope(app.engine) as session, store.synced_dirs():
        works = _hold(session, works, owner)
        delivery.record_all(app, session, tried)
        for work in works:
            with _about(work):
                receivability.tell(app, session, work.flow)  # the flow is judged: its 500 or 501
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


def _about(work: _Work):
    """The log context of what is done for work's flow."""
    return structlog.contextvars.bound_contextvars(flow_id=work.flow.id, account=work.flow.account)


def _hold(session: Session, works: list[_Work], owner: str) -> list[_Work]:
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


def _load(app: App, attempts: dict[str, int], owner: str) -> list[_Work]:
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
    works = {flow.id: _Work(flow, attempts[flow.id], owner, roles.get(flow.account)) for flow in flows}
    for invoice in invoices:
        works[invoice.flow_id].invoices.append(invoice)
    for flow_id, delivery_id in held:
        works[flow_id].deliveries.append(delivery_id)
    for work in works.values():
        if work.flow.kind == STATUSES:  # its report lists the requests it carried, shaped as invoices
            work.invoices = [outcome.as_invoice(work.flow.id) for outcome in inbound.outcomes_from(work.flow.outcomes)]
    return [works[flow_id] for flow_id in attempts if flow_id in works]


def _unjudged(work: _Work) -> bool:
    return not work.invoices and not any_fatal(loads(work.flow.findings)) and work.flow.kind != STATUSES


Judgement = tuple[list[Finding] | None, list[Judged]]  # the flow's refusal, or its judged documents


def _judgement(app: App, work: _Work) -> Judgement | None:
    """Judge every document of the flow, outside any transaction, so that a large batch never holds the
    database's write lock while it is being validated (a crash before the record judges it again); None for a
    status message, applied at once in a transaction of its own."""
    with _about(work):
        flow = work.flow
        refusal = _flow_refusal(app, flow, work.attempts)
        judged: list[Judged] = []
        if refusal is None and _judge_status_flow(app, work):
            return None
        if refusal is None:
            refusal = _role_refusal(work, Role.SUPPLIER)
        if refusal is None:
            try:
                judged = _judge_documents(app, flow)
            except ArchiveRefused as exc:
                refusal = [exc.finding]
        if refusal is None and not is_batch(kind_of(flow.original_name)):
            # a lone document that is not admissible refuses the flow itself
            refusal = [f for f in judged[0][2].findings if f.stage == "admissibility"] or None
        return refusal, judged


def _record_judgement(app: App, session: Session, work: _Work, refusal: list[Finding] | None,
                      judged: list[Judged]) -> None:
    """Record the flow's refusal, or its invoices' verdicts and deliveries, in the caller's transaction."""
    flow = work.flow
    stored = session.get_one(Flow, flow.id)
    if refusal:
        flow.findings = stored.findings = dumps(loads(flow.findings) + refusal)
        for f in refusal:
            events.record(session, flow.id, "flow_refused", stage=f.stage, rule=f.rule, message=f.message)
        return
    batch = is_batch(kind_of(flow.original_name))
    flow.syntax = stored.syntax = kind_of(flow.original_name) if batch else judged[0][2].syntax
    events.record(session, flow.id, "syntax_detected", syntax=flow.syntax, documents=len(judged))
    day, accepted_keys = _deposit_day(app, flow), set[DuplicateKey]()
    for seq, (name, sha256, checked, rules) in enumerate(judged, start=1):
        invoice = _judge(app, session, flow, seq, name, sha256, checked, rules, day, accepted_keys)
        work.invoices.append(invoice)
    session.flush()  # invoice rows before their deliveries' foreign keys
    for invoice in work.invoices:
        _enter_lifecycle(app, session, invoice)
    lease = utcnow() + timedelta(seconds=app.settings.worker.lease_seconds)
    created = [_delivery_of(invoice, work.owner, lease) for invoice in work.invoices
               if invoice.verdict is Verdict.ACCEPTED]
    session.add_all(created)
    session.flush()
    work.deliveries = [d.id for d in created]


def _enter_lifecycle(app: App, session: Session, invoice: Invoice) -> None:
    """DEPOSEE for an accepted invoice, COMPLETEE for the suspended invoice a document completes, and the
    platform's rejection (213) told to the supplier for a rejected one."""
    if invoice.verdict is not Verdict.ACCEPTED:
        lifecycle.notify_rejection(app, session, invoice)
    elif invoice.completes:
        lifecycle.set_status(app, session, session.get(Invoice, invoice.completes), Status.COMPLETEE, "gateway",
                             source=invoice.flow_id)
    else:
        lifecycle.deposit(app, session, invoice, source=invoice.flow_id)


def _delivery_of(invoice: Invoice, owner: str, lease_expires_at) -> Delivery:
    """The delivery of an accepted invoice, leased to the worker that judged it for a first attempt now."""
    suffix = ".pdf" if kind_of(invoice.name) == "pdf" else ".xml"
    return Delivery(invoice_id=invoice.id, flow_id=invoice.flow_id, destination=invoice.recipient,
                    file_name=f"{invoice.id}{suffix}", sha256=invoice.sha256, attempts=1,
                    lease_owner=owner, lease_expires_at=lease_expires_at)


def _deposit_day(app: App, flow: Flow) -> date:
    """The day of deposit where the platform runs (an invoice dated today, Paris time, is not future)."""
    received = flow.received_at if flow.received_at.tzinfo else flow.received_at.replace(tzinfo=UTC)
    return received.astimezone(ZoneInfo(app.settings.gateway.timezone)).date()


def _judge_status_flow(app: App, work: _Work) -> bool:
    """Apply the flow as a status message if it is one (a lone XML document with a status root); a CDAR is
    first judged by the reform's XSD and rules where installed, and refused whole by their fatal findings."""
    flow = work.flow
    if kind_of(flow.original_name) != "xml":
        return False
    content = app.store.get(flow.sha256)
    syntax = inbound.status_syntax(root_tag(content))
    if syntax is None:
        return False
    findings, requests = _role_refusal(work, Role.RECIPIENT) or [], []
    try:
        if not findings:
            root = parse(content)
            if syntax == inbound.CDAR and app.rules is not None:
                findings = app.rules.check_cdar(root, content)
            requests = [] if any_fatal(findings) else inbound.requests_of(root)
    except (RefusedXML, StatusMessageError) as exc:
        findings = [Finding(stage=inbound.STAGE, rule="STATUS-MESSAGE-INVALID", message=str(exc))]
    with session_scope(app.engine) as session:
        stored = session.get_one(Flow, flow.id)
        flow.kind = stored.kind = STATUSES
        flow.syntax = stored.syntax = syntax
        events.record(session, flow.id, "syntax_detected", syntax=syntax, requests=len(requests))
        if findings:
            flow.findings = stored.findings = dumps(findings)
        for refusal in (f for f in findings if f.fatal):
            events.record(session, flow.id, "flow_refused", stage=refusal.stage, rule=refusal.rule,
                          message=refusal.message)
        outcomes = inbound.apply(app, session, flow, requests)
        flow.outcomes = stored.outcomes = inbound.outcomes_json(outcomes)
    work.invoices = [outcome.as_invoice(flow.id) for outcome in outcomes]
    return True


def _role_refusal(work: _Work, role: Role) -> list[Finding] | None:
    """FLOW-ROLE-REFUSED unless the flow's account has the role that deposits what it carries: invoices come from
    suppliers, status messages from recipients (whatever the channel: all of them lead here)."""
    if work.role is None or work.role is role:
        return None
    carried = "invoices" if role is Role.SUPPLIER else "status messages"
    return [Finding(stage="flow", rule=ROLE_REFUSED,
                    message=f"Account {work.flow.account!r} is a {work.role.value} account: it may not deposit "
                            f"{carried}. Invoices are deposited by supplier accounts, status messages (CDAR, "
                            "statusUpdate) by the recipient accounts of the invoices they answer.")]


def _judge_documents(app: App, flow: Flow) -> list[Judged]:
    """Check each document the flow carries; archive members are kept in the store for delivery."""
    limits, archive_limits = limits_of(app.settings.ingest)
    batch = is_batch(kind_of(flow.original_name))
    judged = []
    for member in members(app.store.path(flow.sha256), flow.original_name, archive_limits):
        sha256 = app.store.put(member.content) if batch else flow.sha256
        with metrics.validating():
            checked, rules = judge_member(member, limits, app.rules)
        judged.append((member.name, sha256, checked, rules))
    return judged


def _flow_refusal(app: App, flow: Flow, attempts: int) -> list[Finding] | None:
    """Refusals decided without reading the content: a flow that keeps failing, too large, of a wrong type."""
    if attempts > app.settings.worker.max_attempts:  # ended as INCIDENTE rather than retried forever
        return [Finding(stage="flow", rule="FLOW-PROCESSING-FAILED",
                        message=f"Processing failed {attempts - 1} times; the operator has been alerted. "
                                "Send the flow again or contact support.")]
    refusal = file_refusal(flow.original_name, flow.size, app.settings.ingest)
    return None if refusal is None else [refusal]


def _judge(app: App, session: Session, flow: Flow, seq: int, name: str, sha256: str, checked: Checked,
           rules: RulesVerdict | None, day: date, accepted_keys: set[DuplicateKey]) -> Invoice:
    """Record one invoice's verdict: its checks, then routing and platform controls if it passed them.

    accepted_keys holds the duplicate keys of the invoices accepted earlier in the same flow.
    """
    data = checked.data
    invoice = Invoice(id=f"{flow.id}-{seq:03d}", flow_id=flow.id, account=flow.account, seq=seq, name=name,
                      sha256=sha256, verdict=Verdict.REJECTED, **(_data_fields(data) if data else {}))
    findings = list(checked.findings)
    events.record(session, flow.id, "xsd_checked", invoice_id=invoice.id, syntax=checked.syntax,
                  valid=checked.valid, rules=sorted({f.rule for f in findings}))
    if rules is not None:  # the business rules: only their fatal findings reject, warnings are reported
        findings += rules.findings
        invoice.packs = json.dumps([vars(pack) for pack in rules.packs])
        events.record(session, flow.id, "rules_checked", invoice_id=invoice.id, valid=rules.valid,
                      **rules.describe())
    if rules is not None and rules.valid and data is not None:
        deposit = Deposit(session, data, flow.account, day, accepted_keys, app.reference)
        controls = check_deposit(deposit)
        decision = route(session, data, reference=app.reference)
        findings += controls + decision.findings
        invoice.recipient = decision.recipient
        events.record(session, flow.id, "controls_checked", invoice_id=invoice.id,
                      rules=[f.rule for f in controls])
        events.record(session, flow.id, "routed" if decision.accepted else "route_refused",
                      invoice_id=invoice.id, buyer_siret=data.buyer_siret, recipient=decision.recipient,
                      rules=[f.rule for f in decision.findings])
        if not any_fatal(findings) and invoice.recipient:
            invoice.verdict = Verdict.ACCEPTED
            invoice.completes = deposit.completes.id if deposit.completes else None
            accepted_keys.add(duplicate_key(data))
    invoice.findings = dumps(findings)
    session.add(invoice)
    events.record(session, flow.id, f"invoice_{invoice.verdict.value}", invoice_id=invoice.id,
                  number=invoice.number, rules=[f.rule for f in findings if f.fatal])
    return invoice


# What an invoice row keeps of the extracted data: the invoice table's columns that InvoiceData has (its fields,
# and the amount it reads from the total), so that a field is declared in the table and in the extraction only.
_KEPT = [column.key for column in tables.invoice.columns
         if column.key in {item.name for item in dataclass_fields(InvoiceData)} or column.key == "amount"]


def _data_fields(data: InvoiceData) -> dict:
    kept = {key: getattr(data, key) for key in _KEPT}
    for key in ("seller_siret", "buyer_siret"):  # kept compact: the duplicate key compares them
        kept[key] = siret_number.compact(kept[key] or "") or None
    return kept


def final_state(flow_findings: list[Finding], invoices: list[Invoice]) -> FlowState:
    """INCIDENTE when the flow itself could not be processed, else by its invoices' verdicts."""
    if any(f.rule in REJECTED_WHOLE for f in flow_findings):
        return FlowState.REJETE
    if any_fatal(flow_findings) or not invoices:
        return FlowState.INCIDENTE
    accepted = sum(inv.verdict is Verdict.ACCEPTED for inv in invoices)
    if accepted == len(invoices):
        return FlowState.INTEGRE
    return FlowState.INTEGRE_PARTIEL if accepted else FlowState.REJETE


def _count_rejections(work: _Work) -> None:
    """Count the fatal rules of a flow refused whole, or of each invoice it rejected, once its final state is
    committed: a flow taken again after a crash is counted once."""
    metrics.rejected(f.rule for f in loads(work.flow.findings) if f.fatal)
    if work.flow.kind != STATUSES:  # a status message's requests are not invoices
        for invoice in work.invoices:
            if invoice.verdict is Verdict.REJECTED:
                metrics.rejected(f.rule for f in loads(invoice.findings) if f.fatal)


def _write_report(app: App, work: _Work) -> Callable[[Session], None]:
    """Write the report; returns what records it, with the final state, in the caller's transaction."""
    flow, invoices = work.flow, work.invoices
    state = final_state(loads(flow.findings), invoices)
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
    return record
