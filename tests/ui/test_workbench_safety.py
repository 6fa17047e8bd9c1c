"""The workbench never runs text from data, users or models, and its main pages pass axe-core's
accessibility rules at the serious and critical levels."""

from __future__ import annotations

from pathlib import Path

import pytest
from http_server import ServerProcess
from sqlalchemy import update
from workbench_world import IMG, PAYLOADS, PROJECT_NAME, SCRIPT, VIEWER_TOKEN, Discovered, sign_in

from editing_service.client import EditingClient
from editing_service.store import Database
from editing_service.store.tables import FeatureRow

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SCRIPTS_OF_THE_PAGE = 2  # index.html's own: Cytoscape.js and the app module


def assert_nothing_ran(page: object) -> None:
    assert page.evaluate("window.__xss") is None
    assert page.locator("img").count() == 0
    assert page.evaluate("document.scripts.length") == SCRIPTS_OF_THE_PAGE
    assert not [e for e in page.errors if "Content Security Policy" in e], page.errors  # escaped before CSP


def card_with_payload(client: EditingClient, project_id: str) -> dict:
    """A feature whose top examples hold a payload token (the dataset text reached the card)."""
    for item in client.features(project_id, limit=1000)["items"]:
        if not item["has_card"]:
            continue
        card = client.feature(project_id, item["site"], item["feature"])
        if any(t in PAYLOADS for ex in card["card"]["top_examples"] for t in ex["tokens"]):
            return card
    raise AssertionError("no card shows a payload token: the world should put them in the top examples")


def test_markup_from_data_labels_rationales_and_names_is_shown_as_text(
    page: object, server: ServerProcess, client: EditingClient, discovered: Discovered,
) -> None:
    card = card_with_payload(client, discovered.id)
    db = Database(f"sqlite:///{server.root / 'home' / 'service.db'}")
    with db.session() as session:  # a model whose vocabulary makes this label
        session.execute(update(FeatureRow).where(FeatureRow.project_id == discovered.id,
                                                 FeatureRow.site == card["site"], FeatureRow.feature == card["feature"])
                        .values(label=SCRIPT))
    db.dispose()
    base = f"{server.url}/ui/#/p/{discovered.id}"

    sign_in(page, reviewer=IMG)
    assert PROJECT_NAME in page.inner_text("#project-list")
    assert_nothing_ran(page)

    page.goto(f"{base}/f/{card['site']}/{card['feature']}")
    page.wait_for_selector(".feature-card .examples")
    page.fill(".feature-card textarea.rationale", SCRIPT + " " + IMG)
    page.click(".feature-card button.relevant")
    page.locator(".history td", has_text=f"{SCRIPT} {IMG}").first.wait_for()
    text = page.inner_text("main")
    assert SCRIPT in text and IMG in text  # the label, the rationale, the reviewer, the dataset's tokens
    assert any(t in text for t in PAYLOADS)
    assert_nothing_ran(page)
    flag = next(f for f in client.flags(discovered.id) if f["id"] == card["id"])
    assert (flag["reviewer"], flag["rationale"]) == (IMG, SCRIPT + " " + IMG)

    for path, shown in (("flags", "#audit-table"), ("queue", "#queue-card"), ("", "#jobs")):
        page.goto(f"{base}/{path}".rstrip("/"))
        page.wait_for_selector(shown)
        assert_nothing_ran(page)
    assert IMG in page.inner_text("main h1")  # the project's name

    page.goto(f"{base}/circuit")
    page.wait_for_selector("#graph[data-ready='true']")
    page.fill("#circuit-search", "<script>")
    assert SCRIPT in page.inner_text("#search-results")
    assert_nothing_ran(page)

    edits = [e for e in client.edits(discovered.id) if e["status"] == "succeeded"]
    if edits:
        page.goto(f"{base}/play")
        page.fill("#play-text", f"she {SCRIPT} nurse {IMG}")
        page.click("#play-form button[type=submit]")
        page.wait_for_selector("#predictions")
        assert_nothing_ran(page)


MAIN_PAGES = ["projects", "p/{p}", "p/{p}/circuit", "p/{p}/f/{site}/{feature}", "p/{p}/queue", "p/{p}/flags",
              "p/{p}/edits", "p/{p}/play"]


@pytest.mark.bypass_csp
def test_main_pages_have_no_serious_or_critical_axe_violation(
    page: object, server: ServerProcess, client: EditingClient, discovered: Discovered,
) -> None:
    feature = next(f for f in client.features(discovered.id, limit=100)["items"] if f["has_card"])
    paths = [p.format(p=discovered.id, site=feature["site"], feature=feature["feature"]) for p in MAIN_PAGES]
    edits = [e for e in client.edits(discovered.id) if e["status"] == "succeeded"]
    paths += [f"p/{discovered.id}/e/{e['id']}" for e in edits[:1]]
    sign_in(page)
    found = {}
    for path in paths:
        page.goto(f"{server.url}/ui/#/{path}")
        page.wait_for_load_state("networkidle")
        page.wait_for_selector("main h1")
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']}))
            .violations.filter(v => ['serious', 'critical'].includes(v.impact))
            .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)""")
        if violations:
            found[path] = violations
    assert found == {}


def test_a_viewer_sees_no_control_it_may_not_use_and_the_api_refuses_it(
    page: object, server: ServerProcess, client: EditingClient, discovered: Discovered,
) -> None:
    feature = next(f for f in client.features(discovered.id, limit=100)["items"] if f["has_card"])
    base = f"{server.url}/ui/#/p/{discovered.id}"
    sign_in(page, token=VIEWER_TOKEN, reviewer="Vic")
    assert page.locator("#create-project").count() == 0
    assert "(viewer)" in page.inner_text("#who")
    page.goto(f"{base}/f/{feature['site']}/{feature['feature']}")
    page.wait_for_selector(".feature-card .examples")
    assert page.locator("#read-only").count() == 1
    assert page.locator(".feature-card button.spurious, .feature-card textarea.rationale").count() == 0
    page.goto(f"{base}/queue")
    page.wait_for_selector("#queue-card article")
    assert page.locator("#apply-lexicon").count() == 0
    calls = []
    page.on("request", lambda r: calls.append(r.method) if "/v1/" in r.url else None)
    page.keyboard.press("s")
    page.wait_for_timeout(300)
    assert "PUT" not in calls
    page.goto(f"{base}/edits")
    page.wait_for_selector("#edit-list")
    assert page.locator("#create-edit").count() == 0
    page.goto(base)
    page.wait_for_selector("#jobs table")
    assert page.locator("#discover").count() == 0

    with EditingClient(server.url, token=VIEWER_TOKEN) as vic:
        answer = vic.http.put(f"/projects/{discovered.id}/features/{feature['site']}/{feature['feature']}/flag",
                              json={"state": "spurious", "rationale": "no", "reviewer": "Vic"})
    assert answer.status_code == 403 and "may not flags:write" in answer.json()["detail"]
