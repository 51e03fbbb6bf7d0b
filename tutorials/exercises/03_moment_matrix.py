# %% [markdown]
# # Exercise 3. The input moment matrix
#
# *Goes with chapter 2.* For a batch of layer inputs $a_1, \dots, a_N \in \mathbb{R}^n$
# (the rows of an array `a` of shape (N, n)), extend each with a 1,
# $\tilde a_k = [a_k; 1]$, and average the outer products:
#
# $$M = \frac1N \sum_{k=1}^N \tilde a_k \tilde a_k^\top \in \mathbb{R}^{(n+1) \times (n+1)}.$$
#
# Chapter 2 showed that $M$ is the Hessian block of each neuron of the last
# layer under the squared error, and that its condition number explodes
# with the input mean and the spread of the feature scales.
#
# Write `moment_matrix(a)`. The argument is a backend array; get the array
# module with `xp = bnp.backend.xp()` (it has `concatenate`, `ones`, ...).
# One matrix product does all N outer products at once.
#
# Then check on paper that
# $M = \begin{bmatrix} S + \mu\mu^\top & \mu \\ \mu^\top & 1 \end{bmatrix}$
# with $\mu$ the mean and $S$ the covariance **divided by N**. Why is $M$
# well defined, and even positive semidefinite, for a single sample (N = 1)?
#
# Run this file: `python tutorials/exercises/03_moment_matrix.py`.

# %%
import bnp
from bnp import grading

bnp.set_default_dtype("float64")


def moment_matrix(a):
    """M = (1/N) sum_k [a_k; 1][a_k; 1]^T. Shapes: a (N, n) -> (n+1, n+1)."""
    # TODO (student)
    raise NotImplementedError("write the moment matrix")


# %%
report = grading.check_moment_matrix(moment_matrix)

# %% [markdown]
# **Going further.** Feed your `moment_matrix` inputs `3 + z` and `30 + z`
# for the same standard normal `z` of shape (1000, 5), and compare the
# condition numbers (`bnp.spectra.condition_number`). By how much should they
# differ according to the $|\mu|^4$ law of chapter 2?
