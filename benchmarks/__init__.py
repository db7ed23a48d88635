"""Benchmarks for chainrule: one module per workload, run with ``python -m benchmarks.run``.

Each benchmark module exposes ``NAME``, ``DESCRIPTION``, ``run(smoke=False) -> dict`` and
``format_result(result) -> str``. Results are plain dicts (JSON-ready) with the keys
``name``, ``params``, ``rows`` (a list of dicts, one per measured case) and ``notes``.
"""
