"""Pieces the benchmarks share: percentiles, memory read from /proc, and uploads with OpenSSH's `sftp`."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.sftp_harness import OpenSSH

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def peak_rss_mb(pid: int) -> float:
    """The process's own peak resident memory (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _children() -> dict[int, list[int]]:
    found = defaultdict(list)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            found[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
    return found


def tree_rss_mb(pids: Iterable[int]) -> float:
    """Resident memory now of the processes and all their descendants, summed."""
    children, todo, total = _children(), list(pids), 0
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        with contextlib.suppress(OSError):  # ended meanwhile
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return total * PAGE_MB


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of the process and of its children it has waited for; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / TICKS  # utime, stime, cutime, cstime


def tree_cpu_s(pids: Iterable[int]) -> tuple[float, float]:
    """CPU seconds so far of the processes, and of all their descendants: where a pipeline spends its time."""
    children = _children()
    own, todo, below = 0.0, [], 0.0
    for pid in pids:
        own += _cpu_s(pid)
        todo += children.get(pid, [])
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        below += _cpu_s(pid)
    return own, below


@dataclass
class Upload:
    start: float  # time.time() when the client began the put
    end: float  # when the put had completed (the file closed on the server)


class SftpUploads:
    """Files put by `sessions` concurrent `sftp` batch sessions, file i by session i % sessions.

    Commands go through each client's standard input, so an upload can be paced: file i is sent at
    start + i / rate (all at once when rate is 0). The client echoes each command as it begins it, and
    every put is followed by a `pwd`, answered without a round trip, whose echo marks the put's end.
    """

    def __init__(self, client: OpenSSH, workdir: Path, files: list[Path], remote: str, sessions: int = 1,
                 rate: float = 0.0) -> None:
        self.client, self.workdir, self.remote, self.rate = client, workdir, remote, rate
        self.files = files
        self.shares = [files[s::sessions] for s in range(sessions)]
        self.procs: list[subprocess.Popen] = []
        self.threads: list[threading.Thread] = []
        self.uploads: dict[str, Upload] = {}

    def start(self) -> None:
        self.began = time.time()
        for s in range(len(self.shares)):
            workdir = self.workdir / f"session-{s}"
            workdir.mkdir(exist_ok=True)
            with open(workdir / "stderr", "wb") as stderr:  # the client keeps its own descriptor
                proc = subprocess.Popen(self.client.argv("-"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=stderr, text=True, env=self.client.env(workdir), cwd=workdir)
            self.procs.append(proc)
            for target in (self._feed, self._follow):
                thread = threading.Thread(target=target, args=(proc, s), daemon=True)
                thread.start()
                self.threads.append(thread)

    def _feed(self, proc: subprocess.Popen, s: int) -> None:
        step = len(self.shares)
        try:
            for k, path in enumerate(self.shares[s]):
                if self.rate:
                    time.sleep(max(0.0, self.began + (k * step + s) / self.rate - time.time()))
                proc.stdin.write(f"put {path} {self.remote}\npwd\n")
                proc.stdin.flush()
            proc.stdin.close()
        except (BrokenPipeError, ValueError):  # the session ended early: failed() says why
            pass

    def _follow(self, proc: subprocess.Popen, s: int) -> None:
        share, started, ended = self.shares[s], 0, 0
        for line in proc.stdout:
            if line.startswith("sftp> put "):
                self.uploads[share[started].name] = Upload(time.time(), float("nan"))
                started += 1
            elif line.startswith("sftp> pwd"):
                self.uploads[share[ended].name].end = time.time()
                ended += 1

    def failed(self) -> str | None:
        """Why a session ended before its last put, if one did."""
        for s, proc in enumerate(self.procs):
            if proc.poll() not in (None, 0):
                stderr = (self.workdir / f"session-{s}" / "stderr").read_text(errors="replace")
                return f"sftp session {s} exited with {proc.returncode}: {stderr.strip()[-500:]}"
        return None

    def wait(self, timeout: float) -> dict[str, Upload]:
        """Each file's upload, once every session has ended; RuntimeError if one failed or timed out."""
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for proc in self.procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"sftp sessions still running after {timeout:.0f} s") from None
        problem = self.failed()
        done = sum(1 for upload in self.uploads.values() if upload.end == upload.end)  # not NaN
        if problem or done < len(self.files):
            raise RuntimeError(problem or f"only {done} of {len(self.files)} puts completed")
        return self.uploads

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def upload(client: OpenSSH, workdir: Path, files: list[Path], remote: str, sessions: int = 1,
           timeout: float = 3600) -> dict[str, Upload]:
    """Put every file at once over `sessions` sessions; each file's upload."""
    uploads = SftpUploads(client, workdir, files, remote, sessions)
    uploads.start()
    try:
        return uploads.wait(timeout)
    finally:
        uploads.kill()
