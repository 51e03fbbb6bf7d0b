"""Independent training runs in this process or in worker processes, with the same results.

A runner takes tasks (tuples of arguments) with ``submit`` and hands back
finished ``(task, result)`` pairs with ``next_done``. ``SerialRunner`` runs
them here, one at a time, in submission order or by a priority;
``PoolRunner`` in ``jobs`` processes (``concurrent.futures.ProcessPoolExecutor``,
spawn context: a fresh interpreter per worker, no state forked from the parent),
in submission order.

Bit-identical results for any number of jobs need every run to see the same
arithmetic: BLAS is pinned to one thread everywhere (a different thread count
may sum a product in a different order). In workers that is done twice: the
parent sets ``OMP/OPENBLAS/MKL_NUM_THREADS=1`` in the environment the workers
inherit (read by the BLAS library when a worker first imports NumPy, which the
spawn start-up does before any initializer runs), and the worker initializer
calls ``threadpoolctl.threadpool_limits(1)``; the serial runner pins this
process's BLAS the same way while a task runs. threadpoolctl is a dependency
(setup.cfg); should it be missing, the environment variables still pin the
workers, but the serial runner cannot change a BLAS that is already loaded, so
``--jobs 1`` could then differ from ``--jobs N`` in the last bits.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator

from tqdm import tqdm

try:
    import threadpoolctl
except ImportError:  # a dependency; without it, the environment variables below still pin the workers
    threadpoolctl = None

BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread() -> contextlib.AbstractContextManager:
    """BLAS on one thread in this process while the context lasts (a no-op without threadpoolctl)."""
    if threadpoolctl is None:
        return contextlib.nullcontext()
    return threadpoolctl.threadpool_limits(limits=1)


@contextlib.contextmanager
def _single_threaded_environment() -> Iterator[None]:
    """The BLAS thread variables set to 1 for the processes started meanwhile; restored afterwards."""
    saved = {k: os.environ.get(k) for k in BLAS_THREAD_VARIABLES}
    os.environ.update({k: "1" for k in BLAS_THREAD_VARIABLES})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT held back (not lost: delivered on exit) in this thread, and blocked in processes started meanwhile."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class SerialRunner:
    """Runs ``fn(*task)`` in this process, one task per ``next_done`` call: the pending task with the
    smallest ``priority(task)``, the earliest submitted among equals (default: submission order)."""

    def __init__(self, fn: Callable[..., Any], priority: Callable[[tuple], Any] | None = None):
        self.fn, self.priority, self._queue = fn, priority, []

    def submit(self, task: tuple) -> None:
        self._queue.append(task)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def next_done(self) -> tuple[tuple, Any]:
        index = 0 if self.priority is None else min(range(len(self._queue)),
                                                     key=lambda i: self.priority(self._queue[i]))
        task = self._queue.pop(index)
        with one_blas_thread():
            return task, self.fn(*task)

    def close(self) -> None:
        self._queue.clear()


_blas_limit = None  # the worker's threadpool limit, kept alive for the worker's lifetime


def _worker_start(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    global _blas_limit
    # Ctrl-C goes to the whole process group: let the parent alone handle it (it ends the workers). On POSIX
    # the workers start with SIGINT blocked already (PoolRunner.submit); this covers the other systems.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker may be terminated (Ctrl-C, an error): it must own no multiprocessing semaphore, or the
    # resource tracker reports it leaked. tqdm makes one for its bars (even disabled ones) unless given a lock;
    # workers draw no bars (--progress needs --jobs 1), so a thread lock does.
    tqdm.set_lock(threading.RLock())
    if threadpoolctl is not None:
        _blas_limit = threadpoolctl.threadpool_limits(limits=1)
    if initializer is not None:
        initializer(*initargs)


class PoolRunner:
    """Runs ``fn(*task)`` in ``jobs`` worker processes; ``initializer(*initargs)`` runs once in each.

    ``fn`` and ``initializer`` must be module-level functions (they are pickled by name).
    """

    def __init__(self, fn: Callable[..., Any], jobs: int, initializer: Callable[..., None] | None = None,
                 initargs: tuple = ()):
        if jobs < 1:
            raise ValueError(f"PoolRunner: jobs must be >= 1, got {jobs}")
        self.fn = fn
        self._env = _single_threaded_environment()
        self._env.__enter__()  # workers start on demand while tasks are submitted: keep it set until close
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_worker_start, initargs=(initializer, initargs))
        self._futures: dict[Future, tuple] = {}
        self._order: dict[Future, int] = {}

    def submit(self, task: tuple) -> None:
        with _sigint_blocked():  # workers start in submit: they inherit the mask, so Ctrl-C reaches the parent only
            future = self._pool.submit(self.fn, *task)
        self._futures[future] = task
        self._order[future] = len(self._order)

    @property
    def pending(self) -> int:
        return len(self._futures)

    def next_done(self) -> tuple[tuple, Any]:
        done, _ = wait(self._futures, return_when=FIRST_COMPLETED)
        future = min(done, key=self._order.__getitem__)  # the earliest submitted of those finished
        task = self._futures.pop(future)
        return task, future.result()

    def close(self) -> None:
        """Cancel what has not started and end the workers (also those still running a task)."""
        try:
            processes = list(getattr(self._pool, "_processes", {}).values())  # no public handle on them
            self._pool.shutdown(wait=False, cancel_futures=True)
            if self._futures:  # closing early (an error, Ctrl-C): do not wait for running tasks
                for p in processes:
                    p.terminate()
            for p in processes:
                p.join()
            self._pool.shutdown(wait=True)  # its manager thread closes the queues (no leaked semaphores)
        finally:
            self._futures.clear()
            self._env.__exit__(None, None, None)

