"""Delivery onto an account's own SFTP server (push).

The file is uploaded under a hidden temporary name, its size checked on the server, then renamed
over its final name with posix-rename, which replaces atomically: a reader on the server never sees
half a file, and a delivery made again after a crash replaces the same file. One delivery is one
upload: a failure that may pass (server unreachable or slow, connection dropped) goes back to the
delivery queue, which reschedules it with its back-off (gateway.route.delivery), the one retry layer; the
pool opens a fresh connection for the next attempt. A refused host key or login, or a missing folder, is
permanent: no retry could fix it, an operator must.
"""

from __future__ import annotations

import io
import posixpath

from gateway.data.models import Endpoint
from gateway.ops.log import log
from gateway.remote import RemoteRefused, RemoteUnavailable, SftpPool
from gateway.remote.endpoints import location
from gateway.route.channels import PermanentDeliveryError, TransientDeliveryError


class SftpPushChannel:
    def __init__(self, endpoint: Endpoint, pool: SftpPool) -> None:
        self.endpoint, self.pool = endpoint, pool

    def deliver(self, destination: str, file_name: str, content: bytes) -> str:
        try:
            self._upload(file_name, content)
        except RemoteRefused as exc:
            raise PermanentDeliveryError(str(exc)) from exc
        except RemoteUnavailable as exc:
            raise TransientDeliveryError(str(exc)) from exc
        return location(self.endpoint, file_name)

    def _upload(self, file_name: str, content: bytes) -> None:
        hidden = f".{file_name}.part"
        temporary = posixpath.join(self.endpoint.directory, hidden)
        with self.pool.session(self.endpoint) as sftp:
            sftp.putfo(io.BytesIO(content), temporary, file_size=len(content), confirm=False)
            size = sftp.stat(temporary).st_size
            if size != len(content):
                raise RemoteUnavailable(f"{location(self.endpoint, hidden)}: {size} bytes on the server, "
                                        f"{len(content)} sent")
            sftp.posix_rename(temporary, posixpath.join(self.endpoint.directory, file_name))
        log.info("push_uploaded", account=self.endpoint.account, remote=location(self.endpoint, file_name),
                 size=len(content))
