"""The command line's model and cache options reach the run settings (and are left to their defaults
when not given)."""

from __future__ import annotations

from editing_service.cli import _run_settings, build_parser
from editing_service.settings import RunSettings


def test_dtype_and_token_sample_options_reach_the_settings() -> None:
    args = build_parser().parse_args(["run", "--spec", "s", "--out", "o", "--dtype", "bfloat16",
                                      "--cache-tokens-per-text", "16", "--cache-dtype", "float16"])
    settings = _run_settings(args)
    assert settings.model.dtype == "bfloat16"
    assert settings.cache_tokens_per_text == 16 and settings.cache_dtype == "float16"


def test_without_the_options_the_settings_defaults_apply() -> None:
    settings = _run_settings(build_parser().parse_args(["run", "--spec", "s", "--out", "o"]))
    defaults = RunSettings(spec="s")
    assert settings.model.dtype == defaults.model.dtype == "auto"
    assert settings.cache_tokens_per_text is None and settings.cache_dtype == defaults.cache_dtype


def test_stream_and_batch_size_options_reach_the_settings() -> None:
    args = build_parser().parse_args(["run", "--spec", "s", "--out", "o", "--cache-mode", "stream",
                                      "--cache-budget-gb", "2.5", "--stream-buffer-tokens", "4096",
                                      "--stream-sample-tokens", "1000", "--batch-size", "8"])
    settings = _run_settings(args)
    assert (settings.cache_mode, settings.cache_budget_gb) == ("stream", 2.5)
    assert (settings.stream_buffer_tokens, settings.stream_sample_tokens) == (4096, 1000)
    assert settings.model.batch_size == 8
    defaults = _run_settings(build_parser().parse_args(["run", "--spec", "s", "--out", "o"]))
    assert defaults.model.batch_size == "auto" and defaults.cache_mode == "auto"


def test_a_seed_is_the_seed_of_the_same_repeat_of_a_seeds_run() -> None:
    base = _run_settings(build_parser().parse_args(["run", "--spec", "s", "--out", "o", "--seeds", "3"]))
    seeded = _run_settings(build_parser().parse_args(["run", "--spec", "s", "--out", "o", "--seed", "2"]))
    third = base.with_seed_offset(2)
    assert (seeded.sae.seed, seeded.attribution.seed, seeded.edit.seed) == (2, 2, 2)
    assert (seeded.sae, seeded.attribution, seeded.edit) == (third.sae, third.attribution, third.edit)
