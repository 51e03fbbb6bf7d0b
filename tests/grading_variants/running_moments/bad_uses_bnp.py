# grading: fail forbidden "bnp.running_moments"
from bnp.running_moments import RunningMoments


def running_moments(batches, rho):
    rm = RunningMoments(batches[0].shape[1], rho)
    for b in batches:
        rm.update(b.mean(axis=0), b.var(axis=0))
    return rm.mean, rm.var
