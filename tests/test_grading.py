"""bnp.grading: each checker passes a correct answer and fails plausible wrong ones, with a
report that names the problem and the worst error."""

from __future__ import annotations

import math

import pytest

import bnp
from bnp import grading, theory
from bnp.autograd import Tensor, ops
from bnp.autograd.graph import make_node


def xp():
    return bnp.backend.xp()


# --------------------------------------------------------------------------- check_vjp
def softplus(x: Tensor) -> Tensor:
    return make_node(xp().logaddexp(0.0, x.data), (x,), (lambda g, out: g * ops.sigmoid(x),), "softplus")


def softplus_wrong_derivative(x: Tensor) -> Tensor:
    """Uses exp(x) for the derivative (forgets the denominator of the sigmoid)."""
    return make_node(xp().logaddexp(0.0, x.data), (x,), (lambda g, out: g * ops.exp(x),), "softplus")


def softplus_on_raw_arrays(x: Tensor) -> Tensor:
    """Right first derivative, computed on .data: the backward pass is not recorded."""
    def vjp(g, out):
        return Tensor(g.data / (1.0 + xp().exp(-x.data)))

    return make_node(xp().logaddexp(0.0, x.data), (x,), (vjp,), "softplus")


def softplus_unbatched(x: Tensor) -> Tensor:
    """Forces g into x's shape, so a batch of upstream gradients breaks it."""
    return make_node(xp().logaddexp(0.0, x.data), (x,),
                     (lambda g, out: ops.reshape(g, x.shape) * ops.sigmoid(x),), "softplus")


def softplus_not_recorded(x: Tensor) -> Tensor:
    return Tensor(xp().logaddexp(0.0, x.data))


def softplus_wrong_values(x: Tensor) -> Tensor:
    """log(exp(x)) instead of log(1 + exp(x)), with the right VJP."""
    return make_node(x.data.copy(), (x,), (lambda g, out: g * ops.sigmoid(x),), "softplus")


def not_written(*args):
    raise NotImplementedError("write it")


def test_check_vjp_passes_the_reference_solution(capsys):
    report = grading.check_vjp(softplus)
    assert report.passed and bool(report)
    assert report.worst_error < 1e-13
    out = capsys.readouterr().out
    assert "check_vjp: PASS" in out and "worst relative error" in out


@pytest.mark.parametrize(
    "wrong, words",
    [
        (softplus_wrong_derivative, "VJP: relative error"),
        (softplus_on_raw_arrays, "cut the graph"),
        (softplus_unbatched, "batched VJP"),
        (softplus_not_recorded, "not recorded in the graph"),
        (softplus_wrong_values, "values: relative error"),
    ],
)
def test_check_vjp_fails_plausible_wrong_answers(wrong, words, capsys):
    report = grading.check_vjp(wrong)
    assert not report.passed
    assert any(words in line for line in report.failures), report.failures
    out = capsys.readouterr().out
    assert "check_vjp: FAIL" in out and "hint:" in out


def test_check_vjp_with_another_reference():
    """Any composite reference works: here exp as a student primitive against ops.exp."""
    def my_exp(x):
        return make_node(xp().exp(x.data), (x,), (lambda g, out: g * out,), "exp")

    assert grading.check_vjp(my_exp, reference=ops.exp, verbose=False).passed
    assert not grading.check_vjp(softplus, reference=ops.exp, verbose=False).passed


# --------------------------------------------------------------------------- check_bnp_update
def bnp_update(gw, gb, mu, var, eps):
    new_w = (gw - gb[:, None] * mu[None, :]) / (var + eps)[None, :]
    return new_w, gb - new_w @ mu


def bnp_update_in_place(gw, gb, mu, var, eps):
    """Correct, but overwrites its arguments (harmless: the checker passes copies)."""
    gw -= gb[:, None] * mu[None, :]
    gw /= var + eps
    gb -= gw @ mu
    return gw, gb


def bnp_update_dense(gw, gb, mu, var, eps):
    """Correct, through the dense P P^T of bnp.theory (rounding differs from the two-line form)."""
    Q = theory.bnp_pp_t(mu, var, eps)
    rows = xp().concatenate([gw, gb[:, None]], axis=1) @ Q
    return rows[:, :-1], rows[:, -1]


def forgot_the_bias(gw, gb, mu, var, eps):
    return gw / (var + eps), gb


