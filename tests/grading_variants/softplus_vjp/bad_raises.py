# grading: fail not_implemented "NotImplementedError"


def softplus(x):
    raise NotImplementedError("later")
