"""The API's JSON shapes (pydantic), which also make its OpenAPI document. They describe what
gateway.data.views returns; fields the views add later pass through unannounced rather than break a client."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gateway.data.models import as_utc

Utc = Annotated[datetime, AfterValidator(as_utc)]


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Finding(_Out):
    stage: str
    rule: str
    severity: str
    message: str
    line: int | None = None
    path: str | None = None


class Flow(_Out):
    id: str
    account: str
    original_name: str
    size: int
    sha256: str
    channel: str
    received_at: Utc
    state: str = Field(description="RECU until processed, then INTEGRE, INTEGRE_PARTIEL, REJETE or INCIDENTE")
    syntax: str | None
    kind: str
    finished_at: Utc | None
    errors: list[Finding]


class Invoice(_Out):
    id: str
    flow_id: str
    supplier: str | None
    number: str | None
    issue_date: str | None
    seller_siret: str | None
    buyer_siret: str | None
    service_code: str | None
    total: str | None
    currency: str | None
    verdict: str
    recipient: str | None
    status: str | None = Field(description="Chorus Pro status code; null for an invoice rejected at integration")
    status_name: str | None
    errors: list[Finding]


class Delivery(_Out):
    id: int
    kind: str
    invoice_id: str | None
    flow_id: str
    destination: str
    state: str
    attempts: int
    delivered_at: Utc | None
    last_error: str | None


class Counts(BaseModel):
    invoices: int
    accepted: int
    rejected: int


class FlowDetail(Flow):
    counts: Counts
    invoices: list[Invoice]
    deliveries: list[Delivery]
    events: list[dict[str, Any]]


class StatusEntry(_Out):
    id: int
    status: str
    name: str
    at: Utc
    actor: str
    reason_code: str | None
    reason: str | None
    mandate_number: str | None


class InvoiceDetail(Invoice):
    statuses: list[StatusEntry]
    deliveries: list[Delivery]


class FlowPage(BaseModel):
    items: list[Flow]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: no more")


class InvoicePage(BaseModel):
    items: list[Invoice]
    next_cursor: str | None


class Deposit(BaseModel):
    flow_id: str
    state: str
    original_name: str
    size: int
    sha256: str
    received_at: Utc
    replayed: bool = Field(description="true: the Idempotency-Key was seen before, this is the first flow")
    acknowledgement: str = Field(description="Path of the acknowledgement (XML) the supplier received")
    links: dict[str, str]


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(description="A status name (SERVICE_FAIT) or code (07)", examples=["SUSPENDUE"])
    reason: str | None = Field(None, description="Reason code (required for REJETEE, SUSPENDUE, A_RECYCLER)")
    comment: str | None = Field(None, description="Free text for the supplier")
    mandate: str | None = Field(None, description="Mandate number (MANDATEE)")


class Service(_Out):
    code: str
    name: str
    active: bool
    ej_required: bool
    start_date: str | None
    end_date: str | None


class Structure(_Out):
    siret: str
    name: str
    active: bool
    ej_required: bool
    service_required: bool
    edi_receiver: bool
    services: list[Service]


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    secret: str | None = Field(None, description="Key of the HMAC-SHA256 signatures; made by the gateway if absent")
    events: list[str] | None = None


class Email(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str
    events: list[str] | None = None


class Subscriptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    webhooks: list[Webhook] = []
    emails: list[Email] = []


class Subscription(_Out):
    id: int
    kind: Literal["webhook", "email"]
    target: str
    events: list[str]
    created_at: Utc
    secret: str | None = Field(None, description="The webhook secret the gateway made: in the answer that made "
                                                 "it only, never again")


