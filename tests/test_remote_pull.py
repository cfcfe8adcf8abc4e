"""Pull: flows collected from an account's own SFTP server, each remote file taken once.

The remote server is another gateway's embedded SFTP server (the files of its account's /out), or
OpenSSH's sshd where the collected files are moved into another folder. The polls are made one by
one, as the poller thread makes them, so that each test says exactly what each poll sees.
"""

from __future__ import annotations

import os
from datetime import timedelta

from sqlmodel import select

from gateway.data.db import session_scope
from gateway.data.findings import loads
from gateway.data.models import Collected, Direction, Flow, utcnow
from gateway.ingest.poller import Poller
from gateway.remote.endpoints import claim_pull, find
from tests.harness import REPORT_NS, SAMPLES, ack_for_name, renumber, wait_for, wait_report
from tests.remote_harness import RemoteSshd, key_line, needs_sshd, set_remote
from tests.sftp_harness import free_port

INVOICE = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()


def _invoice(number: str) -> bytes:
    return renumber(INVOICE, number)


def _flows(app) -> list[tuple[str, str]]:
    with session_scope(app.engine) as session:
        return sorted((f.original_name, f.channel) for f in session.exec(select(Flow)))


def _pull_from_site(config_file, site, account: str = "acme", *extra: str):
    """acme (or account) collects from acme's /out on site, logging in with acme's key there."""
    url = f"sftp://acme@127.0.0.1:{site.port}/out"
    set_remote(config_file, account, "pull", url, site.key, key_line(site.host_key), *extra)


def _endpoint(app, account: str = "acme"):
    return find(app.engine, account, Direction.PULL)


def test_final_names_held_still_become_one_flow_each_then_are_deleted(config_file, app, sftp_site):
    """Two polls see a file unchanged before it is taken; a .part file waits for its rename; each remote
    file is one flow, acknowledged in the local zone, and deleted on the server."""
    site = sftp_site()
    remote = site.zone() / "out"
    (remote / "a.xml").write_bytes(_invoice("PULL-A"))
    (remote / "b.xml").write_bytes(_invoice("PULL-B"))
    (remote / "c.xml.part").write_bytes(_invoice("PULL-C"))
    _pull_from_site(config_file, site)
    poller = Poller(app)

    poller.poll(_endpoint(app))
    assert _flows(app) == []
    poller.poll(_endpoint(app))
    assert _flows(app) == [("a.xml", "sftp-pull"), ("b.xml", "sftp-pull")]
    assert ack_for_name(config_file.parent, "acme", "a.xml") is not None
    assert sorted(os.listdir(remote)) == ["c.xml.part"]

    os.rename(remote / "c.xml.part", remote / "c.xml")
    poller.poll(_endpoint(app))
    poller.poll(_endpoint(app))
    poller.poll(_endpoint(app))
    assert [name for name, _ in _flows(app)] == ["a.xml", "b.xml", "c.xml"]
    assert os.listdir(remote) == []


def test_names_follow_the_rule_of_every_channel(config_file, app, sftp_site):
    """A remote file under a name the rule refuses is collected (and removed from the server) like any other, its
    flow refused with IRR_NOM_F; an ordinary name with spaces, parentheses and accents is not."""
    site = sftp_site()
    remote = site.zone() / "out"
    (remote / "a#b.xml").write_bytes(_invoice("PULL-NAME-1"))
    (remote / "Reçu (1).xml").write_bytes(_invoice("PULL-NAME-2"))
    _pull_from_site(config_file, site)
    poller = Poller(app)
    poller.poll(_endpoint(app))
    poller.poll(_endpoint(app))
    with session_scope(app.engine) as session:
        refusals = {f.original_name: [found.rule for found in loads(f.findings)] for f in session.exec(select(Flow))}
    assert refusals == {"a#b.xml": ["IRR_NOM_F"], "Reçu (1).xml": []}
    assert os.listdir(remote) == []


def test_file_still_growing_is_not_taken(config_file, app, sftp_site):
    site = sftp_site()
    growing = site.zone() / "out" / "g.xml"
    content = _invoice("PULL-G")
    growing.write_bytes(content[:100])
    _pull_from_site(config_file, site)
    poller = Poller(app)

    poller.poll(_endpoint(app))
    with open(growing, "ab") as fh:
        fh.write(content[100:])
    poller.poll(_endpoint(app))
    assert _flows(app) == []
    poller.poll(_endpoint(app))
    with session_scope(app.engine) as session:
        [flow] = session.exec(select(Flow)).all()
    assert app.store.get(flow.sha256) == content


