"""What the gateway keeps: the schema and its migrations, the database, the content store, events and findings,
the reference data each process keeps in memory, and the read models."""
