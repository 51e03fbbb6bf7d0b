"""``bnp hessian``: per-layer Hessian blocks of small networks, with and without BNP.

For a small ReLU MLP and a small convnet on the built-in synthetic data, train
with no normalization, with BN and with BNP, and at several steps compute, for
every Linear / Conv2d layer:

* the statistics of the layer's input on a fixed evaluation batch: the norm
  of its mean ``|mu|`` and the spread of its feature variances
  ``max S_jj / min S_jj`` (THEORY section 1: what makes blocks ill-conditioned);
* ``kappa(M)`` of the input moment matrix and THEORY's lower bounds for it;
* ``kappa(H)`` of the exact Hessian block over the layer's ``[W | b]``
  (autograd, reverse over reverse), and ``kappa(P^T H P)``: the same block
  after the BNP transform built from the batch's input statistics (the
  Hessian that BNP's gradient descent effectively sees), beside
  ``kappa(P^T M P)``.

Condition numbers are ``lambda_max / lambda_min+`` over the eigenvalues above
``RANK_RTOL * lambda_max`` (the blocks are PSD up to rounding for ReLU networks
with cross-entropy: the activation's second derivative vanishes). Input
features that are exactly zero over the batch (dead ReLUs) are left out of
the input statistics; their weights only add zero eigenvalues to H.

Statistics in the graph: for the BN network the loss is taken in training
mode, so the Hessian differentiates through the *batch* statistics (the loss
BN trains on); no other network has statistics in its loss (BNP keeps them in
the optimizer).

For convolutions the layer input is the im2col patch vector (zero padding
included), for which the theory holds exactly.
"""

from __future__ import annotations

import argparse
import functools
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np  # host-side tables and plots only

from .. import backend, curvature, spectra, theory
from .. import data as bdata
from .. import functional as F
from ..autograd import Tensor, no_grad
from ..autograd.im2col import unfold
from ..data import DataLoader
from ..nn import Conv2d, Linear, init, models
from ..optim import SGD
from ..plotting import headless_pyplot, save
from ..preconditioner import BNP
from ..train import fit
from .arguments import choices, list_of, nonnegative_int, positive_int, writable_dir
from .outputs import json_text, write_atomically

RANK_RTOL = 1e-9
METHODS = ("none", "bn", "bnp")


@dataclass
class HessianConfig:
    models: tuple[str, ...] = ("mlp", "cnn")
    methods: tuple[str, ...] = METHODS
    checkpoints: tuple[int, ...] = (0, 100, 300, 600)
    batch_size: int = 16
    eval_size: int = 256
    lr: dict | None = None
    n_features: int = 8
    hidden: tuple[int, ...] = (16, 16)
    image_size: int = 8
    channels: tuple[int, int] = (4, 8)
    bnp_eps: float = 1e-3
    seed: int = 0
    out: str = "results/hessian"
    quick: bool = False

    def learning_rates(self) -> dict:
        # chosen from bnp compare's grid at batch size 8-16 for this data (README)
        return self.lr or {"none": 0.03, "bn": 0.1, "bnp": 0.1}

    @classmethod
    def quick_config(cls, **overrides: Any) -> HessianConfig:
        base = dict(checkpoints=(0, 20), eval_size=64, hidden=(8, 8), channels=(2, 4), quick=True)
        base.update(overrides)
        return cls(**base)


# -- per-layer analysis ----------------------------------------------------------------
def _layer_inputs(model: Any, layers: list, x: Tensor) -> dict[int, Any]:
    """Each layer's input rows on the batch ``x``: (N, n) for Linear, patch rows for Conv2d."""
    seen: dict[int, Any] = {}

    def hook(layer, inputs, output):
        a = inputs[0]
        if isinstance(layer, Conv2d):
            cols = unfold(a, layer.kernel_size, layer.stride, layer.padding).data  # (N, n, L)
            seen[id(layer)] = cols.transpose(0, 2, 1).reshape(-1, cols.shape[1])
        else:
            seen[id(layer)] = a.data.reshape(-1, a.shape[-1])

    handles = [layer.register_forward_hook(hook) for layer in layers]
    with no_grad():
        model(x)
    for h in handles:
        h.remove()
    return seen


