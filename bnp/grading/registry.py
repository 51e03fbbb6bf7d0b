"""The course's exercises: name, chapter, one line, and where the grader lives.

Kept free of hypothesis so that ``bnp grade --list`` works without it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = ["ExerciseInfo", "EXERCISES", "names", "load"]


@dataclass(frozen=True)
class ExerciseInfo:
    name: str
    chapter: str
    summary: str
    module: str  # bnp.grading.<module>
    grader: str  # the Exercise subclass in it


EXERCISES: tuple[ExerciseInfo, ...] = (
    ExerciseInfo("softplus_vjp", "01_autograd", "softplus as a new autograd primitive, its VJP in Tensor ops "
                 "(right to second order)", "autograd", "SoftplusVjp"),
    ExerciseInfo("hvp_reverse_over_reverse", "01_autograd", "a Hessian-vector product by reverse over reverse "
                 "with bnp.grad(..., create_graph=True)", "autograd", "HvpReverseOverReverse"),
    ExerciseInfo("batchnorm_backward", "02_batch_normalization", "batch normalization forward and backward in "
                 "NumPy, training mode (CS231n's interface)", "batchnorm", "BatchnormBackward"),
    ExerciseInfo("moment_matrix", "03_conditioning", "the input moment matrix M = (1/N) sum [a;1][a;1]^T",
                 "conditioning", "MomentMatrix"),
    ExerciseInfo("bnp_update", "04_bnp", "BNP's gradient rewrite for a Linear layer", "preconditioning",
                 "BnpUpdate"),
    ExerciseInfo("bnp_transform", "04_bnp", "the BNP transform P and the standardized layer's Hessian P^T H P",
                 "preconditioning", "BnpTransform"),
    ExerciseInfo("whitening", "04_bnp", "whitening BNP: a transform with P^T M P = I and its gradient update",
                 "preconditioning", "Whitening"),
    ExerciseInfo("running_moments", "05_small_batches", "bias-corrected running mean and variance of a stream "
                 "of batches, as bnp.BNP keeps them", "small_batches", "RunningMoments"),
    ExerciseInfo("fn_gradient", "05_small_batches", "Full Normalization's compositional gradient (running "
                 "moments in the forward, batch moments differentiated)", "small_batches", "FnGradient"),
    ExerciseInfo("im2col_conv", "06_convnets", "a convolution forward and backward by im2col in NumPy",
                 "convnets", "Im2colConv"),
    ExerciseInfo("bnp_update_conv", "06_convnets", "BNP's gradient rewrite for a Conv2d layer (channel "
                 "statistics)", "convnets", "BnpUpdateConv"),
    ExerciseInfo("effective_condition_number", "07_scale_invariance", "the effective condition number of a "
                 "scale-invariant loss's Hessian (restricted to w's complement)", "scale_invariance",
                 "EffectiveConditionNumber"),
)

_BY_NAME = {e.name: e for e in EXERCISES}


def names() -> list[str]:
    return [e.name for e in EXERCISES]


def info(name: str) -> ExerciseInfo:
    if name not in _BY_NAME:
        raise KeyError(f"unknown exercise {name!r}; known: {', '.join(names())}")
    return _BY_NAME[name]


def load(name: str) -> Any:
    """The grader (an :class:`bnp.grading.runner.Exercise` instance); imports hypothesis."""
    e = info(name)
    module = importlib.import_module(f"bnp.grading.{e.module}")
    return getattr(module, e.grader)()
