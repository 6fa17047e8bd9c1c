"""The report rows on a tiny discovered run: LEACE, neuron ablation, the registry, the budget curve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from factories import TINY_SPEC, make_bios_frame, make_model_folder
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from editing_service.circuit.metric import true_class_metric
from editing_service.cli import main
from editing_service.edit.budget import budget_points, group_balanced
from editing_service.edit.rows import ReportRow, RowOutput, register, registered_rows, unregister
from editing_service.edit.rows.base import UNKNOWN_ROW
from editing_service.edit.rows.leace import Leace, erase, fit_leace
from editing_service.edit.rows.neuron_ablation import choose_neurons
from editing_service.features.flags import Flag, FlagSet
from editing_service.model.classifier import mean_pool
from editing_service.pipeline.edit import row_context, run_edit
from editing_service.report import Report
from editing_service.settings import RunSettings


@pytest.fixture(scope="module")
def discovered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rows")
    make_bios_frame(12).to_csv(root / "bios.csv", index=False)
    (root / "spec.yaml").write_text(TINY_SPEC)
    out = root / "run"
    code = main(["-q", "discover", "--spec", str(root / "spec.yaml"), "--out", str(out),
                 "--model", str(make_model_folder(root, "bert")), "--d-sae", "64", "--k", "4", "--epochs", "5",
                 "--attribution-examples", "16", "--circuit-top-k", "20", "--budget", "--rows", "random_ablation", "token_deletion", "leace", "neuron_ablation", "shift_embedding", "oracle"])
    assert code == 0
    return out


def _flags(out: Path) -> FlagSet:
    """Three features at each block site and two at the embedding output (the rows need a few flags)."""
    circuit = json.loads((out / "features.json").read_text())["circuit"]
    flags, per_site = [], {}
    for c in circuit:
        wanted = 2 if c["site"] == "embeddings.out" else 3
        if per_site.get(c["site"], 0) < wanted:
            per_site[c["site"]] = per_site.get(c["site"], 0) + 1
            flags.append(Flag(site=c["site"], feature=c["feature"], state="spurious", rationale="test"))
    return FlagSet(flags=flags)


def test_leace_row_leaves_the_head_input_at_chance_on_validate(discovered: Path) -> None:
    ctx = row_context(discovered, _flags(discovered))
    features = ctx.validate_cache.head_features
    groups = np.asarray(ctx.validate.groups["gender"]).astype(str)
    majority = max(np.mean(groups == "F"), np.mean(groups == "M"))
    probe = LogisticRegression(C=10.0, max_iter=2000)
    before = cross_val_score(probe, features, groups, cv=4).mean()
    erased = erase(fit_leace(features, groups), features)
    after = cross_val_score(probe, erased, groups, cv=4).mean()
    assert before > majority + 0.15  # the tiny model's head input does carry gender ...
    assert after <= majority + 0.05  # ... and after LEACE a linear probe is at chance
    centred = erased - erased.mean(0)
    one_hot = (groups == "F").astype(float) - np.mean(groups == "F")
    assert np.abs(centred.T @ one_hot).max() < 1e-6 * len(groups)  # no covariance with the group left
    output = Leace().run(ctx)
    expected = erase(fit_leace(features, groups), ctx.original_eval)
    np.testing.assert_allclose(output.features, expected, atol=1e-6)
    assert "validate subset 'validate'" in output.description


def _exact_neuron_scores(ctx, site_layer: int, rows: np.ndarray) -> np.ndarray:
    """-x * dm/dx summed over positions, one example at a time, from the model's own hidden states."""
    clf = ctx.classifier
    total = None
    for i in rows:
        batch = clf.tokenizer([ctx.train.texts[i]], return_tensors="pt")
        out = clf.backbone(**batch, output_hidden_states=True)
        hidden = out.hidden_states[site_layer + 1]
        pooled = mean_pool(out.hidden_states[clf.probe_layer + 1], batch["attention_mask"])
        metric = true_class_metric(clf.head(pooled), torch.tensor([ctx.train.labels[i]]))
        (grad,) = torch.autograd.grad(metric.sum(), hidden)
        effect = (-hidden * grad).sum((0, 1)).detach().double().numpy()
        total = effect if total is None else total + effect
    return total / len(rows)


