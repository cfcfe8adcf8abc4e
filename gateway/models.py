"""Database tables.

One module holds every table so that the schema reads in one place. Timestamps are UTC. Lists
of findings are kept as JSON text: they are written once, read whole, and never queried inside.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum

from sqlalchemy import Index, false, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """A time read back from the database as an aware UTC time (SQLite gives back naive ones, all in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


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


class Account(SQLModel, table=True):
    name: str = Field(primary_key=True)
    role: Role
    status_format: StatusFormat = StatusFormat.CDAR
    created_at: datetime = Field(default_factory=utcnow)
    # an operator's choice: no login (SFTP, console, API) until enabled again; a server default, which SQLite
    # adds to a table in place (dropping it would rebuild the table, which other tables' rows refer to)
    disabled: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class AccountSiret(SQLModel, table=True):
    """A SIRET an account holds: a supplier invoices as it, a recipient receives for it."""

    account: str = Field(primary_key=True, foreign_key="account.name")
    siret: str = Field(primary_key=True, index=True)


class AccountPassword(SQLModel, table=True):
    """An account's SFTP password, as a salted slow hash (gateway.ingest.sftp.auth); never the password."""

    account: str = Field(primary_key=True, foreign_key="account.name")
    hash: str


class AccountKey(SQLModel, table=True):
    """A public key an account logs in with over SFTP: one OpenSSH authorized_keys line, without options."""

    account: str = Field(primary_key=True, foreign_key="account.name")
    key: str = Field(primary_key=True)  # "<type> <base64 blob>", as compared at login
    comment: str = ""


class Operator(SQLModel, table=True):
    """A person who runs the gateway: the API shows an operator every account's flows and invoices."""

    name: str = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)


class OperatorPassword(SQLModel, table=True):
    """An operator's console password, hashed as account passwords are (gateway.ingest.sftp.auth)."""

    operator: str = Field(primary_key=True, foreign_key="operator.name")
    hash: str


class ApiToken(SQLModel, table=True):
    """A bearer token of the HTTP API, held by an account or by an operator. Only its SHA-256 is kept:
    the token itself is shown once, when it is made (gateway.tokens)."""

    id: str = Field(primary_key=True)
    account: str | None = Field(default=None, foreign_key="account.name", index=True)
    operator: str | None = Field(default=None, foreign_key="operator.name", index=True)
    hash: str
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class WebSession(SQLModel, table=True):
    """A login to the browser console (gateway.sessions), held by an account or by an operator. The id is
    the SHA-256 of the cookie's random value, never the value; logout and idle expiry delete the row."""

    id: str = Field(primary_key=True)
    account: str | None = Field(default=None, foreign_key="account.name")
    operator: str | None = Field(default=None, foreign_key="operator.name")
    csrf: str  # the token every form of this session carries
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class Subscription(SQLModel, table=True):
    """Where an account is told of its flows' outcomes and its invoices' status changes (gateway.notify)."""

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(foreign_key="account.name", index=True)
    kind: str  # webhook | email
    target: str  # the webhook's URL, or the e-mail address
    secret: str | None = None  # webhook: the key of its HMAC-SHA256 signatures
    events: str = "[]"  # JSON list of the events it receives (gateway.notify.EVENTS)
    created_at: datetime = Field(default_factory=utcnow)


class IdempotencyKey(SQLModel, table=True):
    """An API deposit's Idempotency-Key: a retried deposit with the same key gets the first flow back."""

    account: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    flow_id: str
    created_at: datetime = Field(default_factory=utcnow)


class Direction(StrEnum):
    """Which way files travel between the gateway and an account's own SFTP server."""

    PUSH = "push"  # what the gateway delivers to the account is uploaded there
    PULL = "pull"  # what the account sends is collected from there


class Endpoint(SQLModel, table=True):
    """An account's own SFTP server: where its deliveries are pushed, or whence its flows are pulled.

    The server's host key is pinned ('<type> <base64>'): a server showing any other key is refused,
    never trusted on first use. A pull endpoint is polled under a lease, by one process at a time.
    """

    account: str = Field(primary_key=True, foreign_key="account.name")
    direction: Direction = Field(primary_key=True)
    host: str
    port: int = 22
    user: str
    key_path: str  # the gateway's private key for this server (no passphrase)
    host_key: str
    directory: str
    interval: float | None = None  # pull: seconds between two polls; None: [remote] pull_interval
    after: str = "delete"  # pull: "delete", or "move:<folder>" on the server
    # pull: the process polling it, until lease_expires_at; with no owner, when its next poll is due
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    listing: str = "{}"  # pull: files the last poll saw that had not held still yet (JSON name: [size, mtime])


class Collected(SQLModel, table=True):
    """A file taken from a pull endpoint, recorded before its flow is committed and before the remote
    copy is touched, so that the same remote file is never taken twice; removed once the remote copy is
    deleted or moved away, which may take several polls."""

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(index=True)
    location: str  # the endpoint's sftp:// address when the file was taken
    name: str
    size: int
    mtime: int
    sha256: str
    flow_id: str | None = None  # None until intake has committed the flow
    collected_at: datetime = Field(default_factory=utcnow)
    removed: bool = Field(default=False, index=True)


class Structure(SQLModel, table=True):
    """A public structure of the directory (one row of Chorus Pro's 21-column export)."""

    siret: str = Field(primary_key=True)
    id_type: str = "SIRET"
    name: str = ""
    edi_emitter: bool = False
    edi_receiver: bool = False
    reports_payment: bool = True
    ej_required: bool = False
    service_required: bool = False
    service_or_ej_required: bool = False
    is_moa: bool = False
    is_moa_only: bool = False
    active: bool = True
    address: str = ""
    address2: str = ""
    address3: str = ""
    postal_code: str = ""
    city: str = ""
    phone: str = ""
    email: str = ""
    country_code: str = ""
    country: str = ""


