# grading: fail not_implemented "NotImplementedError"
import bnp
from bnp.autograd import Tensor, ops
from bnp.autograd.graph import make_node


def softplus(x):
    raise NotImplementedError("later")
