"""Forward hooks that read or replace a site's output.

The context managers remove their hooks in `finally`, so a temporary intervention never leaks into the
next call; `replace_output` hands back the handle, for edits that belong to a model (`TextClassifier`).
A site on a module applied several times per forward pass (ALBERT's shared layer) acts on one
application only: its hook counts the module's calls since the model's forward began. Sites are read
and rewritten in float32 whatever the model's dtype (bfloat16, float16), and handed back in its dtype.
Module outputs may be a tensor or a tuple whose first element is the hidden state (DeBERTa layers,
attention modules); both are handled here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from editing_service.model.sites import Site

HiddenFn = Callable[[torch.Tensor], torch.Tensor]


def hidden_of(output: Any) -> torch.Tensor:
    """The hidden-state tensor inside a module output."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"Cannot find a hidden-state tensor in a module output of type {type(output).__name__}.")


def with_hidden(output: Any, hidden: torch.Tensor) -> Any:
    """`output` with its hidden-state tensor replaced by `hidden`."""
    if isinstance(output, torch.Tensor):
        return hidden
    return (hidden, *output[1:])


class Handles:
    """Several hook handles removed together."""

    def __init__(self, *handles: RemovableHandle) -> None:
        self.handles = handles

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def chained(fns: list[HiddenFn]) -> HiddenFn:
    """One function applying `fns` in order: several rewrites of a site under one hook."""
    if len(fns) == 1:
        return fns[0]

    def run(hidden: torch.Tensor) -> torch.Tensor:
        for fn in fns:
            hidden = fn(hidden)
        return hidden

    return run


def past_leading(n: int, fn: HiddenFn) -> HiddenFn:
    """`fn` applied to every position of a [B, T, d] hidden state but the first `n` (kept as they are);
    the tokenizer pads on the right, so those are every text's first tokens."""
    if n == 0:
        return fn

    def run(hidden: torch.Tensor) -> torch.Tensor:
        if hidden.dim() != 3:
            return fn(hidden)
        # A contiguous copy, so that an in-place rewrite (the served edit's computing form) can run on it.
        return torch.cat([hidden[:, :n], fn(hidden[:, n:].contiguous())], dim=1)

    return run


def replace_output(model: nn.Module, site: Site, fn: HiddenFn, *, first: bool = False) -> Handles:
    """Attach a hook replacing `site`'s hidden output `h` with `fn(h)` until the handle is removed.

    With `first=True` the hook runs before those already attached, so every other reader of the site
    (a `capture`, say) sees the replaced output, and `fn` may overwrite `h` in place.
    """
    module = model.get_submodule(site.module_path)

    def rewrite(output: Any) -> Any:
        hidden = hidden_of(output)
        if hidden.dtype == torch.float32:  # skips two no-op dispatches per pass: on a GPU, ops cost time
            return with_hidden(output, fn(hidden))
        return with_hidden(output, fn(hidden.float()).to(hidden.dtype))

    if site.call is None:

        def hook(_mod: nn.Module, _args: Any, output: Any) -> Any:
            return rewrite(output)

        return Handles(module.register_forward_hook(hook, prepend=first))

    calls = [0]

    def reset(_mod: nn.Module, _args: Any) -> None:
        calls[0] = 0

    def counted_hook(_mod: nn.Module, _args: Any, output: Any) -> Any:
        call, calls[0] = calls[0], calls[0] + 1
        return rewrite(output) if call == site.call else None

    return Handles(model.register_forward_pre_hook(reset),
                   module.register_forward_hook(counted_hook, prepend=first))


@contextmanager
def intervene(model: nn.Module, fns: Mapping[Site, HiddenFn]) -> Iterator[None]:
    """Replace each site's hidden output `h` with `fn(h)` while the context is open."""
    handles = []
    try:
        for site, fn in fns.items():
            handles.append(replace_output(model, site, fn))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def capture(model: nn.Module, sites: list[Site], *, detach: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Record each site's hidden output (the last forward call's) into the yielded dict."""
    store: dict[str, torch.Tensor] = {}

    def reader(site: Site) -> HiddenFn:
        def read(hidden: torch.Tensor) -> torch.Tensor:
            store[site.name] = hidden.detach() if detach else hidden
            return hidden

        return read

    with intervene(model, {site: reader(site) for site in sites}):
        yield store


class _SiteReached(Exception):
    """Raised by `run_until`'s hook once the last site it reads has run."""


def _stop(_hidden: torch.Tensor) -> torch.Tensor:
    raise _SiteReached


def run_until(model: nn.Module, sites: list[Site], forward: Callable[[], Any]) -> dict[str, torch.Tensor]:
    """Each site's hidden output (detached) from `forward()`, run only as far as the last of `sites` in forward
    order: the layers after it are not computed. What the sites hold is what a whole pass gives them."""
    last = max(sites, key=lambda s: s.forward_order)
    with capture(model, sites) as store:
        stop = replace_output(model, last, _stop)  # attached after capture's hook, so it runs after it
        try:
            forward()
        except _SiteReached:
            pass
        finally:
            stop.remove()
    missing = [s.name for s in sites if s.name not in store]
    if missing:
        raise RuntimeError(f"The forward pass did not reach the sites {missing}.")
    return store


@contextmanager
def capture_input(module: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Record the first positional input of `module` (the features a linear head reads)."""
    store: dict[str, torch.Tensor] = {}

    def pre_hook(_mod: nn.Module, args: tuple[Any, ...]) -> None:
        store["input"] = args[0]

    handle = module.register_forward_pre_hook(pre_hook)
    try:
        yield store
    finally:
        handle.remove()
