"""Recording operations and running reverse mode over the recorded graph.

Reverse mode visits the graph once, in reverse topological order, and calls
one VJP per (node, parent) edge. The VJPs are written in Tensor operations, so
with ``create_graph=True`` the backward pass is itself recorded and can be
differentiated again: that is all second order needs.

Batched upstream gradients (``is_grads_batched=True``) carry one extra leading
axis through every VJP; one pass then yields many vector-Jacobian products at
once. ``bnp.hessian`` uses this to get all rows of a Hessian in a single pass.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from .. import backend
from .tensor import VJP, Tensor

_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


@contextlib.contextmanager
def _set_grad_enabled(flag: bool) -> Iterator[None]:
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, flag
    try:
        yield
    finally:
        _grad_enabled = previous


class _GradMode(contextlib.ContextDecorator):
    """Sets whether operations are recorded, for a ``with`` block or a decorated function.

    The previous states are kept on a stack, so one instance may be entered
    again while active (a decorated function calling itself).
    """

    _flag = True

    def __init__(self) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous.append(_grad_enabled)
        _grad_enabled = self._flag

    def __exit__(self, *exc: Any) -> None:
        global _grad_enabled
        _grad_enabled = self._previous.pop()


class no_grad(_GradMode):
    """Context manager and decorator: operations inside are not recorded.

    Tensors computed inside cannot be differentiated; trying to says so.
    """

    _flag = False


class enable_grad(_GradMode):
    """Context manager and decorator that turns recording back on (inside ``no_grad``)."""

    _flag = True


class _ZeroDerivative:
    """Marker for a parent the output does not depend on differentiably."""

    def __repr__(self) -> str:
        return "ZERO_DERIVATIVE"


# Declare a parent with no derivative (an index, a mask, a constant operand) in
# make_node's vjps instead of a VJP: reverse mode then sends it nothing (HIPS
# autograd's ``defvjp_is_zero``). A missing VJP is an error, never a silent zero.
ZERO_DERIVATIVE = _ZeroDerivative()


def make_node(data: Any, parents: Sequence[Tensor], vjps: Sequence[VJP | _ZeroDerivative], op: str) -> Tensor:
    """Wrap an operation's result; record its parents if any of them needs a gradient.

    Args:
        data: the result, a backend array.
        parents: the input tensors.
        vjps: one per parent, ``vjp(g, out) -> gradient for that parent``, written
            in Tensor operations (so it can be differentiated again) and accepting
            ``g`` with extra leading batch axes; or ``ZERO_DERIVATIVE``.
        op: the operation's name, for the graph and for error messages.
    """
    if len(vjps) != len(parents):
        raise TypeError(f"make_node('{op}'): got {len(vjps)} VJPs for {len(parents)} parents; give one per parent "
                        "(ZERO_DERIVATIVE for a parent without a derivative)")
    out = Tensor(data)
    if _any_requires_grad(parents):
        for k, vjp in enumerate(vjps):
            if not callable(vjp) and vjp is not ZERO_DERIVATIVE:
                raise TypeError(f"make_node('{op}'): the VJP of parent {k} is {vjp!r}, expected a function "
                                "(g, out) -> gradient or ZERO_DERIVATIVE")
        if _grad_enabled:
            out.requires_grad = True
            out._parents = tuple(parents)
            out._vjps = tuple(vjps)
            out._op = op
            out._versions = tuple(p._version for p in parents)
        else:
            out._hint = f"its graph was not recorded: '{op}' ran under bnp.no_grad()"
    else:  # pass the reason on, so an error many operations later still names it
        for p in parents:
            if p._hint:
                out._hint = p._hint
                break
    return out


def _any_requires_grad(parents: Sequence[Tensor]) -> bool:
    for p in parents:  # a plain loop: any() over a generator costs more than the check, once per operation
        if p.requires_grad:
            return True
    return False


def _toposort(roots: Sequence[Tensor]) -> list[Tensor]:
    """Nodes reachable from ``roots`` that require grad, parents before children.

    Iterative depth-first search: deep graphs (long training loops unrolled,
    many layers) never hit Python's recursion limit.
    """
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(r, False) for r in roots if r.requires_grad]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for p in node._parents:
            if p.requires_grad and id(p) not in seen:
                stack.append((p, False))
    return order


def _is_freed(node: Tensor) -> bool:
    """A recorded node whose parents were dropped by an earlier backward."""
    return bool(node._op) and not node._parents


def _reaching(order: list[Tensor], targets: Sequence[Tensor]) -> set[int]:
    """ids of nodes from which some target can be reached (so gradients are needed).

    A freed node might have led to a target: it counts as needed, so that
    reaching it raises a clear error instead of silently giving zeros.
    """
    need = {id(t) for t in targets}
    for node in order:  # parents come first
        if _is_freed(node) or any(id(p) in need for p in node._parents):
            need.add(id(node))
    return need


def _stale_error(node: Tensor, k: int, parent: Tensor, version: int) -> RuntimeError:
    """A graph whose input was modified in place after it was recorded (tensor.py doc)."""
    return RuntimeError(
        f"cannot differentiate through '{node._op}' (output shape {node.shape}): its input {k} "
        f"(shape {parent.shape}, dtype {parent.dtype}) was modified in place after the graph was "
        f"recorded (version {parent._version}, recorded at version {version}; e.g. by an optimizer "
        "step or load_state_dict); recompute the loss from the current values"
    )


def _freed_error(node: Tensor) -> RuntimeError:
    return RuntimeError(
        f"cannot backpropagate through '{node._op}' (output shape {node.shape}): its graph was freed by an "
        "earlier backward or grad; pass retain_graph=True to that call to differentiate through it again"
    )


def _check_grad_shape(g: Tensor, out: Tensor, batched: bool) -> None:
    expected = out.shape
    got = g.shape[1:] if batched else g.shape
    if got != expected:
        what = "batched grad_outputs (leading batch axis, then the output's shape)" if batched else "grad_outputs"
        raise ValueError(f"{what}: expected shape {expected} for the output, got {g.shape}")


def _seed(outputs: Sequence[Tensor], grad_outputs: Sequence[Any] | None, batched: bool) -> list[Tensor]:
    seeds = []
    for k, out in enumerate(outputs):
        g = None if grad_outputs is None else grad_outputs[k]
        if g is None:
            if batched:
                raise ValueError("is_grads_batched=True needs explicit grad_outputs")
            if out.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; output {k} has shape "
                    f"{out.shape}: pass grad (or grad_outputs) of that shape"
                )
            g = Tensor(backend.xp().ones(out.shape, dtype=out.dtype))
        elif not isinstance(g, Tensor):
            g = Tensor(backend.asarray(g, dtype=out.dtype))
        _check_grad_shape(g, out, batched)
        seeds.append(g)
    return seeds


def _not_differentiable(t: Tensor, k: int) -> RuntimeError:
    why = t._hint or "it does not require grad and has no graph (make a leaf with requires_grad=True)"
    return RuntimeError(f"output {k} cannot be differentiated: {why}")


def _run(
    outputs: Sequence[Tensor],
    seeds: list[Tensor],
    targets: Sequence[Tensor] | None,
    create_graph: bool,
    retain_graph: bool,
) -> dict[int, tuple[Tensor, Tensor]]:
    """The reverse pass: {id: (node, gradient)} for the leaves, or for ``targets``."""
    order = _toposort(outputs)
    need = _reaching(order, targets) if targets is not None else None
    keep = {id(t) for t in targets} if targets is not None else None
    grads: dict[int, Tensor] = {}
    for out, g in zip(outputs, seeds, strict=True):
        grads[id(out)] = grads[id(out)] + g if id(out) in grads else g
    result: dict[int, tuple[Tensor, Tensor]] = {}
    with _set_grad_enabled(create_graph):
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if (keep is None and node.is_leaf) or (keep is not None and id(node) in keep):
                result[id(node)] = (node, g)
            if not node._parents:
                if node._op and (keep is None or id(node) not in keep or len(keep) > 1):
                    raise _freed_error(node)  # its gradient would have to flow on through a freed graph
                continue
            for k, (parent, vjp, version) in enumerate(zip(node._parents, node._vjps, node._versions, strict=True)):
                if parent._version != version:  # checked on the edges the pass uses, as it walks them
                    raise _stale_error(node, k, parent, version)
                if vjp is ZERO_DERIVATIVE or not parent.requires_grad or (need is not None and id(parent) not in need):
                    continue
                gp = vjp(g, node)
                pid = id(parent)
                grads[pid] = grads[pid] + gp if pid in grads else gp
    if not retain_graph:  # drop the references that keep intermediate arrays alive
        for node in order:
            node._parents, node._vjps, node._versions = (), (), ()
    return result


def backward(out: Tensor, grad: Any = None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
    """Accumulate gradients of ``out`` into ``.grad`` of the leaves it depends on."""
    if not out.requires_grad:
        raise _not_differentiable(out, 0)
    seeds = _seed([out], None if grad is None else [grad], batched=False)
    retain = create_graph if retain_graph is None else retain_graph
    taken = {id(_memory(g.data)) for g in seeds}
    for node, g in _run([out], seeds, None, create_graph, retain).values():
        if node.grad is not None:
            node.grad = node.grad + g
            continue
        # Each leaf owns its .grad, as in PyTorch: optimizers may update it in
        # place. A VJP may hand back a broadcast (read-only) view, the seed, or
        # memory shared with another leaf (``x + y``); only those are copied.
        if not g.requires_grad and not _private(g.data, taken):
            g = Tensor(g.data.copy())
        taken.add(id(_memory(g.data)))
        node.grad = g


def _memory(arr: Any) -> Any:
    """The array that owns the memory ``arr`` looks at."""
    while arr.base is not None:
        arr = arr.base
    return arr


def _private(arr: Any, taken: set[int]) -> bool:
    """Whether ``arr`` can become a leaf's .grad as it is: writable, no repeated
    entries (zero strides), memory not handed out already."""
    writeable = getattr(arr.flags, "writeable", True)  # CuPy has no read-only arrays
    return writeable and 0 not in arr.strides and id(_memory(arr)) not in taken


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    create_graph: bool = False,
    retain_graph: bool | None = None,
    allow_unused: bool = False,
    is_grads_batched: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, returned (``.grad`` untouched).

    Args:
        outputs: a tensor or a sequence of tensors.
        inputs: tensors (leaves or intermediate) to differentiate with respect to.
        grad_outputs: upstream gradients, one per output, each of the output's
            shape (or, with ``is_grads_batched``, with one extra leading axis).
            May be omitted for one-element outputs.
        create_graph: record the backward pass so the result can be
            differentiated again (needed for Hessians).
        allow_unused: return None for an input the outputs do not depend on,
            instead of raising.
        is_grads_batched: the first axis of every ``grad_outputs`` entry is a
            batch of upstream vectors; results gain that leading axis.

    Returns:
        a tuple with one gradient per input, each of shape ``input.shape``
        (``(B,) + input.shape`` when batched).

    Raises:
        RuntimeError: the graph was freed, or one of its inputs was modified in
            place since it was recorded (an optimizer step, say: see tensor.py).
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is not None and not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]  # one Tensor, array or number for a single output
    if grad_outputs is not None and len(grad_outputs) != len(outs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outs)} outputs")
    for k, o in enumerate(outs):
        if not o.requires_grad:
            raise _not_differentiable(o, k)
    seeds = _seed(outs, grad_outputs, is_grads_batched)
    retain = create_graph if retain_graph is None else retain_graph
    grads = _run(outs, seeds, ins, create_graph, retain)
    result = []
    for k, t in enumerate(ins):
        g = grads[id(t)][1] if id(t) in grads else None
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {k} (shape {t.shape}) is not used to compute the outputs "
                "(or does not require grad); pass allow_unused=True to get None for it"
            )
        result.append(g)
    return tuple(result)


__all__ = ["Tensor", "no_grad", "enable_grad", "is_grad_enabled", "make_node", "ZERO_DERIVATIVE", "grad", "backward"]

