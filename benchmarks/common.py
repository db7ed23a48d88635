"""Timing helpers shared by the benchmarks: warm-up, repeats, interleaving, machine notes.

Rules every benchmark follows (the machines are shared and noisy):

- every library is measured in the same process run, interleaved sample by sample (the
  order rotates each repeat), so a burst of noise hits all of them alike;
- results are the min and the median over repeats, and comparisons are ratios taken
  within one run;
- glibc hands freed memory back to the OS and touching fresh pages again is slow, so the
  process runs with ``MALLOC_MMAP_MAX_=0`` and a huge ``MALLOC_TRIM_THRESHOLD_`` (see
  :func:`ensure_malloc_env`), for every library alike;
- a short sleep between samples lets BLAS / intra-op threads go idle.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "10000000000"}
ENV_NOTE = (
    "run with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=10000000000 (glibc keeps freed "
    "memory instead of returning it to the OS) for every library alike; samples are "
    "interleaved across libraries with a short sleep between them"
)
_REEXEC_FLAG = "CHAINRULE_BENCH_REEXEC"


def malloc_env_ok() -> bool:
    """True when this process was started with the recommended glibc malloc settings."""
    return all(os.environ.get(k) == v for k, v in MALLOC_ENV.items())


def ensure_malloc_env() -> None:
    """Re-run this process with the malloc settings when they are missing.

    glibc reads them only at start-up, so they cannot be set from inside. The re-exec
    happens at most once; set ``CHAINRULE_BENCH_REEXEC=0`` to measure without them.
    """
    if malloc_env_ok() or os.environ.get(_REEXEC_FLAG) is not None:
        return
    env = dict(os.environ)
    env.update(MALLOC_ENV)
    env[_REEXEC_FLAG] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def try_import_torch(threads: int | None = None):
    """PyTorch (threads set to the core count) or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads or os.cpu_count() or 1)
    return torch


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's best guess)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """A description of the machine and library versions, for the results file."""
    import numpy as np

    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "malloc_env": malloc_env_ok(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
    }
    torch = sys.modules.get("torch")  # not imported here: it takes seconds
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    else:
        try:
            from importlib.metadata import version

            info["torch"] = version("torch") + " (not used in this run)"
        except Exception:
            info["torch"] = None
    return info


def stats(samples: list[float]) -> dict:
    """Min, median and count of a list of per-unit times."""
    return {"min": min(samples), "median": statistics.median(samples), "n": len(samples)}


def interleave(cases: dict[str, Callable[[], object]], repeats: int, *, warmup: int = 1,
               inner: int = 1, sleep: float = 0.005, per: float = 1.0,
               setup: dict[str, Callable[[], object]] | None = None,
               clock: Callable[[], float] = time.perf_counter,
               slow_after: float | None = None) -> dict[str, dict]:
    """Time several callables sample by sample, rotating their order each repeat.

    Args:
        cases: name -> zero-argument callable doing one unit of work.
        repeats: samples per case.
        warmup: untimed calls of each case before sampling.
        inner: calls per sample (the sample is their mean).
        sleep: seconds to sleep before each sample (lets worker threads go idle).
        per: each sample is divided by this (e.g. the op count, for a time per op).
        setup: optional name -> callable run (untimed) before each sample.
        clock: the timer; ``time.process_time`` counts CPU time only, steadier on a
            busy machine but unfair to libraries that use several threads.
        slow_after: when set, a case whose samples add up to more than this many seconds
            stops being sampled once it has three (a peer taking seconds per step
            would otherwise hold the run for minutes); ``n`` says how many it got.

    Returns:
        name -> ``{"min", "median", "n", "samples", "cpu"}`` in seconds per unit /
        ``per``; ``cpu`` holds the same statistics in process CPU time (all threads),
        which a busy shared machine disturbs less than wall time.
    """
    names = list(cases)
    for name in names:
        for _ in range(warmup):
            if setup and name in setup:
                setup[name]()
            cases[name]()
    out: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    _sample(cases, names, repeats, inner, sleep, per, setup, clock, slow_after, out, cpu)
    return {n: {**stats(s), "samples": s, "cpu": stats(cpu[n])} for n, s in out.items()}


def _sample(cases, names, repeats, inner, sleep, per, setup, clock, slow_after, out, cpu):
    cpu_clock = time.process_time
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            done = out[name]
            if slow_after and len(done) >= 3 and sum(done) * inner * per > slow_after:
                continue
            fn = cases[name]
            if setup and name in setup:
                setup[name]()
            # a full collection before every sample (400 ms with every peer loaded: the
            # suite's sample counts are sized for it); gc.freeze() would make it cheap but
            # made PyTorch's steps 2x slower, and young-generation-only collections
            # doubled PyTorch's medians
            gc.collect()
            time.sleep(sleep)
            c0 = cpu_clock()
            t0 = clock()
            for _ in range(inner):
                fn()
            dt = clock() - t0
            dc = cpu_clock() - c0
            out[name].append(dt / inner / per)
            cpu[name].append(dc / inner / per)


def import_baseline(path: str, name: str = "chainrule_baseline"):
    """Import the ``chainrule`` package found in directory ``path`` as module ``name``.

    For before/after comparisons in one process: point ``path`` at an older checkout
    (e.g. a ``git worktree``). The package is copied to a temporary directory under the
    new name; this works because the package imports itself only relatively.
    """
    import importlib
    import shutil
    import tempfile

    src = os.path.join(path, "chainrule")
    if not os.path.isdir(src):
        raise SystemExit(f"baseline: no chainrule package in {path!r}")
    tmp = tempfile.mkdtemp(prefix="chainrule_baseline_")
    shutil.copytree(src, os.path.join(tmp, name),
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, tmp)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(tmp)


def time_once(fn: Callable[[], object]) -> tuple[float, object]:
    """Seconds taken by one call of ``fn`` and its result."""
    t0 = time.perf_counter()
    res = fn()
    return time.perf_counter() - t0, res


def us(seconds: float | None) -> str:
    """Seconds as a short microsecond string."""
    return "-" if seconds is None else f"{seconds * 1e6:.2f}"


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain Markdown table (columns padded for the terminal)."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def describe_machine(info: dict | None = None) -> str:
    """One line naming the CPU, cores and library versions."""
    info = info or machine()
    torch_part = (f", torch {info['torch']} ({info.get('torch_threads')} threads)"
                  if info.get("torch") else ", torch not installed")
    env = "malloc env set" if info["malloc_env"] else "malloc env NOT set"
    return (f"{info['cpu']}, {info['cores']} cores, Python {info['python']}, "
            f"numpy {info['numpy']}{torch_part}; {env}")


def ratio_lines(result: dict) -> list[str]:
    """One ``ratio name: min .., median ..`` line per entry of ``result['ratios']``, with
    the target from ``result['targets']`` when there is one."""
    lines = []
    for name, r in result["ratios"].items():
        tgt = result["targets"].get(name)
        lines.append(f"ratio {name}: min {r['min']:.2f}, median {r['median']:.2f}"
                     + (f" (target <= {tgt})" if tgt else ""))
    return lines
