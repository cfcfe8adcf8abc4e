"""The schema's alembic migrations, one revision per change of gateway/data/tables.py, in versions/.

A change of the tables comes with a revision (tests/test_migrations.py fails until the two agree). To draft
one, against a database at head:

    from gateway.data import db, schema
    with db.open_engine(URL).begin() as conn:
        alembic.command.revision(schema.alembic_config(conn), "what changes", autogenerate=True,
                                 rev_id="0002")

then read it: autogenerate misses renames, and PostgreSQL enum types need creating and dropping by hand.
On SQLite a revision runs in one transaction with foreign keys enforced (db.py), which PRAGMA cannot turn
off there: a batch operation that copies a table others reference (account, structure, flow, invoice)
fails on its rows rather than orphaning them.
"""
