"""Schema migrations: an empty database created at head, a database made before migrations stamped and
upgraded with its rows, one behind head refused at start, several gateways starting together on an empty
PostgreSQL database, and the models and the migrations in agreement."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection

from gateway import config as config_module
from gateway.cli import main
from gateway.data import schema
from gateway.data.db import open_engine
from gateway.data.tables import metadata
from tests.harness import GatewayProcess, cli, wait_for, write_config

HEAD = schema.head()
UNVERSIONED = "none (tables made before migrations)"


@contextmanager
def _connection(config: Path) -> Iterator[Connection]:
    """A transaction on the configured database, whatever its schema."""
    engine = open_engine(config_module.load(config).gateway.database_url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def _shape(connection: Connection) -> dict:
    """Everything the schema is made of, as the database reports it (PostgreSQL's enum types included)."""
    inspector = inspect(connection)
    shape: dict = {table: {"columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default"))
                                       for c in inspector.get_columns(table)],
                           "primary key": inspector.get_pk_constraint(table),
                           "foreign keys": inspector.get_foreign_keys(table),
                           "indexes": sorted(inspector.get_indexes(table), key=lambda i: i["name"]),
                           "unique": inspector.get_unique_constraints(table)}
                   for table in inspector.get_table_names() if table != "alembic_version"}
    if connection.dialect.name == "postgresql":
        shape["enum types"] = [tuple(row) for row in connection.execute(text(
            "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_type t "
            "JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname ORDER BY t.typname"))]
    return shape


def _founding_database(config: Path) -> None:
    """A database as create_all made it before migrations: revision 0001's tables, with rows, no revision."""
    with _connection(config) as connection:
        command.upgrade(schema.alembic_config(connection), "0001")
        connection.execute(text("DROP TABLE alembic_version"))
        tables = MetaData()
        tables.reflect(connection)  # 0001's tables as they are, whatever the models have become since
        connection.execute(tables.tables["account"].insert().values(
            name="acme", role="SUPPLIER", status_format="CDAR", created_at=datetime.now(UTC)))
        connection.execute(tables.tables["accountsiret"].insert().values(account="acme", siret="35600000000048"))
        connection.execute(tables.tables["endpoint"].insert().values(
            account="acme", direction="PULL", host="127.0.0.1", port=2022, user="gw", key_path="/k",
            host_key="ssh-ed25519 AAAA", directory="/outbox", after="delete"))


