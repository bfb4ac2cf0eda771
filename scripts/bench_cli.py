"""Time to the first printed byte, wall and CPU time of `kura` commands as a user types them.

    .venv/bin/python scripts/bench_cli.py [--before OLD_CHECKOUT] [--config FILE] [--runs 5] [--json]

With ``--before``, each command runs from that checkout too, interleaved run by run, so both sides see the
same load; speed is compared only within one run. ``--config`` is given to this checkout's commands,
``--before-config`` to the older one's (a config it understands, pointing at the same models and store).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
COMMANDS = {
    "ask (answered)": ["ask", "Which password manager does the company use?"],
    "ask (abstained)": ["ask", "On which TCP port does the company VPN gateway accept connections?"],
    "ingest, nothing changed": ["ingest", "data/sample"],
}


def run_once(checkout: Path, args: list[str], config: Path | None) -> dict[str, float]:
    """One run: seconds to the first byte on stdout, to the end, and the child's CPU seconds."""
    # sys.path[0] names the checkout: the current folder (this one's config and store) would shadow it.
    start = "sys.argv[0] = 'kura'; import rag.cli.main as cli; cli.main()"
    code = f"import sys; sys.path.insert(0, {str(checkout)!r}); {start}"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args, *(["--config", str(config)] if config else [])],
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    proc.stdout.read(1)
    first = time.perf_counter() - started
    proc.stdout.read()
    if proc.wait() != 0:
        raise SystemExit(f"kura {' '.join(args)} failed in {checkout}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"first": first, "wall": wall, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="an older checkout to compare with, run interleaved")
    parser.add_argument("--config", type=Path, help="the config file this checkout's commands are given")
    parser.add_argument("--before-config", type=Path, help="the config file the older checkout's commands are given")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    sides = {"after": HERE} | ({"before": options.before.resolve()} if options.before else {})
    configs = {"after": options.config, "before": options.before_config or options.config}
    results: dict[str, dict[str, list[dict[str, float]]]] = {name: {side: [] for side in sides} for name in COMMANDS}
    for _ in range(options.runs):
        for name, args in COMMANDS.items():
            for side, checkout in sides.items():
                results[name][side].append(run_once(checkout, args, configs[side]))
    medians = {
        name: {
            side: {key: statistics.median(r[key] for r in runs) for key in ("first", "wall", "cpu")}
            for side, runs in by_side.items()
        }
        for name, by_side in results.items()
    }
    if options.json:
        print(json.dumps({"medians": medians, "runs": results, "load": os.getloadavg()}, indent=2))
        return
    print(f"load average {os.getloadavg()[0]:.1f}; medians of {options.runs} runs (first byte / wall / CPU, s)")
    for name, by_side in medians.items():
        cells = [f"{side}: {m['first']:.2f} / {m['wall']:.2f} / {m['cpu']:.2f}" for side, m in by_side.items()]
        ratio = ""
        if "before" in by_side:
            ratio = f"  first byte {by_side['before']['first'] / by_side['after']['first']:.2f}x faster"
        print(f"{name:26} " + "   ".join(cells) + ratio)


if __name__ == "__main__":
    main()
