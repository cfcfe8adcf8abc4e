"""Accounts' own SFTP servers, seen as a client: endpoints, pinned connections, and their errors.

Deliveries are pushed there (gateway.route.sftp_push) and flows pulled from there (gateway.ingest.pull);
both go through one SftpPool, which keeps one connection per server.
"""

from __future__ import annotations

from gateway.remote.client import RemoteError, RemoteRefused, RemoteUnavailable
from gateway.remote.pool import SftpPool

__all__ = ["RemoteError", "RemoteRefused", "RemoteUnavailable", "SftpPool"]
