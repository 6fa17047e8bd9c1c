"""The reviewer's workbench in a real browser (headless Chromium) against a real server process: sign
in, projects, job progress, the circuit and its cards, token shading, the review queue from the
keyboard, suggestions, edits and their reports, comparison, the playground, and the flags export
re-applied with the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from api_world import TINY_SETTINGS, spec_for
from http_server import TOKENS, ServerProcess
from workbench_world import PROJECT_NAME, Discovered, sign_in

from editing_service.client import EditingClient
from editing_service.features.flags import read_flags_file

WAIT_MS = 60_000


def open_page(page: object, server: ServerProcess, path: str) -> None:
    page.goto(f"{server.url}/ui/#/{path}")


def test_sign_in_refuses_a_bad_token_and_lists_projects(page: object, server: ServerProcess,
                                                         discovered: Discovered) -> None:
    page.fill("#token", "not-a-token")
    page.click("button[type=submit]")
    page.wait_for_selector("#token-error:has-text('not valid')")
    assert page.evaluate("sessionStorage.getItem('editing-service.token')") is None
    sign_in(page)
    row = page.locator("#project-list tr", has_text=discovered.id)
    assert PROJECT_NAME in row.inner_text()
    assert page.evaluate("document.cookie") == ""
    assert page.errors == []


def test_create_project_shows_the_api_message_next_to_the_field(page: object, server: ServerProcess) -> None:
    sign_in(page)
    page.fill("#f-name", "outside")
    page.fill("#f-model", "/etc")
    page.click("#create-project button[type=submit]")
    error = page.wait_for_selector("#f-model-error:not(:empty)")
    assert "outside the allowed roots" in error.inner_text()
    assert page.get_attribute("#f-model", "aria-invalid") == "true"
    page.fill("#f-name", "")
    page.fill("#f-model", "")
    page.click("#create-project button[type=submit]")
    assert "name" in page.wait_for_selector("#f-name-error:not(:empty)").inner_text()


def test_job_progress_updates_live_to_the_end(page: object, server: ServerProcess, client: EditingClient) -> None:
    root = server.root
    # SAEs that train for some seconds, so that the page has a running job to show on a fast machine too
    slower = {**TINY_SETTINGS, "sae": {"d_sae": 4096, "k": 4, "n_epochs": 100, "batch_size": 4}}
    project = client.create_project(name="progress", model=str(root / "models" / "bert"),
                                    dataset={"inline": spec_for(root)}, settings=slower)
    sign_in(page)
    open_page(page, server, f"p/{project['id']}")
    page.wait_for_selector("#discover")
    page.evaluate("window.__sameDocument = true")
    page.click("#discover")
    shown = []
    for _ in range(2400):
        job = page.locator("#jobs [data-job-id]").first
        shown.append((job.get_attribute("data-status"), job.locator(".step").inner_text(),
                      job.locator("progress").get_attribute("value")))
        if page.locator("#sae-quality").count():
            break
        page.wait_for_timeout(50)
    assert page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
    running = [s for s in shown if s[0] == "running"]
    assert running and len(set(shown)) >= 3, shown  # queued, then steps and fractions as they came
    job = client.http.get(f"/projects/{project['id']}/jobs").json()["items"][0]
    assert job["status"] == "succeeded"
    assert page.get_attribute("#jobs progress", "value") == "1"
    sites = client.http.get(f"/projects/{project['id']}/discovery").json()["sites"]
    assert page.locator("#sae-quality tbody tr").count() == len(sites)


def test_circuit_node_click_opens_its_card(page: object, server: ServerProcess, client: EditingClient,
                                           discovered: Discovered) -> None:
    graph = client.http.get(f"/projects/{discovered.id}/circuit").json()
    node = next(n for n in graph["nodes"] if n["kind"] == "feature")
    sign_in(page)
    open_page(page, server, f"p/{discovered.id}/circuit")
    page.wait_for_selector("#graph[data-ready='true']")
    summary = page.inner_text("#circuit-summary")
    assert f"{len(graph['nodes'])} nodes" in summary and f"{len(graph['edges'])} edges" in summary
    drawn = page.evaluate("""() => { const cy = document.querySelector('#graph')._cyreg.cy;
        return {nodes: cy.nodes().length, errors: cy.nodes('[kind = "error"]').length, edges: cy.edges().length}; }""")
    assert drawn == {"nodes": len(graph["nodes"]), "edges": len(graph["edges"]),
                     "errors": sum(n["kind"] == "error" for n in graph["nodes"])}
    position = page.evaluate(f"""() => document.querySelector('#graph')._cyreg.cy
        .getElementById({node['id']!r}).renderedPosition()""")
    box = page.locator("#graph").bounding_box()
    page.mouse.click(box["x"] + position["x"], box["y"] + position["y"])
    card = page.wait_for_selector(f"#side article[data-feature-id='{node['id']}']")
    assert node["id"] in card.inner_text()
    assert page.locator("#side .tok.on").count() > 0
    assert page.locator("#head-lens").count() == 1
    page.fill("#circuit-search", node["id"])
    assert page.locator("#search-results li").first.inner_text().startswith(node["id"])

    listed = {f["id"] for f in client.features(discovered.id, limit=1000)["items"]}
    outside = next(n for n in graph["nodes"] if n["kind"] == "feature" and n["id"] not in listed)  # 50 drawn, 20 kept
    page.evaluate(f"() => document.querySelector('#graph')._cyreg.cy.getElementById({outside['id']!r}).emit('tap')")
    page.wait_for_selector("#side :text('it has no card')")
    assert outside["id"] in page.inner_text("#side")


def test_card_shades_each_token_by_its_activation(page: object, server: ServerProcess, client: EditingClient,
                                                  discovered: Discovered) -> None:
    feature = next(f for f in client.features(discovered.id, limit=100)["items"] if f["has_card"])
    card = client.feature(discovered.id, feature["site"], feature["feature"])["card"]
    example = card["top_examples"][0]
    sign_in(page)
    open_page(page, server, f"p/{discovered.id}/f/{feature['site']}/{feature['feature']}")
    line = page.locator(".examples p.tokens").first
    line.wait_for()
    spans = line.locator(".tok")
    values = [float(v) for v in spans.evaluate_all("els => els.map(e => e.dataset.value)")]
    assert values == pytest.approx(example["values"])
    colours = spans.evaluate_all("els => els.map(e => e.style.backgroundColor)")
    for value, colour in zip(values, colours, strict=True):
        assert (colour != "") == (value > 0)
    alphas = [float(c.rsplit(",", 1)[1].rstrip(")")) if c.startswith("rgba") else 1.0 for c in colours if c]
    fired = [v for v in values if v > 0]
    assert [a for _, a in sorted(zip(fired, alphas, strict=True))] == sorted(alphas)  # darker where stronger
    assert spans.nth(example["max_value_token_index"]).get_attribute("class").split() == ["tok", "on", "peak"]


def test_queue_flags_from_the_keyboard_and_the_audit_shows_it(page: object, server: ServerProcess,
                                                              client: EditingClient, discovered: Discovered) -> None:
    sign_in(page, reviewer="Kim")
    open_page(page, server, f"p/{discovered.id}/queue")
    first = page.wait_for_selector("#queue-card article").get_attribute("data-feature-id")
    before = page.inner_text("#remaining")
    page.keyboard.press("j")
    second = page.wait_for_selector(f"#queue-card article:not([data-feature-id='{first}'])").get_attribute("data-feature-id")
    page.keyboard.press("k")
    page.wait_for_selector(f"#queue-card article[data-feature-id='{first}']")
    page.keyboard.press("r")
    page.keyboard.type("fires on gendered words only")
    page.keyboard.press("Escape")
    page.keyboard.press("s")
    page.wait_for_selector(f"#queue-card article[data-feature-id='{second}']")
    assert page.inner_text("#remaining") != before
    site, feature = first.rsplit("/", 1)
    flag = next(f for f in client.flags(discovered.id) if f["id"] == first)
    assert (flag["state"], flag["rationale"], flag["reviewer"], flag["principal"]) == (
        "spurious", "fires on gendered words only", "Kim", "ana")
    entry = client.http.get(f"/projects/{discovered.id}/audit", params={"site": site, "feature": feature}).json()
    assert entry["items"][-1]["rationale"] == "fires on gendered words only"
    open_page(page, server, f"p/{discovered.id}/flags")
    row = page.locator("#audit-table tr", has_text="fires on gendered words only")
    assert first in row.inner_text() and "Kim" in row.inner_text()


def test_apply_suggestions_says_how_many_before_it_flags(page: object, server: ServerProcess,
                                                         client: EditingClient, discovered: Discovered) -> None:
    suggested = client.features(discovered.id, suggestion="lexicon", limit=1000)["items"]
    assert suggested, "the tiny data's pronouns should be suggested by the gendered lexicon"
    for f in suggested[1:]:  # other tests may have flagged them: leave one flagged, clear the rest
        if f["flag"] is not None:
            client.http.delete(f"/projects/{discovered.id}/features/{f['site']}/{f['feature']}/flag",
                               params={"reviewer": "Ana", "rationale": "review again"}).raise_for_status()
    if suggested[0]["flag"] is None:
        client.flag(discovered.id, suggested[0]["site"], suggested[0]["feature"], state="spurious",
                    rationale="already decided", reviewer="Ana")
    pending = suggested[1:]
    sign_in(page)
    open_page(page, server, f"p/{discovered.id}/queue")
    page.click("#apply-lexicon")
    dialog = page.wait_for_selector("dialog[open]")
    assert f"Flag {len(pending)} feature" in dialog.inner_text()
    page.click("dialog[open] button[value=no]")
    assert all(f["flag"] is None for f in client.features(discovered.id, suggestion="lexicon", limit=1000)["items"]
               if f["id"] in {p["id"] for p in pending})
    page.click("#apply-lexicon")
    page.click("dialog[open] button[value=yes]")
    page.wait_for_selector(f"#toast:has-text('{len(pending)} features flagged spurious')")
    now = {f["id"]: f["flag"] for f in client.features(discovered.id, suggestion="lexicon", limit=1000)["items"]}
    assert all(now[f["id"]] == "spurious" for f in pending)


def test_edit_from_the_page_its_report_and_a_comparison(page: object, server: ServerProcess,
                                                        client: EditingClient, discovered: Discovered) -> None:
    if not any(f["state"] == "spurious" for f in client.flags(discovered.id)):
        client.apply_suggestions(discovered.id, kind="lexicon", reviewer="Ana")
    sign_in(page)
    open_page(page, server, f"p/{discovered.id}/edits")
    page.wait_for_selector("#create-edit")
    before = {e["id"] for e in client.edits(discovered.id)}
    page.click("#create-edit button[type=submit]")
    page.wait_for_function(f"() => document.querySelectorAll('#edit-list tbody tr').length === {len(before) + 1}")
    first = next(e["id"] for e in client.edits(discovered.id) if e["id"] not in before)
    page.wait_for_selector(f"#edit-list progress, #edit-list a:text-is('{first}')")  # its job's progress
    page.click(f"#edit-list a:text-is('{first}')", timeout=WAIT_MS)
    page.wait_for_selector("table.rows")
    report = client.report(discovered.id, first)
    names = page.locator("table.rows tbody tr td:first-child").all_inner_texts()
    assert names == [row.name for row in report.rows]
    assert page.locator("figure.chart svg rect.bar").count() == 2 * len(report.rows)
    assert page.locator("section.cells").count() == len(report.rows)
    page.emulate_media(media="print")  # "print to PDF": the report without the app around it
    assert not page.is_visible("header.top") and not page.is_visible("#download-edited")
    assert page.is_visible("table.rows") and page.is_visible("figure.chart")
    assert page.pdf()[:5] == b"%PDF-"
    page.emulate_media(media="screen")

    kept = next(f for f in client.flags(discovered.id) if f["state"] == "spurious")
    client.flag(discovered.id, kept["site"], kept["feature"], state="task_relevant", rationale="second edit",
                reviewer="Ana")
    second = client.create_edit(discovered.id, reviewer="Ana")
    client.wait(second["job"]["id"], timeout=300, poll=0.5)
    open_page(page, server, f"p/{discovered.id}/edits")
    page.check(f"input.pick[value='{first}']")
    page.check(f"input.pick[value='{second['edit']['id']}']")
    page.click("#compare")
    page.wait_for_selector("#compare-diff")
    assert page.locator(".compare-col").count() == 2
    other = client.report(discovered.id, second["edit"]["id"])
    cell = page.locator("#compare-diff tbody tr", has_text="shift_retrained").locator("td").nth(2).inner_text()
    expected = other.rows[2].group_balanced_accuracy - report.rows[2].group_balanced_accuracy
    assert float(cell) == pytest.approx(expected, abs=5e-4)


def test_playground_shows_both_predictions_and_where_flagged_features_fire(
    page: object, server: ServerProcess, client: EditingClient, discovered: Discovered,
) -> None:
    edit = next(e for e in client.edits(discovered.id) if e["status"] == "succeeded")
    text = "she is a registered nurse on the pediatric ward"
    sign_in(page)
    open_page(page, server, f"p/{discovered.id}/play")
    page.select_option("#play-edit", edit["id"])
    page.fill("#play-text", text)
    page.click("#play-form button[type=submit]")
    page.wait_for_selector("#predictions")
    for which, row in (("original", 1), ("edited", 2)):
        served = client.predict(discovered.id, edit["id"], [text], model=which)
        cells = page.locator(f"#predictions tbody tr:nth-child({row}) td").all_inner_texts()
        assert cells[0] == which and cells[1] == served["labels"][0]
        assert [float(c) for c in cells[2:]] == pytest.approx(served["probabilities"][0], abs=1e-4)
    explained = client.http.post(f"/projects/{discovered.id}/edits/{edit['id']}/explain", json={"text": text}).json()
    fired = [f for f in explained["features"] if max(f["values"]) > 0]
    assert page.locator("#fired .example").count() == len(fired)
    if fired:
        assert page.locator("#fired .tok.on").count() == sum(v > 0 for f in fired for v in f["values"])


def test_exported_flags_file_reapplies_with_the_cli(page: object, server: ServerProcess, client: EditingClient,
                                                    discovered: Discovered, tmp_path: Path) -> None:
    sign_in(page)
    open_page(page, server, f"p/{discovered.id}/flags")
    with page.expect_download() as info:
        page.click("#export-flags")
    exported = tmp_path / "flags.yaml"
    info.value.save_as(exported)
    flags = read_flags_file(exported)
    assert {(f.id, f.state, f.rationale, f.reviewer) for f in flags.flags} == {
        (f["id"], f["state"], f["rationale"], f["reviewer"]) for f in client.flags(discovered.id)}
    with page.expect_download() as info:
        page.click("#export-audit")
    audit_csv = tmp_path / "audit.csv"
    info.value.save_as(audit_csv)
    assert len(audit_csv.read_text().strip().splitlines()) == 1 + len(client.audit(discovered.id))

    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(discovered.folder), str(run)], check=True)
    done = subprocess.run([sys.executable, "-m", "editing_service.cli", "edit", "--out", str(run), "--flags",
                           str(exported)], capture_output=True, text=True, env={**_env(), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    applied = yaml.safe_load((run / "flags.json").read_text())
    assert {f"{f['site']}/{f['feature']}" for f in applied["flags"] if f["state"] == "spurious"} == {
        f.id for f in flags.flags if f.state == "spurious"}


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("EDITING_SERVICE_")}


def test_every_request_carries_the_token_in_the_header_only(page: object, server: ServerProcess,
                                                            discovered: Discovered) -> None:
    requests = []
    page.on("request", lambda r: requests.append((r.url, r.headers.get("authorization"))))
    sign_in(page)
    open_page(page, server, f"p/{discovered.id}/circuit")
    page.wait_for_selector("#graph[data-ready='true']")
    api_calls = [(url, auth) for url, auth in requests if "/v1/" in url]
    assert api_calls and all(auth == f"Bearer {TOKENS['ana']}" for _, auth in api_calls)
    assert not any(TOKENS["ana"] in url for url, _ in requests)
