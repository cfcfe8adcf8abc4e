"""The flow state machine: what a worker does with a flow it has claimed.

Every step is idempotent and recorded, so a flow taken again after a crash resumes where the
previous worker stopped: acknowledge (if intake could not), judge each invoice (once: the invoice
rows are the proof), deliver what is accepted and not yet delivered, write the integration report,
and set the final state. The report and deliveries have fixed names, so repeating a step replaces
a file instead of adding one.
"""

from __future__ import annotations

import structlog
from sqlmodel import Session, select

from gateway import events
from gateway.app import App
from gateway.db import session_scope
from gateway.findings import Finding, any_fatal, dumps, loads
from gateway.ingest.intake import acknowledge
from gateway.models import Delivery, DeliveryState, Flow, FlowState, Invoice, Verdict, utcnow
from gateway.returns import build_report
from gateway.route import route
from gateway.route.channels import ZoneChannel
from gateway.validate import Checked, Limits, check_document, size_refusal


def process(app: App, flow_id: str, attempts: int = 1) -> FlowState:
    """Bring a claimed flow to its final state; returns that state."""
    with structlog.contextvars.bound_contextvars(flow_id=flow_id):
        flow = _load(app, flow_id)
        structlog.contextvars.bind_contextvars(account=flow.account)
        if not flow.acknowledged:
            acknowledge(app, flow)
        if attempts > app.settings.worker.max_attempts:
            _fail(app, flow, attempts)
        invoices = _invoices(app, flow)
        _deliver_pending(app, flow)
        return _finish(app, flow, invoices)


def _load(app: App, flow_id: str) -> Flow:
    with session_scope(app.engine) as session:
        return session.get(Flow, flow_id)


def _fail(app: App, flow: Flow, attempts: int) -> None:
    """A flow that keeps failing is ended as INCIDENTE rather than retried forever."""
    finding = Finding(stage="flow", rule="FLOW-PROCESSING-FAILED",
                      message=f"Processing failed {attempts - 1} times; the operator has been alerted. "
                              "Send the flow again or contact support.")
    _set_flow_findings(app, flow, loads(flow.findings) + [finding])


def _set_flow_findings(app: App, flow: Flow, findings: list[Finding]) -> None:
    flow.findings = dumps(findings)
    with session_scope(app.engine) as session:
        stored = session.get(Flow, flow.id)
        stored.findings, stored.syntax = flow.findings, flow.syntax
        for f in findings:
            events.record(session, flow.id, "flow_check_failed", stage=f.stage, rule=f.rule, message=f.message)


def _invoices(app: App, flow: Flow) -> list[Invoice]:
    """The flow's judged invoices, judging them now if no earlier attempt did."""
    with session_scope(app.engine) as session:
        done = session.exec(select(Invoice).where(Invoice.flow_id == flow.id).order_by(Invoice.seq)).all()
    if done or any_fatal(loads(flow.findings)):
        return list(done)
    limits = Limits(max_bytes=app.settings.ingest.max_flow_bytes)
    too_large = size_refusal(flow.size, limits)
    if too_large is not None:  # decided from the size alone: the file is never read
        _set_flow_findings(app, flow, [too_large])
        return []
    checked = check_document(app.store.get(flow.sha256), limits)
    flow.syntax = checked.syntax
    admissibility = [f for f in checked.findings if f.stage == "admissibility"]
    if admissibility:
        _set_flow_findings(app, flow, admissibility)
        return []
    with session_scope(app.engine) as session:
        session.get(Flow, flow.id).syntax = checked.syntax
        events.record(session, flow.id, "syntax_detected", syntax=checked.syntax)
        invoice = _judge(session, flow, seq=1, name=flow.original_name, sha256=flow.sha256, checked=checked)
    return [invoice]