def _refused(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    return result.stderr


def test_an_empty_database_is_created_at_head_by_the_first_command(tmp_path, database_url):
    config = write_config(tmp_path, database_url=database_url)
    assert cli(config, "db", "current") == f"empty (this gateway needs {HEAD})\n"  # reading creates nothing
    assert cli(config, "accounts", "list").startswith("name")
    assert cli(config, "db", "current") == f"{HEAD} (head)\n"
    assert cli(config, "db", "upgrade") == f"database schema at {HEAD}\n"


def test_the_migrations_make_what_the_models_describe(tmp_path, database_url):
    """compare_metadata finds no difference between head and gateway.data.tables: a change of the tables
    without its migration fails here; and head is exactly what create_all makes, enum labels included."""
    config = write_config(tmp_path, database_url=database_url)
    with _connection(config) as connection:
        command.upgrade(schema.alembic_config(connection), "head")
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        migrated = _shape(connection)
        command.downgrade(schema.alembic_config(connection), "base")
        assert _shape(connection) in ({}, {"enum types": []})  # downgraded to nothing, enum types too
        metadata.create_all(connection)
        assert _shape(connection) == migrated
    assert set(migrated) >= set(metadata.tables)


def test_a_database_made_before_migrations_is_stamped_and_keeps_its_rows(tmp_path, database_url):
    config = write_config(tmp_path, database_url=database_url)
    _founding_database(config)
    assert cli(config, "db", "current") == f"{UNVERSIONED} (this gateway needs {HEAD})\n"
    assert f"database schema at {UNVERSIONED}, this gateway needs {HEAD}" in _refused(config, "accounts", "list")
    assert cli(config, "db", "upgrade") == f"database schema at {HEAD}, was {UNVERSIONED}\n"
    assert cli(config, "db", "current") == f"{HEAD} (head)\n"
    listed = cli(config, "accounts", "list")
    assert "acme" in listed and "35600000000048" in listed and "pull sftp://gw@127.0.0.1:2022/outbox" in listed


def test_tables_that_are_not_those_of_0001_are_not_stamped(tmp_path, database_url):
    """A create_all older than 0001 made fewer columns; a table with more is not unversioned 0001 either."""
    config = write_config(tmp_path, database_url=database_url)
    _founding_database(config)
    with _connection(config) as connection:
        connection.execute(text("ALTER TABLE invoice DROP COLUMN packs"))
        connection.execute(text("ALTER TABLE flow ADD COLUMN priority INTEGER"))
        connection.execute(text("DROP TABLE worker"))
    error = _refused(config, "db", "upgrade")
    assert ("not those of revision 0001 (flow.priority unexpected, invoice.packs missing, worker missing): "
            "not stamped") in error
    assert cli(config, "db", "current") == f"{UNVERSIONED} (this gateway needs {HEAD})\n"


def _behind_head(config: Path) -> str:
    """A database with rows one revision behind head (as create_all made it, while 0001 is head); its revision."""
    _founding_database(config)
    previous = ScriptDirectory(str(schema.MIGRATIONS)).get_revision(HEAD).down_revision
    if previous is None:
        return UNVERSIONED
    with _connection(config) as connection:
        command.stamp(schema.alembic_config(connection), "0001")
        command.upgrade(schema.alembic_config(connection), previous)
    return previous


def test_gateway_run_refuses_a_database_behind_head_until_upgraded(tmp_path, database_url):
    config = write_config(tmp_path, {"sftp": {"enabled": False}}, database_url)
    behind = _behind_head(config)
    gateway = GatewayProcess(config)
    gateway.start()
    assert gateway.proc.wait(timeout=60) == 1
    message = f"database schema at {behind}, this gateway needs {HEAD}: run `gateway db upgrade`"
    assert f"Error: {message}" in (tmp_path / "gateway.log").read_text()
    assert message in _refused(config, "flows", "list")  # short commands too
    assert cli(config, "db", "upgrade") == f"database schema at {HEAD}, was {behind}\n"
    listed = cli(config, "accounts", "list")
    assert "35600000000048" in listed and "pull sftp://gw@127.0.0.1:2022/outbox" in listed


def test_a_revision_this_gateway_does_not_know_is_refused(tmp_path, database_url):
    config = write_config(tmp_path, database_url=database_url)
    cli(config, "accounts", "list")
    with _connection(config) as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    for command_line in (["flows", "list"], ["db", "upgrade"]):
        assert "database schema at 9999, unknown to this gateway" in _refused(config, *command_line)


def test_gateways_starting_together_on_an_empty_postgresql_database_create_it_once(tmp_path, postgres):
    """Three `gateway run` held at the schema lock, then let go at once: one creates, all three run."""
    database = postgres.create_database()
    config = write_config(tmp_path, {"sftp": {"enabled": False}, "validate": {"processes": 1}},
                          postgres.url(database))
    gateways = [GatewayProcess(config) for _ in range(3)]
    dsn = postgres.url(database).replace("+psycopg", "")
    try:
        with psycopg.connect(dsn, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (schema.LOCK_KEY,))
            for gateway in gateways:
                gateway.start()
            waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            wait_for(lambda: holder.execute(waiting).fetchone()[0] == 3, 60, "three gateways at the schema lock")
            holder.execute("SELECT pg_advisory_unlock(%s)", (schema.LOCK_KEY,))
        events = lambda: [json.loads(line).get("event") for line in  # noqa: E731
                          (tmp_path / "gateway.log").read_text().splitlines() if line.startswith("{")]
        wait_for(lambda: events().count("gateway_started") == 3, 120, "three gateways started")
    finally:
        codes = [gateway.stop() for gateway in gateways if gateway.proc is not None]
    assert codes == [0, 0, 0]
    assert events().count("schema_created") == 1
    assert cli(config, "db", "current") == f"{HEAD} (head)\n"
    postgres.drop_database(database)


def test_the_newest_migration_file_is_head_and_each_file_is_named_after_its_revision():
    """Opening a database at head reads no migration (schema.ensure_schema compares the stamp with the newest file's
    number): that holds only while each file is named after its revision and the newest is the head."""
    scripts = ScriptDirectory(str(schema.MIGRATIONS))
    for revision in scripts.walk_revisions():
        assert Path(revision.path).name.split("_", 1)[0] == revision.revision, revision.path
    assert schema.newest_file() == HEAD == scripts.get_current_head()


def test_a_database_behind_head_is_still_refused_by_every_command(tmp_path):
    """The fast path takes only the newest revision: a database stamped one behind is refused with the advice."""
    config = write_config(tmp_path)
    cli(config, "db", "upgrade")
    previous = ScriptDirectory(str(schema.MIGRATIONS)).get_revision(HEAD).down_revision
    with _connection(config) as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": previous})
    refused = CliRunner().invoke(main, ["--config", str(config), "flows", "list"])
    assert refused.exit_code == 1 and f"database schema at {previous}, this gateway needs {HEAD}" in refused.output
