"""One engine to run independent tasks in parallel and to resume them, for feature extraction, training
and the Monte Carlo batches.

**Where tasks run.** ``make_executor(workers, scheduler)`` gives one of three executors with the same
five methods (``submit``, ``wait``, ``capacity``, ``restart``, ``close``):

- ``InlineExecutor``: in this process, one call after the other (``workers=1``);
- ``LocalExecutor`` (the embedded default): a pool of ``spawn``-ed worker processes
  (``concurrent.futures``), started with one BLAS/OpenMP thread each (``single_threaded_children``);
  or, with ``threads=True``, a pool of threads for tasks that run a child process of their own;
- ``DaskExecutor``: a Dask cluster, given its scheduler address (``tcp://host:8786``); the workers
  must see the same file paths. An unreachable scheduler fails within ``DASK_CONNECT_TIMEOUT_S``
  with one clear ``SIRTInputError``: :func:`check_scheduler_reachable`, the one check that the
  commands (``sirt run``, ``sirt features``, ``sirt train``) also call before they make any folder.

Dask is used directly (``distributed.Client.submit``), not through joblib's Dask backend, because
the feature cohort schedules as results come in: a patient's extraction tasks are known only once
its images are read, and they are submitted while other patients are still being prepared. joblib's
``Parallel`` takes a list of calls known in advance, so it could not express that without a second
engine; futures express both that and a plain map (``map_unordered``) on all three executors.

**Resuming.** ``ResultStore`` keeps one JSON file per finished task, written atomically (temporary
file, then ``os.replace``: a killed run leaves no half file), holding the task's key: a SHA-256 of
everything that determines the result (``task_key``: the task's inputs, parameters and the software
versions). A rerun loads the results whose file holds the same key and computes only the others.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import SIRTInputError, error_line
from .provenance import to_jsonable

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
"""Environment variables that set the threads of the BLAS/OpenMP libraries in a new process."""

DASK_CONNECT_TIMEOUT_S = 5.0
"""How long to try to reach a Dask scheduler before giving up."""

NETWORK_SCHEMES = ("tcp", "tls", "ws", "wss")
"""Dask address schemes that :func:`check_scheduler_reachable` can test with a plain socket."""


def check_scheduler_reachable(address: str, timeout_s: float = DASK_CONNECT_TIMEOUT_S) -> None:
    """Refuse (``SIRTInputError``, one line) a Dask scheduler address that does not accept a connection within ``timeout_s``.

    A plain TCP connection, tried before ``distributed.Client`` (whose own timeout applies to the
    whole handshake and fails with a traceback), so a command fails within seconds, before any work
    or output folder is made. Other schemes (``inproc://``) are left to Dask.
    """
    text = address if "://" in address else f"tcp://{address}"
    parts = urlsplit(text)
    if parts.scheme not in NETWORK_SCHEMES:
        return
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or port is None:
        raise SIRTInputError(f"Dask scheduler address {address!r} must look like tcp://HOST:PORT")
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SIRTInputError(f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s: {reason}") from None


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def worker_count(requested: int | None) -> int:
    """Workers for a request: ``None`` every available CPU; ``-1`` too, ``-2`` all but one (as joblib)."""
    if requested is None:
        return available_cpus()
    if requested < 0:
        return max(1, available_cpus() + 1 + requested)
    return max(1, requested)


@contextlib.contextmanager
def single_threaded_children():
    """Worker processes started inside this block use one BLAS/OpenMP thread (no oversubscription)."""
    saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    os.environ.update({k: "1" for k in THREAD_VARIABLES})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class InlineExecutor:
    """Runs each call at once in this process."""

    def submit(self, fn, *args):
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future

    def wait(self, futures):
        return set(futures)

    def capacity(self) -> int:
        """Tasks run at once."""
        return 1

    def restart(self) -> None:
        pass

    def close(self) -> None:
        pass


def child_python() -> str:
    """The Python interpreter to start a child process with (``[child_python(), "-m", module, ...]``).

    ``sys.executable``, except inside the Slicer application, where ``sys.executable`` is the
    application itself: there Slicer's own launcher of its Python environment, ``PythonSlicer``, found
    on the PATH that Slicer sets, as ``slicer.util`` finds it to run pip.
    """
    try:
        from slicer import app  # noqa: F401  (only the Slicer application defines it; slicer-core does not)
    except ImportError:
        return sys.executable
    found = shutil.which("PythonSlicer")
    if not found:
        raise SIRTInputError("PythonSlicer, the Python of this Slicer, is not on the PATH: child processes cannot be started")
    return found


class LocalExecutor:
    """A pool of spawned worker processes; ``initializer`` runs once in each. With ``threads=True`` a
    pool of threads instead, for tasks that only start and wait on a child process of their own
    (no worker interpreter to spawn, which also works where ``sys.executable`` is not Python)."""

    def __init__(self, workers: int, initializer: Callable[[], None] | None = None, threads: bool = False):
        self.workers = workers
        self.initializer = initializer
        self.threads = threads
        with single_threaded_children():
            self.pool = self._new()

    def _new(self):
        if self.threads:
            return cf.ThreadPoolExecutor(self.workers, initializer=self.initializer)
        return cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=self.initializer)

    def submit(self, fn, *args):
        with single_threaded_children():  # the pool starts its processes on demand
            return self.pool.submit(fn, *args)

    def wait(self, futures):
        done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return done

    def capacity(self) -> int:
        """Tasks run at once."""
        return self.workers

    def restart(self) -> None:
        """A fresh pool after a worker died (the broken pool refuses new work)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        with single_threaded_children():
            self.pool = self._new()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Tasks on a Dask distributed cluster (``distributed.Client(address)``)."""

    def __init__(self, address: str, timeout_s: float = DASK_CONNECT_TIMEOUT_S):
        check_scheduler_reachable(address, timeout_s)
        try:
            from distributed import Client
        except ImportError:
            raise SIRTInputError("a Dask scheduler address needs dask[distributed] installed (pip install 'slicer-sirt[dask]')") from None
        try:
            self.client = Client(address, timeout=timeout_s)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SIRTInputError(f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s: {error_line(exc)}") from None

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False)

    def wait(self, futures):
        from distributed import wait

        done, _ = wait(list(futures), return_when="FIRST_COMPLETED")
        return done

    def restart(self) -> None:
        pass

    def capacity(self) -> int:
        """Tasks the cluster runs at once (threads over all its workers)."""
        return max(1, sum(self.client.nthreads().values()))

    def close(self) -> None:
        self.client.close()


Executor = InlineExecutor | LocalExecutor | DaskExecutor


def make_executor(workers: int | None = None, scheduler: str | None = None, initializer: Callable[[], None] | None = None,
                  threads: bool = False) -> Executor:
    """Dask when given a scheduler address, else local processes (``workers``, see ``worker_count``), or
    this process for one worker (``initializer`` runs in each worker process, not in this one).
    ``threads=True`` is for tasks that run a child process of their own (the Monte Carlo batches):
    local workers are threads, even for one worker, so that the caller can watch and cancel a task
    while it runs."""
    if scheduler:
        return DaskExecutor(scheduler)
    count = worker_count(workers)
    if threads:
        return LocalExecutor(count, initializer, threads=True)
    return InlineExecutor() if count <= 1 else LocalExecutor(count, initializer)


def map_unordered(fn: Callable, calls: Iterable[tuple], workers: int | None = 1, scheduler: str | None = None) -> Iterator:
    """``fn(*args)`` for each argument tuple, results in the order they finish; the first error is raised."""
    calls = list(calls)
    if not calls:
        return
    executor = make_executor(workers, scheduler)
    try:
        pending = {executor.submit(fn, *args) for args in calls}
        while pending:
            done = executor.wait(pending)
            for future in done:
                pending.discard(future)
                yield future.result()
    finally:
        executor.close()


# ---------------------------------------------------------------------------------------------
# Resuming


def task_key(description: Any, *blobs: bytes) -> str:
    """SHA-256 of a task's JSON-able description (inputs, parameters, versions) and of any raw data."""
    digest = hashlib.sha256(json.dumps(to_jsonable(description), sort_keys=True, default=str).encode())
    for blob in blobs:
        digest.update(blob)
    return digest.hexdigest()


def write_json_atomic(path: str | Path, data: Any, *, indent: int | None = None) -> None:
    """Write JSON through a temporary file in the same folder, so a killed run leaves no half file."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(to_jsonable(data), stream, default=str, indent=indent)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class ResultStore:
    """Finished tasks' results, one atomic JSON file per task in ``folder``, each holding its key."""

    def __init__(self, folder: str | Path, schema: str):
        self.folder = Path(folder)
        self.schema = schema

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def load(self, name: str, key: str) -> Any | None:
        """The stored result of task ``name`` if it was computed with ``key``; None otherwise (or unreadable)."""
        try:
            data = json.loads(self.path(name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("schema") != self.schema or data.get("key") != key:
            return None
        return data.get("result")

    def save(self, name: str, key: str, result: Any) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(name)
        write_json_atomic(path, {"schema": self.schema, "key": key, "result": result})
        return path
