"""The `editing-service` command line: thin wrappers over `editing_service.pipeline`.

Bad input ends with a one-line `editing-service: error: ...` message and exit status 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from pydantic import ValidationError

from editing_service import __version__
from editing_service.artifacts import check_output_folder

if TYPE_CHECKING:
    from pydantic import BaseModel

    from editing_service.pipeline.progress_log import LoggedProgress
    from editing_service.report.sae_quality import SAEQualityReport
    from editing_service.report.schema import Report

logger = logging.getLogger("editing_service.cli")


def _default(model: type[BaseModel], field: str) -> str:
    """A settings field's default as help texts show it: the settings models are where defaults are defined."""
    value = model.model_fields[field].default
    if isinstance(value, float):
        return f"{value:g}"
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def _choices(model: type[BaseModel], field: str) -> list[str]:
    """The values of a settings field typed as a Literal."""
    return list(get_args(model.model_fields[field].annotation))


def _batch_size(value: str) -> int | str:
    return value if value == "auto" else int(value)


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    from editing_service.settings import ModelSettings as M

    parser.add_argument("--model", default=None, help="model folder (default: the embedded MiniLM)")
    parser.add_argument("--probe-layer", type=int, default=None,
                        help=f"block a probe head reads, negative from the end (default: {_default(M, 'probe_layer')})")
    parser.add_argument("--max-length", type=int, default=None,
                        help=f"tokens per text, the rest truncated (default: {_default(M, 'max_length')})")
    parser.add_argument("--batch-size", type=_batch_size, default=None,
                        help="texts per forward pass, or auto: from free memory and the model's shape "
                        f"(default: {_default(M, 'batch_size')})")
    parser.add_argument("--device", choices=_choices(M, "device"), default=None,
                        help=f"(default: {_default(M, 'device')})")
    parser.add_argument("--dtype", choices=_choices(M, "dtype"), default=None,
                        help=f"weights' dtype; auto: the checkpoint's on a GPU, float32 on the CPU (default: "
                        f"{_default(M, 'dtype')})")
    parser.add_argument("--device-map", choices=_choices(M, "device_map"), default=None,
                        help="auto: offload the weights that do not fit the device to CPU memory, then disk, and "
                        f"still compute on the device (default: {_default(M, 'device_map')})")
    parser.add_argument("--device-memory-gb", type=float, default=None,
                        help="--device-map auto: GiB of weights kept on the device (default: what is free)")
    parser.add_argument("--cpu-memory-gb", type=float, default=None,
                        help="--device-map auto on a GPU: GiB of weights in CPU memory before disk (default: free)")


def _add_sae_args(parser: argparse.ArgumentParser) -> None:
    from editing_service.settings import CacheSettings as C
    from editing_service.settings import SAESettings as S

    parser.add_argument("--sites", nargs="+", default=None,
                        help="site names, e.g. embeddings.out blocks.0.out (default: every block output)")
    parser.add_argument("--architecture", default=None,
                        help=f"SAE architecture (default: {_default(S, 'architecture')}); an unknown name is refused "
                        "with the registered ones")
    parser.add_argument("--d-sae", type=int, default=None, help=f"features per SAE (default: {_default(S, 'd_sae')})")
    parser.add_argument("--k", type=int, default=None,
                        help=f"active features per token, topk; their mean, batchtopk (default: {_default(S, 'k')})")
    parser.add_argument("--epochs", type=float, default=None,
                        help=f"passes over the cached training tokens (default: {_default(S, 'n_epochs')})")
    parser.add_argument("--sae-batch-size", type=int, default=None,
                        help=f"tokens per SAE training step (default: {_default(S, 'batch_size')})")
    parser.add_argument("--cache-dtype", choices=_choices(C, "cache_dtype"), default=None,
                        help=f"storage of cached activations (default: {_default(C, 'cache_dtype')})")
    parser.add_argument("--cache-tokens-per-text", type=int, default=None,
                        help="cache a seeded sample of at most this many tokens per training text (default: all)")
    parser.add_argument("--cache-mode", choices=_choices(C, "cache_mode"), default=None,
                        help="disk: cache every training token; stream: train the SAEs from forward passes through a "
                        "shuffled buffer, keeping a token sample on disk; auto: stream above the budget (default: "
                        f"{_default(C, 'cache_mode')})")
    parser.add_argument("--cache-budget-gb", type=float, default=None,
                        help=f"disk budget of the training cache in auto mode (default: {_default(C, 'cache_budget_gb')})")
    parser.add_argument("--stream-buffer-tokens", type=int, default=None,
                        help=f"tokens per site in the stream's shuffle buffer (default: {_default(C, 'stream_buffer_tokens')})")
    parser.add_argument("--stream-sample-tokens", type=int, default=None,
                        help="training tokens kept on disk in stream mode, at least one per text (default: "
                        f"{_default(C, 'stream_sample_tokens')})")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of SAE training and of everything after it (attribution's examples, the head's "
                        f"retraining), so --seed 2 repeats the third run of --seeds 3 (default: {_default(S, 'seed')})")