def _judge(session: Session, flow: Flow, seq: int, name: str, sha256: str, checked: Checked) -> Invoice:
    """Record one invoice's verdict: its checks, then routing if it passed them."""
    data = checked.data
    invoice = Invoice(id=f"{flow.id}-{seq:03d}", flow_id=flow.id, seq=seq, name=name, sha256=sha256,
                      verdict=Verdict.REJECTED, **(_data_fields(data) if data else {}))
    findings = list(checked.findings)
    events.record(session, flow.id, "xsd_checked", invoice_id=invoice.id, syntax=checked.syntax,
                  valid=checked.valid, rules=sorted({f.rule for f in findings}))
    if checked.valid:
        decision = route(session, data)
        findings += decision.findings
        invoice.recipient = decision.recipient
        events.record(session, flow.id, "routed" if decision.recipient and not decision.findings else "route_refused",
                      invoice_id=invoice.id, buyer_siret=data.buyer_siret, recipient=decision.recipient,
                      rules=[f.rule for f in decision.findings])
    if not any_fatal(findings) and invoice.recipient:
        invoice.verdict = Verdict.ACCEPTED
    invoice.findings = dumps(findings)
    session.add(invoice)
    session.flush()
    if invoice.verdict is Verdict.ACCEPTED:
        session.add(Delivery(invoice_id=invoice.id, destination=invoice.recipient,
                             file_name=f"{invoice.id}.xml"))
    events.record(session, flow.id, f"invoice_{invoice.verdict.value}", invoice_id=invoice.id,
                  number=invoice.number, rules=[f.rule for f in findings if f.fatal])
    return invoice


def _data_fields(data) -> dict:
    return {k: getattr(data, k) for k in ("syntax", "number", "issue_date", "type_code", "seller_siret",
                                          "buyer_siret", "service_code", "engagement", "total", "currency")}


def _deliver_pending(app: App, flow: Flow) -> None:
    channel = ZoneChannel(app.zones)
    with session_scope(app.engine) as session:
        pending = session.exec(
            select(Delivery, Invoice).join(Invoice, Delivery.invoice_id == Invoice.id)
            .where(Invoice.flow_id == flow.id, Delivery.state == DeliveryState.PENDING)
        ).all()
    for delivery, invoice in pending:
        where = channel.deliver(delivery.destination, delivery.file_name, app.store.get(invoice.sha256))
        with session_scope(app.engine) as session:
            stored = session.get(Delivery, delivery.id)
            stored.state, stored.attempts, stored.delivered_at = DeliveryState.DELIVERED, stored.attempts + 1, utcnow()
            events.record(session, flow.id, "delivered", invoice_id=invoice.id,
                          recipient=delivery.destination, to=where)


def final_state(flow_findings: list[Finding], invoices: list[Invoice]) -> FlowState:
    """INCIDENTE when the flow itself could not be processed, else by its invoices' verdicts."""
    if any(f.rule == "FLOW-DUPLICATE" for f in flow_findings):
        return FlowState.REJETE
    if any_fatal(flow_findings) or not invoices:
        return FlowState.INCIDENTE
    accepted = sum(inv.verdict is Verdict.ACCEPTED for inv in invoices)
    if accepted == len(invoices):
        return FlowState.INTEGRE
    return FlowState.INTEGRE_PARTIEL if accepted else FlowState.REJETE


def _finish(app: App, flow: Flow, invoices: list[Invoice]) -> FlowState:
    state = final_state(loads(flow.findings), invoices)
    flow.state, processed_at = state, utcnow()
    app.emit(flow.account, f"{flow.id}.report.xml", build_report(flow, invoices, processed_at))
    with session_scope(app.engine) as session:
        stored = session.get(Flow, flow.id)
        stored.state, stored.reported, stored.finished_at = state, True, processed_at
        stored.lease_owner = stored.lease_expires_at = None
        events.record(session, flow.id, "report_written", name=f"{flow.id}.report.xml")
        events.record(session, flow.id, "flow_finished", state=state.value,
                      invoices=len(invoices), accepted=sum(i.verdict is Verdict.ACCEPTED for i in invoices))
    return state