def divides_by_d_not_d_squared(gw, gb, mu, var, eps):
    new_w = (gw - gb[:, None] * mu[None, :]) / xp().sqrt(var + eps)
    return new_w, gb - new_w @ mu


def uses_the_old_weight_gradient(gw, gb, mu, var, eps):
    new_w = (gw - gb[:, None] * mu[None, :]) / (var + eps)
    return new_w, gb - gw @ mu


def ignores_eps(gw, gb, mu, var, eps):
    return bnp_update(gw, gb, mu, var, 0.0)


def returns_one_array(gw, gb, mu, var, eps):
    return bnp_update(gw, gb, mu, var, eps)[0]


@pytest.mark.parametrize("right", [bnp_update, bnp_update_in_place, bnp_update_dense])
def test_check_bnp_update_passes_correct_answers(right):
    report = grading.check_bnp_update(right, verbose=False)
    assert report.passed, str(report)


@pytest.mark.parametrize(
    "wrong, words",
    [
        (forgot_the_bias, "new grad_w"),
        (divides_by_d_not_d_squared, "new grad_w"),
        (uses_the_old_weight_gradient, "new grad_b"),
        (ignores_eps, "eps=0.1"),
        (returns_one_array, "expected a pair"),
        (not_written, "not implemented yet"),
    ],
)
def test_check_bnp_update_fails_plausible_wrong_answers(wrong, words, capsys):
    report = grading.check_bnp_update(wrong)
    assert not report.passed
    assert any(words in line for line in report.failures), report.failures
    assert "check_bnp_update: FAIL" in capsys.readouterr().out


def test_a_wrong_answer_reports_its_worst_error():
    report = grading.check_bnp_update(divides_by_d_not_d_squared, verbose=False)
    assert report.worst_error > 1e-3 and math.isfinite(report.worst_error)
    assert f"{report.worst_error:.2e}" in str(report)


# --------------------------------------------------------------------------- check_moment_matrix
def moment_matrix(a):
    at = xp().concatenate([a, xp().ones((a.shape[0], 1))], axis=1)
    return at.T @ at / a.shape[0]


def divides_by_n_minus_1(a):
    at = xp().concatenate([a, xp().ones((a.shape[0], 1))], axis=1)
    return at.T @ at / max(a.shape[0] - 1, 1)


def forgot_the_ones(a):
    return a.T @ a / a.shape[0]


def centred(a):
    at = xp().concatenate([a - a.mean(axis=0), xp().ones((a.shape[0], 1))], axis=1)
    return at.T @ at / a.shape[0]


def returns_nothing(a):
    moment_matrix(a)


def test_check_moment_matrix_passes_the_reference_solution():
    assert grading.check_moment_matrix(moment_matrix, verbose=False).passed
    assert grading.check_moment_matrix(theory.moment_matrix, verbose=False).passed


@pytest.mark.parametrize(
    "wrong, words",
    [
        (divides_by_n_minus_1, "M: relative error"),
        (forgot_the_ones, "expected shape"),
        (centred, "M: relative error"),
        (returns_nothing, "returned None"),
        (not_written, "not implemented yet"),
    ],
)
def test_check_moment_matrix_fails_plausible_wrong_answers(wrong, words):
    report = grading.check_moment_matrix(wrong, verbose=False)
    assert not report.passed
    assert any(words in line for line in report.failures), report.failures


# --------------------------------------------------------------------------- the report
def test_reports_are_deterministic_and_stop_at_an_unwritten_exercise():
    first = grading.check_bnp_update(divides_by_d_not_d_squared, verbose=False)
    second = grading.check_bnp_update(divides_by_d_not_d_squared, verbose=False)
    assert first.worst_error == second.worst_error and first.failures == second.failures
    unwritten = grading.check_moment_matrix(not_written, verbose=False)
    assert unwritten.cases == 1 and len(unwritten.failures) == 1 and unwritten.worst_error == math.inf


def test_a_crashing_answer_is_a_failed_case_not_a_crash():
    def crashes(a):
        raise ValueError("shapes do not align")

    report = grading.check_moment_matrix(crashes, verbose=False)
    assert not report.passed and report.cases == len(grading._MOMENT_CASES)
    assert "raised ValueError: shapes do not align" in report.failures[0]


def test_nan_never_passes():
    def nan_matrix(a):
        return moment_matrix(a) * float("nan")

    assert not grading.check_moment_matrix(nan_matrix, verbose=False).passed
