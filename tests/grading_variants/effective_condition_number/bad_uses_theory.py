# grading: fail forbidden "effective_condition_number"
from bnp import theory


def effective_condition_number(H, w):
    return theory.effective_condition_number(H, w)
