"""The database schema, taken from one revision to the next by alembic migrations (gateway/data/migrations/).

Opening a database (db.make_engine) creates an empty one at head, so that a new installation, `make run`
and the tests need no extra step. Any other database must already be at head: a gateway never alters an
existing schema on its own, `gateway db upgrade` does, once the operator has chosen to. That command also
takes a database made before migrations (create_all: the tables, no revision), once its tables are found
to be those of revision 0001, which it is then stamped at.

Each step runs in one transaction that holds a lock (an advisory lock on PostgreSQL, the write lock taken
by BEGIN IMMEDIATE on SQLite, see db.py), so processes starting together on an empty database create the
schema once, and the others find it at head.

Alembic is imported only when a database is not found at head: a database stamped with the revision of the
newest migration file (migrations are numbered, each file named after its revision, which
tests/test_migrations.py checks) is at head, and every command opening one is spared alembic's import.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine

from gateway.data.tables import metadata
from gateway.ops.log import log

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")
FOUNDING = "0001"  # the schema create_all made before there were migrations
UNVERSIONED = "none (tables made before migrations)"
LOCK_KEY = 0x67617465776179  # "gateway": the PostgreSQL advisory lock creation and upgrades hold


class SchemaError(Exception):
    """The database's schema is not one this gateway can run on; the message says what to do."""


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration, made in code (no alembic.ini): our migrations, run on this connection."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS))


def newest_file() -> str:
    """The revision of the newest migration file, read from its name (its number) without importing alembic."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def _stamped(connection: Connection) -> str | None:
    """The revision in alembic's table, read with plain SQL; None if there is none."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head() -> str:
    """The revision this gateway's models are at."""
    revision = _scripts().get_current_head()
    assert revision is not None, "gateway/migrations holds at least the founding revision"
    return revision


def revision(connection: Connection) -> str | None:
    """The revision the database is stamped at; None if none (empty, or made before migrations)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def version(connection: Connection) -> str:
    """The revision, or what the database holds without one: for a person to read."""
    current = revision(connection)
    if current is not None:
        return current
    return UNVERSIONED if _tables(connection) else "empty"


def ensure_schema(engine: Engine) -> None:
    """Create an empty database at head; refuse (SchemaError) one at any other revision."""
    with _locked(engine) as connection:
        if _stamped(connection) == newest_file():
            return
        from alembic import command

        current = revision(connection)
        if current == head():
            return
        if current is not None or _tables(connection):
            raise SchemaError(_mismatch(version(connection)))
        command.upgrade(alembic_config(connection), "head")
    log.info("schema_created", revision=head())


def upgrade(engine: Engine) -> tuple[str, str]:
    """Bring the database to head, stamping one made before migrations at 0001 first; (before, after)."""
    from alembic import command

    with _locked(engine) as connection:
        before = version(connection)
        config = alembic_config(connection)
        if before == UNVERSIONED:
            _check_founding(connection)
            command.stamp(config, FOUNDING)
            log.info("schema_stamped", revision=FOUNDING)
        elif before != "empty" and not _known(before):
            raise SchemaError(_mismatch(before))
        command.upgrade(config, "head")
    if before != head():
        log.info("schema_upgraded", before=before, revision=head())
    return before, head()


def _mismatch(current: str) -> str:
    if current != UNVERSIONED and not _known(current):
        return f"database schema at {current}, unknown to this gateway (made by a newer one?)"
    return f"database schema at {current}, this gateway needs {head()}: run `gateway db upgrade`"


def _known(current: str) -> bool:
    from alembic.util import CommandError

    try:
        return _scripts().get_revision(current) is not None
    except CommandError:
        return False


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as connection:  # on SQLite, BEGIN IMMEDIATE: the write lock until the end
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        yield connection


def _tables(connection: Connection) -> set[str]:
    """The gateway's tables in the database (another application's, sharing it, are not counted)."""
    return set(inspect(connection).get_table_names()) & set(metadata.tables)


def _columns(connection: Connection) -> dict[str, set[str]]:
    inspector = inspect(connection)
    return {table: {column["name"] for column in inspector.get_columns(table)}
            for table in inspector.get_table_names() if table != "alembic_version"}


def _check_founding(connection: Connection) -> None:
    """Refuse to stamp at 0001 tables that are not exactly 0001's (an older create_all made fewer columns)."""
    found, founding = _columns(connection), _founding_columns()
    differences = []
    for table, columns in sorted(founding.items()):
        if table not in found:
            differences.append(f"{table} missing")
            continue
        differences += [f"{table}.{column} missing" for column in sorted(columns - found[table])]
        differences += [f"{table}.{column} unexpected" for column in sorted(found[table] - columns)]
    if differences:
        raise SchemaError(f"database tables made before migrations, but not those of revision {FOUNDING} "
                          f"({', '.join(differences)}): not stamped")


@cache
def _founding_columns() -> dict[str, set[str]]:
    """The tables and columns revision 0001 makes, read back from a scratch database upgraded to it."""
    from alembic import command

    scratch = create_engine("sqlite://")
    try:
        with scratch.begin() as connection:
            command.upgrade(alembic_config(connection), FOUNDING)
            return _columns(connection)
    finally:
        scratch.dispose()
