"""Validator processes: one Saxon per process, any number of calling threads, kill and replace.

A Saxon transform holds the GIL, so the rules run in separate processes, one per core, each started
with `spawn` (a Saxon runtime must never cross a fork()), compiling its packs once and warming them up.
The parent keeps a queue of idle processes: a calling thread takes one, sends it a task through the process's
pipe (the rules' verdict on a document, or a document's whole check: gateway.validate.rules.stage) and waits at
most the time budget for the answer. A process that overruns the budget is
killed; one that dies (crash, SIGKILL, out of memory) is noticed by its closed pipe. Either way only the
document in hand gets a VALIDATOR-ERROR verdict, and a replacement is started in the background.

A ProcessPoolExecutor would not do: one killed worker breaks the whole executor.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import queue
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.ops.log import log
from gateway.validate.rules.packs import Pack
from gateway.validate.rules.verdict import RulesVerdict, validator_error

if TYPE_CHECKING:
    from gateway.validate.rules.engine import Engine

_CONTEXT = multiprocessing.get_context("spawn")
_RESPAWN_DELAYS = (0.0, 1.0, 5.0, 30.0)  # seconds before each new try to replace a process; last repeats
T = TypeVar("T")
F = TypeVar("F")


class PoolError(Exception):
    """The pool cannot start: a validator process could not compile or warm up its packs."""


class ValidatorLost(Exception):
    """The process did not answer: timed out or died. The message is for the invoice's finding."""


class Validator:
    """One validator process and the parent's end of its pipe."""

    def __init__(self, packs: Sequence[Pack], preload: list[str] | None, scratch: Path, name: str) -> None:
        self._conn, child = _CONTEXT.Pipe()
        self.process = _CONTEXT.Process(target=serve, args=(child, list(packs), preload, scratch), name=name,
                                        daemon=True)
        self.process.start()
        child.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def alive(self) -> bool:
        """Whether the process still runs: its sentinel becomes ready when it ends, reaped or not."""
        return not wait([self.process.sentinel], timeout=0)

    def wait_ready(self, timeout: float) -> float:
        """Seconds the process took to compile and warm up; raises PoolError if it could not."""
        if not self._conn.poll(timeout):
            raise PoolError(f"validator {self.pid} not ready after {timeout} s")
        try:
            status, detail = self._conn.recv()
        except (EOFError, OSError) as error:
            raise PoolError(f"validator {self.pid} died while starting (exit code {self._exit_code()})") from error
        if status != "ready":
            raise PoolError(f"validator {self.pid} could not start: {detail}")
        return float(detail)

    def ask(self, request: tuple[Callable[..., Any], tuple[Any, ...]], budget: float) -> tuple[str, Any]:
        """The process's answer to a task ("ok" and its result, or "error" and why), or ValidatorLost when the
        process does not give it in time."""
        try:
            self._conn.send(request)
            if not self._conn.poll(budget):
                self.kill()
                raise ValidatorLost(f"no verdict within the time budget of {budget:g} s ([validate] time_budget); the "
                                   "validator was stopped")
            answer: tuple[str, Any] = self._conn.recv()
        except (EOFError, OSError) as error:
            raise ValidatorLost(f"the validator process stopped while judging this document "
                                f"(exit code {self._exit_code()})") from error
        return answer

    def stop(self) -> None:
        """Ask the process to end, and kill it if it does not."""
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self.process.join(timeout=5)
        self.kill()

    def kill(self) -> None:
        self.abort()
        self.process.join()
        self._conn.close()

    def abort(self) -> None:
        """Kill the process but leave the pipe to the thread using it, which will see it end."""
        if self.alive:
            self.process.kill()

    def _exit_code(self) -> int | None:
        self.process.join(timeout=1)
        return self.process.exitcode


def serve(conn: Connection, packs: list[Pack], preload: list[str] | None, scratch: Path) -> None:
    """A validator process: compile and warm up the preloaded packs (the others on first use), say so, then
    run the tasks it is sent until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us
    try:
        engine = _start(conn, packs, preload, scratch)
        while engine is not None and (request := conn.recv()) is not None:
            conn.send(_run(engine, *request))
    except (EOFError, OSError):  # the parent has gone (killed, or closed the pipe): nobody is left to answer
        pass


def _start(conn: Connection, packs: list[Pack], preload: list[str] | None, scratch: Path) -> Engine | None:
    """The engine, once its preloaded packs are compiled and warm; None (and the parent told why) if not."""
    from gateway.validate.rules.engine import Engine  # Saxon is loaded only in validator processes

    started = time.perf_counter()
    try:
        engine = Engine(packs, scratch)
        engine.warm_up(preload)
    except Exception as error:  # reported to the parent, which refuses to start without it
        conn.send(("failed", repr(error)))
        return None
    conn.send(("ready", time.perf_counter() - started))
    return engine


def _run(engine: Engine, task: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
    """task's result; an unexpected error fails this document only, the process lives on."""
    try:
        return "ok", task(engine, *args)
    except Exception as error:  # a bug or a library failure on one document must not end the validator
        return "error", f"internal error: {error!r}"


def rules_verdict(engine: Engine, content: bytes, syntax: str, profile: str) -> RulesVerdict:
    """The business rules' verdict on a document (a task for run())."""
    return engine.check(content, syntax, profile)


