"""The embedded SFTP server: each account's zone served over SFTP, uploads handed to intake."""

from __future__ import annotations

from gateway.ingest.sftp.server import SftpServer

__all__ = ["SftpServer"]