def test_one_failing_endpoint_does_not_stop_the_others(config_file, app, sftp_site):
    """acme's server is down; mairie-exemple's flows are collected all the same."""
    site = sftp_site()
    (site.zone() / "out" / "m.xml").write_bytes(_invoice("PULL-M"))
    _pull_from_site(config_file, site, "mairie-exemple")
    down = f"sftp://acme@127.0.0.1:{free_port()}/out"
    set_remote(config_file, "acme", "pull", down, site.key, key_line(site.host_key), "--interval", "5")
    poller = Poller(app)
    poller.poll_due(utcnow())
    poller.poll_due(utcnow() + timedelta(hours=1))
    assert _flows(app) == [("m.xml", "sftp-pull")]


def test_a_crash_before_intake_committed_lets_the_file_be_taken_again(config_file, app, sftp_site):
    """A record without flow (the gateway stopped between recording the file and committing its flow, and
    the flow was never committed) does not keep the file from being taken."""
    site = sftp_site()
    remote = site.zone() / "out" / "r.xml"
    remote.write_bytes(_invoice("PULL-R"))
    _pull_from_site(config_file, site)
    endpoint = _endpoint(app)
    with session_scope(app.engine) as session:
        st = remote.stat()
        session.add(Collected(account="acme", location=f"sftp://acme@127.0.0.1:{site.port}/out", name="r.xml",
                              size=st.st_size, mtime=int(st.st_mtime), sha256="0" * 64))
    poller = Poller(app)
    poller.poll(endpoint)
    poller.poll(endpoint)
    assert _flows(app) == [("r.xml", "sftp-pull")] and not remote.exists()
    with session_scope(app.engine) as session:
        assert [(c.flow_id is not None, c.removed) for c in session.exec(select(Collected))] == [(True, True)]


@needs_sshd
def test_failed_move_is_retried_without_taking_the_file_twice(config_file, app, tmp_path):
    """The move into done/ fails while done/ is missing: the file stays on the server, and neither later
    polls nor a restarted poller take it again; once done/ exists, the next poll moves it."""
    sshd = RemoteSshd(tmp_path / "sshd", tmp_path / "remote" / "outbox").start()
    outbox = tmp_path / "remote" / "outbox"
    (outbox / "x.xml").write_bytes(_invoice("PULL-X"))
    set_remote(config_file, "acme", "pull", sshd.url(outbox), sshd.key, sshd.host_public_key(),
               "--after", "move:done")
    try:
        for _restart in range(2):
            poller = Poller(app)
            for _poll in range(3):
                poller.poll(_endpoint(app))
            assert _flows(app) == [("x.xml", "sftp-pull")] and (outbox / "x.xml").exists()
        (outbox / "done").mkdir()
        Poller(app).poll(_endpoint(app))
        assert sorted(os.listdir(outbox)) == ["done"] and os.listdir(outbox / "done") == ["x.xml"]
        assert _flows(app) == [("x.xml", "sftp-pull")]
    finally:
        sshd.stop()


def test_running_gateway_collects_and_reports(config_file, running, sftp_site):
    """The poller thread of a running gateway: a file left on the server is collected, judged and reported
    in the local zone, and deleted on the server."""
    site = sftp_site()
    remote = site.zone() / "out" / "e2e.xml"
    remote.write_bytes(_invoice("PULL-E2E"))
    _pull_from_site(config_file, site, "acme", "--interval", "0.1")
    report = wait_report(config_file.parent, "acme", "e2e.xml")
    assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INTEGRE"
    wait_for(lambda: not remote.exists(), what="the remote file deleted")


def test_a_poll_lease_its_holder_stopped_renewing_is_taken_over(config_file, app, sftp_site):
    """While a process holds the endpoint no other polls it; once the holder's lease has expired (it died),
    another process polls it, comparing with what the dead one saw last."""
    site = sftp_site()
    (site.zone() / "out" / "d.xml").write_bytes(_invoice("PULL-D"))
    _pull_from_site(config_file, site)
    dead, survivor = Poller(app), Poller(app)
    dead.poll(claim_pull(app.engine, dead.owner, 5.0, utcnow()))  # saw d.xml once, then died holding the lease
    survivor.poll_due(utcnow())
    assert _flows(app) == []
    survivor.poll_due(utcnow() + timedelta(seconds=6))
    assert _flows(app) == [("d.xml", "sftp-pull")]
