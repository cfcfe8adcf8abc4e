"""The database tables, in SQLAlchemy Core: the one statement of the schema.

One module holds every table so that the schema reads in one place; gateway.data.models maps its ORM classes onto
these tables, and the migrations are checked against them (tests/test_migrations.py). A command that only reads
(`gateway flows list`, `gateway queue`) reads these tables and never imports the ORM.

Timestamps are UTC. Lists of findings are kept as JSON text: they are written once, read whole, and never
queried inside. A column is NOT NULL unless it may hold None.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    Interval,
    MetaData,
    String,
    Table,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.engine import Dialect


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A time read back from the database as an aware UTC time (SQLite gives back naive ones, all in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Role(StrEnum):
    SUPPLIER = "supplier"
    RECIPIENT = "recipient"


class FlowState(StrEnum):
    """Chorus Pro flow states: RECU until the worker ends it in one of the four final states."""

    RECU = "RECU"
    INTEGRE = "INTEGRE"
    INTEGRE_PARTIEL = "INTEGRE_PARTIEL"
    REJETE = "REJETE"
    INCIDENTE = "INCIDENTE"


FINAL_STATES = frozenset(
    {FlowState.INTEGRE, FlowState.INTEGRE_PARTIEL, FlowState.REJETE, FlowState.INCIDENTE}
)


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class DeliveryState(StrEnum):
    """PENDING until delivered; DEAD once retries are exhausted or the error is permanent (an operator acts)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class StatusFormat(StrEnum):
    """The format of the status-return files an account receives."""

    CDAR = "cdar"  # the reform's CrossDomainAcknowledgementAndResponse (default)
    PEPPOL = "peppol"  # Peppol Invoice Response (UBL ApplicationResponse)
    GATEWAY = "gateway"  # the gateway's own status XML


class Direction(StrEnum):
    """Which way files travel between the gateway and an account's own SFTP server."""

    PUSH = "push"  # what the gateway delivers to the account is uploaded there
    PULL = "pull"  # what the account sends is collected from there


