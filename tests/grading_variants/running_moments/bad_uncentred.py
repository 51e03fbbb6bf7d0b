# grading: fail wrong "centre"
"""Running E[x] and E[x^2], variance E[x^2] - E[x]^2: cancels for large means."""


def running_moments(batches, rho):
    m1, m2 = 0.0, 0.0
    for t, b in enumerate(batches, start=1):
        w = (1 - rho) / (1 - rho**t)
        m1 = m1 + w * (b.mean(axis=0) - m1)
        m2 = m2 + w * ((b * b).mean(axis=0) - m2)
    return m1, m2 - m1 * m1
