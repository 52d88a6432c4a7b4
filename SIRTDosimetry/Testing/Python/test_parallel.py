"""The shared parallel + resume engine: same results inline and in worker processes, atomic keyed results."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import types

import pytest
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.parallel import (
    DaskExecutor,
    InlineExecutor,
    LocalExecutor,
    ResultStore,
    available_cpus,
    check_scheduler_reachable,
    child_python,
    make_executor,
    map_unordered,
    task_key,
    worker_count,
)


def _power(base: float, exponent: float) -> float:
    return math.pow(base, exponent)


def _fail(message: str) -> None:
    raise ValueError(message)


def test_results_are_the_same_inline_and_in_worker_processes():
    calls = [(1.5, k) for k in range(6)]
    inline = sorted(map_unordered(_power, calls, workers=1))
    pooled = sorted(map_unordered(_power, calls, workers=2))
    assert inline == pooled == sorted(1.5**k for k in range(6))
    assert list(map_unordered(_power, [], workers=2)) == []


def test_an_error_in_a_task_reaches_the_caller():
    with pytest.raises(ValueError, match="bad task"):
        list(map_unordered(_fail, [("bad task",)], workers=1))


def test_executor_choice_and_worker_counts():
    assert isinstance(make_executor(1), InlineExecutor)
    pool = make_executor(2)
    try:
        assert isinstance(pool, LocalExecutor) and pool.workers == 2 and pool.capacity() == 2
    finally:
        pool.close()
    single = make_executor(1, threads=True)  # one worker, but not inline (watchable, cancellable)
    try:
        assert isinstance(single, LocalExecutor) and single.workers == 1 and single.threads and single.capacity() == 1
        assert single.submit(pow, 2, 10).result() == 1024
    finally:
        single.close()
    assert worker_count(None) == worker_count(-1) == available_cpus()
    assert worker_count(-2) == max(1, available_cpus() - 1)
    assert worker_count(0) == 1


def test_result_store_resumes_only_results_with_the_same_key(tmp_path):
    store = ResultStore(tmp_path / "results", "test-schema/1")
    key = task_key({"inputs": [1, 2], "parameters": {"a": 0.5}}, b"\x00\x01")
    assert key == task_key({"parameters": {"a": 0.5}, "inputs": [1, 2]}, b"\x00\x01")  # key order does not matter
    assert key != task_key({"inputs": [1, 2], "parameters": {"a": 0.5}}, b"\x00\x02")  # the data does
    assert store.load("task-1", key) is None
    path = store.save("task-1", key, {"value": 0.1 + 0.2, "missing": float("nan")})
    result = store.load("task-1", key)
    assert result["value"] == 0.1 + 0.2 and math.isnan(result["missing"])  # floats come back bit for bit
    assert store.load("task-1", "another key") is None
    assert ResultStore(tmp_path / "results", "test-schema/2").load("task-1", key) is None
    assert json.loads(path.read_text())["key"] == key
    path.write_text('{"schema": "test-schema/1", "key": ')  # a file cut short by a killed run
    assert store.load("task-1", key) is None
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["task-1.json"]  # no temporary file left


def test_unreachable_dask_scheduler_fails_quickly_with_one_line():
    pytest.importorskip("distributed")
    start = time.perf_counter()
    with pytest.raises(SIRTInputError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9") as error:
        DaskExecutor("tcp://127.0.0.1:9", timeout_s=2.0)
    assert time.perf_counter() - start < 5.0  # the socket check, before distributed.Client's handshake
    assert "\n" not in str(error.value)


def test_scheduler_address_without_port_is_refused_and_inproc_is_left_to_dask():
    with pytest.raises(SIRTInputError, match="must look like tcp://HOST:PORT"):
        check_scheduler_reachable("tcp://127.0.0.1")
    check_scheduler_reachable("inproc://somewhere")  # not a socket address: no check, no error


def test_child_python_is_this_python_outside_slicer_and_pythonslicer_inside(monkeypatch, tmp_path):
    """Child processes (the Monte Carlo workers) start with a real Python: inside the Slicer application,
    whose sys.executable is the application, with its PythonSlicer launcher from the PATH."""
    assert child_python() == sys.executable  # here slicer is slicer-core (no application) or absent
    done = subprocess.run([child_python(), "-c", "import sys; print(sys.version_info[0])"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "3"
    application = types.ModuleType("slicer")
    application.app = object()  # what only the Slicer application defines
    monkeypatch.setitem(sys.modules, "slicer", application)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SIRTInputError, match="PythonSlicer"):
        child_python()
    launcher = tmp_path / "PythonSlicer"
    launcher.write_text("#!/bin/sh\nexec python3 \"$@\"\n")
    launcher.chmod(0o755)
    assert child_python() == str(launcher)
