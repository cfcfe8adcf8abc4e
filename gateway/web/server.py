"""The web role: uvicorn serving the ASGI application in a thread of `gateway run`, on [web] listen.

The runner starts it with the other roles and stops it first, like the SFTP server: requests in flight
finish (uvicorn's graceful shutdown), new ones are refused. The socket is bound here, so a port 0 is known
(and logged) before the first request.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from gateway.app import App
from gateway.ops.log import log
from gateway.web import create_app

_START_TIMEOUT = 30.0


class WebServer:
    def __init__(self, app: App) -> None:
        self.app = app
        settings = app.settings.web
        self.host, port = settings.address
        self.tls = bool(settings.certfile and settings.keyfile)
        # uvicorn annotates the grace period as int; it hands it to asyncio.timeout, which takes float seconds
        self._config = uvicorn.Config(create_app(app), host=self.host, port=port, log_config=None,
                                      access_log=False, lifespan="off", server_header=False,
                                      timeout_graceful_shutdown=app.settings.worker.stop_grace,  # type: ignore[arg-type]
                                      ssl_certfile=str(settings.certfile) if self.tls else None,
                                      ssl_keyfile=str(settings.keyfile) if self.tls else None)
        self._server = uvicorn.Server(self._config)
        self._socket = _bind(self.host, port)
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="web", daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        log.info("web_started", host=self.host, port=self.port, tls=self.tls,
                 url=f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/api/docs")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join()
        self._socket.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
