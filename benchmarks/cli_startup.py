"""Start-up time of the `tunelab` command: median wall time of `tunelab --help` and of
`python -c "import tunelab"`, against the peer `python -c pass` (the interpreter alone), all in
one run, interleaved, each a fresh process. The goal: `tunelab --help` under one second.

Timed: from spawning the process to its exit (``subprocess.run``), output discarded. The peer
shows what any Python command costs on this machine; the ratio is to it.

    python benchmarks/cli_startup.py              # writes benchmarks/results/cli_startup.json
    python benchmarks/cli_startup.py --rounds 5   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

PYTHON = sys.executable
TUNELAB = str(Path(sys.executable).with_name("tunelab"))
COMMANDS = {
    "python -c pass": [PYTHON, "-c", "pass"],
    "import tunelab": [PYTHON, "-c", "import tunelab"],
    "tunelab --help": [TUNELAB, "--help"],
}
PEER = "python -c pass"


def _once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21, help="runs of each command")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cli_startup.json"))
    args = parser.parse_args()

    for argv in COMMANDS.values():  # warm the file cache (and .pyc files) first
        _once(argv)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):  # interleaved, so a busy moment hits every command alike
        for name, argv in COMMANDS.items():
            times[name].append(_once(argv))

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"median wall time over {args.rounds} runs each (fresh process every run):")
    for name, median in medians.items():
        ratio = median / medians[PEER]
        print(f"  {name:<16} {median * 1000:7.1f} ms   {ratio:5.2f} x `{PEER}`")
    verdict = "under" if medians["tunelab --help"] < 1.0 else "OVER"
    print(f"tunelab --help: {medians['tunelab --help']:.3f} s, {verdict} the 1 s goal")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "rounds": args.rounds,
                "median_s": medians,
                "ratio_to_peer": {n: m / medians[PEER] for n, m in medians.items()},
                "all_s": times,
                "python": platform.python_version(),
                "machine": platform.platform(),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
