"""Regenerate the README's figures and its "What to expect" numbers from one real run.

    python bench/figures.py            # python dqn.py --seed 0, then the figures and numbers

Writes docs/rewards.png (the run's plot), docs/agent.gif (the trained agent, greedy, one
episode) and bench/results/default_run.md (wall time, steps and rewards of the run).
"""

import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(seed=0):
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as runs:
        start = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "dqn.py"),
                "--seed",
                str(seed),
                "--no-show",
                "--quiet",
                "--watch",
                "1",
                "--video",
                str(docs / "agent.gif"),
                "--plot",
                str(docs / "rewards.png"),
                "--runs-dir",
                runs,
                "--run-name",
                "readme",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        wall = time.perf_counter() - start
        with open(Path(runs) / "readme" / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
    last = rows[-50:]
    summary = next(line for line in out.splitlines() if line.startswith("trained "))
    evaluation = next(line for line in out.splitlines() if line.startswith("greedy evaluation"))
    first_learning = next(int(r["episode"]) for r in rows if r["learning"] == "True")
    text = "\n".join(
        [
            f"`python dqn.py --seed {seed}` on this machine ({time.strftime('%Y-%m-%d')}):",
            "",
            f"- `{summary}`",
            f"- `{evaluation}`",
            f"- whole command, including evaluation, saving and recording: {wall:.1f} s",
            f"- learning started in episode {first_learning}",
            f"- last 50 episodes: mean {statistics.mean(int(r['steps']) for r in last):.0f} steps "
            f"(median {statistics.median(int(r['steps']) for r in last):.0f}), "
            f"mean shaped reward {statistics.mean(float(r['reward']) for r in last):.1f} "
            f"(min {min(float(r['reward']) for r in last):.1f}, max {max(float(r['reward']) for r in last):.1f})",
            "",
        ]
    )
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "default_run.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