RUNS_OWN = "the run's"  # what `edit` falls back to: the settings the discovered run stored


def _add_edit_args(parser: argparse.ArgumentParser, *, inherited: bool = False) -> None:
    """The edit's own options; `inherited`: unset options keep what the discovered run stored."""
    from editing_service.settings import EditSettings

    served = RUNS_OWN if inherited else _default(EditSettings, "served_form")
    erase = f"{RUNS_OWN} setting" if inherited else "when the dataset has a protected attribute"
    parser.add_argument("--served-form", choices=_choices(EditSettings, "served_form"), default=None,
                        help=f"how flagged TopK features are served (default: {served})")
    parser.add_argument("--erase-at-edited-sites", action=argparse.BooleanOptionalAction, default=None,
                        help="also erase the protected attribute's linear directions (LEACE, fitted on the validate "
                        f"split) at every edited site (default: {erase})")


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _output_file(value: str) -> Path:
    """A file the command will write: refused before any work if its folder is missing or it is a folder."""
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a folder, not a file")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {path.parent} does not exist")
    return path


def _add_row_args(parser: argparse.ArgumentParser, *, inherited: bool = False) -> None:
    """`--rows` and the budget curve; `inherited`: unset options keep what the discovered run stored."""
    rows = f"{RUNS_OWN} rows" if inherited else (
        "random_ablation token_deletion leace oracle; also neuron_ablation shift_embedding")
    sizes = f"{RUNS_OWN} sizes" if inherited else "no curve"
    parser.add_argument("--rows", nargs="*", default=None, help=f"optional report rows to run (default: {rows})")
    curve = parser.add_mutually_exclusive_group()
    curve.add_argument("--budget", nargs="*", type=int, default=None,
                       help="compute the budget curve at these sizes N, plus all flags (alone: 2 5 10 20 50 100; "
                            f"default: {sizes}; each N costs a forward pass over train and evaluation)")
    curve.add_argument("--no-budget", action="store_true",
                       help="no budget curve" + (", whatever sizes the run stored" if inherited else ""))


def _budget(sizes: list[int] | None, off: bool = False) -> list[int] | None:
    """`--no-budget`: none; `--budget` alone: the default sizes; with numbers: those; absent: None (not given)."""
    if off:
        return []
    if sizes is None or sizes:
        return sizes
    from editing_service.report.budget import DEFAULT_BUDGETS

    return list(DEFAULT_BUDGETS)


def _edit_overrides(args: argparse.Namespace) -> dict[str, object]:
    return _given(served_form=getattr(args, "served_form", None),
                  erase_at_edited_sites=getattr(args, "erase_at_edited_sites", None),
                  baselines=args.rows, budget=_budget(args.budget, args.no_budget))


