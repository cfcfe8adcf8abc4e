"""Delivery onto an account's own SFTP server (push).

The file is uploaded under a hidden temporary name, its size checked on the server, then renamed
over its final name with posix-rename, which replaces atomically: a reader on the server never sees
half a file, and a delivery made again after a crash replaces the same file. Failures that may pass
(server unreachable or slow, connection dropped) are retried a few times within one attempt, with
exponential backoff and jitter, each time on a fresh connection; one still failing then goes back to
the delivery queue, which reschedules it. A refused host key or login, or a missing folder, is
permanent: no retry could fix it, an operator must.
"""

from __future__ import annotations

import io
import posixpath

import tenacity

from gateway.config import RemoteSettings
from gateway.log import log
from gateway.models import Endpoint
from gateway.remote import RemoteRefused, RemoteUnavailable, SftpPool
from gateway.remote.endpoints import location
from gateway.route.channels import PermanentDeliveryError, TransientDeliveryError


class SftpPushChannel:
    def __init__(self, endpoint: Endpoint, pool: SftpPool, settings: RemoteSettings) -> None:
        self.endpoint, self.pool, self.settings = endpoint, pool, settings

    def deliver(self, destination: str, file_name: str, content: bytes) -> str:
        try:
            self._retrying()(self._upload, file_name, content)
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

    def _retrying(self) -> tenacity.Retrying:
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RemoteUnavailable),
            stop=tenacity.stop_after_attempt(self.settings.push_attempts),
            wait=tenacity.wait_random_exponential(multiplier=self.settings.push_wait,
                                                  max=self.settings.push_wait_max),
            before_sleep=self._retry_logged, reraise=True)

    def _retry_logged(self, state: tenacity.RetryCallState) -> None:
        log.warning("push_retry", account=self.endpoint.account, attempt=state.attempt_number,
                    wait=round(state.next_action.sleep, 3), error=str(state.outcome.exception()))
