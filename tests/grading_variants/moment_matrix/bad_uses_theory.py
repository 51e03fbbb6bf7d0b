# grading: fail forbidden "bnp.theory.moment_matrix"
from bnp import theory


def moment_matrix(a):
    return theory.moment_matrix(a)
