"""Train SAEs on cached activations: `SAETrainer` (scikit-learn style) and `train_saes` for many sites.

Per step: one dense encoder matmul, top-k selection, and (for TopK) sparse decoding and a sparse encoder
backward; Adam with warm-up and a linear decay at the end. Decoder rows start small and free where the loss
ignores their norm (TopK trains through decoder-norm rescaling, ReLU through a norm-weighted L1) and are held
at unit norm for JumpReLU (the gradient's radial part is removed before the step, rows renormalised after).
Inputs are scaled so E||x||^2 = d_in on a sample and b_dec starts at their geometric median. At the end the
decoder norms and the input scale are folded into the weights: the fitted SAE has unit-norm decoder rows and
takes raw activations.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch

from editing_service.sae.base import SAE, TrainContext
from editing_service.sae.config import DTYPES, SAEConfig
from editing_service.sae.data import (
    ActivationArray,
    BatchSource,
    check_activations,
    geometric_median,
    iter_batches,
    norm_scale,
    sample_rows,
)
from editing_service.sae.io import save_sae
from editing_service.sae.plan import TrainingPlan, make_adam, make_plan, remove_radial_grad_
from editing_service.sae.registry import get_sae_class
from editing_service.sae.threads import ThreadTuner

logger = logging.getLogger(__name__)

ERR_NOT_FITTED = "this SAETrainer is not fitted yet; call fit(activations) first"


class SAETrainer:
    """Fit one SAE to activations [n_tokens, d_in]; the result is `sae_`, the loss curve `history_`.

    Parameters (all keyword-only)
    ----------
    architecture : "topk" (default), "batchtopk", "relu" or "jumprelu" (any registered name).
    d_sae : dictionary size; None means expansion_factor * d_in.
    k : active features per token (topk; the mean over a batch for batchtopk); for jumprelu, the L0 the
    thresholds are initialised to give.
    l1_coefficient, l0_coefficient : sparsity weights of relu (L1) / jumprelu (L0), in the units of the
    summed squared error of normalised inputs. jumprelu_bandwidth : width of the threshold's pseudo-gradient
    kernel; None means 0.001 * sqrt(d_in), the customary 0.001 rescaled to inputs with E||x||^2 = d_in.
    lr : Adam learning rate; None means 2e-3 * sqrt(2048 / d_sae), capped at 5e-3 (the 1 / sqrt(d_sae)
    rule of Gao et al. 2024, anchored where a 2048-feature TopK SAE on MiniLM activations does best in a
    few hundred steps). max_grad_norm : gradient-norm clipping before each step (None: off).
    batch_size : tokens per step. n_epochs / n_tokens : training length (n_tokens wins when given).
    warmup_steps : linear lr warm-up (None: 5% of the steps, at most 1000); lr_decay_fraction : final
    fraction of steps over which lr decays linearly to 0; sparsity_warmup_fraction : L1/L0 warm-up.
    aux_k, aux_coefficient, dead_window : auxiliary-k loss (topk, batchtopk): the aux_k most active dead
    features (None: min(256, d_in // 2)) reconstruct the residual, weighted by aux_coefficient (None: the
    architecture's `default_aux_coefficient`, 1/32 for topk, 0 for batchtopk); a feature is dead after
    dead_window tokens without firing (None: total training tokens / 10, clipped to [4 * batch_size, 1e6]).
    b_dec_init : "geometric_median", "mean" or "zeros". normalize : scale inputs to E||x||^2 = d_in.
    decoder_init_norm : initial norm of the decoder rows (W_enc starts as W_dec^T); None means 0.1 where
    the rows are free (topk, relu: small weights let Adam turn them quickly, as in Anthropic's April 2024
    update and SAELens) and 1 where they are held at unit norm (jumprelu).
    chunk_rows : rows read at once from the activations. sample_size : rows used for the statistics.
    auto_threads : on CPU, every 100 steps time two steps with the configured torch thread count and two
    with one thread and keep the faster (a busy machine can make more threads much slower; see
    `editing_service.sae.threads`); the configured count is restored at the end. Off by default: the
    training step gives the same bits on one thread and on two (`tests/sae/test_thread_count.py`), but BLAS
    does not promise that for every shape, and where it fails, switching counts mid-run would make two runs
    of the same settings train slightly different SAEs, and a report would not reproduce.
    seed, device, dtype, hook_name, model_name, log_every : as named.
    """

    def __init__(
        self,
        *,
        architecture: str = "topk",
        d_sae: int | None = None,
        expansion_factor: int = 8,
        k: int = 32,
        l1_coefficient: float = 5.0,
        l0_coefficient: float = 1.0,
        jumprelu_bandwidth: float | None = None,
        lr: float | None = None,
        batch_size: int = 4096,
        n_epochs: float = 1.0,
        n_tokens: int | None = None,
        warmup_steps: int | None = None,
        lr_decay_fraction: float = 0.2,
        sparsity_warmup_fraction: float = 0.05,
        aux_k: int | None = None,
        aux_coefficient: float | None = None,
        dead_window: int | None = None,
        b_dec_init: Literal["geometric_median", "mean", "zeros"] = "geometric_median",
        decoder_init_norm: float | None = None,
        max_grad_norm: float | None = 1.0,
        auto_threads: bool = False,
        normalize: bool = True,
        chunk_rows: int = 2**16,
        sample_size: int = 2**14,
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: str = "float32",
        hook_name: str | None = None,
        model_name: str | None = None,
        log_every: int = 50,
    ) -> None:
        self.architecture = architecture
        self.d_sae = d_sae
        self.expansion_factor = expansion_factor
        self.k = k
        self.l1_coefficient = l1_coefficient
        self.l0_coefficient = l0_coefficient
        self.jumprelu_bandwidth = jumprelu_bandwidth
        self.lr = lr
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.n_tokens = n_tokens
        self.warmup_steps = warmup_steps
        self.lr_decay_fraction = lr_decay_fraction
        self.sparsity_warmup_fraction = sparsity_warmup_fraction
        self.aux_k = aux_k
        self.aux_coefficient = aux_coefficient
        self.dead_window = dead_window
        self.b_dec_init = b_dec_init
        self.decoder_init_norm = decoder_init_norm
        self.max_grad_norm = max_grad_norm
        self.auto_threads = auto_threads
        self.normalize = normalize
        self.chunk_rows = chunk_rows
        self.sample_size = sample_size
        self.seed = seed
        self.device = device
        self.dtype = dtype
        self.hook_name = hook_name
        self.model_name = model_name
        self.log_every = log_every

    @torch.no_grad()
    def _init_sae(self, sample: torch.Tensor, plan: TrainingPlan, device: torch.device) -> SAE:
        d_in = sample.shape[1]
        cfg = SAEConfig(
            architecture=self.architecture,
            d_in=d_in,
            d_sae=plan.d_sae,
            k=self.k if get_sae_class(self.architecture).uses_k else None,
            l1_coefficient=self.l1_coefficient,
            l0_coefficient=self.l0_coefficient,
            jumprelu_bandwidth=plan.bandwidth,
            dtype=plan.dtype,
            device=str(device),
            hook_name=self.hook_name,
            model_name=self.model_name,
        )
        sae = get_sae_class(self.architecture)(cfg, generator=torch.Generator().manual_seed(self.seed))
        init_norm = plan.decoder_init_norm
        if init_norm is None:
            init_norm = 1.0 if sae.unit_norm_decoder else 0.1
        if sae.unit_norm_decoder and init_norm != 1.0:
            raise ValueError(f"decoder_init_norm must be 1 for {self.architecture} (unit-norm decoder rows)")
        sae.W_dec.mul_(init_norm)
        sae.W_enc.copy_(sae.W_dec.T)
        if self.b_dec_init == "geometric_median":
            sae.b_dec.copy_(geometric_median(sample))
        elif self.b_dec_init == "mean":
            sae.b_dec.copy_(sample.mean(0))
        if self.architecture == "jumprelu":
            # Thresholds at the (1 - k / d_sae) quantile of each feature's initial pre-activation: training
            # starts near L0 = k instead of d_sae / 2, which plain L0 pressure takes many steps to undo.
            z = sae.pre_activations(sample[:4096]).float()  # [n, d_sae]
            q = max(0.0, 1.0 - self.k / cfg.d_sae)
            sae.threshold.copy_(torch.quantile(z, q, dim=0).clamp_min(0.0))
        return sae

    # ------------------------------------------------------------------ training
    def fit(
        self,
        activations: ActivationArray,
        *,
        progress: Callable[[float], None] | None = None,
        stream: BatchSource | None = None,
    ) -> SAETrainer:
        """Train on `activations` [n_tokens, d_in] and return self (the SAE is in `sae_`).

        With `stream`, training batches come from it (an epoch is its `n_tokens`) and `activations` is only
        the sample that sets the input scale and the initial b_dec (a token sample of the same site)."""
        for _ in self.fit_steps(activations, progress=progress, stream=stream):
            pass
        return self

    def fit_steps(
        self,
        activations: ActivationArray,
        *,
        progress: Callable[[float], None] | None = None,
        stream: BatchSource | None = None,
    ) -> Iterator[int]:
        """`fit`, one optimisation step per iteration (yields the steps done); the SAE is in `sae_` once the
        iterator is exhausted. `fit_together` interleaves several of these."""
        n_data, d_in = check_activations(activations)
        if stream is not None:
            n_data = stream.n_tokens
        plan = make_plan(vars(self), n_data, d_in)
        device = torch.device(self.device)
        dtype = DTYPES[plan.dtype]
        if device.type == "cpu" and dtype == torch.float16:
            logger.warning("float16 matmuls are very slow on CPU; float32 (or bfloat16) trains much faster")
        rng = np.random.default_rng(self.seed)
        sample = sample_rows(activations, self.sample_size, rng, device=device, dtype=torch.float32)
        scale = norm_scale(sample) if self.normalize else 1.0
        sample = sample * scale
        total_var = float(sample.var(0, unbiased=False).sum())  # of the normalised inputs
        sae = self._init_sae(sample, plan, device)
        if stream is None:
            batches = iter_batches(
                activations,
                batch_size=plan.batch,
                chunk_rows=self.chunk_rows,
                scale=scale,
                rng=rng,
                device=device,
                dtype=dtype,
            )
        else:
            batches = (b.to(device=device, dtype=dtype) * scale for b in stream.batches(plan.batch))
        logger.info(
            "training %s SAE %d -> %d on %d %stokens: %d steps of %d",
            self.architecture,
            d_in,
            plan.d_sae,
            n_data,
            "streamed " if stream is not None else "",
            plan.n_steps,
            plan.batch,
        )
        tuner = ThreadTuner(enabled=self.auto_threads and device.type == "cpu")
        elapsed = 0.0
        try:
            steps = self._train(sae, batches, plan, total_var, tuner, progress)
            while True:
                t0 = time.perf_counter()
                try:
                    done = next(steps)
                except StopIteration as finished:
                    history = finished.value
                    break
                finally:
                    elapsed += time.perf_counter() - t0
                yield done
        finally:
            tuner.restore()
            sae.drop_workspace_()

        sae.finish_training_(sample.to(dtype))
        del sample
        sae.fold_decoder_norm_()  # unit-norm decoder rows, same function
        sae.fold_input_scale_(scale)
        sae = sae.inference_form()
        n_tokens = plan.n_steps * plan.batch
        sae.cfg.metadata.update(
            {
                "trained_by": "editing_service.sae.SAETrainer",
                "input_scale": scale,
                "n_training_tokens": n_tokens,
                "n_steps": plan.n_steps,
                "batch_size": plan.batch,
                "lr": plan.lr,
                "aux_k": plan.aux_k if self._uses_aux() else None,
                "dead_window": plan.dead_window,
                "seed": self.seed,
                "final_fvu_train": history[-1]["fvu"],
                "final_l0_train": history[-1]["l0"],
            }
        )
        sae.eval()
        self.sae_ = sae
        self.history_ = history
        self.input_scale_ = scale
        self.n_steps_ = plan.n_steps
        self.tokens_per_second_ = n_tokens / max(elapsed, 1e-9)
        logger.info(
            "trained in %.1f s (%.0f tokens/s), final fvu %.4f, l0 %.1f",
            elapsed,
            self.tokens_per_second_,
            history[-1]["fvu"],
            history[-1]["l0"],
        )

    def _uses_aux(self) -> bool:
        return get_sae_class(self.architecture).uses_aux_loss and self._aux_weight() > 0

    def _aux_weight(self) -> float:
        """The auxiliary-k loss's weight: the one given, or the architecture's default."""
        cls = get_sae_class(self.architecture)
        return cls.default_aux_coefficient if self.aux_coefficient is None else self.aux_coefficient

    def _train(
        self,
        sae: SAE,
        stream: Iterator[torch.Tensor],
        plan: TrainingPlan,
        total_var: float,
        tuner: ThreadTuner,
        progress: Callable[[float], None] | None,
    ) -> Generator[int, None, list[dict[str, float]]]:
        """The optimisation loop, yielding the steps done after each step; returns the history (one entry
        every `log_every` steps and at the end)."""
        params = list(sae.parameters())
        opt = make_adam(params, plan.lr)
        device = sae.device
        since_fired = torch.zeros(plan.d_sae, dtype=torch.long, device=device)  # tokens since last firing
        dead: torch.Tensor | None = None
        use_aux, aux_weight = self._uses_aux(), self._aux_weight()
        sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, mse, aux, l0 since last log
        history: list[dict[str, float]] = []
        t0, last_step = time.perf_counter(), 0
        for step in range(plan.n_steps):
            x = next(stream)
            tuner.before_step(step)
            t_step = time.perf_counter()
            for group in opt.param_groups:
                group["lr"] = plan.lr_at(step)
            ctx = TrainContext(
                dead_features=dead,
                sparsity_scale=plan.sparsity_scale(step),
                aux_k=plan.aux_k,
                aux_coefficient=aux_weight,
            )
            out = sae.training_loss(x, ctx)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            if sae.unit_norm_decoder:
                remove_radial_grad_(sae.W_dec)
            if self.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm, foreach=True)
            opt.step()
            with torch.no_grad():
                if sae.unit_norm_decoder:
                    sae.W_dec.div_(sae.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12))
                sae.clamp_parameters_()
                since_fired.add_(plan.batch).masked_fill_(out.fired, 0)
                if use_aux:
                    dead = torch.nonzero(since_fired >= plan.dead_window).squeeze(1)
                sums += torch.stack([out.loss.detach(), out.mse, out.aux, out.l0]).double()
            tuner.after_step(step, time.perf_counter() - t_step)
            if (step + 1) % self.log_every == 0 or step + 1 == plan.n_steps:
                loss, mse, aux, l0 = (sums / (step + 1 - last_step)).tolist()
                history.append(
                    {
                        "step": step + 1,
                        "tokens": (step + 1) * plan.batch,
                        "lr": opt.param_groups[0]["lr"],
                        "loss": loss,
                        "mse": mse,
                        "fvu": mse / total_var if total_var > 0 else float("nan"),
                        "aux": aux,
                        "l0": l0,
                        "dead_fraction": float((since_fired >= plan.dead_window).float().mean()),
                        "elapsed_s": time.perf_counter() - t0,
                    }
                )
                sums.zero_()
                last_step = step + 1
                if progress is not None:
                    progress((step + 1) / plan.n_steps)
            yield step + 1
        return history

    def save(self, path: str) -> None:
        """Save the fitted SAE in the SAELens layout."""
        if not hasattr(self, "sae_"):
            raise ValueError(ERR_NOT_FITTED)
        save_sae(self.sae_, path)


def train_saes(
    activations_by_site: Mapping[str, ActivationArray],
    *,
    progress: Callable[[str, float], None] | None = None,
    **trainer_kwargs: Any,
) -> dict[str, SAE]:
    """Train one SAE per site with the same hyperparameters; `progress(site, fraction)` reports each site."""
    saes: dict[str, SAE] = {}
    for site, activations in activations_by_site.items():
        kwargs = {"hook_name": site, **trainer_kwargs}
        trainer = SAETrainer(**kwargs)
        site_progress = None if progress is None else (lambda f, s=site: progress(s, f))
        saes[site] = trainer.fit(activations, progress=site_progress).sae_
    return saes


def fit_together(runs: Sequence[Iterator[int]]) -> None:
    """Advance several `SAETrainer.fit_steps` iterators in turn, one step each, until every one is done: SAEs
    fed by one shared stream of forward passes must read it in step, or its queues would grow to an epoch."""
    active = list(runs)
    while active:
        active = [run for run in active if next(run, None) is not None]
