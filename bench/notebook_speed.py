"""Does the notebook train as fast as the script? dqn.ipynb's training cell against `python dqn.py`.

Runs the notebook top to bottom on a fresh kernel (the blog's 300 episodes) and
`python dqn.py --seed S --no-show` (its defaults: the same 300 episodes), interleaved A B
A B, each in a fresh process. Both report env steps per second over the whole of
training, from the same train() records: the notebook in the line that replaces its
progress bar, the script in its "trained ..." line. The notebook runs through papermill,
or with --browser as a learner runs it: Run All in JupyterLab, in Debian's chromium
(bench/jupyter_lab.py), which also records whether the "Is this run normal?" cell showed
its plot, and the CPU seconds that chromium and the kernel used while it ran.

    python bench/notebook_speed.py               # 3 repeats, seed 0, papermill
    python bench/notebook_speed.py --repeats 5   # and the median ratio's 95% bootstrap interval
    python bench/notebook_speed.py --repeats 5 --browser

Writes bench/results/notebook_speed.md (notebook_speed_browser.md with --browser).
"""

import argparse
import contextlib
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
import jupyter_lab
from speed import cpu_model

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
REFERENCE_CELL = jupyter_lab.cell_index(ROOT / "dqn.ipynb", "place_run(")  # "Is this run normal?"
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


def browser_rate(seed, browser):
    """(env steps/s, env steps, torch threads, images the reference cell shows, chromium and kernel CPU s)."""
    with tempfile.TemporaryDirectory() as folder:
        notebook = (ROOT / "dqn.ipynb").read_text(encoding="utf-8")
        (Path(folder) / "dqn.ipynb").write_text(jupyter_lab.with_settings(notebook, "seed = 0", f"seed = {seed}"))
        with jupyter_lab.lab_server(folder) as lab:
            page = jupyter_lab.lab_page(browser)
            jupyter_lab.open_notebook(page, lab, "dqn.ipynb")
            chromium_s, kernel_s = -cpu_seconds("chrom"), -cpu_seconds("ipykernel")
            jupyter_lab.run_all(page, timeout=3600)
            chromium_s, kernel_s = chromium_s + cpu_seconds("chrom"), kernel_s + cpu_seconds("ipykernel")
            outputs = jupyter_lab.cell_outputs(page)
            images = len(jupyter_lab.shown_images(page, REFERENCE_CELL))
            page.close()
    texts = ["".join(o.get("data", {}).get("text/plain", "")) for cell in outputs for o in cell]
    line = next(t for t in texts if "torch threads" in t)
    threads = int(line.rsplit("torch threads: ", 1)[1].split(")")[0])
    return (*parse(line), threads, images, chromium_s, kernel_s)


def cpu_seconds(name):
    """User and system CPU seconds so far of the processes whose command line contains name (Linux's /proc)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if name in (proc / "cmdline").read_bytes().decode(errors="replace"):
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:  # the process ended meanwhile
            continue
    return total


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
    p.add_argument("--browser", action="store_true", help="Run All in JupyterLab in chromium instead of papermill")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()

    with contextlib.ExitStack() as stack:
        browser = stack.enter_context(jupyter_lab.chromium()) if args.browser else None
        rows = [one_pair(args.seed, browser, r) for r in range(args.repeats)]
    table = report(rows, args)
    print("\n" + table)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"notebook_speed{'_browser' if args.browser else ''}.md").write_text(table + "\n")


def one_pair(seed, browser, r):
    """The notebook, then the script at once: their rates and what else the repeat measured."""
    start = time.perf_counter()
    if browser:
        nb_rate, nb_steps, threads, images, chromium_s, kernel_s = browser_rate(seed, browser)
    else:
        (nb_rate, nb_steps, threads), images, chromium_s, kernel_s = notebook_rate(seed), None, None, None
    notebook_wall = time.perf_counter() - start
    py_rate, py_steps = script_rate(seed)
    if nb_steps != py_steps:
        raise SystemExit(f"not the same run: the notebook took {nb_steps} env steps, the script {py_steps}")
    print(
        f"repeat {r + 1}: notebook {nb_rate:.0f}, script {py_rate:.0f} env steps/s ({nb_steps} env steps)", flush=True
    )
    return dict(notebook=nb_rate, script=py_rate, ratio=nb_rate / py_rate, steps=nb_steps, threads=threads,
                images=images, chromium=chromium_s, kernel=kernel_s, wall=notebook_wall)  # fmt: skip


def report(rows, args):
    import torch

    column = lambda key, fmt="{:,.0f}": ", ".join(fmt.format(row[key]) for row in rows)  # noqa: E731
    median = lambda key: statistics.median(row[key] for row in rows)  # noqa: E731
    ratios = [row["ratio"] for row in rows]
    how = "Run All in JupyterLab in Debian's chromium" if args.browser else "papermill"
    lines = [
        f"Machine: {cpu_model()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, torch {torch.__version__}.",
        f"Command: `python bench/notebook_speed.py --repeats {args.repeats} --seed {args.seed}"
        f"{' --browser' if args.browser else ''}` ({time.strftime('%Y-%m-%d')}); the notebook by {how}; "
        f"{rows[0]['steps']:,} env steps per run; torch threads in the notebook's kernel: {rows[0]['threads']}.",
        "",
        "| | env steps/s over training (median) | runs |",
        "|---|---|---|",
        f"| dqn.ipynb, training cell | {median('notebook'):,.0f} | {column('notebook')} |",
        f"| python dqn.py | {median('script'):,.0f} | {column('script')} |",
        "",
        f"Median of the per-repeat ratios notebook / script: **{statistics.median(ratios):.2f}** "
        f"{intervals.fmt_interval(*intervals.summarize(ratios)['median_ci'], digits=2).strip()} "
        f"(95% bootstrap interval; {', '.join(f'{v:.2f}' for v in ratios)})",
    ]
    if args.browser:
        lines += [
            "",
            f"While Run All ran ({column('wall', '{:.0f}')} s), chromium used {column('chromium', '{:.1f}')} CPU s "
            f"and the kernel {column('kernel', '{:.1f}')}. "
            f'Images shown by the "Is this run normal?" cell: {column("images", "{}")}.',
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
