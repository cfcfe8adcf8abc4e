"""Running the gateway: the log, conditions said once (a full disk, the database out of reach), metrics,
throughput and the data directory's permissions."""