def test_neuron_row_picks_the_top_attributed_neurons(discovered: Path) -> None:
    from editing_service.circuit.sample import stratified_sample

    ctx = row_context(discovered, _flags(discovered))
    settings = ctx.settings.attribution
    rows = stratified_sample(ctx.train.labels, n_examples=settings.n_examples, seed=settings.seed)
    chosen = choose_neurons(ctx)
    assert list(chosen) == list(ctx.flagged)
    for site, features in ctx.flagged.items():
        layer = int(site.split(".")[1])
        exact = _exact_neuron_scores(ctx, layer, rows)
        expected = list(np.argsort(-np.abs(exact), kind="stable")[: len(features)])
        assert chosen[site] == [int(i) for i in expected]


class _Echo(ReportRow):
    name = "echo_test_row"
    title = "an echo of the original model"
    role = "baseline"
    summary = "The original model again, for the registry test."
    order = 95
    optional = False

    def run(self, ctx):
        return RowOutput(ctx.original_eval, ctx.original_head, "Registered by a test: the original model again.")


def test_a_registered_row_reaches_the_report_the_page_and_the_card(discovered: Path, tmp_path: Path) -> None:
    register(_Echo)
    try:
        report = run_edit(discovered, _flags(discovered), edit_out=tmp_path,
                          edit_settings={"erase_at_edited_sites": False})
    finally:
        unregister(_Echo.name)
    names = [r.name for r in report.rows]
    assert names == ["original", "shift", "shift_retrained", "random_ablation", "token_deletion", "leace",
                     "neuron_ablation", "shift_embedding", "oracle", "echo_test_row"]
    again = Report.read(tmp_path / "report.json")
    echo = again.row("echo_test_row")
    assert echo is not None and echo.description == "Registered by a test: the original model again."
    assert echo.group_balanced_accuracy == again.row("original").group_balanced_accuracy
    assert "echo_test_row" in again.comparison.beats + again.comparison.does_not_beat
    assert "<b>echo_test_row</b>" in (tmp_path / "report.html").read_text()
    assert "| echo_test_row | Registered by a test" in (tmp_path / "models" / "edited" / "README.md").read_text()
    assert "echo_test_row" not in [r.name for r in registered_rows()]
    # Without erasers, the budget curve ends with every flag: the SHIFT rows' own numbers.
    last = again.budget_curve.points[-1]
    assert last.n == sum(len(v) for v in _flags(discovered).spurious().values() if v) - 2  # not embeddings.out
    assert last.accuracy == again.row("shift").group_balanced_accuracy
    assert last.accuracy_retrained == again.row("shift_retrained").group_balanced_accuracy
    base, oracle = again.row("original").group_balanced_accuracy, again.row("oracle").group_balanced_accuracy
    assert last.score_retrained == pytest.approx((last.accuracy_retrained - base) / (oracle - base))
    original = again.row("original").description
    assert "probe head (C = " in original and "fitted on the training subset 'train_biased'" in original


def test_the_budget_curve_ablates_features_only_when_the_edit_also_erases(discovered: Path) -> None:
    """With the erasers on (the default here: the spec has a protected attribute), the point of every flag
    is the flagged features' ablation alone, not the SHIFT edit with its erasers."""
    ctx = row_context(discovered, _flags(discovered))
    assert ctx.shift_erasers
    *_, (n, _ids, accuracy, accuracy_retrained) = budget_points(ctx, [])
    assert n == ctx.n_flagged
    alone = ctx.read(ctx.evaluate.texts, ctx.shift_ablations, "ablation alone")
    assert accuracy == group_balanced(ctx, alone, ctx.original_head)
    head = ctx.fit_head(ctx.read(ctx.train.texts, ctx.shift_ablations, "retrain"), ctx.train.labels)
    assert accuracy_retrained == group_balanced(ctx, alone, head)


def test_unknown_rows_are_refused_by_the_settings() -> None:
    with pytest.raises(ValidationError) as err:
        RunSettings(spec="x", edit={"baselines": ["leace", "nope"]})
    known = [r.name for r in registered_rows() if r.optional]
    assert UNKNOWN_ROW.format(name="nope", known=known) in str(err.value)


@pytest.mark.parametrize(
    ("provenance", "kind", "expected"),
    [
        ({"C": 0.5, "trained_on": "train_biased"}, "probe",
         (0.5, "a logistic-regression probe head (C = 0.5) fitted on the training subset 'train_biased'")),
        ({}, "sequence_classification", (None, "the sequence classifier's own head, kept as saved")),
    ],
)
def test_the_original_row_says_what_head_the_classifier_has(tmp_path: Path, provenance, kind, expected) -> None:
    from editing_service.artifacts import ArtifactDir
    from editing_service.pipeline.original_head import read_original_head

    artifacts = ArtifactDir(tmp_path)
    artifacts.original_model.mkdir(parents=True)
    (artifacts.original_model / "config.json").write_text(json.dumps({"provenance": provenance}))
    C, _, origin = read_original_head(artifacts).retrained_heads(kind)
    assert (C, origin) == expected


