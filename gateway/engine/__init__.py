"""What moves a flow: the work queue and its leases, the workers and their batches, the pipeline they run,
the process and its roles, wake-ups, file locks and crash points."""
