"""The routes the workbench reads besides the core resources, over real HTTP: the discovery's summary,
the flags file and audit CSV exports, the model card, the audit of one feature, and the playground's
explanation checked against the edit's own arithmetic."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
import yaml
from api_world import spec_for
from http_server import ServerProcess
from workbench_world import Discovered

from editing_service.client import EditingClient
from editing_service.edit import FeatureAblation, load_model
from editing_service.features.flags import FlagSet
from editing_service.model import capture


@pytest.fixture(scope="module")
def edit(client: EditingClient, discovered: Discovered) -> dict:
    if not any(f["state"] == "spurious" for f in client.flags(discovered.id)):
        client.apply_suggestions(discovered.id, kind="lexicon", reviewer="Ana")
    created = client.create_edit(discovered.id, reviewer="Ana")
    client.wait(created["job"]["id"], timeout=300, poll=0.5)
    return client.edit(discovered.id, created["edit"]["id"])


def test_discovery_summarises_features_json(client: EditingClient, discovered: Discovered) -> None:
    summary = client.http.get(f"/projects/{discovered.id}/discovery").json()
    document = json.loads((discovered.folder / "features.json").read_text())
    quality = json.loads((discovered.folder / "saes" / "quality.json").read_text())["sites"]
    assert summary["sites"] == document["sites"]
    assert sum(summary["circuit_per_site"].values()) == len(document["circuit"]) == \
        client.project(discovered.id)["features"]
    assert summary["cards"] == len(document["cards"])
    assert summary["suggestions"]["lexicon"] == sum(s["kind"] == "lexicon" for s in document["suggestions"])
    assert summary["sae_quality"] == {site: {"train": q["train"], "validate": q["validate"]} for site, q in quality.items()}
    assert all(q["spliced_with_error"] is None for q in quality.values())  # discovery runs no splice check


def test_discovery_before_any_is_a_conflict(server: ServerProcess, client: EditingClient) -> None:
    project = client.create_project(name="empty", model=str(server.root / "models" / "bert"),
                                    dataset={"inline": spec_for(server.root)})
    answer = client.http.get(f"/projects/{project['id']}/discovery")
    assert answer.status_code == 409 and "no finished discovery" in answer.json()["detail"]


def test_flags_file_and_audit_csv_export_what_the_api_holds(client: EditingClient, discovered: Discovered) -> None:
    feature = client.features(discovered.id, limit=5)["items"][-1]
    client.flag(discovered.id, feature["site"], feature["feature"], state="task_relevant",
                rationale="=HYPERLINK(\"http://x\")", reviewer="@Ana")
    answer = client.http.get(f"/projects/{discovered.id}/flags.yaml")
    assert answer.headers["content-type"].startswith("application/yaml")
    flags = FlagSet.model_validate(yaml.safe_load(answer.text))
    assert sorted((f.id, f.state, f.rationale, f.reviewer, f.source) for f in flags.flags) == sorted(
        (f["id"], f["state"], f["rationale"], f["reviewer"], f["source"]) for f in client.flags(discovered.id))

    rows = list(csv.DictReader(io.StringIO(client.http.get(f"/projects/{discovered.id}/audit.csv").text)))
    audit = client.audit(discovered.id)
    assert [int(r["id"]) for r in rows] == [e["id"] for e in audit]
    last = rows[-1]
    assert (last["site"], int(last["feature"]), last["state"]) == (feature["site"], feature["feature"], "task_relevant")
    assert last["rationale"] == "'=HYPERLINK(\"http://x\")" and last["reviewer"] == "'@Ana"  # never a formula

    one = client.http.get(f"/projects/{discovered.id}/audit",
                          params={"site": feature["site"], "feature": feature["feature"]}).json()
    assert one["items"] and all((e["site"], e["feature"]) == (feature["site"], feature["feature"]) for e in one["items"])
    assert one["total"] == sum((e["site"], e["feature"]) == (feature["site"], feature["feature"]) for e in audit)


def test_model_card_is_the_edited_models_readme(client: EditingClient, discovered: Discovered, edit: dict) -> None:
    card = client.http.get(f"/projects/{discovered.id}/edits/{edit['id']}/model_card.md")
    assert card.status_code == 200 and card.headers["content-type"].startswith("text/markdown")
    folder = discovered.project_folder / "edits" / edit["id"] / "models" / "edited"
    assert card.text == (folder / "README.md").read_text()


def test_explain_gives_the_ablated_features_activation_on_every_token(
    client: EditingClient, discovered: Discovered, edit: dict,
) -> None:
    text = "she works as a nurse in the pediatric ward with her team"
    answer = client.http.post(f"/projects/{discovered.id}/edits/{edit['id']}/explain", json={"text": text}).json()
    for which in ("original", "edited"):
        served = client.predict(discovered.id, edit["id"], [text], model=which)
        assert answer[which]["label"] == served["labels"][0]
        np.testing.assert_allclose(answer[which]["probabilities"], served["probabilities"][0], atol=1e-5)
    assert {f["id"] for f in answer["features"]} == {f"{f['site']}/{f['feature']}" for f in edit["flags"]}

    # At the first edited site the stream is not yet edited, so the edit removed exactly f @ W_dec there:
    # solve original - edited = f W_dec for f, token by token, and compare.
    original = load_model(discovered.folder / "models" / "original")
    edited = load_model(discovered.project_folder / "edits" / edit["id"] / "models" / "edited")
    # The default edit also erases the protected attribute after the ablation: leave the ablation alone.
    edited.set_interventions([m for m in edited.interventions if isinstance(m, FeatureAblation)])
    first = min(edited.interventions, key=lambda m: m.site.layer)
    assert first.mode == "zero"
    batch = original.tokenizer([text], return_tensors="pt")
    assert answer["tokens"] == original.tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    with torch.inference_mode():
        with capture(original.backbone, [first.site]) as before:
            original.backbone(**batch)
        with capture(edited.backbone, [first.site]) as after:
            edited.backbone(**batch)
    removed = (before[first.site.name][0] - after[first.site.name][0]).numpy()  # [T, d]
    solved, *_ = np.linalg.lstsq(first.W_dec.numpy().T, removed.T, rcond=None)  # [n, T]
    by_id = {f["id"]: f["values"] for f in answer["features"]}
    for row, feature in enumerate(first.features):
        np.testing.assert_allclose(by_id[f"{first.site.name}/{feature}"], solved[row], atol=2e-3)
    assert any(max(f["values"]) > 0 for f in answer["features"])


def test_explain_refuses_an_empty_text_and_an_unfinished_edit(client: EditingClient, discovered: Discovered,
                                                              edit: dict) -> None:
    empty = client.http.post(f"/projects/{discovered.id}/edits/{edit['id']}/explain", json={"text": ""})
    assert empty.status_code == 422 and "text" in empty.json()["detail"]
    missing = client.http.post(f"/projects/{discovered.id}/edits/nope/explain", json={"text": "she"})
    assert missing.status_code == 404
