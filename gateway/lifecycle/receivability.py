"""A flow's own lifecycle in the reform's terms: 500 Recevable, or 501 Irrecevable with its IRR_* reasons.

It is told as a CDAR to an account whose status-returns are CDAR (the other formats have no such message: the
acknowledgement and the report say the same), beside its acknowledgement and report, delivered like its
other status-returns. It is decided once the flow is judged, before its report is written: 501 when the
flow itself was refused for its admissibility (the file empty, too large, not of its type, unreadable,
badly named: the reform's IRR_* reasons), 500 for any other flow, whatever became of its invoices (each is
told by its own 213 or statuses). A flow refused for another reason (a duplicate, the wrong role, processing
that kept failing) was received and readable: 500, and its report says why nothing came of it.
"""

from __future__ import annotations

from sqlmodel import Session, select

from gateway.app import App
from gateway.data import events
from gateway.data.findings import Finding, loads
from gateway.data.models import Delivery, Flow, StatusFormat, utcnow
from gateway.lifecycle.cdar import build_flow_cdar
from gateway.lifecycle.cdar_reasons import BY_STATUS
from gateway.lifecycle.notice import IRRECEVABLE, FlowNotice
from gateway.lifecycle.service import account_siren, queue_return, status_format

SUFFIX = ".lifecycle.cdar.xml"
# The gateway's flow refusals that the reform tells by another IRR_* code, the nearest BR-FR-CDV allows with
# 501 (its list lacks IRR_EXTRAC, the reform's code for an archive that cannot be extracted).
_IRR_OF = {"IRR_ARCHIVE_F": "IRR_SYNTAX", "FLOW-NAME-INVALID": "IRR_NOM_F", "FX-NO-XML": "IRR_TYPE_F",
           "FX-NOT-CII": "IRR_TYPE_F"}


def told(session: Session, flow_ids: list[str]) -> set[str]:
    """Of flow_ids, the flows whose 500 or 501 is queued already: taken again after a crash (one query for a
    batch)."""
    return set(session.exec(select(Delivery.flow_id).where(
        Delivery.flow_id.in_(flow_ids), Delivery.file_name.in_([f"{flow_id}{SUFFIX}" for flow_id in flow_ids]))))


def tell(app: App, session: Session, flow: Flow, already: set[str]) -> None:
    """Queue the flow's 500 or 501 for its account if it reads CDAR, once: unless the flow is among those already
    told (told())."""
    if flow.id in already or status_format(app, session, flow.account) is not StatusFormat.CDAR:
        return
    name = f"{flow.id}{SUFFIX}"
    reasons = irrecevable(loads(flow.findings))
    notice = FlowNotice(message_id=f"{flow.id}-lifecycle", flow_id=flow.id, original_name=flow.original_name,
                        received_at=flow.received_at, at=utcnow(), reasons=tuple(reasons), supplier=flow.account,
                        supplier_siren=account_siren(app, session, flow.account),
                        platform_siren=app.settings.gateway.platform_siren,
                        platform_matricule=app.settings.gateway.platform_matricule)
    queue_return(app, session, flow, name, build_flow_cdar(notice))
    events.record(session, flow.id, "flow_lifecycle_told", code=notice.cdar_code,
                  reasons=[code for code, _text in reasons])


def irrecevable(findings: list[Finding]) -> list[tuple[str, str]]:
    """The IRR_* code and a text for each fatal finding that refused the flow for its admissibility; the
    gateway's own rule, where the reform names it otherwise, heads the text."""
    reasons = []
    for finding in findings:
        own = finding.rule in BY_STATUS[IRRECEVABLE]
        code = finding.rule if own else _IRR_OF.get(finding.rule)
        if finding.fatal and code:
            reasons.append((code, finding.message if own else f"{finding.rule}: {finding.message}"))
    return reasons