class Service(SQLModel, table=True):
    """A service of a structure, addressed by its code (BT-10 buyer reference)."""

    siret: str = Field(primary_key=True, foreign_key="structure.siret")
    code: str = Field(primary_key=True)
    name: str = ""
    active: bool = True
    ej_required: bool = False
    start_date: str | None = None
    end_date: str | None = None


class Flow(SQLModel, table=True):
    """One file deposited by an account; also the work-queue row (lease columns, and its turn: gateway.queue)."""

    __table_args__ = (
        Index("ix_flow_turn", "state", "turn", "id"),  # the claim's order
        Index("ix_flow_account_turn", "account", "state", "turn"),  # an account's last turn, at intake
    )

    id: str = Field(primary_key=True)
    account: str = Field(index=True)
    original_name: str
    size: int
    sha256: str = Field(index=True)
    channel: str = "zone"
    received_at: datetime = Field(default_factory=utcnow)
    state: FlowState = Field(default=FlowState.RECU, index=True)
    syntax: str | None = None
    findings: str = "[]"
    kind: str = "invoices"  # invoices | statuses: what the flow's documents turned out to be
    outcomes: str = "[]"  # a status flow's requests and what became of them (JSON), for its report
    acknowledged: bool = False
    reported: bool = False
    finished_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int = 0
    # its turn in the work queue (gateway.queue); the server default lets migration 0008 add it in place
    turn: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Invoice(SQLModel, table=True):
    """One document of a flow and its verdict. account (the flow's, kept here too) and amount (the total as a
    number) serve the searches of the console and the API, through the indexes of __table_args__."""

    __table_args__ = (  # a supplier's or a recipient's: counts by status (for a period), then newest first
        Index("ix_invoice_account_issued", "account", "issue_date", "status"),
        Index("ix_invoice_recipient_issued", "recipient", "verdict", "issue_date", "status"),
        Index("ix_invoice_account_newest", "account", "id"),
        Index("ix_invoice_recipient_newest", "recipient", "verdict", "id"),
        Index("ix_invoice_issued", "issue_date", "status"),  # an operator's counts for a period
        # the largest amounts first, those without one last: PostgreSQL reads the ascending index backwards
        # with the NULLs first (SQLite needs no second index)
        Index("ix_invoice_amount_desc", text("amount DESC NULLS LAST")).ddl_if(dialect="postgresql"),
    )

    id: str = Field(primary_key=True)
    flow_id: str = Field(foreign_key="flow.id", index=True)
    seq: int = 1
    name: str = ""
    sha256: str = ""
    syntax: str | None = None
    number: str | None = Field(default=None, index=True)
    issue_date: str | None = None
    type_code: str | None = None
    seller_siret: str | None = None
    buyer_siret: str | None = None
    service_code: str | None = None
    engagement: str | None = None
    total: str | None = None
    currency: str | None = None
    verdict: Verdict
    recipient: str | None = None
    findings: str = "[]"
    status: str | None = Field(default=None, index=True)  # lifecycle.Status code; None: never deposited
    completes: str | None = None  # the SUSPENDUE invoice this document completes
    packs: str = "[]"  # the rule packs that judged it (JSON: name, version, sha256), named in its report
    # the supplier account that deposited it (its flow's); the server default lets migration 0007 add it in place
    account: str = Field(default="", sa_column_kwargs={"server_default": ""})
    amount: float | None = Field(default=None, index=True)  # total, where it is a number


class InvoiceStatus(SQLModel, table=True):
    """One status an invoice took: by whom, when and why (its lifecycle, in order)."""

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: str = Field(foreign_key="invoice.id", index=True)
    status: str
    at: datetime = Field(default_factory=utcnow)
    actor: str
    reason_code: str | None = None
    reason: str | None = None
    mandate_number: str | None = None
    source: str | None = None  # the flow that asked for it, or "cli"


class Delivery(SQLModel, table=True):
    """A file to hand to an account: an invoice to its recipient, a status-return to its supplier, or a
    notification (webhook, e-mail) to one of the account's subscriptions.

    Also a work-queue row, retried until delivered or dead.
    """

    id: int | None = Field(default=None, primary_key=True)
    kind: str = "invoice"  # invoice | status | webhook | email
    invoice_id: str | None = Field(default=None, foreign_key="invoice.id", index=True)  # None: a flow's
    flow_id: str = Field(index=True)
    destination: str
    file_name: str
    sha256: str
    state: DeliveryState = Field(default=DeliveryState.PENDING, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    where: str | None = None
    subscription_id: int | None = None  # webhook, email: the subscription it goes to


class Event(SQLModel, table=True):
    """Every decision about a flow or an invoice, in order: the flow's timeline."""

    id: int | None = Field(default=None, primary_key=True)
    flow_id: str = Field(index=True)
    invoice_id: str | None = None
    at: datetime = Field(default_factory=utcnow)
    kind: str
    detail: str = "{}"


class Worker(SQLModel, table=True):
    """A running worker; leases it holds are renewed while its heartbeat is fresh."""

    id: str = Field(primary_key=True)
    host: str
    pid: int
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow)
    roles: str = ""  # what it does (`gateway run --role`), separated by ','


class LoginFailure(SQLModel, table=True):
    """A failed login from an address, or one waiting for its turn to be checked (gateway.throttle): SFTP and
    console passwords under the name given (an account's or not), API tokens under none. Deleted once older
    than twice ban_seconds."""

    id: int | None = Field(default=None, primary_key=True)
    ip: str = Field(index=True)
    account: str | None = None
    at: datetime = Field(index=True)
