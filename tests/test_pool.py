"""The validator pool: processes that die, overrun or stop on a document fail that document only."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gateway.config import ValidateSettings
from gateway.validate import check_document
from gateway.validate.rules import VALIDATOR_ERROR, Guards, PoolError, RulesStage, ValidatorPool, unjudged
from gateway.validate.rules.packs import Pack
from gateway.validate.rules.stage import count_elements
from tests.harness import CORPUS, SAMPLES, wait_for
from tests.rules_harness import UBL_OK, big_invoice, installed

OK = UBL_OK.read_bytes()
BR_03 = (SAMPLES / "flows" / "reject-xsd.xml").read_bytes()  # no issue date: BR-03 only
LONG = 60_000  # lines: about a second of Saxon's time here
TWO_ISSUE_DATES = OK.replace(b"<cbc:IssueDate>", b"<cbc:IssueDate>2026-10-01</cbc:IssueDate><cbc:IssueDate>", 1)


@pytest.fixture
def ubl_pool():
    """One validator process with CEN's UBL pack and a generous budget."""
    with ValidatorPool(installed("cen-en16931-ubl"), processes=1, budget=60.0) as pool:
        yield pool


def _in_background(pool: ValidatorPool, content: bytes) -> tuple[threading.Thread, dict]:
    """Judge content in another thread; returns the thread and where its verdict will be."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("verdict", pool.check(content, "ubl-invoice",
                                                                                          "en16931")))
    thread.start()
    return thread, result


def test_a_valid_document_names_the_pack_that_judged_it(ubl_pool):
    """A verdict carries the name, version and SHA-256 of every pack that judged it."""
    verdict = ubl_pool.check(OK, "ubl-invoice", "en16931")
    (pack,) = installed("cen-en16931-ubl")
    assert verdict.valid and verdict.findings == ()
    assert verdict.packs == (pack.ref,) and verdict.profile == "en16931"


def test_killing_a_validator_mid_document_fails_that_document_only(ubl_pool):
    """SIGKILL during a transform: VALIDATOR-ERROR for that invoice, and a new process judges the next one."""
    (first,) = ubl_pool.pids()
    thread, result = _in_background(ubl_pool, big_invoice(LONG))
    wait_for(lambda: ubl_pool.idle() == 0, what="the validator to take the document")
    time.sleep(0.2)  # into the transform, which takes about a second
    os.kill(first, signal.SIGKILL)
    thread.join(timeout=30)
    (finding,) = result["verdict"].findings
    assert (finding.rule, finding.severity) == (VALIDATOR_ERROR, "fatal")
    assert "stopped while judging this document" in finding.message
    assert ubl_pool.check(OK, "ubl-invoice", "en16931").valid
    assert first not in ubl_pool.pids() and len(ubl_pool.pids()) == 1


def test_a_document_over_the_time_budget_is_stopped():
    """A tiny budget: the process is killed, the invoice gets VALIDATOR-ERROR, a replacement takes over."""
    with ValidatorPool(installed("cen-en16931-ubl"), processes=1, budget=0.2) as pool:
        (first,) = pool.pids()
        (finding,) = pool.check(big_invoice(LONG), "ubl-invoice", "en16931").findings
        assert finding.rule == VALIDATOR_ERROR and "time budget of 0.2 s" in finding.message
        assert pool.check(OK, "ubl-invoice", "en16931").valid
        assert first not in pool.pids()


def test_a_dynamic_error_in_the_stylesheet_is_a_validator_error(ubl_pool):
    """Two issue dates (XSD-invalid) make CEN's BR-03 test raise XPTY0004: invalid, never valid."""
    (finding,) = ubl_pool.check(TWO_ISSUE_DATES, "ubl-invoice", "en16931").findings
    assert finding.rule == VALIDATOR_ERROR and "normalize-space" in finding.message
    assert [p.name for p in ubl_pool.check(OK, "ubl-invoice", "en16931").packs] == ["cen-en16931-ubl"]


def test_a_real_cii_invoice_raising_a_dynamic_error():
    """The corpus's one CII file on which CEN's stylesheet stops (XPTY0004) gets VALIDATOR-ERROR."""
    document = CORPUS / "mu__resources__Extended_fremdwaehrung.xml"
    if not document.is_file():
        pytest.skip(f"corpus file not found: {document}")
    with ValidatorPool(installed("cen-en16931-cii"), processes=1, budget=60.0) as pool:
        verdict = pool.check(document.read_bytes(), "cii", "en16931")
    assert verdict.fired == [VALIDATOR_ERROR] and not verdict.valid


def test_an_idle_process_that_died_costs_no_document(ubl_pool):
    """A process killed between documents is replaced before a document is handed to it."""
    (first,) = ubl_pool.pids()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: _gone(first), what="the process to end")
    assert ubl_pool.check(OK, "ubl-invoice", "en16931").valid
    assert first not in ubl_pool.pids()


