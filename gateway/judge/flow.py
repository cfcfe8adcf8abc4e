"""The verdict of a flow: what a worker decides of each flow it claimed (gateway.engine.pipeline), and its record.

A flow is judged outside any transaction, so that a large batch never holds the database's write lock while it is
being validated: refused whole without reading it (it keeps failing, its size, its type), applied at once if it
is a status message (gateway.lifecycle.inbound), refused if its account may not deposit what it carries (screen),
else each document it carries checked (judge, gateway.judge.document). The verdict is then recorded in the batch's
transaction: the flow's refusal, or each invoice's verdict (gateway.judge.invoice: the platform controls and the
routing decision read the database), the invoices' entry into the lifecycle, and the deliveries of those
accepted, leased to the worker for a first attempt now. The flow's final state follows from it (final_state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlmodel import Session

from gateway.app import App
from gateway.data import events
from gateway.data.db import session_scope
from gateway.data.findings import Finding, any_fatal, dumps, loads
from gateway.data.models import Flow, FlowState, Invoice, Role, Verdict, utcnow
from gateway.engine import queue
from gateway.judge.controls import DuplicateKey, Ledger
from gateway.judge.document import file_refusal, judge_member, limits_of
from gateway.judge.invoice import deposit_day, judge_invoice
from gateway.lifecycle import inbound
from gateway.lifecycle import service as lifecycle
from gateway.lifecycle.notice import StatusMessageError
from gateway.ops import metrics
from gateway.validate import Checked
from gateway.validate.contents import ArchiveRefused, is_batch, kind_of, members
from gateway.validate.rules import RulesVerdict
from gateway.validate.safexml import RefusedXML, parse, root_tag

__all__ = ["REJECTED_WHOLE", "ROLE_REFUSED", "STATUSES", "Judged", "Judgement", "Work", "final_state", "integrate",
           "judge", "ledger", "record", "screen", "unjudged"]

STATUSES = "statuses"  # Flow.kind of a status message
ROLE_REFUSED = "FLOW-ROLE-REFUSED"
REJECTED_WHOLE = frozenset({"FLOW-DUPLICATE", ROLE_REFUSED})  # refusals that processing again would not change
# A document's name, its stored SHA-256, its verdicts: not its bytes, so a batch is never all in memory.
Judged = tuple[str, str, Checked, RulesVerdict | None]
Judgement = tuple[list[Finding] | None, list[Judged]]  # the flow's refusal, or its judged documents


@dataclass(eq=False)  # a work is itself: "in" asks for identity
class Work:
    """A flow claimed by a worker and what has been decided about it so far."""

    flow: Flow
    attempts: int
    owner: str
    role: Role | None  # its account's; None for an account removed since
    invoices: list[Invoice] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)  # leased to owner for an attempt now


def unjudged(work: Work) -> bool:
    return not work.invoices and not any_fatal(loads(work.flow.findings)) and work.flow.kind != STATUSES


def screen(app: App, work: Work) -> list[Finding] | Literal[True] | None:
    """What is decided of the flow before its documents are read, outside any transaction: its refusal (it keeps
    failing, its size, its type, its account's role), or True once applied as a status message (in a transaction
    of its own); None: its documents are to be judged (judge)."""
    refusal = _flow_refusal(app, work.flow, work.attempts)
    if refusal is None and _judge_status_flow(app, work):
        return True
    return refusal or _role_refusal(work, Role.SUPPLIER)


def judge(app: App, work: Work) -> Judgement:
    """Judge every document of a flow that screen let through, outside any transaction (a crash before the record
    judges it again); any number of threads at once, each waiting for a validator process."""
    flow = work.flow
    try:
        judged = _judge_documents(app, flow)
    except ArchiveRefused as exc:
        return [exc.finding], []
    if not is_batch(kind_of(flow.original_name)):  # a lone document that is not admissible refuses the flow itself
        return [f for f in judged[0][2].findings if f.stage == "admissibility"] or None, judged
    return None, judged


def ledger(session: Session, judgements: list[Judgement]) -> Ledger:
    """The invoices that the judgements' invoices are checked against, read in one query for the batch."""
    return Ledger(session, [checked.data for refusal, judged in judgements if not refusal
                            for _name, _sha256, checked, _rules in judged if checked.data is not None])


def record(app: App, session: Session, work: Work, refusal: list[Finding] | None, judged: list[Judged],
           ledger: Ledger) -> None:
    """Record the flow's refusal, or its invoices' verdicts, in the caller's transaction (then integrate, once the
    batch's rows are flushed, and make_deliveries)."""
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
    day, accepted_keys = deposit_day(app, flow), set[DuplicateKey]()
    for seq, (name, sha256, checked, rules) in enumerate(judged, start=1):
        work.invoices.append(judge_invoice(app, session, flow, seq, name, sha256, checked, rules, day, accepted_keys,
                                           ledger))


def integrate(app: App, session: Session, works: list[Work]) -> None:
    """The entry of the works' invoices, just recorded, into the lifecycle; their rows must be flushed first (the
    statuses' foreign keys)."""
    lifecycle.integrated(app, session, [invoice for work in works for invoice in work.invoices])


def make_deliveries(app: App, session: Session, works: list[Work]) -> None:
    """The deliveries of the invoices accepted in works, just recorded, each leased to its worker for a first attempt
    now: one statement for them all, in the caller's transaction; they become each work's deliveries."""
    lease = utcnow() + timedelta(seconds=app.settings.worker.lease_seconds)
    accepted = [(work, invoice) for work in works for invoice in work.invoices if invoice.verdict is Verdict.ACCEPTED]
    made = queue.add_invoice_deliveries(session, [_delivery_of(invoice, work.owner, lease)
                                                  for work, invoice in accepted])
    for work, invoice in accepted:
        work.deliveries.append(made[invoice.id])


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


def _delivery_of(invoice: Invoice, owner: str, lease_expires_at: datetime) -> dict[str, Any]:
    """The delivery of an accepted invoice, leased to the worker that judged it for a first attempt now."""
    suffix = ".pdf" if kind_of(invoice.name) == "pdf" else ".xml"
    return {"kind": "invoice", "invoice_id": invoice.id, "flow_id": invoice.flow_id, "destination": invoice.recipient,
            "file_name": f"{invoice.id}{suffix}", "sha256": invoice.sha256, "attempts": 1, "lease_owner": owner,
            "lease_expires_at": lease_expires_at}


def _judge_status_flow(app: App, work: Work) -> bool:
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


def _role_refusal(work: Work, role: Role) -> list[Finding] | None:
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
