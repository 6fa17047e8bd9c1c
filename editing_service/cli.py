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

from pydantic import ValidationError

from editing_service import __version__

logger = logging.getLogger("editing_service.cli")


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model folder (default: the embedded MiniLM)")
    parser.add_argument("--probe-layer", type=int, default=-1, help="block a probe head reads (default: last)")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per text (truncation)")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default=None,
                        help="weights' dtype (default auto: the checkpoint's on a GPU, float32 on the CPU)")


def _add_sae_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sites", nargs="+", default=None,
                        help="site names, e.g. embeddings.out blocks.0.out (default: every block output)")
    parser.add_argument("--architecture", choices=["topk", "relu", "jumprelu"], default=None, help="default: topk")
    parser.add_argument("--d-sae", type=int, default=None, help="features per SAE (default: 2048)")
    parser.add_argument("--k", type=int, default=None, help="active features per token, topk (default: 32)")
    parser.add_argument("--epochs", type=float, default=None, help="passes over the cached training tokens (default: 1)")
    parser.add_argument("--cache-dtype", choices=["float32", "float16", "bfloat16"], default=None,
                        help="storage of cached activations (default: float16)")
    parser.add_argument("--cache-tokens-per-text", type=int, default=None,
                        help="cache a seeded sample of at most this many tokens per training text (default: all)")
    parser.add_argument("--seed", type=int, default=0)


def _add_edit_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--served-form", choices=["jumprelu", "gate"], default=None,
                        help="how flagged TopK features are served (default: jumprelu)")
    parser.add_argument("--erase-at-edited-sites", action="store_true", default=None,
                        help="also erase the protected attribute's linear directions (LEACE, fitted on the validate "
                        "split) at every edited site")


def _edit_overrides(args: argparse.Namespace) -> dict[str, object]:
    return _given(served_form=args.served_form, erase_at_edited_sites=args.erase_at_edited_sites)


def build_parser() -> argparse.ArgumentParser:
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
        sub.add_argument("--attribution", choices=["attrib", "ig"], default="attrib")
        sub.add_argument("--attribution-examples", type=int, default=None, help="default: 512")
        sub.add_argument("--circuit-top-k", type=int, default=None, help="features per site in the circuit (default: 300)")
        sub.add_argument("--lexicon", default="gendered", help="concept lexicon for suggestions and token deletion")
    run.add_argument("--flags", default="auto",
                     help="auto (lexicon suggestions), auto:protected, auto:all (both kinds), or a YAML/JSON flags file")
    run.add_argument("--ablation", choices=["zero", "mean"], default="zero")
    _add_edit_args(run)

    features = commands.add_parser("features", help="print the feature cards of a discovered run")
    features.add_argument("--out", required=True, help="the folder of a discovered run")
    features.add_argument("--limit", type=int, default=20)
    features.add_argument("--site", default=None)
    features.add_argument("--suggested", action="store_true", help="only features with a suggestion")

    circuit = commands.add_parser("circuit", help="summarise and draw the circuit graph of a discovered run")
    circuit.add_argument("--out", required=True, help="the folder of a discovered run")
    circuit.add_argument("--svg", default=None, help="write the drawing (Graphviz) to this SVG file")
    circuit.add_argument("--json", default=None, help="write the selected graph (circuit.json schema) to this file")
    circuit.add_argument("--node-threshold", type=float, default=None, help="keep nodes with |score| >= this")
    circuit.add_argument("--edge-threshold", type=float, default=None, help="keep edges with |weight| >= this")
    circuit.add_argument("--max-nodes", type=int, default=None, help="strongest nodes kept per site")
    circuit.add_argument("--flags", default=None,
                         help="lay flags over the nodes: a YAML/JSON flags file, auto or auto:protected")
    circuit.add_argument("--flagged", action="store_true",
                         help="only the spurious-flagged features and their paths to the decision")
    circuit.add_argument("--compute", action="store_true",
                         help="rebuild circuit.json from the discovery folder first (edges, faithfulness, lens)")
    circuit.add_argument("--ablation", choices=["mean", "zero"], default=None, help="with --compute (default: mean)")
    circuit.add_argument("--examples", type=int, default=None, help="with --compute: examples (default: 128)")
    circuit.add_argument("--prune", action="store_true", help="with --compute: exact (ACDC-style) pruning")
    circuit.add_argument("--prune-tau", type=float, default=None, help="with --prune: KL threshold (default 1e-3)")

    edit = commands.add_parser("edit", help="apply a flags file to a discovered run, retrain, report")
    edit.add_argument("--out", required=True, help="the folder of a discovered run")
    edit.add_argument("--flags", required=True, help="a YAML/JSON flags file, or auto / auto:protected / auto:all")
    edit.add_argument("--edit-out", default=None,
                      help="folder for the edited model, flags and report (default: --out), so one discovery serves "
                      "several edits")
    _add_edit_args(edit)

    serve = commands.add_parser("serve", help="serve the REST API (BentoML) on this machine")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    return parser


