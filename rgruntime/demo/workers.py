"""``rgruntime demo --store URL --workers N``: the demo in N OS processes sharing one store.

Each worker is a ``python -m rgruntime.demo.workers`` child running :func:`run_workload` with the
parent's settings and its own seed (``seed + index``: different requests, drawn from the same
popular goals, as real workers behind a load balancer see). It reports progress and its figures
in lines starting with ``@@`` on stdout. Answers one worker computed are served to the others
through the store: each worker counts its exact response hits on keys it never computed itself.

With ``baseline``, the same N workers then run again, each on its own embedded cache: the model
calls that N independent workers make, measured beside the shared run rather than estimated.
"""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Final

import anyio
import attrs
from anyio.streams.buffered import BufferedByteReceiveStream

from rgruntime.cli_ops import quiet_client_logs
from rgruntime.demo.workload import DemoReport, WorkloadSettings, run_workload
from rgruntime.errors import RGRuntimeError

__all__ = [
    "DemoWorkerError",
    "WorkerReport",
    "WorkersReport",
    "clear_store",
    "run_workers",
]

_MARK: Final = "@@"
#: A worker reports progress every this many requests (and at its end).
_PROGRESS_STEP: Final = 10
_STDERR_TAIL: Final = 4000


class DemoWorkerError(RGRuntimeError):
    """A worker process failed; the message carries the end of what it printed on stderr."""


@attrs.frozen(kw_only=True)
class WorkerReport:
    worker: int
    requests: int
    answered_from_cache: int
    from_other_processes: int
    model_calls: int
    elapsed: float


@attrs.frozen(kw_only=True)
class WorkersReport:
    backend: str
    shared: tuple[WorkerReport, ...]
    #: The same workers each on its own embedded cache (None: not run).
    independent: tuple[WorkerReport, ...] | None

    @property
    def model_calls(self) -> int:
        return sum(worker.model_calls for worker in self.shared)

    @property
    def independent_model_calls(self) -> int | None:
        if self.independent is None:
            return None
        return sum(worker.model_calls for worker in self.independent)


async def clear_store(cache_backend: Mapping[str, Any]) -> None:
    """Remove what the demo wrote (its own prefix only) from the store."""
    from rgruntime.stores import make_store

    async with make_store(dict(cache_backend)) as store:
        await store.clear()


async def run_workers(
    settings: WorkloadSettings,
    workers: int,
    *,
    backend: str,
    baseline: bool,
    progress: Callable[[str, int], None] | None = None,
) -> WorkersReport:
    """Run ``workers`` processes on ``settings.cache_backend``, then (``baseline``) alone.

    ``progress(phase, requests)`` hears of requests done, phase ``"shared"`` or ``"independent"``.
    """
    try:
        shared = await _run_group(settings, workers, backend, "shared", progress)
        independent = None
        if baseline:
            alone = attrs.evolve(settings, cache_backend=None)
            independent = await _run_group(alone, workers, backend, "independent", progress)
    except* DemoWorkerError as failed:
        # One line for the command, not a group: the first worker that failed says why.
        first = failed.exceptions[0]
        raise DemoWorkerError(str(first)) from first
    return WorkersReport(backend=backend, shared=shared, independent=independent)


async def _run_group(
    settings: WorkloadSettings,
    workers: int,
    backend: str,
    phase: str,
    progress: Callable[[str, int], None] | None,
) -> tuple[WorkerReport, ...]:
    reports: dict[int, WorkerReport] = {}

    def advance(requests: int) -> None:
        if progress is not None:
            progress(phase, requests)

    async with anyio.create_task_group() as group:
        for index in range(workers):
            worker_settings = attrs.evolve(settings, seed=settings.seed + index)
            group.start_soon(_run_worker, worker_settings, index, backend, reports, advance)
    return tuple(reports[index] for index in range(workers))


async def _run_worker(
    settings: WorkloadSettings,
    index: int,
    backend: str,
    reports: dict[int, WorkerReport],
    advance: Callable[[int], None],
) -> None:
    payload = json.dumps({"settings": attrs.asdict(settings), "backend": backend})
    command = [sys.executable, "-m", "rgruntime.demo.workers", payload]
    errors = bytearray()
    failure = ""
    async with await anyio.open_process(command, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        stderr = process.stderr

        async def collect_stderr() -> None:
            # Read all of it, keep the end: a full pipe would stall the worker.
            async for chunk in stderr:
                errors.extend(chunk)
                del errors[:-_STDERR_TAIL]

        async with anyio.create_task_group() as group:
            group.start_soon(collect_stderr)
            lines = BufferedByteReceiveStream(process.stdout)
            while True:
                try:
                    line = (await lines.receive_until(b"\n", 1 << 20)).decode()
                except (anyio.EndOfStream, anyio.IncompleteRead):
                    break
                if not line.startswith(_MARK):
                    continue  # a library's own output
                kind, _, data = line[len(_MARK) :].strip().partition(" ")
                if kind == "progress":
                    advance(int(data))
                elif kind == "report":
                    reports[index] = WorkerReport(worker=index, **json.loads(data))
                elif kind == "failed":
                    failure = data
        await process.wait()
    if process.returncode != 0 or index not in reports:
        tail = errors.decode(errors="replace").strip().splitlines()
        reason = failure or (tail[-1] if tail else f"exit status {process.returncode}")
        raise DemoWorkerError(f"worker {index} failed: {reason}")


# -- the worker process --------------------------------------------------------------------------


def _say(*words: object) -> None:
    print(_MARK, *words, flush=True)


async def _work(settings: WorkloadSettings) -> DemoReport:
    pending = 0

    def progress(requests: int) -> None:
        nonlocal pending
        pending += requests
        if pending >= _PROGRESS_STEP:
            _say("progress", pending)
            pending = 0

    report = await run_workload(settings, progress=progress)
    if pending:
        _say("progress", pending)
    return report


def _worker_main(payload: str) -> None:
    given = json.loads(payload)
    settings = WorkloadSettings(**given["settings"])
    quiet_client_logs(settings.cache_backend)
    try:
        report = anyio.run(_work, settings, backend=given["backend"])
    except BaseException as error:
        # The whole traceback on stderr; one line for the parent to show.
        traceback.print_exc()
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        _say("failed", f"{type(error).__name__}: {error}".replace("\n", " ")[:500])
        raise SystemExit(1) from None
    figures = {
        "requests": report.requests,
        "answered_from_cache": report.answered_from_cache,
        "from_other_processes": report.from_other_processes,
        "model_calls": report.model_calls,
        "elapsed": report.elapsed,
    }
    _say("report", json.dumps(figures))


if __name__ == "__main__":
    _worker_main(sys.argv[1])
