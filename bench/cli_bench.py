"""How fast the `intake` command starts: repeated subprocess timing, medians (like hyperfine).

    python -m bench.cli_bench [--runs 15] [--warmup 2]

Measures, each as a fresh process, interleaved so machine load hits all alike:
  typer   `python -c "import typer"` (the floor any Typer CLI pays)
  help    `intake --help`                         target: ≤ 1.5 × typer
  status  `intake status --format csv` on the 96-row roster, a real data dir   target: ≤ 3 × typer
The project's modules are byte-compiled first (as an installed copy is: a read-only install under
systemd never writes __pycache__, and PYTHONDONTWRITEBYTECODE would make every run recompile), so
the figures compare start-up, not the compiler.  The load average before and after is reported:
on a shared machine, compare ratios from one run only.
Prints one JSON object (the last line) that bench/run.py includes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _prepare(work: Path) -> Path:
    """A config and a migrated data dir from the project's config and data files (96 roster rows)."""
    sys.path.insert(0, str(ROOT))
    from pipeline.config import load_config
    from pipeline.context import open_context
    from tests.conftest import write_config

    path = write_config(work)
    open_context(load_config(path)).close()
    return path


def _time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=ROOT)
    return time.perf_counter() - start


def run(runs: int = 15, warmup: int = 2) -> dict:
    """Median wall time of each command and the ratios to `import typer`."""
    import compileall

    for package in ("pipeline", "parsers", "storage"):
        compileall.compile_dir(ROOT / package, quiet=1)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cli-bench-") as tmp:
        config = _prepare(Path(tmp))
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
        py = sys.executable
        commands = {
            "typer": [py, "-c", "import typer"],
            "help": [py, "-m", "pipeline", "--help"],
            "status": [py, "-m", "pipeline", "status", "--format", "csv", "--config", str(config)],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for n in range(warmup + runs):
            for name, cmd in commands.items():
                seconds = _time(cmd, env)
                if n >= warmup:
                    times[name].append(seconds)
    med = {name: statistics.median(values) for name, values in times.items()}
    return {
        "runs": runs,
        "typer_s": round(med["typer"], 4),
        "help_s": round(med["help"], 4),
        "status_s": round(med["status"], 4),
        "help_ratio": round(med["help"] / med["typer"], 2),
        "status_ratio": round(med["status"] / med["typer"], 2),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "all_s": {name: [round(v, 4) for v in values] for name, values in times.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    result = run(args.runs, args.warmup)
    print(f"import typer {result['typer_s'] * 1000:.0f} ms; intake --help {result['help_s'] * 1000:.0f} ms "
          f"({result['help_ratio']:.2f}x, target ≤ 1.5x); intake status {result['status_s'] * 1000:.0f} ms "
          f"({result['status_ratio']:.2f}x, target ≤ 3x); load average {result['load_average']}")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
