# grading: fail forbidden "effective_condition_number"
from bnp import spectra


def effective_condition_number(H, w):
    return spectra.effective_condition_number(H, w)
