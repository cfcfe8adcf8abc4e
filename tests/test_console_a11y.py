"""Accessibility basics of every console page, in a real headless Chromium against a real `gateway run`: axe-core
(the copy the axe-playwright-python package carries, injected by the test, never fetched) finds no serious or
critical violation, which includes a label for every form field; and the keyboard alone (Tab) reaches every
control of the page."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.harness import SAMPLES, renumber
from tests.test_console import GOOD, OPERATOR, Site, deposit, log_in
from tests.test_console_operator import operator_site
from tests.web_harness import RECIPIENT, SUPPLIER

REJECTED = (SAMPLES / "flows" / "reject-xsd.xml").read_bytes()
SERIOUS = {"serious", "critical"}
# Every control a person may operate; hidden inputs and what the page hides are not controls.
CONTROLS = "a[href], button, input:not([type=hidden]), select, textarea, summary"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The operator tests' site: web, back and SFTP configured."""
    with operator_site(tmp_path_factory) as made:
        yield made


@pytest.fixture(scope="module")
def pages(site: Site) -> dict[str, list[str]]:
    """Each account's pages, with data on them: an accepted invoice and a rejected flow of the supplier."""
    accepted = deposit(site, "a11y-ok.xml", renumber(GOOD, "A11Y-1"))
    rejected = deposit(site, "a11y-rejected.xml", REJECTED)
    invoice = f"/console/invoices/{accepted['invoices'][0]['id']}"
    return {
        SUPPLIER: ["/console/", "/console/invoices", "/console/invoices?status=01", invoice,
                   f"/console/flows/{accepted['id']}", f"/console/flows/{rejected['id']}", "/console/flows",
                   "/console/deposit", "/console/notifications"],
        RECIPIENT: ["/console/", "/console/invoices", invoice],
        OPERATOR: ["/console/", "/console/queue", "/console/throughput", "/console/flows",
                   f"/console/flows/{rejected['id']}", "/console/deliveries", "/console/directory",
                   "/console/directory?q=exemple", "/console/directory/21370999100011", "/console/accounts",
                   f"/console/accounts/{SUPPLIER}"],
    }


def _serious(page) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each with the elements at fault."""
    violations = Axe().run(page).response["violations"]
    return [f"{page.url} {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
            for v in violations if v["impact"] in SERIOUS]


@pytest.mark.parametrize("user", [SUPPLIER, RECIPIENT, OPERATOR])
def test_pages_pass_axe_core_without_serious_violations(site, pages, new_page, user):
    page = new_page(site.url)
    log_in(page, user)
    found = []
    for path in pages[user]:
        page.goto(path)
        found += _serious(page)
    page.get_by_role("button", name="Log out").click()  # the login page too
    page.wait_for_url("**/console/login*", wait_until="load")  # the URL changes before the document exists
    found += _serious(page)
    assert found == []


# How a control is told apart: its markup, or its group for radio buttons (Tab enters a group once, the arrows
# move within it).
_DESCRIBED = "e => e.type === 'radio' ? `radio group ${e.name}` : e.outerHTML.slice(0, 160)"


def _controls(page) -> list[str]:
    """A description of each visible control of the page, the way _focused describes the focused one."""
    return page.evaluate(f"""selector => [...new Set([...document.querySelectorAll(selector)]
        .filter(e => e.getClientRects().length && !e.disabled && getComputedStyle(e).visibility !== 'hidden')
        .map({_DESCRIBED}))]""", CONTROLS)


def _focused(page) -> str | None:
    return page.evaluate(f"(() => {{ const e = document.activeElement;"
                         f" return e && e !== document.body ? ({_DESCRIBED})(e) : null; }})()")


def _reached_by_tab(page, controls: int) -> set[str]:
    """The controls focused by pressing Tab from the top of the page until focus comes round again (a date field
    takes a Tab for each of its day, month and year, and its calendar button)."""
    reached: set[str] = set()
    page.keyboard.press("Tab")
    first = _focused(page)
    for _ in range(4 * controls + 5):
        focused = _focused(page)
        if focused is not None:
            reached.add(focused)
        page.keyboard.press("Tab")
        if _focused(page) == first:
            break
    return reached


@pytest.mark.parametrize("user", [SUPPLIER, OPERATOR])
def test_the_keyboard_reaches_every_control(site, pages, new_page, user):
    page = new_page(site.url)
    log_in(page, user)
    missed = {}
    for path in pages[user]:
        page.goto(path)
        controls = _controls(page)
        assert controls, f"{path} has no control at all"
        reached = _reached_by_tab(page, len(controls))
        unreached = [c for c in controls if c not in reached]
        if unreached:
            missed[path] = unreached
    assert missed == {}


def test_the_checks_find_a_missing_label_and_a_control_out_of_the_tab_order(site, new_page):
    """The checks above can fail: a form field whose label is taken away is a critical violation, a link taken
    out of the tab order is not reached."""
    page = new_page(site.url)
    log_in(page, SUPPLIER)
    page.goto("/console/invoices")
    assert _serious(page) == []
    page.evaluate("document.querySelectorAll('label').forEach(l => l.remove())")
    assert any(" label (critical)" in line for line in _serious(page))
    page.evaluate("document.querySelector('a[href=\"/console/deposit\"]').tabIndex = -1")
    controls = _controls(page)
    reached = _reached_by_tab(page, len(controls))
    missed = [c for c in controls if c not in reached]
    assert len(missed) == 1 and "/console/deposit" in missed[0]
