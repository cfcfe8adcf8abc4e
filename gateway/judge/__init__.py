"""Judged: what the gateway decides of a flow and of each invoice it carries, each rule a small function with its id.

    document.py  the verdict of a document: size and type, admissibility, XSD, business rules (gateway.validate)
    rule.py      a rule: a check marked with its rule id, run in order
    controls.py  the platform controls (B2G): who deposits, what the platform already holds
    routing.py   the routing decision: the buyer's structure in the directory and the account receiving for it
    invoice.py   the verdict of one invoice: its checks, then the controls and the routing decision
    flow.py      the verdict of a flow and its record: refusal, status message, invoices, lifecycle, deliveries

The worker's pipeline (gateway.engine.pipeline) calls flow.py's judge, record and final_state; `gateway validate`
document.py's functions. Nothing is imported here, so that reading one module loads no other.
"""
