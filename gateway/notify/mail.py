"""E-mail notifications: one short message per event, sent through the [smtp] server.

The message is made whole when the event is queued and kept in the content store, so every attempt sends
the same message (its Message-ID is the event's id: a mail client shows a repeated one once). A server
that refuses the address or the message for good (5xx) dead-letters it at once; anything else is retried.
"""

from __future__ import annotations

import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr

from gateway.config import SmtpSettings
from gateway.data.models import Subscription
from gateway.notify import FLOW_FINISHED
from gateway.route.channels import PermanentDeliveryError, TransientDeliveryError

_POLICY = SMTP.clone(cte_type="7bit")  # CRLF lines, headers folded and encoded: any server takes it


def message(sender: str, to: str, event: dict) -> bytes:
    """The message telling to of event (gateway.notify.outbox's JSON shape)."""
    subject, body = (_flow if event["type"] == FLOW_FINISHED else _status)(event["data"])
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = _line(subject)
    msg["Date"] = format_datetime(datetime.fromisoformat(event["time"]))
    msg["Message-ID"] = f"<{event['id']}@{parseaddr(sender)[1].rpartition('@')[2] or 'gateway'}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
    msg.set_content(f"{body}\n\nEvent {event['id']}\n", cte="quoted-printable")
    return msg.as_bytes()


def _line(text: object) -> str:
    """text on one line: what a document says never makes a header of its own."""
    return " ".join(str(text).split())


def _status(data: dict) -> tuple[str, str]:
    number = _line(data["number"] or data["invoice_id"])
    reason = ": ".join(_line(r) for r in (data["reason_code"], data["reason"]) if r) or "none given"
    return (f"Invoice {number}: {data['status']}",
            f"Invoice {number} ({data['invoice_id']}), from {data['supplier']} to {data['recipient']}\n"
            f"New status: {data['status']} ({data['status_code']})\n"
            f"Reason: {reason}\n"
            f"Set by {data['actor']} at {data['at']}")


def _flow(data: dict) -> tuple[str, str]:
    counts = data["counts"]
    lines = [f"Flow {_line(data['name'])} ({data['flow_id']}): {data['state']}",
             f"Invoices: {counts['invoices']}, accepted {counts['accepted']}, rejected {counts['rejected']}"]
    lines += [f"Flow refused: {', '.join(data['errors'])}"] if data["errors"] else []
    lines += [f"Rejected {_line(r['number'] or r['invoice_id'])}: {', '.join(r['rules'])}" for r in data["rejected"]]
    return f"Flow {_line(data['name'])}: {data['state']}", "\n".join(lines)


class MailChannel:
    """Delivery of a stored message to one e-mail subscription."""

    def __init__(self, subscription: Subscription, settings: SmtpSettings) -> None:
        self.subscription = subscription
        self.settings = settings

    def deliver(self, destination: str, file_name: str, content: bytes) -> str:
        s, to = self.settings, self.subscription.target
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout) as smtp:
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, s.password or "")
                smtp.sendmail(s.sender, [to], content)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients[to]
            raise _refused(code, f"mail server refused {to}: {code} {text.decode(errors='replace')}") from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise _refused(exc.smtp_code, f"mail server refused the message to {to}: {exc.smtp_code} "
                                          f"{_text(exc.smtp_error)}") from exc
        except (smtplib.SMTPException, OSError) as exc:  # unreachable, TLS, login: the operator may fix it
            raise TransientDeliveryError(f"mail server {s.host}:{s.port}: {type(exc).__name__}: {exc}") from exc
        return f"email:{to}"


def _text(answer: bytes | str) -> str:
    """A mail server's answer as text (smtplib keeps it as the bytes it read)."""
    return answer.decode(errors="replace") if isinstance(answer, bytes) else answer


def _refused(code: int, text: str) -> PermanentDeliveryError | TransientDeliveryError:
    return PermanentDeliveryError(text) if code >= 500 else TransientDeliveryError(text)
