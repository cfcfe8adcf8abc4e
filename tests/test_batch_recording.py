"""A worker's batch recorded together (gateway.engine.pipeline), on SQLite and PostgreSQL: the invoices a batch
accepts are known to its later flows before anything is written (a number taken twice in one batch is a
duplicate, a credit note may correct an invoice of the same batch), the batch costs the database the same
statements whatever number of flows it holds, and a worker claims and judges its next batch while it finishes
one."""

from __future__ import annotations

from collections import Counter

from lxml import etree
from sqlalchemy import event

from gateway.app import App
from gateway.data.db import session_scope
from gateway.data.findings import loads
from gateway.data.models import Flow, Invoice
from gateway.data.reference import Reference
from gateway.engine.queue import new_owner
from gateway.engine.worker import Worker
from gateway.ingest.intake import Arrival, intake
from tests.harness import SAMPLES, renumber

INVOICE = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()  # from acme to the mairie
CREDIT_NOTE = (SAMPLES / "flows" / "ubl-creditnote-ok.xml").read_bytes()
UBL_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
UBL_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"


def _deposit(app: App, name: str, content: bytes) -> str:
    staged = app.settings.gateway.data_dir / "staged"
    staged.mkdir(exist_ok=True)
    path = staged / name
    path.write_bytes(content)
    return intake(app, path, Arrival("acme", name, "zone")).id


def _one_batch(app: App, flows: list[tuple[str, bytes]],
               seen: Counter[str] | None = None) -> list[tuple[str, list[str]]]:
    """The flows deposited by acme, then taken by a worker in one claim: each flow's state and its invoice's fatal
    rules; seen counts the statements the worker ran, by their first words."""
    ids = [_deposit(app, name, content) for name, content in flows]

    def count(conn, cursor, statement, parameters, context, executemany):
        if seen is not None:
            seen[" ".join(statement.split()[:3])] += 1

    event.listen(app.engine, "before_cursor_execute", count)
    try:
        assert Worker(app, new_owner()).run_once() == len(ids)  # one claim took them all
    finally:
        event.remove(app.engine, "before_cursor_execute", count)
    with session_scope(app.engine, write=False) as session:
        return [(session.get_one(Flow, flow_id).state.value,
                 [f.rule for f in loads(session.get_one(Invoice, f"{flow_id}-001").findings) if f.fatal])
                for flow_id in ids]


def _credit_note_of(number: str) -> bytes:
    """The sample credit note correcting invoice number, without that invoice's issue date (BT-26): only an invoice
    the gateway accepted may then be corrected."""
    root = etree.fromstring(CREDIT_NOTE)
    reference = root.find(f"{{{UBL_CAC}}}BillingReference/{{{UBL_CAC}}}InvoiceDocumentReference")
    reference.find(f"{{{UBL_CBC}}}ID").text = number
    reference.remove(reference.find(f"{{{UBL_CBC}}}IssueDate"))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_a_number_taken_twice_in_one_batch_is_a_duplicate(app, rules_stage):
    app.rules = rules_stage
    verdicts = _one_batch(app, [("a.xml", renumber(INVOICE, "BATCH-DUP-1")),
                                ("b.xml", renumber(INVOICE, "BATCH-DUP-2")),
                                ("c.xml", renumber(INVOICE, "BATCH-DUP-1") + b"<!-- another file -->")])
    assert verdicts == [("INTEGRE", []), ("INTEGRE", []), ("REJETE", ["B2G-DUPLICATE"])]


def test_a_credit_note_corrects_an_invoice_of_the_same_batch(app, rules_stage):
    app.rules = rules_stage
    verdicts = _one_batch(app, [("invoice.xml", renumber(INVOICE, "BATCH-CN-1")),
                                ("credit.xml", renumber(_credit_note_of("BATCH-CN-1"), "BATCH-CN-2")),
                                ("unknown.xml", renumber(_credit_note_of("BATCH-CN-9"), "BATCH-CN-3"))])
    assert verdicts == [("INTEGRE", []), ("INTEGRE", []), ("REJETE", ["B2G-CREDIT-NOTE-INVOICE-UNKNOWN"])]


def test_a_batch_costs_the_same_statements_whatever_its_flows(app, rules_stage):
    """One flow, two, then six: the worker runs the same statements for each batch (a statement that ran once a flow,
    or once an invoice, would make the second batch's count larger)."""
    app.rules = rules_stage
    app.reference = Reference(app.engine, horizon=3600.0)  # the counter read at each poll only, not as time passes
    counts: list[Counter[str]] = [Counter(), Counter(), Counter()]
    for size, prefix, seen in ((1, "STMT-W", counts[0]), (2, "STMT-A", counts[1]), (6, "STMT-B", counts[2])):
        verdicts = _one_batch(app, [(f"{prefix}-{n}.xml", renumber(INVOICE, f"{prefix}-{n}")) for n in range(size)],
                              seen)
        assert verdicts == [("INTEGRE", [])] * size
    assert counts[2] == counts[1]  # the first batch, counts[0], reads what is kept in memory afterwards


def test_a_worker_prepares_its_next_batch_while_it_finishes_one(app, rules_stage):
    """Batches of two, five flows: the first poll finishes two flows and has claimed the next two (leased to it,
    nothing of them recorded yet); the next polls finish them, then the last flow."""
    app.rules = rules_stage
    app.settings.worker.batch = 2
    ids = [_deposit(app, f"ahead-{n}.xml", renumber(INVOICE, f"AHEAD-{n}")) for n in range(5)]
    worker = Worker(app, new_owner())
    assert worker.run_once() == 2
    with session_scope(app.engine, write=False) as session:
        flows = [session.get_one(Flow, flow_id) for flow_id in ids]
        assert [f.state.value for f in flows] == ["INTEGRE", "INTEGRE", "RECU", "RECU", "RECU"]
        assert [f.lease_owner for f in flows] == [None, None, worker.owner, worker.owner, None]
        assert session.get(Invoice, f"{ids[2]}-001") is None
    assert [worker.run_once(), worker.run_once(), worker.run_once()] == [2, 1, 0]
    with session_scope(app.engine, write=False) as session:
        assert [session.get_one(Flow, flow_id).state.value for flow_id in ids] == ["INTEGRE"] * 5