def test_many_threads_share_the_processes():
    """Eight threads, two processes: every call gets its own document's verdict."""
    documents = [OK, BR_03] * 20
    with ValidatorPool(installed("cen-en16931-ubl"), processes=2, budget=60.0) as pool, \
            ThreadPoolExecutor(8) as threads:
        verdicts = list(threads.map(lambda content: pool.check(content, "ubl-invoice", "en16931"), documents))
    assert [v.fired for v in verdicts] == [[], ["BR-03"]] * 20


def test_a_closed_pool_judges_nothing_valid(ubl_pool):
    """After close, a call gets VALIDATOR-ERROR rather than a verdict nobody made."""
    ubl_pool.close()
    assert ubl_pool.check(OK, "ubl-invoice", "en16931").fired == [VALIDATOR_ERROR]
    assert ubl_pool.pids() == []


def test_a_pack_that_does_not_compile_stops_the_start(tmp_path):
    """A broken stylesheet is found when the pool starts, not on the first invoice."""
    broken = tmp_path / "broken.xslt"
    broken.write_text("<not-a-stylesheet/>")
    pack = Pack(name="broken", version="0", role="en16931", syntax="ubl", path=broken, sha256="", origin="test")
    with pytest.raises(PoolError, match="could not start"):
        ValidatorPool([pack], processes=1, budget=5.0).start()


def test_guards_refuse_before_any_process_is_asked():
    """Past max_elements the document is refused with its own rule naming the limit, without parsing it (the pool
    is not even up), however few lines hold the elements."""
    stage = RulesStage(ValidatorPool([], processes=1, budget=1.0), "en16931",
                       Guards(max_bytes=10**6, max_elements=100, max_attributes=10**6))
    for document in (OK, b" ".join(line.strip() for line in OK.splitlines())):  # as written, and on one line
        (finding,) = stage.check(document, "ubl-invoice").findings
        assert finding.rule == "RULES-TOO-LARGE" and finding.fatal
        assert f"{count_elements(OK)} elements, past [validate] max_elements = 100" in finding.message
    assert stage.check(OK[:10], "ubl-invoice").fired == [VALIDATOR_ERROR]  # under the limits: the pool, not up
    guards = Guards(max_bytes=1000, max_elements=10**6, max_attributes=10**6)
    (finding,) = RulesStage(stage.pool, "en16931", guards).check(OK, "ubl").findings
    assert f"{len(OK):,} bytes, past [validate] max_bytes = 1,000" in finding.message


def test_elements_are_counted_in_utf8_and_utf16():
    """Start tags only (not end tags, declarations, comments), whatever the encoding: a UTF-16 document is not
    counted twice over nor let through."""
    document = '<?xml version="1.0"?><!-- a --><a><b/><c>x</c></a>'
    assert count_elements(document.encode()) == 3
    assert count_elements(document.encode("utf-16")) == 3  # with its byte order mark
    assert count_elements(document.encode("utf-16-le")) == count_elements(document.encode("utf-16-be")) == 3


def test_stage_from_settings_refuses_an_unknown_profile():
    """A typo in [validate] profile is an error at start, not a silent default."""
    with pytest.raises(ValueError, match="unknown rules profile"):
        RulesStage.from_settings(ValidateSettings(profile="en-16931"))


def _gone(pid: int) -> bool:
    """Whether every thread of pid has ended: the zombie main thread of a killed process shows before the
    others have finished, and until then the process's pipes are still open."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state in ("Z", "X") and len(os.listdir(f"/proc/{pid}/task")) <= 1
    except FileNotFoundError:
        return True


def test_only_documents_past_their_xsd_reach_the_rules():
    """unjudged: nothing for an XSD-invalid document; a valid one the rules could not judge is VALIDATOR-ERROR,
    never valid."""
    assert unjudged(check_document(BR_03), "no stage") is None  # reject-xsd.xml fails its XSD
    assert unjudged(check_document(OK), "no stage").fired == [VALIDATOR_ERROR]


def test_closing_with_a_document_in_hand_fails_that_document():
    """close() while a process judges: the call gets VALIDATOR-ERROR and no process is left behind."""
    pool = ValidatorPool(installed("cen-en16931-ubl"), processes=1, budget=60.0)
    pool.start()
    (pid,) = pool.pids()
    thread, result = _in_background(pool, big_invoice(LONG))
    wait_for(lambda: pool.idle() == 0, what="the validator to take the document")
    pool.close()
    thread.join(timeout=30)
    assert result["verdict"].fired == [VALIDATOR_ERROR]
    wait_for(lambda: _gone(pid), what="the process to end")
