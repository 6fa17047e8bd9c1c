"""The family x form table: a whole run on a tiny random model of every family, in both forms.

    PYTHONPATH=. python benchmarks/family_matrix.py [--families bert gpt2 ...]

For each family (tests/factories.py) and form (`*ForSequenceClassification`, base model + probe) it runs
discover and edit with the end-to-end test's settings (tests/family_run.py), then loads the saved models
and checks that their accuracy on the evaluation split is the report's. Prints a markdown table ("works"
or the error), then the decoder head-logit agreement: the largest |head(features read by the service) -
the model's own logits| over every decoder family, tokenizer (EOS appended or not, pad = EOS or not) and
padding side, and the same for the rule used before (the last attention-mask position).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from factories import ARCHITECTURES, DECODERS, make_model_folder  # noqa: E402
from family_run import FORMS, run_family, write_tiny_spec  # noqa: E402

from editing_service.model import capture_input, load_classifier  # noqa: E402

TEXTS = ["she works as a nurse in the ward with patients", "he is a surgeon", "the hospital team", "a nurse"]
TOKENIZERS = {"EOS, pad = EOS": (True, True), "EOS, own pad": (True, False), "no EOS, pad = EOS": (False, True)}


def outcome(root: Path, spec: Path, arch: str, form: str) -> str:
    started = time.perf_counter()
    try:
        run = run_family(root, spec, arch, form)
    except Exception as err:  # the table reports every failure
        return f"error: {type(err).__name__}: {str(err).splitlines()[0][:120]}"
    problems = [f"report {row} accuracy {run.row_accuracy[row]:.3f} != saved {run.saved_accuracy[row]:.3f}"
                for row in ("original", "shift_retrained") if run.row_accuracy[row] != run.saved_accuracy[row]]
    if run.n_edits != 2:
        problems.append(f"{run.n_edits} edits saved, expected 2")
    return "; ".join(problems) or f"works ({time.perf_counter() - started:.0f} s)"


def head_logit_agreement(root: Path) -> list[tuple[str, str, str, float, float]]:
    rows = []
    for arch in DECODERS:
        for variant, (eos, pad_is_eos) in TOKENIZERS.items():
            folder = make_model_folder(root, arch, sequence_classification=True, append_eos=eos,
                                       pad_is_eos=pad_is_eos, name=f"agree-{arch}-{eos}-{pad_is_eos}")
            clf = load_classifier(folder, classes=["nurse", "surgeon"])
            for side in ("right", "left"):
                clf.tokenizer.padding_side = side
                batch = clf.tokenizer(TEXTS, padding=True, return_tensors="pt")
                with torch.no_grad(), capture_input(clf.head) as every_token:
                    own = clf.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                    features, _ = clf.head_features(batch["input_ids"], batch["attention_mask"])
                    last = batch["attention_mask"].sum(1) - 1
                    before = clf.head(every_token["input"][torch.arange(len(TEXTS)), last])
                    rows.append((arch, variant, side, float((clf.head(features) - own).abs().max()),
                                 float((before - own).abs().max())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=list(ARCHITECTURES))
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = write_tiny_spec(root / "data")
        print("| family | " + " | ".join(FORMS) + " |")
        print("|---|" + "---|" * len(FORMS))
        for arch in args.families:
            cells = [outcome(root / f"{arch}-{form}", spec, arch, form) for form in FORMS]
            print(f"| {arch} | " + " | ".join(cells) + " |", flush=True)
        agreement = head_logit_agreement(root / "agreement")
        worst = max(agreement, key=lambda row: row[3])
        print(f"\nDecoder head-logit agreement: max |head(features) - model logits| = {worst[3]:.2e} over "
              f"{len(agreement)} cases ({len(DECODERS)} families x {len(TOKENIZERS)} tokenizers x 2 padding "
              f"sides); worst: {worst[0]}, {worst[1]}, {worst[2]} padding")
        before = max(agreement, key=lambda row: row[4])
        print(f"Previous rule (last attention-mask position): max {before[4]:.2e} ({before[0]}, {before[1]}, "
              f"{before[2]} padding); cases off by more than 1e-4: "
              f"{sum(row[4] > 1e-4 for row in agreement)} of {len(agreement)}")


if __name__ == "__main__":
    main()