def _model_settings(args: argparse.Namespace) -> dict[str, object]:
    return {"path": args.model, "probe_layer": args.probe_layer, "max_length": args.max_length,
            "batch_size": args.batch_size, "device": args.device,
            **({"dtype": args.dtype} if args.dtype is not None else {})}


def _sae_settings(args: argparse.Namespace) -> dict[str, object]:
    return _given(architecture=args.architecture, d_sae=args.d_sae, k=args.k, n_epochs=args.epochs, seed=args.seed)


def _print_sae_report(report: dict) -> None:
    original = report["original"]
    print(f"original (validate): group-balanced accuracy {original['group_balanced_accuracy']:.3f}")
    print(f"{'site':<16}{'FVU':>8}{'L0':>8}{'dead':>8}{'gbal acc (no err)':>20}{'with err same':>15}")
    for name, entry in report["sites"].items():
        val = entry["validate"]
        spliced = entry.get("spliced_without_error", {}).get("group_balanced_accuracy", float("nan"))
        same = entry.get("spliced_with_error", {}).get("same_predictions", "-")
        dead = entry["train"]["dead_fraction"]
        print(f"{name:<16}{val['fvu']:>8.3f}{val['l0']:>8.1f}{dead:>8.3f}{spliced:>20.3f}{str(same):>15}")


def _cmd_saes(args: argparse.Namespace) -> None:
    from editing_service.pipeline import run_saes
    from editing_service.settings import SAERunSettings

    settings = SAERunSettings(
        spec=args.spec, model=_model_settings(args), sites=args.sites, sae=_sae_settings(args),
        splice_check=not args.no_splice_check,
        **_given(cache_dtype=args.cache_dtype, cache_tokens_per_text=args.cache_tokens_per_text),
    )
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
        **_given(cache_dtype=args.cache_dtype, cache_tokens_per_text=args.cache_tokens_per_text),
        attribution=_given(method=args.attribution, n_examples=args.attribution_examples),
        circuit=_given(top_k=args.circuit_top_k), suggestions={"lexicon": args.lexicon},
        edit={"mode": getattr(args, "ablation", "zero"), **(_edit_overrides(args) if "served_form" in args else {})},
    )


def _print_report(report: dict) -> None:
    print(f"{'row':<18}{'acc':>7}{'gbal':>7}{'worst':>7}{'prot.':>7}  (evaluation split)")
    for row in report["rows"]:
        prot = row.get("protected_attribute_accuracy")
        print(f"{row['name']:<18}{row['accuracy']:>7.3f}{row['group_balanced_accuracy']:>7.3f}"
              f"{row['worst_group_accuracy']:>7.3f}{(prot if prot is not None else float('nan')):>7.3f}")
    policy = report.get("flag_policy") or {}
    print(policy.get("statement", "") if isinstance(policy, dict) else policy)


def _cmd_run(args: argparse.Namespace) -> None:
    from editing_service.pipeline import run_all

    report = run_all(_run_settings(args), args.out, flags=args.flags)
    _print_report(report)
    print(f"report.json, report.html, features.json and models/ written to {args.out}")


def _cmd_discover(args: argparse.Namespace) -> None:
    from editing_service.pipeline import run_discover

    document = run_discover(_run_settings(args), args.out)
    print(f"{len(document['circuit'])} circuit features, {len(document['suggestions'])} suggestions; "
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
                      edit_settings=_edit_overrides(args))
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
