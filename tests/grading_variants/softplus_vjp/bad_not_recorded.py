# grading: fail structure "not recorded"
import bnp
from bnp.autograd import Tensor


def softplus(x):
    return Tensor(bnp.backend.xp().logaddexp(0.0, x.data))