def _kappa(A: Any) -> tuple[float, spectra.ConditionNumber]:
    """The table's condition number of a block, and the ConditionNumber (with the
    eigenvalues) it came from: ONE eigendecomposition per block.

    ``lambda_max / lambda_min+`` for a block that is PSD up to the rank tolerance;
    for an indefinite one (BN's Hessian through batch statistics)
    ``|lambda|_max / |lambda|_min+`` over the eigenvalues above the rank
    tolerance, negated to flag it in tables.
    """
    c = spectra.condition_number(A, rank_rtol=RANK_RTOL)
    if c.indefinite:
        return -float(c.on_range()), c
    return float(c.in_convention("psd")), c


def analyse_layer(loss_fn, layer: Any, rows: Any, eps: float) -> dict:
    """Input statistics, theory bounds and Hessian condition numbers of one layer."""
    xp = backend.xp()
    mu, S = theory.batch_statistics(rows)
    live = xp.asarray((xp.abs(rows) > 0).any(axis=0))  # features not identically zero
    mu_l, S_l = mu[live], S[live][:, live]
    H = curvature.layer_block(loss_fn, layer.weight, layer.bias)
    out = layer.weight.shape[0]
    P = theory.bnp_transform(mu, xp.diag(S), eps)
    P_layer = xp.kron(xp.eye(out, dtype=P.dtype), P)  # neuron-major, one P per neuron
    H_bnp = P_layer.T @ H @ P_layer
    M = theory.moment_matrix_from_stats(mu_l, S_l)
    P_l = theory.bnp_transform(mu_l, xp.diag(S_l), eps)
    M_bnp = P_l.T @ M @ P_l
    variances = xp.diag(S_l)
    (kappa_H, c_H), (kappa_H_bnp, c_H_bnp) = _kappa(H), _kappa(H_bnp)
    return dict(
        features=int(rows.shape[1]), live_features=int(live.sum()),
        mean_norm=float(xp.linalg.norm(mu_l)),
        variance_spread=float(variances.max() / variances.min()) if variances.min() > 0 else math.inf,
        kappa_M=_kappa(M)[0],
        bound_mean=theory.kappa_lower_bound_mean(mu_l, S_l) if float(xp.linalg.norm(mu_l)) > 0 else math.nan,
        bound_scales=theory.kappa_lower_bound_scales(S_l),
        kappa_H=kappa_H, kappa_H_bnp=kappa_H_bnp, kappa_M_bnp=_kappa(M_bnp)[0],
        eigenvalues_H=[float(v) for v in backend.to_numpy(c_H.eigenvalues)],
        eigenvalues_H_bnp=[float(v) for v in backend.to_numpy(c_H_bnp.eigenvalues)],
    )


# -- the study -------------------------------------------------------------------------
def _model_and_data(kind: str, method: str, config: HessianConfig):
    init.manual_seed(config.seed)
    norm = "bn" if method == "bn" else None
    if kind == "mlp":
        ds = bdata.synthetic(n_train=1000, n_test=config.eval_size, n_features=config.n_features, seed=7)
        model = models.mlp([config.n_features, *config.hidden, ds.n_classes], norm=norm)
    elif kind == "cnn":
        ds = bdata.synthetic(n_train=1000, n_test=config.eval_size, seed=7,
                             image_shape=(config.image_size, config.image_size))
        model = models.small_cnn(1, ds.n_classes, norm=norm, image_size=config.image_size, channels=config.channels)
    else:
        raise ValueError(f"hessian: unknown model {kind!r}; expected mlp or cnn")
    return model, ds


