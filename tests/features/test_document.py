"""features.json as a typed document: it round-trips, old documents load, other versions are refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from editing_service.features import FeatureCard, Suggestion
from editing_service.features.document import (
    AttributionRecord,
    CircuitFeature,
    FeaturesDocument,
)


def _card(site: str, feature: int, label: str) -> FeatureCard:
    return FeatureCard(
        site=site, feature=feature, id=f"{site}/{feature}", score=-0.5, rank=1, pushes="nurse",
        pushes_basis="class_effects", label=label, split="validate", n_tokens=10, n_examples=2,
        example_activation="max", frac_nonzero=0.2, max_activation=1.5,
        activation_histogram={"bin_edges": [0.0, 1.5], "counts": [2]},
        top_examples=[{"example": 0, "tokens": ["she", "nurse"], "values": [1.5, 0.0]}],
        top_tokens=[{"token": "she", "share": 1.0, "count": 2}], by_class={"nurse": {"mean": 0.7}},
        by_group={"gender": {"auroc": float("nan")}}, score_by_class=None, class_effects={"nurse": 0.1},
        neighbours=[],
    )


def _document() -> FeaturesDocument:
    suggestion = Suggestion(site="blocks.0.out", feature=3, kind="lexicon", score=0.9, evidence={"share": 0.9},
                            reason="fires on gendered words")
    return FeaturesDocument(
        spec="tiny", model="bert", sites=["blocks.0.out", "blocks.1.out"], cards_split="validate",
        attribution=AttributionRecord(method="attrib", n_examples=16, batch_size=16, ig_steps=10, seed=0,
                                      train_subset="train", error_scores={"blocks.0.out": 0.25}),
        circuit=[CircuitFeature(id="blocks.0.out/3", site="blocks.0.out", feature=3, score=-0.5, rank=1),
                 CircuitFeature(id="blocks.1.out/7", site="blocks.1.out", feature=7, score=0.25, rank=2)],
        suggestions=[suggestion], cards=[_card("blocks.0.out", 3, "she / her")], seconds=1.5,
    )


def test_the_document_round_trips_through_its_file(tmp_path: Path) -> None:
    document = _document()
    document.write(tmp_path / "features.json")
    again = FeaturesDocument.read(tmp_path / "features.json")
    assert again.model_dump(exclude={"cards"}) == document.model_dump(exclude={"cards"})
    assert math.isnan(again.cards[0].by_group["gender"]["auroc"])
    assert again.cards[0].top_examples == document.cards[0].top_examples
    assert again.schema_version == 1
    assert again.suggestions == document.suggestions


def test_the_file_keeps_the_shape_readers_of_plain_json_expect(tmp_path: Path) -> None:
    _document().write(tmp_path / "features.json")
    raw = json.loads((tmp_path / "features.json").read_text())
    assert raw["schema_version"] == 1
    assert raw["suggestions"][0]["id"] == "blocks.0.out/3" and raw["cards"][0]["label"] == "she / her"
    assert [c["id"] for c in raw["circuit"]] == ["blocks.0.out/3", "blocks.1.out/7"]


def test_labels_and_suggestion_kinds_are_keyed_by_feature_id() -> None:
    document = _document()
    assert document.labels() == {"blocks.0.out/3": "she / her"}
    assert document.suggestion_kinds() == {"blocks.0.out/3": ["lexicon"]}


def test_a_document_written_before_the_version_field_loads_as_version_1(tmp_path: Path) -> None:
    raw = json.loads(_document().model_dump_json())
    del raw["schema_version"]
    (tmp_path / "features.json").write_text(json.dumps(raw))
    assert FeaturesDocument.read(tmp_path / "features.json").schema_version == 1


@pytest.mark.parametrize(("change", "field"), [({"schema_version": 2}, "schema_version"),
                                               ({"circuit": [{"id": "x", "site": "s"}]}, "circuit.0.feature"),
                                               ({"surprise": 1}, "surprise")])
def test_another_version_or_a_malformed_document_is_refused(change: dict, field: str) -> None:
    raw = {**json.loads(_document().model_dump_json()), **change}
    with pytest.raises(ValidationError) as err:
        FeaturesDocument.model_validate(raw)
    assert field in {".".join(map(str, e["loc"])) for e in err.value.errors()}
