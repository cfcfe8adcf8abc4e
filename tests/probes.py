"""Probes for the hostile-input test: a planted secret with a web server recording every request, and a
sampler of a process tree's resident memory."""

from __future__ import annotations

import http.server
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Bait:
    """A secret file the XXE files point at, and a web server on 127.0.0.1 recording every request."""

    secret: Path
    token: str
    url: str = ""
    hits: list[str] = field(default_factory=list)

    @classmethod
    @contextmanager
    def planted(cls, folder: Path) -> Iterator[Bait]:
        """A random token in folder/secret.txt, and the recording server running until the end."""
        bait = cls(folder / "secret.txt", f"TOKEN-{secrets.token_hex(16)}")
        bait.secret.write_text(bait.token)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Recorder,), {"bait": bait}))
        bait.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield bait
        finally:
            server.shutdown()
            server.server_close()


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Records every request, and answers each with a DTD that would carry the token out if ever used."""

    bait: Bait

    def do_GET(self) -> None:
        self.bait.hits.append(self.path)
        body = f'<!ENTITY send "{self.bait.token}"><!ENTITY x "{self.bait.token}">'.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        """Silent: the requests are in hits."""


class RssSampler:
    """Samples VmRSS of a process and of all its descendants every interval, keeping each one's peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return self.peaks

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in self._family(self.pid):
                rss = _rss(pid)
                label = "gateway" if pid == self.pid else f"child {pid} ({_command(pid)})"
                if rss is not None:
                    self.peaks[label] = max(self.peaks.get(label, 0), rss)

    def _family(self, pid: int) -> list[int]:
        family = [pid]
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:  # the task ended meanwhile
                continue
            for child in children:
                family += self._family(int(child))
        return family


def _rss(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((line for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return int(line.split()[1]) * 1024 if line else None


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:60]
    except OSError:
        return "?"