class ValidatorPool:
    """Validator processes shared by every thread of the gateway; check() may be called concurrently."""

    def __init__(self, packs: Sequence[Pack], processes: int, budget: float, start_timeout: float = 300.0,
                 preload: Collection[str] | None = None) -> None:
        """preload names the packs each process compiles before it is ready (default: all); the others are
        compiled by a process the first time a document needs them."""
        self.packs = tuple(packs)
        self.preload = None if preload is None else sorted(preload)
        self.processes = processes
        self.budget = budget
        self.start_timeout = start_timeout
        self._idle: queue.Queue[Validator] = queue.Queue()
        self._live: set[Validator] = set()
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._closed = threading.Event()
        self._numbers = itertools.count(1)
        self._scratch = Path(tempfile.mkdtemp(prefix="gateway-validators-"))

    def start(self) -> None:
        """Start every process at once and wait until all are warm; PoolError if one cannot start."""
        started = [self._spawn() for _ in range(self.processes)]
        try:
            for validator in started:
                self._ready(validator)
        except PoolError:
            self.close()
            raise
        self._started.set()
        log.info("validator_pool_started", processes=self.processes, budget=self.budget,
                 packs=[pack.name for pack in self.packs])

    def check(self, content: bytes, syntax: str, profile: str) -> RulesVerdict:
        """Judge one document by the rules in a free process; never raises for the document's sake."""
        return self.run(rules_verdict, (content, syntax, profile),
                        lambda reason: validator_error(reason, profile=profile))

    def run(self, task: Callable[..., T], args: tuple[Any, ...], failed: Callable[[str], F]) -> T | F:
        """task(engine, *args) in a free process (task: a module's function, which the process imports); what
        failed makes of the reason when no process gives its result (none free, timed out, died, or task raised)."""
        validator = self._acquire()
        if validator is None:
            running = self._started.is_set() and not self._closed.is_set()
            return failed("no validator process became free in time" if running
                          else "the validator processes are not running")
        try:
            status, result = validator.ask((task, args), self.budget)
        except ValidatorLost as lost:
            self._replace(validator, str(lost))
            return failed(str(lost))
        self._idle.put(validator)
        return result if status == "ok" else failed(result)

    def running(self) -> bool:
        """Started, not closed, and with at least one live process (for readiness probes)."""
        with self._lock:
            live = any(v.alive for v in self._live)
        return self._started.is_set() and not self._closed.is_set() and live

    def idle(self) -> int:
        """How many processes wait for a document (for operators and tests)."""
        return self._idle.qsize()

    def pids(self) -> list[int]:
        """Process ids of the live validators (for operators and tests)."""
        with self._lock:
            return sorted(v.pid for v in self._live if v.pid is not None)

    def close(self) -> None:
        """Stop the idle processes and kill the busy ones: calls still in progress get VALIDATOR-ERROR (a
        pipe in use by another thread is no place for the polite stop message)."""
        with self._lock:
            self._closed.set()
            live, self._live = self._live, set()
        idle = self._drain_idle()
        for validator in live:
            if validator in idle:
                validator.stop()
            else:
                validator.abort()
        shutil.rmtree(self._scratch, ignore_errors=True)
        log.info("validator_pool_stopped", processes=len(live))

    def _drain_idle(self) -> set[Validator]:
        idle = set()
        while True:
            try:
                idle.add(self._idle.get_nowait())
            except queue.Empty:
                return idle

    def __enter__(self) -> ValidatorPool:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _spawn(self) -> Validator:
        """A new process, known to close() from the start so that none outlives the pool."""
        with self._lock:
            if self._closed.is_set():
                raise PoolError("the pool is closed")
            validator = Validator(self.packs, self.preload, self._scratch, f"validator-{next(self._numbers)}")
            self._live.add(validator)
        return validator

    def _ready(self, validator: Validator) -> None:
        """Wait for a new process to be warm, then offer it to callers."""
        try:
            seconds = validator.wait_ready(self.start_timeout)
        except PoolError:
            self._forget(validator)
            raise
        log.info("validator_started", pid=validator.pid, seconds=round(seconds, 3))
        self._idle.put(validator)

    def _forget(self, validator: Validator) -> None:
        validator.kill()
        with self._lock:
            self._live.discard(validator)

    def _acquire(self) -> Validator | None:
        """A free, live process; waits as long as a replacement may take to start."""
        while self._started.is_set() and not self._closed.is_set():
            try:
                validator = self._idle.get(timeout=self.start_timeout + self.budget)
            except queue.Empty:
                return None
            if validator.alive:
                return validator
            self._replace(validator, "the validator process died while idle")  # no document was lost
        return None

    def _replace(self, lost: Validator, reason: str) -> None:
        """Forget a process that failed a document and start another one in the background."""
        self._forget(lost)
        log.warning("validator_lost", pid=lost.pid, exit_code=lost.process.exitcode, reason=reason)
        if not self._closed.is_set():
            threading.Thread(target=self._respawn, name="validator-respawn", daemon=True).start()

    def _respawn(self) -> None:
        """Start a replacement, trying again later if it fails, until the pool closes."""
        for delay in itertools.chain(_RESPAWN_DELAYS, itertools.repeat(_RESPAWN_DELAYS[-1])):
            if self._closed.wait(delay):
                return
            try:
                self._ready(self._spawn())
                return
            except PoolError as error:
                if not self._closed.is_set():  # a start cut short by close() is no failure
                    log.error("validator_respawn_failed", error=str(error))


def try_pack(pack: Pack, timeout: float = 120.0) -> None:
    """Raise PoolError unless a validator process can compile pack and run it on its family's sample."""
    with ValidatorPool([pack], processes=1, budget=timeout, start_timeout=timeout):
        pass