def study(kind: str, method: str, config: HessianConfig, log=print) -> list[dict]:
    """Train one network and analyse its layers at each checkpoint."""
    model, ds = _model_and_data(kind, method, config)
    layers = [m for m in model.modules() if isinstance(m, (Linear, Conv2d))]
    names = {id(m): n for n, m in model.named_modules()}
    x_eval = Tensor(backend.asarray(ds.X_train[: config.eval_size]).astype(backend.get_default_dtype()))
    y_eval = Tensor(backend.asarray(ds.y_train[: config.eval_size]))
    loader = DataLoader((ds.X_train, ds.y_train), batch_size=config.batch_size, seed=config.seed)
    optimizer = SGD(model.parameters(), lr=config.learning_rates()[method])
    pre = BNP(model, eps=config.bnp_eps) if method == "bnp" else None
    rows, done = [], 0
    for step in sorted(config.checkpoints):
        if step > done:
            fit(model, loader, optimizer, steps=step - done, preconditioner=pre, progress=False)
            done = step
        inputs = _layer_inputs(model.eval(), layers, x_eval)
        saved = model.state_dict()  # BN in training mode would move its running statistics
        model.train(method == "bn")  # BN: batch statistics in the graph; others: no statistics at all
        loss_fn = lambda: F.cross_entropy(model(x_eval), y_eval)
        loss = float(loss_fn().item())
        for layer in layers:
            row = dict(model=kind, method=method, step=step, layer=names[id(layer)], kind=type(layer).__name__,
                       loss=loss, **analyse_layer(loss_fn, layer, inputs[id(layer)], config.bnp_eps))
            rows.append(row)
            log(format_row(row))
        model.load_state_dict(saved)
        model.train()
    return rows


HEADER = (f"{'model':5} {'method':6} {'step':>5} {'layer':8} {'|mu|':>8} {'var spread':>10} {'kappa(M)':>9} "
          f"{'bound':>9} {'kappa(H)':>9} {'k(PtHP)':>9} {'k(PtMP)':>9}")


def _g(v: float) -> str:
    if not math.isfinite(v):
        return f"{'inf' if v == math.inf else '-':>9}"
    return f"{v:9.3g}" if v >= 0 else f"{f'{-v:.3g}*':>9}"


def format_row(r: dict) -> str:
    layer = f"{r['layer']}:{'conv' if r['kind'] == 'Conv2d' else 'fc'}"
    return (f"{r['model']:5} {r['method']:6} {r['step']:>5} {layer:8} {r['mean_norm']:8.3g} "
            f"{r['variance_spread']:10.3g} {_g(r['kappa_M'])} {_g(max(r['bound_mean'], r['bound_scales']))} "
            f"{_g(r['kappa_H'])} {_g(r['kappa_H_bnp'])} {_g(r['kappa_M_bnp'])}")


def run(config: HessianConfig, log=print) -> dict:
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    result = {"config": asdict(config), "rank_rtol": RANK_RTOL, "rows": rows}
    for kind in config.models:
        for method in config.methods:
            rows.extend(study(kind, method, config, log))
            write_atomically(out / "hessian.json", json_text(result))  # kept if a later study fails
    _plot(result, out)
    return result


