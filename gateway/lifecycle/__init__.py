"""Invoice lifecycle: statuses after integration, set by the gateway and the recipient, returned to the supplier."""