def build_parser() -> argparse.ArgumentParser:
    from editing_service.settings import (
        AttributionSettings,
        CircuitSettings,
        EditSettings,
        GraphSettings,
        RunSettings,
    )
    from editing_service.settings import SuggestionSettings as Suggest

    parser = argparse.ArgumentParser(prog="editing-service", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = parser.add_subparsers(dest="command", required=True)

    saes = commands.add_parser("saes", help="train the SAEs of every site and write their quality report")
    saes.add_argument("--spec", required=True, help="a shipped spec name or a YAML file")
    saes.add_argument("--out", required=True, help="output folder")
    _add_model_args(saes)
    _add_sae_args(saes)
    saes.add_argument("--no-splice-check", action="store_true", help="skip the spliced-accuracy check")

    run = commands.add_parser("run", help="the whole SHIFT pipeline: discover, flag, edit, report")
    discover = commands.add_parser("discover", help="SAEs, attribution, the circuit and its feature cards")
    for sub in (run, discover):
        sub.add_argument("--spec", required=True, help="a shipped spec name or a YAML file")
        sub.add_argument("--out", required=True, help="output folder")
        _add_model_args(sub)
        _add_sae_args(sub)
        sub.add_argument("--attribution", choices=_choices(AttributionSettings, "method"), default=None,
                         help=f"attribution patching or integrated gradients (default: "
                         f"{_default(AttributionSettings, 'method')})")
        sub.add_argument("--attribution-examples", type=int, default=None,
                         help=f"training examples attribution runs on (default: {_default(AttributionSettings, 'n_examples')})")
        sub.add_argument("--circuit-top-k", type=int, default=None,
                         help=f"features per site in the circuit (default: {_default(CircuitSettings, 'top_k')})")
        sub.add_argument("--lexicon", default=None, help="concept lexicon for suggestions and token deletion (default: "
                         f"{_default(Suggest, 'lexicon')})")
        sub.add_argument("--no-circuit-graph", action="store_true",
                         help="skip circuit.json (edges, faithfulness, head lens: the longest step of discovery); "
                              "compute it later with `circuit --compute`")
        _add_row_args(sub)
    run.add_argument("--flags", default="auto",
                     help="auto (every suggestion: lexicon and protected attribute), auto:lexicon, auto:protected, or a "
                          "YAML/JSON flags file")
    run.add_argument("--ablation", choices=_choices(EditSettings, "mode"), default=None,
                     help=f"flagged features become zero or their training mean (default: {_default(EditSettings, 'mode')})")
    run.add_argument("--seeds", type=int, default=None,
                     help="repeat SAE training and everything after it with N seeds; the report gives the mean "
                          f"and min-max of every row (default: {_default(RunSettings, 'seeds')})")
    _add_edit_args(run)

    features = commands.add_parser("features", help="print the feature cards of a discovered run")
    features.add_argument("--out", required=True, help="the folder of a discovered run")
    features.add_argument("--limit", type=_positive_int, default=20, help="cards to print (default: 20)")
    features.add_argument("--site", default=None)
    features.add_argument("--suggested", action="store_true", help="only features with a suggestion")

    circuit = commands.add_parser("circuit", help="summarise and draw the circuit graph of a discovered run")
    circuit.add_argument("--out", required=True, help="the folder of a discovered run")
    circuit.add_argument("--svg", type=_output_file, default=None, help="write the drawing (Graphviz) to this SVG file")
    circuit.add_argument("--json", type=_output_file, default=None,
                         help="write the selected graph (circuit.json schema) to this file")
    circuit.add_argument("--node-threshold", type=float, default=None, help="keep nodes with |score| >= this")
    circuit.add_argument("--edge-threshold", type=float, default=None, help="keep edges with |weight| >= this")
    circuit.add_argument("--max-nodes", type=int, default=None, help="strongest nodes kept per site")
    circuit.add_argument("--flags", default=None,
                         help="lay flags over the nodes: a YAML/JSON flags file, auto or auto:protected")
    circuit.add_argument("--flagged", action="store_true",
                         help="only the spurious-flagged features and their paths to the decision")
    circuit.add_argument("--compute", action="store_true",
                         help="rebuild circuit.json from the discovery folder first (edges, faithfulness, lens)")
    circuit.add_argument("--ablation", choices=_choices(GraphSettings, "ablation"), default=None,
                         help=f"with --compute (default: {RUNS_OWN} graph setting)")
    circuit.add_argument("--examples", type=int, default=None,
                         help=f"with --compute: training examples (default: {RUNS_OWN} graph setting)")
    circuit.add_argument("--prune", action="store_true", help="with --compute: exact (ACDC-style) pruning")
    circuit.add_argument("--prune-tau", type=float, default=None,
                         help=f"with --prune: KL threshold (default: {RUNS_OWN} graph setting)")

    edit = commands.add_parser("edit", help="apply a flags file to a discovered run, retrain, report")
    edit.add_argument("--out", required=True, help="the folder of a discovered run")
    edit.add_argument("--flags", required=True,
                      help="a YAML/JSON flags file, or auto (every suggestion) / auto:lexicon / auto:protected")
    edit.add_argument("--edit-out", default=None,
                      help="folder for the edited model, flags and report (default: --out), so one discovery serves "
                      "several edits")
    _add_edit_args(edit, inherited=True)
    _add_row_args(edit, inherited=True)

    serve = commands.add_parser("serve", help="serve the REST API (BentoML) on this machine")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    return parser


def _model_settings(args: argparse.Namespace) -> dict[str, object]:
    return {"path": args.model, **_given(probe_layer=args.probe_layer, max_length=args.max_length, device=args.device,
                                         batch_size=args.batch_size, dtype=args.dtype, device_map=args.device_map,
                                         device_memory_gb=args.device_memory_gb, cpu_memory_gb=args.cpu_memory_gb)}


def _sae_settings(args: argparse.Namespace) -> dict[str, object]:
    return _given(architecture=args.architecture, d_sae=args.d_sae, k=args.k, n_epochs=args.epochs,
                  batch_size=args.sae_batch_size, seed=args.seed)


def _cache_settings(args: argparse.Namespace) -> dict[str, object]:
    return _given(cache_dtype=args.cache_dtype, cache_tokens_per_text=args.cache_tokens_per_text,
                  cache_mode=args.cache_mode, cache_budget_gb=args.cache_budget_gb,
                  stream_buffer_tokens=args.stream_buffer_tokens, stream_sample_tokens=args.stream_sample_tokens)


def _print_sae_report(report: SAEQualityReport) -> None:
    if report.original is not None:
        print(f"original (validate): group-balanced accuracy {report.original.group_balanced_accuracy:.3f}")
    print(f"{'site':<16}{'FVU':>8}{'L0':>8}{'dead':>8}{'gbal acc (no err)':>20}{'with err same':>15}")
    for name, entry in report.sites.items():
        val = entry.validation
        without = entry.spliced_without_error
        spliced = float("nan") if without is None else without.group_balanced_accuracy
        same = "-" if entry.spliced_with_error is None else entry.spliced_with_error.same_predictions
        dead = entry.train.dead_fraction
        print(f"{name:<16}{val.fvu:>8.3f}{val.l0:>8.1f}{dead:>8.3f}{spliced:>20.3f}{str(same):>15}")


def _cmd_saes(args: argparse.Namespace) -> None:
    from editing_service.pipeline import run_saes
    from editing_service.settings import SAERunSettings

    settings = SAERunSettings(
        spec=args.spec, model=_model_settings(args), sites=args.sites, sae=_sae_settings(args),
        splice_check=not args.no_splice_check,
        **_cache_settings(args),
    )
    check_output_folder(Path(args.out))
    report = run_saes(settings, args.out)
    _print_sae_report(report)
    print(f"SAEs and quality.json written to {args.out}/saes")


def _given(**values: object) -> dict[str, object]:
    """Only the options the user gave, so the settings' own defaults apply to the rest."""
    return {key: value for key, value in values.items() if value is not None}


def _run_settings(args: argparse.Namespace) -> object:
    from editing_service.settings import RunSettings

    return RunSettings(
        spec=args.spec, model=_model_settings(args), sites=args.sites, sae=_sae_settings(args),
        **_cache_settings(args),
        attribution=_given(method=args.attribution, n_examples=args.attribution_examples, seed=args.seed),
        circuit=_given(top_k=args.circuit_top_k), suggestions=_given(lexicon=args.lexicon),
        graph={"build": not args.no_circuit_graph},
        edit={**_edit_overrides(args), **_given(mode=getattr(args, "ablation", None), seed=args.seed)},
        **_given(seeds=getattr(args, "seeds", None)),
    )


def _print_report(report: Report) -> None:
    print(f"{'row':<18}{'acc':>7}{'gbal':>7}{'worst':>7}{'prot.':>7}  (evaluation split)")
    for row in report.rows:
        prot = row.protected_attribute_accuracy
        print(f"{row.name:<18}{row.accuracy:>7.3f}{row.group_balanced_accuracy:>7.3f}"
              f"{row.worst_group_accuracy:>7.3f}{(prot if prot is not None else float('nan')):>7.3f}")
    for skipped in report.skipped_rows:
        print(f"{skipped.name:<18}not run: {skipped.reason}")
    if report.seeds is not None:
        print(f"over seeds {report.seeds.seeds}: mean [min, max]")
        for name, spread in report.seeds.rows.items():
            print(f"{name:<18}" + "  ".join(
                f"{metric[:5]} {s.mean:.3f} [{s.min:.3f}, {s.max:.3f}]" for metric, s in spread.items()))
    if report.budget_curve is not None:
        print("budget curve (N: score original head / retrained): " + ", ".join(
            f"{p.n}: {_score(p.score)}/{_score(p.score_retrained)}" for p in report.budget_curve.points))
    comparison = report.comparison
    if comparison.shift_row is not None:
        print(f"{comparison.shift_row} beats (group-balanced and worst group): {', '.join(comparison.beats) or 'none'}; "
              f"does not beat: {', '.join(comparison.does_not_beat) or 'none'}")
    print(report.flag_policy.statement)


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _progress() -> LoggedProgress:
    """Each pipeline step's start, quarters and end, logged at INFO (hidden by --quiet)."""
    from editing_service.pipeline.progress_log import LoggedProgress

    return LoggedProgress()


def _cmd_run(args: argparse.Namespace) -> None:
    from editing_service.pipeline import run_all

    check_output_folder(Path(args.out))
    report = run_all(_run_settings(args), args.out, flags=args.flags, progress=_progress())
    _print_report(report)
    print(f"report.json, report.html, features.json and models/ written to {args.out}")


def _cmd_discover(args: argparse.Namespace) -> None:
    from editing_service.pipeline import run_discover

    check_output_folder(Path(args.out))
    document = run_discover(_run_settings(args), args.out, progress=_progress())
    print(f"{len(document.circuit)} circuit features, {len(document.suggestions)} suggestions; "
          f"features.json written to {args.out}")


def _cmd_features(args: argparse.Namespace) -> None:
    from editing_service.cards_text import format_cards

    print(format_cards(args.out, limit=args.limit, site=args.site, suggested_only=args.suggested))


def _cmd_circuit(args: argparse.Namespace) -> None:
    from editing_service.circuit.view import check_view_args
    from editing_service.circuit_text import load_view, summary, write_drawing

    check_view_args(args.node_threshold, args.edge_threshold, args.max_nodes)
    flags = None
    if args.flags is not None:
        from editing_service.pipeline import resolve_flags

        flags = {f.id: f.state for f in resolve_flags(args.flags, args.out).flags}
    if args.compute:
        from editing_service.pipeline.circuit import run_circuit, run_graph_settings

        run_circuit(args.out, graph=run_graph_settings(args.out, _given(
            ablation=args.ablation, n_examples=args.examples, prune=args.prune or None, prune_tau=args.prune_tau)))
    graph = load_view(args.out, flags=flags, node_threshold=args.node_threshold, edge_threshold=args.edge_threshold,
                      max_nodes=args.max_nodes, flagged_only=args.flagged)
    print(summary(graph))
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(graph.model_dump_json(indent=1))
        print(f"graph written to {args.json}")
    if args.svg:
        write_drawing(graph, args.svg, title=f"{graph.spec}: {'flagged subgraph' if args.flagged else 'circuit'}")
        print(f"drawing written to {args.svg}")


def _cmd_edit(args: argparse.Namespace) -> None:
    from editing_service.pipeline import resolve_flags, run_edit

    report = run_edit(args.out, resolve_flags(args.flags, args.out), edit_out=args.edit_out,
                      edit_settings=_edit_overrides(args), progress=_progress())
    _print_report(report)


def _cmd_serve(args: argparse.Namespace) -> None:
    """Check the configuration here (a one-line error), then hand over to `bentoml serve`."""
    from editing_service.config import ServiceConfig

    ServiceConfig.from_env()
    command = [sys.executable, "-m", "bentoml", "serve", "editing_service.api.service:EditingService",
               "--host", args.host, "--port", str(args.port)]
    raise SystemExit(subprocess.call(command))


COMMANDS = {"saes": _cmd_saes, "run": _cmd_run, "discover": _cmd_discover, "features": _cmd_features,
            "circuit": _cmd_circuit, "edit": _cmd_edit, "serve": _cmd_serve}


def _silence_progress_bars() -> None:
    import datasets
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity_error()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.quiet:
        _silence_progress_bars()
    try:
        COMMANDS[args.command](args)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        parser.exit(2, f"editing-service: error: {problems}\n")
    except (ValueError, FileNotFoundError, KeyError, TypeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        parser.exit(2, f"editing-service: error: {message}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