def _plot(result: dict, out: Path) -> None:
    plt = headless_pyplot()

    rows = result["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    colors = {"none": "tab:gray", "bn": "tab:blue", "bnp": "tab:red"}
    # condition number of each layer block against training step (|kappa|: indefinite blocks too)
    fig, axes = plt.subplots(len(models), 1, figsize=(7, 3.4 * len(models)), squeeze=False)
    styles = ("-", "--", ":", "-.")
    for ax, kind in zip(axes[:, 0], models):
        for method in dict.fromkeys(r["method"] for r in rows if r["model"] == kind):
            mine = [r for r in rows if r["model"] == kind and r["method"] == method]
            for k, layer in enumerate(dict.fromkeys(r["layer"] for r in mine)):
                sel = [r for r in mine if r["layer"] == layer]
                key = "kappa_H_bnp" if method == "bnp" else "kappa_H"  # the block BNP's descent sees
                ax.plot([r["step"] for r in sel], [abs(r[key]) for r in sel], styles[k % 4], marker="o",
                        color=colors.get(method), label=f"{method}, layer {layer}")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("kappa: H (none, bn), P^T H P (bnp)")
        ax.set_title(f"{kind}: the layer blocks gradient descent sees (line style = layer)")
        ax.legend(fontsize=6, ncol=3)
    save(fig, out / "kappa_vs_step.png")
    # spectra of the blocks at the last checkpoint of the unnormalized network, before and after P
    last = max(r["step"] for r in rows)
    sel = [r for r in rows if r["method"] == "none" and r["step"] == last]
    fig, axes = plt.subplots(1, max(1, len(sel)), figsize=(3.2 * max(1, len(sel)), 3.2), squeeze=False)
    for ax, r in zip(axes[0], sel):
        for key, color, label in (("eigenvalues_H", "tab:gray", "H"), ("eigenvalues_H_bnp", "tab:red", "P^T H P")):
            w = np.sort(np.abs(np.array(r[key])))[::-1]
            w = w[w > RANK_RTOL * w[0]]
            ax.semilogy(w / w[0], color=color, label=label)
        ax.set_title(f"{r['model']} {r['layer']} (step {last})", fontsize=8)
        ax.set_xlabel("index")
        ax.set_ylabel("lambda / lambda_max")
        ax.legend(fontsize=7)
    save(fig, out / "spectra.png")


# -- command line ----------------------------------------------------------------------
_EVAL_POOL = 1000  # _model_and_data draws 1000 training samples; the evaluation batch is taken from them


def _checkpoints(text: str) -> tuple[int, ...]:
    return list_of(nonnegative_int, "training steps >= 0", distinct=True)(text)


def _eval_size(text: str) -> int:
    value = positive_int(text)
    if value > _EVAL_POOL:
        raise argparse.ArgumentTypeError(f"expected at most {_EVAL_POOL} (the training samples drawn), got {text!r}")
    return value


def add_parser(sub) -> None:
    d, q = HessianConfig(), HessianConfig.quick_config()
    p = sub.add_parser("hessian", help="per-layer Hessian condition numbers with and without BNP",
                       argument_default=argparse.SUPPRESS,
                       description="Exact per-layer Hessian blocks of a small MLP and convnet during training "
                       "(none / BN / BNP), their condition numbers before and after the BNP transform, "
                       "beside THEORY's bounds. Every argument is checked before any training; --quick changes "
                       "only the defaults of options not given.")
    p.add_argument("--models", type=choices(("mlp", "cnn"), "model"),
                   help=f"comma list from mlp,cnn; default {','.join(d.models)}")
    p.add_argument("--methods", type=choices(METHODS, "method"),
                   help=f"comma list from {','.join(METHODS)}; default {','.join(d.methods)}")
    p.add_argument("--checkpoints", type=_checkpoints,
                   help=f"training steps at which to look; default {','.join(map(str, d.checkpoints))}; "
                   f"--quick: {','.join(map(str, q.checkpoints))}")
    p.add_argument("--eval-size", type=_eval_size,
                   help=f"samples in the evaluation batch, 1 to {_EVAL_POOL}; default {d.eval_size}; "
                   f"--quick: {q.eval_size}")
    p.add_argument("--out", type=writable_dir, help=f"output directory; default {d.out}")
    p.add_argument("--quick", action="store_true", help="smaller networks and fewer steps (seconds)")


def main_from_args(args: argparse.Namespace) -> int:
    given = {k: v for k, v in vars(args).items() if k in HessianConfig.__dataclass_fields__ and k != "quick"}
    config = HessianConfig.quick_config(**given) if getattr(args, "quick", False) else HessianConfig(**given)
    print(f"bnp hessian: condition numbers lambda_max/lambda_min+ (rank tolerance {RANK_RTOL:g} * lambda_max; "
          "* = indefinite block, |lambda| ratio); 'bound' = max of THEORY's two lower bounds on kappa(M); "
          "P from the batch's input statistics", flush=True)
    print(HEADER, flush=True)
    run(config, log=functools.partial(print, flush=True))
    print(f"\nwrote {config.out}/hessian.json, kappa_vs_step.png, spectra.png")
    return 0
