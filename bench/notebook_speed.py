"""Does the notebook train as fast as the script? dqn.ipynb's training cell against `python dqn.py`.

Runs the notebook top to bottom on a fresh kernel (papermill, the blog's 300 episodes) and
`python dqn.py --seed S --no-show` (its defaults: the same 300 episodes), interleaved A B
A B, each in a fresh process. Both report env steps per second over the whole of
training, from the same train() records: the notebook in the line that replaces its
progress bar, the script in its "trained ..." line.

    python bench/notebook_speed.py               # 3 repeats, seed 0
    python bench/notebook_speed.py --repeats 5   # and the median ratio's 95% bootstrap interval

Writes bench/results/notebook_speed.md.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import intervals
from speed import cpu_model

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RATE = re.compile(r"([\d,]+) env steps.*? in ([\d.]+) s \(([\d,]+) (?:env )?steps/s")


def headless():
    return {**os.environ, "SDL_VIDEODRIVER": "dummy", "MPLBACKEND": "Agg", "DISPLAY": "", "WAYLAND_DISPLAY": ""}


def notebook_rate(seed):
    """(env steps/s, env steps, torch threads) of dqn.ipynb's training cell."""
    with tempfile.TemporaryDirectory() as out:
        executed = Path(out) / "run.ipynb"
        command = [sys.executable, "-m", "papermill", str(ROOT / "dqn.ipynb"), str(executed), "--cwd", str(ROOT)]
        command += ["-k", "python3", "-p", "seed", str(seed), "-p", "out_dir", out]
        subprocess.run(command, env=headless(), capture_output=True, text=True, check=True)
        texts = [
            "".join(o.get("data", {}).get("text/plain", ""))
            for cell in json.loads(executed.read_text())["cells"]
            for o in cell.get("outputs", [])
        ]
    line = next(t for t in texts if "torch threads" in t)
    return parse(line) + (int(line.rsplit("torch threads: ", 1)[1].split(")")[0]),)


def script_rate(seed):
    """(env steps/s, env steps) of `python dqn.py --seed seed --no-show`."""
    with tempfile.TemporaryDirectory() as runs:
        command = [sys.executable, str(ROOT / "dqn.py"), "--seed", str(seed), "--no-show", "--runs-dir", runs]
        out = subprocess.run(command, env=headless(), capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return parse(next(line for line in out.splitlines() if line.startswith("trained ")))


def parse(line):
    """(env steps/s, env steps) from a "trained ..." line: recomputed from steps and seconds, not the rounded rate."""
    steps, seconds, _ = RATE.search(line).groups()
    steps = int(steps.replace(",", ""))
    return steps / float(seconds), steps


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()

    notebook, script, ratios = [], [], []
    for r in range(args.repeats):
        nb_rate, nb_steps, threads = notebook_rate(args.seed)
        py_rate, py_steps = script_rate(args.seed)
        if nb_steps != py_steps:
            raise SystemExit(f"not the same run: the notebook took {nb_steps} env steps, the script {py_steps}")
        notebook.append(nb_rate)
        script.append(py_rate)
        ratios.append(nb_rate / py_rate)
        print(f"repeat {r + 1}: notebook {nb_rate:.0f}, script {py_rate:.0f} env steps/s ({nb_steps} env steps)")

    import torch

    runs = lambda rates: ", ".join(f"{v:,.0f}" for v in rates)  # noqa: E731
    lines = [
        f"Machine: {cpu_model()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, torch {torch.__version__}.",
        f"Command: `python bench/notebook_speed.py --repeats {args.repeats} --seed {args.seed}` "
        f"({time.strftime('%Y-%m-%d')}); {py_steps:,} env steps per run; "
        f"torch threads in the notebook's kernel: {threads}.",
        "",
        "| | env steps/s over training (median) | runs |",
        "|---|---|---|",
        f"| dqn.ipynb, training cell | {statistics.median(notebook):,.0f} | {runs(notebook)} |",
        f"| python dqn.py | {statistics.median(script):,.0f} | {runs(script)} |",
        "",
        f"Median of the per-repeat ratios notebook / script: **{statistics.median(ratios):.2f}** "
        f"{intervals.fmt_interval(*intervals.summarize(ratios)['median_ci'], digits=2).strip()} "
        f"(95% bootstrap interval; {', '.join(f'{v:.2f}' for v in ratios)})",
    ]
    table = "\n".join(lines)
    print("\n" + table)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "notebook_speed.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
