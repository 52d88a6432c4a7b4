"""Long computations off Slicer's GUI thread, with cancel that takes effect at once.

The MRML scene and Qt belong to the main thread, so a computation on nodes is split: reading the nodes
and creating the output nodes stay on the main thread (each a fraction of a second), the numerical work
in between (segment overlap, calibration, convolution, DVH and constraints) runs in a worker thread.
``run_in_background`` starts it and, while it runs, keeps Qt's event loop turning
(``process_events`` every ``poll_s``) and checks ``cancelled``: the window stays responsive, the
progress bar moves, and Cancel returns control to the user within ``poll_s`` even in the middle of a
convolution. A cancelled worker finishes on its own (a Python thread cannot be stopped from outside);
its result is dropped and it holds no node.

NumPy, SciPy's FFT and SimpleITK release the GIL in their heavy loops, so the worker does not starve
the event loop. Written with ``threading`` (not ``qt.QThread``) so that it is tested without Qt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.05
"""How often the waiting main thread lets Qt process events and checks for Cancel."""


class OperationCancelled(Exception):
    """The user cancelled; no output node is left in the scene."""


def run_in_background(
    work: Callable[[], T],
    process_events: Callable[[], None],
    cancelled: Callable[[], bool] = lambda: False,
    poll_s: float = POLL_S,
    name: str = "SlicerSIRT worker",
) -> T:
    """Run ``work()`` in a worker thread and return its result (or raise its exception) on this thread.

    While waiting, ``process_events()`` is called every ``poll_s`` seconds; ``OperationCancelled`` is
    raised as soon as ``cancelled()`` is true (the worker's result is then dropped).
    """
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the waiting thread, which raises it
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=name, daemon=True)
    worker.start()
    while True:
        worker.join(poll_s)
        process_events()
        if cancelled():
            raise OperationCancelled("cancelled by the user")
        if not worker.is_alive():
            break
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def inline(work: Callable[[], T]) -> T:
    """The default runner: ``work()`` on the calling thread (scripts, the command line, tests)."""
    return work()


class BackgroundRunner:
    """A runner for ``compute_dose_from_nodes(..., run=...)``: ``run_in_background`` with the widget's
    ``process_events`` and ``cancelled``."""

    def __init__(self, process_events: Callable[[], None], cancelled: Callable[[], bool], poll_s: float = POLL_S):
        self.process_events, self.cancelled, self.poll_s = process_events, cancelled, poll_s

    def __call__(self, work: Callable[[], T]) -> T:
        return run_in_background(work, self.process_events, self.cancelled, self.poll_s)
