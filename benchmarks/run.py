"""Run benchmarks and print their tables: ``python -m benchmarks.run [options] [names...]``.

Options:
    --json PATH   also write every result (plus the machine description) as JSON.
    --smoke       tiny sizes: checks that each benchmark runs, measures nothing useful.
    --list        print the benchmark names and exit.

With no names every registered benchmark runs. Run as a script, the process re-executes
itself once with the glibc malloc settings described in ``benchmarks.common`` unless they
are already set.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

from . import common

# name -> module; later workloads register here.
REGISTRY = {
    "overhead": "benchmarks.overhead",
    "deep_chain": "benchmarks.deep_chain",
    "lstm": "benchmarks.lstm",
    "cnn": "benchmarks.cnn",
    "checkpoint": "benchmarks.checkpoint",
    "mlp": "benchmarks.mlp",
    "deep": "benchmarks.deep",
    "attention": "benchmarks.attention",
}


def load(name: str):
    """Import the benchmark module registered as ``name``."""
    if name not in REGISTRY:
        raise SystemExit(f"benchmarks.run: unknown benchmark {name!r}; "
                         f"known: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name])


def run_all(names: list[str] | None = None, smoke: bool = False) -> dict:
    """Run the named benchmarks (all when empty); returns ``{"machine", "results"}``."""
    names = list(names) if names else list(REGISTRY)
    results = []
    for name in names:
        mod = load(name)
        t0 = time.perf_counter()
        res = mod.run(smoke=smoke)
        res["wall_s"] = time.perf_counter() - t0
        results.append(res)
    return {"machine": common.machine(), "results": results}


def summary(results: list[dict]) -> str:
    """One line per target: chainrule's ratio, the target, and each peer's time over
    chainrule's (min over samples; above 1 means the peer is slower)."""
    rows = []
    for res in results:
        peers = ""
        libs = {r["lib"]: r["min"] for r in res.get("rows", []) if "lib" in r and "mode" not in r}
        if "chainrule" in libs:
            peers = ", ".join(f"{lib} {t / libs['chainrule']:.2f}" for lib, t in libs.items()
                              if lib not in ("chainrule", "torch"))
        for key, tgt in res.get("targets", {}).items():
            r = res["ratios"].get(key)
            if r is None:
                continue
            what = res["name"] if key == "chainrule/torch" else f"{res['name']} {key}"
            rows.append([what, f"{r['min']:.2f} / {r['median']:.2f}", f"<= {tgt}",
                         "met" if r["min"] <= tgt else "missed", peers or "-"])
    if not rows:
        return ""
    return common.format_table(["workload", "chainrule / torch (min / median)", "target",
                                "target (min)", "peers' time / chainrule's (min)"], rows)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, only checks it runs")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = p.parse_args(argv)
    if args.list:
        for name in REGISTRY:
            print(f"{name:12s} {load(name).DESCRIPTION}")
        return 0
    for name in args.names:
        load(name)
    out = run_all(args.names, smoke=args.smoke)
    print(common.describe_machine(out["machine"]))
    given = sys.argv[1:] if argv is None else list(argv)
    print("command: " + " ".join(["python", "-m", "benchmarks.run", *given]))
    for res in out["results"]:
        mod = load(res["name"])
        print(f"\n## {res['name']} ({res['wall_s']:.1f} s)")
        print(mod.format_result(res))
    table = summary(out["results"])
    if table:
        print("\n## summary\n" + table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    common.ensure_malloc_env()
    sys.exit(main())