def test_discovery_writes_the_original_heads_provenance_that_the_edit_reads(discovered: Path) -> None:
    """The probe's C and the subset it was fitted on travel from discovery to the retrained heads, typed."""
    from editing_service.artifacts import ArtifactDir
    from editing_service.pipeline.original_head import OriginalHead, read_original_head

    stored = json.loads((discovered / "models" / "original" / "config.json").read_text())["provenance"]
    head = read_original_head(ArtifactDir(discovered))
    assert OriginalHead.model_validate(stored) == head
    assert (head.schema_version, head.head, head.spec, head.trained_on) == (1, "logistic regression", "tiny_bios",
                                                                           "train_biased")
    assert head.C in {row["C"] for row in head.C_on_validate}
    ctx = row_context(discovered, _flags(discovered))
    assert ctx.C == head.C and f"C = {head.C:g}" in ctx.original_head_origin


def test_an_undiscovered_folder_has_no_original_head_to_read(tmp_path: Path) -> None:
    from editing_service.artifacts import ArtifactDir
    from editing_service.pipeline.original_head import read_original_head

    with pytest.raises(FileNotFoundError, match="config.json"):
        read_original_head(ArtifactDir(tmp_path))


def test_a_sequence_classifiers_retrained_heads_get_the_C_chosen_on_validate_with_the_edit(tmp_path: Path) -> None:
    """Its own head has no C: every retrained head gets the grid's C whose SHIFT head, fitted on the edited
    training features, has the best group-balanced accuracy on the edited validate features (ties: larger C)."""
    from editing_service.edit.head_choice import HEAD_C_GRID
    from editing_service.model.classifier import head_logits
    from editing_service.model.head import fit_linear_head

    make_bios_frame(12).to_csv(tmp_path / "bios.csv", index=False)
    (tmp_path / "spec.yaml").write_text(TINY_SPEC)
    out = tmp_path / "run"
    model = make_model_folder(tmp_path, "bert", sequence_classification=True)
    assert main(["-q", "discover", "--spec", str(tmp_path / "spec.yaml"), "--out", str(out), "--model", str(model),
                 "--d-sae", "64", "--k", "4", "--epochs", "2", "--attribution-examples", "16",
                 "--circuit-top-k", "20", "--rows"]) == 0
    ctx = row_context(out, _flags(out))
    validate = ctx.validate
    cells = [(validate.labels == c) & (validate.groups[ctx.attribute] == g)
             for c in np.unique(validate.labels) for g in np.unique(validate.groups[ctx.attribute])]
    scores = {}
    for C in HEAD_C_GRID:
        head = fit_linear_head(ctx.shift_train, ctx.train.labels, n_classes=2, C=C)
        hits = head_logits(head, ctx.shift_validate).argmax(1).numpy() == validate.labels
        scores[C] = round(float(np.mean([hits[cell].mean() for cell in cells if cell.any()])), 6)
    best = max(scores.values())
    assert ctx.C == max(C for C, score in scores.items() if score == best)
    assert "validate split with the edit in place" in ctx.C_source
    report = run_edit(out, _flags(out), edit_out=tmp_path / "edit")
    assert report.retrain["C"] == ctx.C


def test_a_random_ablation_too_large_to_draw_is_skipped_with_its_reason(discovered: Path, tmp_path: Path) -> None:
    """Flags covering most of a site's dictionary leave fewer live unflagged features than flags (a fine-tuned
    classifier's last block did: 126 flags, 62 others alive): the random row is left out, saying why, and the
    rest of the edit is written."""
    site = "blocks.0.out"
    flags = FlagSet(flags=[Flag(site=site, feature=i, state="spurious", rationale="test") for i in range(40)])
    report = run_edit(discovered, flags, edit_out=tmp_path,
                      edit_settings={"baselines": ["random_ablation"], "erase_at_edited_sites": False, "budget": []})
    assert [r.name for r in report.rows] == ["original", "shift", "shift_retrained"]
    skipped = {s.name: s.reason for s in report.skipped_rows}
    assert set(skipped) == {"random_ablation"}
    assert skipped["random_ablation"].startswith(f"Site {site} has ")
    assert "a random ablation of 40 cannot be drawn" in skipped["random_ablation"]
    assert Report.read(tmp_path / "report.json").row("shift_retrained") is not None
