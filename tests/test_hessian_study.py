"""``bnp hessian`` end to end (quick mode) and what its table must show."""

import json
import math

import numpy as np
import pytest
from test_theory_strategies import EPS

import bnp
import bnp.functional as F
from bnp import backend, spectra, theory
from bnp.__main__ import main
from bnp.experiments.hessian_study import RANK_RTOL, HessianConfig, _model_and_data


def test_hessian_quick_writes_table_json_and_plots(tmp_path, capsys):
    out = tmp_path / "h"
    assert main(["hessian", "--quick", "--models", "mlp", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "kappa(H)" in printed and "mlp" in printed
    rows = json.loads((out / "hessian.json").read_text())["rows"]
    assert {r["method"] for r in rows} == {"none", "bn", "bnp"}
    assert {r["step"] for r in rows} == {0, 20}
    for r in rows:
        bound = max(r["bound_mean"], r["bound_scales"]) if isinstance(r["bound_mean"], float) else r["bound_scales"]
        # THEORY section 1: the measured kappa(M) is at least both lower bounds
        assert r["kappa_M"] >= bound * (1 - 1e-6)
        # the table's kappa(H) is the convention it announces, on the spectrum it reports
        w = np.array(r["eigenvalues_H"])
        top = np.abs(w).max()
        if r["kappa_H"] < 0:  # flagged indefinite: a negative eigenvalue beyond the tolerance, |lambda| ratio
            on_range = np.abs(w)[np.abs(w) > RANK_RTOL * top]
            assert w.min() < -RANK_RTOL * top and -r["kappa_H"] == pytest.approx(on_range.max() / on_range.min())
        else:
            assert w.min() >= -RANK_RTOL * top
            assert r["kappa_H"] == pytest.approx(w.max() / w[w > RANK_RTOL * w.max()].min())
    first = [r for r in rows if r["method"] == "none" and r["layer"] == "0"]
    for r in first:
        # the raw inputs are off-centre and badly scaled: BNP's transform cuts the
        # moment matrix's condition number and the layer block's by orders of magnitude
        assert r["kappa_M_bnp"] < r["kappa_M"] / 100
        assert 0 < r["kappa_H_bnp"] < r["kappa_H"] / 100
        assert math.isfinite(r["mean_norm"]) and r["mean_norm"] > 1
    for name in ("kappa_vs_step.png", "spectra.png"):
        assert (out / name).stat().st_size > 1000


def test_hessian_quick_kappa_is_that_of_an_independently_built_block(tmp_path):
    """Step 0, no normalization, first layer: the study's kappa(H), its spectrum and kappa(M) against a block
    built here from bnp.hessian (THEORY's neuron-major order written out) and M's spectrum from the SVD."""
    out = tmp_path / "h"
    assert main(["hessian", "--quick", "--models", "mlp", "--methods", "none", "--checkpoints", "0",
                 "--out", str(out)]) == 0
    row = next(r for r in json.loads((out / "hessian.json").read_text())["rows"] if r["layer"] == "0")
    model, ds = _model_and_data("mlp", "none", HessianConfig.quick_config())
    model.eval()
    n_eval = HessianConfig.quick_config().eval_size
    x = bnp.tensor(ds.X_train[:n_eval])
    y = backend.asarray(ds.y_train[:n_eval])
    W, b = model[0].weight, model[0].bias
    H = backend.to_numpy(bnp.hessian(lambda: F.cross_entropy(model(x), y), [W, b]))
    n_out, n = W.shape
    order = [k for i in range(n_out) for k in [*(i * n + j for j in range(n)), n_out * n + i]]
    block = H[np.ix_(order, order)]
    kappa = spectra.condition_number(backend.asarray(block), psd=True, rank_rtol=RANK_RTOL)
    assert row["kappa_H"] > 0 and row["kappa_H"] == pytest.approx(float(kappa), rel=1e-9)
    w = np.linalg.eigvalsh((block + block.T) / 2)
    np.testing.assert_allclose(row["eigenvalues_H"], w, rtol=0, atol=1e-12 * np.abs(w).max())
    # kappa(M) of the raw inputs (all features live), from the singular values of [a, 1] instead of eigvalsh of M
    lam = backend.to_numpy(spectra.gram_eigenvalues(theory.extend(backend.asarray(ds.X_train[:n_eval]))))
    kappa_M = lam.max() / lam.min()
    assert row["live_features"] == row["features"] == n
    assert row["kappa_M"] == pytest.approx(kappa_M, rel=1e3 * n * EPS * kappa_M + 1e-12)


def test_hessian_json_is_standard_json_and_written_after_each_study(tmp_path, monkeypatch):
    """Non-finite numbers are null (no NaN/Infinity tokens); a failure in a later study keeps the earlier rows."""
    from bnp.experiments import hessian_study

    real_study, calls = hessian_study.study, []

    def study_then_fail(kind, method, config, log=print):
        calls.append((kind, method))
        if len(calls) == 2:
            raise RuntimeError("planted failure in the second study")
        return real_study(kind, method, config, log)

    monkeypatch.setattr(hessian_study, "study", study_then_fail)
    config = hessian_study.HessianConfig.quick_config(models=("mlp",), methods=("none", "bn"), out=str(tmp_path))
    with pytest.raises(RuntimeError, match="planted"):
        hessian_study.run(config, log=lambda *a: None)
    text = (tmp_path / "hessian.json").read_text()

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    rows = json.loads(text, parse_constant=refuse)["rows"]
    assert rows and {r["method"] for r in rows} == {"none"}
