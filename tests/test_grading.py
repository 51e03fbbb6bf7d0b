"""bnp.grading and `bnp grade`: every grader passes its reference solution and correct variants, fails every
wrong variant (with the failure kind and words each variant's first line states), fails its skeleton, and its
reference agrees with bnp's own implementation of the same thing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bnp
from bnp import grading
from bnp.grading import cli, registry
from bnp.grading.runner import Refusals

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "tutorials" / "exercises"
SOLUTIONS = ROOT / "tutorials" / "solutions"
VARIANTS = Path(__file__).resolve().parent / "grading_variants"
NAMES = registry.names()
EXAMPLES = 25  # per grading in this file: enough to reach the hard cases, keeps the file fast

_HEADER = re.compile(r'# grading: (pass|fail ([\w|]+) "([^"]+)")$')  # fail KIND[|KIND] "words in message or hint"


def _variant_files() -> list[tuple[str, Path]]:
    return [(d.name, f) for d in sorted(VARIANTS.iterdir()) if d.is_dir() for f in sorted(d.glob("*.py"))]


def _expectation(path: Path) -> tuple[bool, str, str]:
    first = path.read_text().splitlines()[0]
    m = _HEADER.match(first)
    assert m, f"{path}: first line must be '# grading: pass' or '# grading: fail KIND \"words\"', got {first!r}"
    return m.group(1) == "pass", m.group(2) or "", m.group(3) or ""


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bnp", "grade", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


# --------------------------------------------------------------------------- layout
def test_every_exercise_has_a_skeleton_a_solution_variants_and_a_readme_row():
    readme = (EXERCISES / "README.md").read_text()
    assert sorted(p.stem for p in EXERCISES.glob("*.py")) == sorted(NAMES)
    assert sorted(p.stem for p in SOLUTIONS.glob("*.py")) == sorted(NAMES)
    for name in NAMES:
        assert f"bnp grade {name} tutorials/exercises/{name}.py" in readme, name
        assert f"| `{name}` |" in readme, name
        variants = list((VARIANTS / name).glob("*.py"))
        assert sum(_expectation(v)[0] for v in variants) >= 1, f"{name}: no correct variant"
        wrong = sum(not _expectation(v)[0] for v in variants) + sum(m[0] == name for m in MUTANTS)
        assert wrong >= 5, f"{name}: fewer than 5 wrong variants"
        skeleton = (EXERCISES / f"{name}.py").read_text()
        assert "raise NotImplementedError" in skeleton and f"bnp grade {name}" in skeleton
        assert registry.info(name).chapter in skeleton, f"{name}: the skeleton must name its chapter"


# --------------------------------------------------------------------------- solutions, skeletons, variants
@pytest.mark.parametrize("name", NAMES)
def test_the_solution_passes_and_the_skeleton_fails(name):
    solved = grading.grade(name, SOLUTIONS / f"{name}.py", max_examples=EXAMPLES)
    assert solved.passed, str(solved)
    assert solved.cases_run >= 10 and solved.failure is None
    assert all(e <= solved.tolerances[q] for q, e in solved.worst_errors.items())
    skeleton = grading.grade(name, EXERCISES / f"{name}.py", max_examples=EXAMPLES)
    assert not skeleton.passed and skeleton.failure.kind == "not_implemented", str(skeleton)


# Wrong answers that differ from the reference solution by one edit are made from it here (one home for the
# solution's text): (exercise, what the wrong answer does, the solution's line, its wrong form, expectation).
MUTANTS = [
    ("im2col_conv", "assign_not_add", "np.add.at(dxp, (slice(None), channel, row, col), dcols)",
     "dxp[:, channel, row, col] = dcols", 'fail wrong "ADD"'),
    ("im2col_conv", "db_wrong_axes", "dout.sum(axis=(0, 2, 3))", "dout.sum(axis=(1, 2, 3))", 'fail shape "db"'),
    ("im2col_conv", "flipped_kernel", "    out = w.reshape(f, -1) @ cols",
     "    w = w[:, :, ::-1, ::-1]\n    out = w.reshape(f, -1) @ cols", 'fail wrong "flipped"'),
    ("im2col_conv", "ignores_stride", "wd + 2 * padding, kh, kw, stride)", "wd + 2 * padding, kh, kw, 1)",
     'fail shape "stride"'),
    ("im2col_conv", "no_bias", "@ cols + b[None, :, None]", "@ cols", 'fail wrong "out"'),
    ("im2col_conv", "padding_kept", "return dxp[:, :, padding:padding + h, padding:padding + wd], dw,",
     "return dxp, dw,", 'fail shape "padding"'),
]


def _check_variant(name: str, path: Path) -> None:
    should_pass, kind, words = _expectation(path)
    report = grading.grade(name, path, max_examples=EXAMPLES)
    if should_pass:
        assert report.passed, str(report)
        return
    assert not report.passed, f"{path.name} should fail:\n{report}"
    assert report.failure.kind in kind.split("|"), f"{path.name}: expected a '{kind}' failure:\n{report}"
    said = report.failure.message + " " + report.hint
    assert words in said, f"{path.name}: expected {words!r} in the message or hint:\n{report}"
    assert report.hint, "a failing report always carries a hint"


@pytest.mark.parametrize("name, path", _variant_files(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_variant(name, path):
    _check_variant(name, path)


@pytest.mark.parametrize("name, what, line, wrong, expectation", MUTANTS, ids=[m[1] for m in MUTANTS])
def test_one_edit_from_the_solution(name, what, line, wrong, expectation, tmp_path):
    text = (SOLUTIONS / f"{name}.py").read_text()
    assert text.count(line) == 1, f"the edit {what!r} no longer finds its line in the solution"
    path = tmp_path / f"bad_{what}.py"
    path.write_text(f"# grading: {expectation}\n" + text.replace(line, wrong))
    _check_variant(name, path)


# --------------------------------------------------------------------------- the CLI
def test_cli_exit_codes_and_reports(tmp_path):
    ok = run_cli("batchnorm_backward", "tutorials/solutions/batchnorm_backward.py")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("PASS  batchnorm_backward")
    skeleton = run_cli("running_moments", "tutorials/exercises/running_moments.py")
    assert skeleton.returncode == 1 and "FAIL" in skeleton.stdout and "hint:" in skeleton.stdout
    wrong = run_cli("--json", "bnp_update", str(VARIANTS / "bnp_update" / "bad_sqrt.py"))
    assert wrong.returncode == 1
    report = json.loads(wrong.stdout)
    assert report["name"] == "bnp_update" and report["passed"] is False and report["cases_run"] >= 1
    assert report["failure"]["quantity"] == "grad_w" and report["failure"]["error"] > report["failure"]["tolerance"]
    assert set(report["failure"]["case"]) >= {"out", "n", "mean_ratio", "decades", "eps", "seed"}
    assert "grad_w" in report["failure"]["inputs"] and "D^2" in report["hint"]
    assert report["tolerances"] == {"grad_w": 1e-12, "grad_b": 1e-12}
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def batchnorm_forward(x, gamma, beta, eps)\n    return x, None\n")
    bad = run_cli("--json", "batchnorm_backward", str(syntax))
    assert bad.returncode == 1 and json.loads(bad.stdout)["failure"]["kind"] == "import"
    assert "syntax error at line 1" in json.loads(bad.stdout)["failure"]["message"]
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nsys.exit(3)\n")
    crashed = run_cli("moment_matrix", str(broken))
    assert crashed.returncode == 1 and "SystemExit" in crashed.stdout


def test_cli_usage_errors_exit_2_with_one_line():
    for args, words in ((("nope", "x.py"), "unknown exercise 'nope'"),
                        (("moment_matrix", "missing.py"), "no such file"),
                        (("moment_matrix",), "expected NAME and FILE")):
        result = run_cli(*args)
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_list_names_every_exercise_first_on_its_line():
    result = run_cli("--list")
    assert result.returncode == 0
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == NAMES
    assert all(len(line.split()) > 3 for line in lines)


def test_a_missing_hypothesis_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "hypothesis", None)  # import hypothesis now raises ImportError
    args = type("Args", (), {"list": False, "name": "moment_matrix", "file": str(SOLUTIONS / "moment_matrix.py"),
                             "json": False, "examples": None})()
    assert cli.main_from_args(args) == 2
    assert ".[course]" in capsys.readouterr().err


# --------------------------------------------------------------------------- reproducibility and isolation
def test_reports_are_reproducible():
    path = VARIANTS / "batchnorm_backward" / "bad_uncentred.py"
    first, second = (grading.grade("batchnorm_backward", path, max_examples=EXAMPLES).to_dict() for _ in range(2))
    assert first == second
    assert first["failure"]["case"]["mean_ratio"] >= 1e3  # shrunk, yet still the case that shows the bug


def test_refusals_are_undone_and_the_environment_restored():
    import bnp.functional as F
    import bnp.nn

    originals = (F.batch_norm, bnp.nn.BatchNorm1d.__dict__.get("forward"), bnp.theory.moment_matrix)
    bnp.set_default_dtype("float32")
    try:
        grading.grade("batchnorm_backward", VARIANTS / "batchnorm_backward" / "bad_uses_bnp.py", max_examples=5)
        grading.grade("moment_matrix", VARIANTS / "moment_matrix" / "bad_uses_theory.py", max_examples=5)
        assert bnp.get_default_dtype() == np.float32
    finally:
        bnp.set_default_dtype("float64")
    assert (F.batch_norm, bnp.nn.BatchNorm1d.__dict__.get("forward"), bnp.theory.moment_matrix) == originals
    with Refusals(["bnp.theory.moment_matrix", "bnp.no.such.thing"], "because") as refusals:
        with pytest.raises(Exception, match="bnp's own implementation: because"):
            bnp.theory.moment_matrix(np.ones((2, 2)))
    assert refusals.calls == ["bnp.theory.moment_matrix"]
    assert bnp.theory.moment_matrix(np.ones((2, 2))).shape == (3, 3)


# --------------------------------------------------------------------------- the graders' references agree with bnp
def _tensor(a, grad=True):
    return bnp.tensor(a, requires_grad=grad)


def test_batchnorm_reference_agrees_with_bnp_batch_norm_and_autograd():
    from bnp.grading.batchnorm import BNCase, batchnorm_reference

    for case in (BNCase(2, 2, 0.0, 0, 3, 1e-2), BNCase(7, 3, 1e3, 4, 4, 1e-5)):  # bnp refuses N = 1 in training
        a = case.arrays()
        ref = batchnorm_reference(a["x"], a["gamma"], a["beta"], case.eps, a["dout"])
        x, g, b = _tensor(a["x"]), _tensor(a["gamma"]), _tensor(a["beta"])
        out = bnp.functional.batch_norm(x, None, None, g, b, training=True, momentum=0.0, eps=case.eps)
        grads = bnp.grad(out, [x, g, b], grad_outputs=[a["dout"]])
        np.testing.assert_allclose(out.numpy(), ref["out"], rtol=1e-9, atol=1e-12)
        for got, key in zip(grads, ("dx", "dgamma", "dbeta"), strict=True):
            np.testing.assert_allclose(got.numpy(), ref[key], rtol=1e-8, atol=1e-10 * np.abs(ref[key]).max())


def test_running_moments_reference_agrees_with_bnp_statistics():
    from bnp.grading.small_batches import StreamCase, running_moments_reference

    for rho in (0.0, 0.5, 0.99):
        case = StreamCase((1, 3, 1, 5, 2), 3, 1e3, 2, rho, 11)
        batches = case.batches()
        layer = bnp.nn.Linear(3, 2)
        pre = bnp.BNP(layer, rho=rho)
        for batch in batches:
            layer(bnp.tensor(batch))
        mean, var = pre.statistics(layer)
        ref = running_moments_reference(batches, rho)
        np.testing.assert_allclose(mean, ref["mean"], rtol=1e-12)
        np.testing.assert_allclose(var, ref["var"], rtol=1e-8)


def test_bnp_update_references_agree_with_bnp_step():
    from bnp.grading.preconditioning import UpdateCase, bnp_update_reference
    from bnp.preconditioner import precondition

    a = UpdateCase(3, 4, 1e3, 4, 1e-3, 5).arrays()
    ref = bnp_update_reference(a["grad_w"], a["grad_b"], a["mean"], a["var"], a["eps"])
    want_w, want_b = precondition(a["grad_w"], a["grad_b"], a["mean"], a["var"], a["eps"])
    np.testing.assert_allclose(ref["grad_w"], want_w, rtol=1e-12)
    np.testing.assert_allclose(ref["grad_b"], want_b, rtol=1e-10, atol=1e-12 * ref["grad_b_scale"].max())
    # the conv update, through a real Conv2d layer and BNP.step (channel statistics)
    conv = bnp.nn.Conv2d(2, 3, 3, padding=1)
    pre = bnp.BNP(conv, rho=0.0, eps=1e-3)
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)) * np.array([1.0, 30.0])[None, :, None, None] + 5.0
    (conv(bnp.tensor(x)) ** 2).sum().backward()
    gw, gb = conv.weight.grad.numpy().copy(), conv.bias.grad.numpy().copy()
    mean, var = pre.statistics(conv)
    pre.step()
    ref = bnp_update_reference(gw, gb, mean, var, 1e-3)
    np.testing.assert_allclose(conv.weight.grad.numpy(), ref["grad_w"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(conv.bias.grad.numpy(), ref["grad_b"], rtol=1e-9, atol=1e-12 * ref["grad_b_scale"].max())


def test_transform_and_whitening_references_agree_with_bnp_theory():
    from bnp.grading.preconditioning import TransformCase, WhiteningCase, bnp_transform_reference
    from bnp.preconditioner import precondition_whitened

    a = TransformCase(2, 3, 4, 1e3, 2, 1e-3, 1).arrays()
    np.testing.assert_allclose(bnp_transform_reference(a["mean"], a["var"], a["eps"]),
                               bnp.theory.bnp_transform(a["mean"], a["var"], a["eps"]), rtol=1e-14)
    w = WhiteningCase(2, 3, 1.0, 2, 0, True, 1e-3, 2).arrays()
    sol = grading.runner.load_file(SOLUTIONS / "whitening.py", ("whitening_transform", "whitened_update"))[0]
    np.testing.assert_allclose(sol.whitened_update(w["grad_w"], w["grad_b"], w["mean"], w["cov"], w["eps"])[0],
                               precondition_whitened(w["grad_w"], w["grad_b"], w["mean"], w["cov"], w["eps"])[0],
                               rtol=1e-9)
    np.testing.assert_allclose(sol.whitening_transform(w["mean"], w["cov"], w["eps"]),
                               bnp.theory.whitening_transform(w["mean"], w["cov"], w["eps"]), rtol=1e-9, atol=1e-12)


def test_fn_gradient_reference_agrees_with_full_norm_autograd():
    from bnp.functional import full_norm
    from bnp.grading.small_batches import FNCase, fn_gradient_reference

    for case in (FNCase(5, 3, 1e3, 2, 9, 2, 1e-5), FNCase(1, 2, 1.0, 0, 3, 1, 1e-2)):
        a = case.arrays()
        ref = fn_gradient_reference(a, case.eps)
        x, g, b = _tensor(a["x"]), _tensor(a["gamma"]), _tensor(np.zeros(case.d))
        out = full_norm(x, a["running_mean"], a["running_var"], g, b, training=True, momentum=0.0, eps=case.eps)
        grads = bnp.grad(out, [x, g, b], grad_outputs=[a["dout"]])
        for got, key in zip(grads, ("dx", "dgamma", "dbeta"), strict=True):
            np.testing.assert_allclose(got.numpy(), ref[key], rtol=1e-7, atol=1e-9 * np.abs(ref[key]).max())


def test_conv_reference_agrees_with_bnp_conv2d_and_autograd():
    from bnp.grading.convnets import ConvCase, conv_reference

    for case in (ConvCase(2, 3, 2, 5, 4, 3, 2, 2, 1, 0), ConvCase(1, 1, 1, 1, 1, 1, 1, 1, 0, 1)):
        a = case.arrays()
        ref = conv_reference(a["x"], a["w"], a["b"], case.stride, case.padding, a["dout"])
        x, w, b = _tensor(a["x"]), _tensor(a["w"]), _tensor(a["b"])
        out = bnp.functional.conv2d(x, w, b, case.stride, case.padding)
        np.testing.assert_allclose(out.numpy(), ref["out"], rtol=1e-12, atol=1e-12)
        for got, key in zip(bnp.grad(out, [x, w, b], grad_outputs=[a["dout"]]), ("dx", "dw", "db"), strict=True):
            np.testing.assert_allclose(got.numpy(), ref[key], rtol=1e-12, atol=1e-12)


def test_hvp_and_scale_invariance_references_agree_with_bnp():
    from bnp.grading.autograd import HvpCase, bnp_primitive_ops, hvp_reference, make_function
    from bnp.grading.scale_invariance import ScaleInvariantCase

    a = HvpCase(4, 3, 2, 1.0, 7).arrays()
    x = _tensor(a["x"])
    H = bnp.hessian(lambda: make_function(a)(x), [x])
    np.testing.assert_allclose(H, hvp_reference(a)["H"], rtol=1e-10, atol=1e-12 * np.abs(H).max())
    for case in (ScaleInvariantCase(5, 4, True, 1.0, 3, 2), ScaleInvariantCase(3, 0, False, 0.0, 0, 1)):
        s = case.arrays()
        assert abs(s["H"] @ s["w"] @ s["w"]) <= 1e-12 * np.abs(s["H"]).max() * (s["w"] @ s["w"])  # w^T H w = 0
        kappa = bnp.spectra.effective_condition_number(s["H"], s["w"])
        assert kappa == pytest.approx(s["kappa"], rel=1e-8)
    assert {"tanh", "exp", "add", "log"} <= bnp_primitive_ops() and "softplus" not in bnp_primitive_ops()


def test_moment_matrix_reference_agrees_with_bnp_theory():
    from bnp.grading.cases import BatchCase
    from bnp.grading.conditioning import moment_matrix_reference

    a = BatchCase(6, 3, 1e3, 4, 0).x()
    M, scale = moment_matrix_reference(a)
    assert np.max(np.abs(M - bnp.theory.moment_matrix(a)) / scale) < 1e-14
