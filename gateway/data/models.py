"""The ORM classes of the database tables (gateway.data.tables, where the schema and each table's meaning are written).

Each class is mapped onto its table as it stands, its fields (types, defaults, what may be None) read from the
table's columns, so that the schema is stated once. The enums and time helpers the tables use are here too, for
the code that works with the classes.
"""

from __future__ import annotations

import inspect
from typing import Any

from sqlalchemy import Integer, Table
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelMetaclass

from gateway.data import tables
from gateway.data.tables import (  # noqa: F401
    FINAL_STATES,
    DeliveryState,
    Direction,
    FlowState,
    Role,
    StatusFormat,
    Verdict,
    as_utc,
    utcnow,
)


# Built at import from the tables, the classes are Any to mypy: typing them would repeat every column as an
# annotation, and gateway.data.tables is the schema's one statement. Queries type-check on the Core columns.
def _model(name: str, table: Table) -> Any:
    """The SQLModel class name mapped onto table: a field per column, optional where the column is nullable or an
    integer key the database numbers, with the column's default."""
    annotations, namespace = {}, {"__module__": __name__, "__qualname__": name, "__table__": table,
                                  "__doc__": f"A row of table {table.name} (gateway.data.tables)."}
    for column in table.columns:
        optional = column.nullable or (column.primary_key and isinstance(column.type, Integer))
        annotations[column.key] = column.type.python_type | None if optional else column.type.python_type
        default = column.default
        if isinstance(default, CallableColumnDefault):  # SQLAlchemy wraps the callable, which takes no context
            namespace[column.key] = Field(default_factory=inspect.unwrap(default.arg), sa_column=column)
        elif isinstance(default, ScalarElementColumnDefault):
            namespace[column.key] = Field(default=default.arg, sa_column=column)
        else:
            namespace[column.key] = Field(default=None, sa_column=column) if optional else Field(sa_column=column)
    namespace["__annotations__"] = annotations
    return SQLModelMetaclass(name, (SQLModel,), namespace, table=True)


Account = _model("Account", tables.account)
AccountSiret = _model("AccountSiret", tables.account_siret)
AccountPassword = _model("AccountPassword", tables.account_password)
AccountKey = _model("AccountKey", tables.account_key)
Operator = _model("Operator", tables.operator)
OperatorPassword = _model("OperatorPassword", tables.operator_password)
ApiToken = _model("ApiToken", tables.api_token)
WebSession = _model("WebSession", tables.web_session)
Subscription = _model("Subscription", tables.subscription)
IdempotencyKey = _model("IdempotencyKey", tables.idempotency_key)
Endpoint = _model("Endpoint", tables.endpoint)
Collected = _model("Collected", tables.collected)
Structure = _model("Structure", tables.structure)
Service = _model("Service", tables.service)
Flow = _model("Flow", tables.flow)
Invoice = _model("Invoice", tables.invoice)
InvoiceStatus = _model("InvoiceStatus", tables.invoice_status)
Delivery = _model("Delivery", tables.delivery)
Event = _model("Event", tables.event)
Worker = _model("Worker", tables.worker)
LoginFailure = _model("LoginFailure", tables.login_failure)