class UTCDateTime(TypeDecorator[datetime]):
    """A time with its time zone: aware times stored, aware UTC times read back (SQLite keeps them naive, in UTC).

    What sqlmodel's type of the same name does, so that the tables need no import of sqlmodel."""

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def __repr__(self) -> str:
        return "UTCDateTime()"

    @property
    def python_type(self) -> type:
        return datetime

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        return Interval() if isinstance(value, timedelta) else self  # a time plus an interval is a time

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("a time stored must be aware: datetime.now(timezone.utc)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value).astimezone(UTC)


def _column(name: str, kind: Any, *args: Any, null: bool = False, **kwargs: Any) -> Column:
    """A column, NOT NULL unless null."""
    return Column(name, kind, *args, nullable=null, **kwargs)


metadata = MetaData()

account = Table(
    "account", metadata,
    _column("name", String, primary_key=True),
    _column("role", Enum(Role)),
    _column("status_format", Enum(StatusFormat), default=StatusFormat.CDAR),
    _column("created_at", UTCDateTime(), default=utcnow),
    # an operator's choice: no login (SFTP, console, API) until enabled again; a server default, which SQLite
    # adds to a table in place (dropping it would rebuild the table, which other tables' rows refer to)
    _column("disabled", Boolean, default=False, server_default=false()),
)

# A SIRET an account holds: a supplier invoices as it, a recipient receives for it.
account_siret = Table(
    "accountsiret", metadata,
    _column("account", String, ForeignKey("account.name"), primary_key=True),
    _column("siret", String, primary_key=True, index=True),
)

# An account's SFTP password, as a salted slow hash (gateway.ingest.sftp.auth); never the password.
account_password = Table(
    "accountpassword", metadata,
    _column("account", String, ForeignKey("account.name"), primary_key=True),
    _column("hash", String),
)

# A public key an account logs in with over SFTP: one OpenSSH authorized_keys line, without options.
account_key = Table(
    "accountkey", metadata,
    _column("account", String, ForeignKey("account.name"), primary_key=True),
    _column("key", String, primary_key=True),  # "<type> <base64 blob>", as compared at login
    _column("comment", String, default=""),
)

# A person who runs the gateway: the API shows an operator every account's flows and invoices.
operator = Table(
    "operator", metadata,
    _column("name", String, primary_key=True),
    _column("created_at", UTCDateTime(), default=utcnow),
)

# An operator's console password, hashed as account passwords are (gateway.ingest.sftp.auth).
operator_password = Table(
    "operatorpassword", metadata,
    _column("operator", String, ForeignKey("operator.name"), primary_key=True),
    _column("hash", String),
)

# A bearer token of the HTTP API, held by an account or by an operator. Only its SHA-256 is kept: the token
# itself is shown once, when it is made (gateway.access.tokens).
api_token = Table(
    "apitoken", metadata,
    _column("id", String, primary_key=True),
    _column("account", String, ForeignKey("account.name"), null=True, index=True),
    _column("operator", String, ForeignKey("operator.name"), null=True, index=True),
    _column("hash", String),
    _column("created_at", UTCDateTime(), default=utcnow),
    _column("last_used_at", UTCDateTime(), null=True),
    _column("revoked_at", UTCDateTime(), null=True),
)

# A login to the browser console (gateway.access.sessions), held by an account or by an operator. The id is the
# SHA-256 of the cookie's random value, never the value; logout and idle expiry delete the row.
web_session = Table(
    "websession", metadata,
    _column("id", String, primary_key=True),
    _column("account", String, ForeignKey("account.name"), null=True),
    _column("operator", String, ForeignKey("operator.name"), null=True),
    _column("csrf", String),  # the token every form of this session carries
    _column("created_at", UTCDateTime(), default=utcnow),
    _column("last_seen_at", UTCDateTime(), default=utcnow),
)

# Where an account is told of its flows' outcomes and its invoices' status changes (gateway.notify).
subscription = Table(
    "subscription", metadata,
    _column("id", Integer, primary_key=True),
    _column("account", String, ForeignKey("account.name"), index=True),
    _column("kind", String),  # webhook | email
    _column("target", String),  # the webhook's URL, or the e-mail address
    _column("secret", String, null=True),  # webhook: the key of its HMAC-SHA256 signatures
    _column("events", String, default="[]"),  # JSON list of the events it receives (gateway.notify.EVENTS)
    _column("created_at", UTCDateTime(), default=utcnow),
)

# An API deposit's Idempotency-Key: a retried deposit with the same key gets the first flow back.
idempotency_key = Table(
    "idempotencykey", metadata,
    _column("account", String, primary_key=True),
    _column("key", String, primary_key=True),
    _column("flow_id", String),
    _column("created_at", UTCDateTime(), default=utcnow),
)

# An account's own SFTP server: where its deliveries are pushed, or whence its flows are pulled.
# The server's host key is pinned ('<type> <base64>'): a server showing any other key is refused, never trusted
# on first use. A pull endpoint is polled under a lease, by one process at a time.
endpoint = Table(
    "endpoint", metadata,
    _column("account", String, ForeignKey("account.name"), primary_key=True),
    _column("direction", Enum(Direction), primary_key=True),
    _column("host", String),
    _column("port", Integer, default=22),
    _column("user", String),
    _column("key_path", String),  # the gateway's private key for this server (no passphrase)
    _column("host_key", String),
    _column("directory", String),
    _column("interval", Float, null=True),  # pull: seconds between two polls; None: [remote] pull_interval
    _column("after", String, default="delete"),  # pull: "delete", or "move:<folder>" on the server
    # pull: the process polling it, until lease_expires_at; with no owner, when its next poll is due
    _column("lease_owner", String, null=True),
    _column("lease_expires_at", UTCDateTime(), null=True),
    # pull: files the last poll saw that had not held still yet (JSON name: [size, mtime])
    _column("listing", String, default="{}"),
)

# A file taken from a pull endpoint, recorded before its flow is committed and before the remote copy is
# touched, so that the same remote file is never taken twice; removed once the remote copy is deleted or moved
# away, which may take several polls.
collected = Table(
    "collected", metadata,
    _column("id", Integer, primary_key=True),
    _column("account", String, index=True),
    _column("location", String),  # the endpoint's sftp:// address when the file was taken
    _column("name", String),
    _column("size", Integer),
    _column("mtime", Integer),
    _column("sha256", String),
    _column("flow_id", String, null=True),  # None until intake has committed the flow
    _column("collected_at", UTCDateTime(), default=utcnow),
    _column("removed", Boolean, default=False, index=True),
)

# A public structure of the directory (one row of Chorus Pro's 21-column export).
structure = Table(
    "structure", metadata,
    _column("siret", String, primary_key=True),
    _column("id_type", String, default="SIRET"),
    _column("name", String, default=""),
    _column("edi_emitter", Boolean, default=False),
    _column("edi_receiver", Boolean, default=False),
    _column("reports_payment", Boolean, default=True),
    _column("ej_required", Boolean, default=False),
    _column("service_required", Boolean, default=False),
    _column("service_or_ej_required", Boolean, default=False),
    _column("is_moa", Boolean, default=False),
    _column("is_moa_only", Boolean, default=False),
    _column("active", Boolean, default=True),
    _column("address", String, default=""),
    _column("address2", String, default=""),
    _column("address3", String, default=""),
    _column("postal_code", String, default=""),
    _column("city", String, default=""),
    _column("phone", String, default=""),
    _column("email", String, default=""),
    _column("country_code", String, default=""),
    _column("country", String, default=""),
)

# A service of a structure, addressed by its code (BT-10 buyer reference).
service = Table(
    "service", metadata,
    _column("siret", String, ForeignKey("structure.siret"), primary_key=True),
    _column("code", String, primary_key=True),
    _column("name", String, default=""),
    _column("active", Boolean, default=True),
    _column("ej_required", Boolean, default=False),
    _column("start_date", String, null=True),
    _column("end_date", String, null=True),
)

# One file deposited by an account; also the work-queue row (lease columns, and its turn: gateway.engine.queue).
flow = Table(
    "flow", metadata,
    _column("id", String, primary_key=True),
    _column("account", String, index=True),
    _column("original_name", String),
    _column("size", Integer),
    _column("sha256", String, index=True),
    _column("channel", String, default="zone"),
    _column("received_at", UTCDateTime(), default=utcnow),
    _column("state", Enum(FlowState), default=FlowState.RECU, index=True),
    _column("syntax", String, null=True),
    _column("findings", String, default="[]"),
    _column("kind", String, default="invoices"),  # invoices | statuses: what the flow's documents turned out to be
    # a status flow's requests and what became of them (JSON), for its report
    _column("outcomes", String, default="[]"),
    _column("acknowledged", Boolean, default=False),
    _column("reported", Boolean, default=False),
    _column("finished_at", UTCDateTime(), null=True),
    _column("lease_owner", String, null=True),
    _column("lease_expires_at", UTCDateTime(), null=True),
    _column("attempts", Integer, default=0),
    # its turn in the work queue (gateway.engine.queue); the server default lets migration 0008 add it in place
    _column("turn", Integer, default=0, server_default="0"),
    Index("ix_flow_turn", "state", "turn", "id"),  # the claim's order
    Index("ix_flow_account_turn", "account", "state", "turn"),  # an account's last turn, at intake
)

# One document of a flow and its verdict. account (the flow's, kept here too) and amount (the total as a number)
# serve the searches of the console and the API, through the indexes below.
invoice = Table(
    "invoice", metadata,
    _column("id", String, primary_key=True),
    _column("flow_id", String, ForeignKey("flow.id"), index=True),
    _column("seq", Integer, default=1),
    _column("name", String, default=""),
    _column("sha256", String, default=""),
    _column("syntax", String, null=True),
    _column("number", String, null=True, index=True),
    _column("issue_date", String, null=True),
    _column("type_code", String, null=True),
    _column("seller_siret", String, null=True),
    _column("buyer_siret", String, null=True),
    _column("service_code", String, null=True),
    _column("engagement", String, null=True),
    _column("total", String, null=True),
    _column("currency", String, null=True),
    _column("verdict", Enum(Verdict)),
    _column("recipient", String, null=True),
    _column("findings", String, default="[]"),
    _column("status", String, null=True, index=True),  # lifecycle.Status code; None: never deposited
    _column("completes", String, null=True),  # the SUSPENDUE invoice this document completes
    # the rule packs that judged it (JSON: name, version, sha256), named in its report
    _column("packs", String, default="[]"),
    # the supplier account that deposited it (its flow's); the server default lets migration 0007 add it in place
    _column("account", String, default="", server_default=""),
    _column("amount", Float, null=True, index=True),  # total, where it is a number
    # a supplier's or a recipient's: counts by status (for a period), then newest first
    Index("ix_invoice_account_issued", "account", "issue_date", "status"),
    Index("ix_invoice_recipient_issued", "recipient", "verdict", "issue_date", "status"),
    Index("ix_invoice_account_newest", "account", "id"),
    Index("ix_invoice_recipient_newest", "recipient", "verdict", "id"),
    Index("ix_invoice_issued", "issue_date", "status"),  # an operator's counts for a period
    # the largest amounts first, those without one last: PostgreSQL reads the ascending index backwards with the
    # NULLs first (SQLite needs no second index)
    Index("ix_invoice_amount_desc", text("amount DESC NULLS LAST")).ddl_if(dialect="postgresql"),
)

# One status an invoice took: by whom, when and why (its lifecycle, in order).
invoice_status = Table(
    "invoicestatus", metadata,
    _column("id", Integer, primary_key=True),
    _column("invoice_id", String, ForeignKey("invoice.id"), index=True),
    _column("status", String),
    _column("at", UTCDateTime(), default=utcnow),
    _column("actor", String),
    _column("reason_code", String, null=True),
    _column("reason", String, null=True),
    _column("mandate_number", String, null=True),
    _column("source", String, null=True),  # the flow that asked for it, or "cli"
)

# A file to hand to an account: an invoice to its recipient, a status-return to its supplier, or a notification
# (webhook, e-mail) to one of the account's subscriptions. Also a work-queue row, retried until delivered or dead.
delivery = Table(
    "delivery", metadata,
    _column("id", Integer, primary_key=True),
    _column("kind", String, default="invoice"),  # invoice | status | webhook | email
    _column("invoice_id", String, ForeignKey("invoice.id"), null=True, index=True),  # None: a flow's
    _column("flow_id", String, index=True),
    _column("destination", String),
    _column("file_name", String),
    _column("sha256", String),
    _column("state", Enum(DeliveryState), default=DeliveryState.PENDING, index=True),
    _column("attempts", Integer, default=0),
    _column("next_attempt_at", UTCDateTime(), default=utcnow),
    _column("lease_owner", String, null=True),
    _column("lease_expires_at", UTCDateTime(), null=True),
    _column("last_error", String, null=True),
    _column("delivered_at", UTCDateTime(), null=True),
    _column("where", String, null=True),
    _column("subscription_id", Integer, null=True),  # webhook, email: the subscription it goes to
)

# Every decision about a flow or an invoice, in order: the flow's timeline.
event = Table(
    "event", metadata,
    _column("id", Integer, primary_key=True),
    _column("flow_id", String, index=True),
    _column("invoice_id", String, null=True),
    _column("at", UTCDateTime(), default=utcnow),
    _column("kind", String),
    _column("detail", String, default="{}"),
)

# A running worker; leases it holds are renewed while its heartbeat is fresh.
worker = Table(
    "worker", metadata,
    _column("id", String, primary_key=True),
    _column("host", String),
    _column("pid", Integer),
    _column("started_at", UTCDateTime(), default=utcnow),
    _column("heartbeat_at", UTCDateTime(), default=utcnow),
    _column("roles", String, default=""),  # what it does (`gateway run --role`), separated by ','
)

# A failed login from an address, or one waiting for its turn to be checked (gateway.access.throttle): SFTP and console
# passwords under the name given (an account's or not), API tokens under none. Deleted once older than twice
# ban_seconds.
login_failure = Table(
    "loginfailure", metadata,
    _column("id", Integer, primary_key=True),
    _column("ip", String, index=True),
    _column("account", String, null=True),
    _column("at", UTCDateTime(), index=True),
)

# Change counters of what processes keep in memory: 'reference' counts the writes to the directory, the accounts,
# their SIRETs, subscriptions and endpoints' settings (gateway.data.reference). Triggers bump it in the writing
# transaction (migration 0009), whatever writes.
changes = Table(
    "changes", metadata,
    _column("name", String, primary_key=True),
    _column("counter", Integer),
)
