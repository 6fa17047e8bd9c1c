"""Where the protected attribute flows before and after an edit: per-site leakage on the validate split.

    .venv/bin/python benchmarks/site_leakage.py --out runs/ft [--edit runs/ft_edit] [--texts 600]
        [--json benchmarks/results/site_leakage.json]

`--out` is a discovered run (models/original, saes/); `--edit` a folder with models/edited and flags.json
(default: `--out` itself). For every site with an SAE, and for the head's input, it prints the
within-class balanced accuracy of a linear probe for the group (0.5 = nothing leaks) on the mean-pooled
activation, the SAE error term and the reconstruction, for the original and for the edited model, and the
features that separate the groups most (flagged or not). Validate split only: a diagnosis, not a result.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from editing_service.data import load_role, load_spec
from editing_service.edit import load_model
from editing_service.features.flags import FlagSet
from editing_service.report.site_leakage import diagnose_leakage
from editing_service.sae import load_sae
from editing_service.settings import RunSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--edit", type=Path, default=None)
    parser.add_argument("--texts", type=int, default=600, help="validate texts (cell-stratified sample)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/site_leakage.json"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    edit = args.edit or args.out
    settings = RunSettings.model_validate_json((args.out / "run.json").read_text())
    spec = load_spec(settings.spec)
    attribute = spec.protected[0].name
    validate = load_role(spec, "validate")
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(len(validate), min(args.texts, len(validate)), replace=False))
    texts = [validate.texts[i] for i in rows]
    labels, groups = validate.labels[rows], validate.groups[attribute][rows]
    saes = {p.name: load_sae(p) for p in sorted((args.out / "saes").iterdir()) if p.is_dir()}
    flagged = FlagSet.model_validate_json((edit / "flags.json").read_text()).spurious()
    result = {}
    for name, folder in (("original", args.out / "models" / "original"), ("edited", edit / "models" / "edited")):
        classifier = load_model(folder)
        diagnosis = diagnose_leakage(classifier, saes, texts, labels=labels, groups=groups,
                                     label_names=validate.label_names, attribute=attribute, flagged=flagged)
        result[name] = diagnosis.model_dump()
        print(f"== {name}")
        print(f"{'site':<16}{'activation':>11}{'error':>8}{'recon':>8}{'carriers':>10}{'flagged':>9}  top carriers")
        for site in diagnosis.sites:
            err = f"{site.error:.3f}" if site.error is not None else "-"
            rec = f"{site.reconstruction:.3f}" if site.reconstruction is not None else "-"
            top = ", ".join(f"{c.feature}{'*' if c.flagged else ''}:{c.separation:.2f}" for c in site.carriers[:5])
            print(f"{site.site:<16}{site.activation:>11.3f}{err:>8}{rec:>8}{site.n_carriers:>10}"
                  f"{site.n_carriers_flagged:>9}  {top}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
