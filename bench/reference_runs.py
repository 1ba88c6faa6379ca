"""Reference runs: the settings learners run as they are, on many seeds, for "Is my run normal?".

Each reference trains its command exactly as `python dqn.py` would (the same flags, a seed
each), and keeps per seed what beyond/reference.py measures of a learner's run: the
evaluation curve (for the blog's default, the greedy return of the learning video's six
snapshots), when it solved, and its final greedy return. The pixel reference is read from
the pixel protocol's seeds of the preset (bench/pixel_protocol.py), whose runs took the
preset's flags; training them again needs a GPU or a day.

Resumable: each finished seed goes to bench/results/reference/<name>.jsonl with the settings
it ran with, and a rerun skips the seeds it has for the same settings. Once every seed is
in, beyond/reference_runs/<name>.json is written: the file dqn.py reads.

    python bench/reference_runs.py blog tuned             # seeds 0-29, one per core
    python bench/reference_runs.py pixels                 # from bench/results/pixel_protocol
    python bench/reference_runs.py --check                # which reference files are stale
    python bench/reference_runs.py --figure               # docs/reference_bands.png, every reference's band
    python bench/reference_runs.py --describe             # each reference's outcome, as docs/normal-run.md gives it
"""

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import intervals  # noqa: E402
import numpy as np  # noqa: E402
import pixel_protocol  # noqa: E402
from ablation import percentile_90, steps_to_solve  # noqa: E402
from judge import REPORT_SEEDS, in_pool, seed_list  # noqa: E402

from beyond.cli import build, choose_weights_and_evaluate, train_with_hooks  # noqa: E402
from beyond.flags import parse_args  # noqa: E402
from beyond.reference import (  # noqa: E402
    REFERENCE_DIR,
    collapse,
    draw_band,
    load_references,
    outcome_of,
    settings_in,
    settings_of,
    stops_early,
)
from beyond.tasks import random_return_of, threshold_of  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "reference"
REFERENCES = {  # name: the flags a learner gives dqn.py
    "blog": [],
    "tuned": ["--preset", "tuned"],
    "pixels": ["--preset", "pixels"],
    "tuned-Acrobot-v1": ["--preset", "tuned", "--env", "Acrobot-v1"],
    "tuned-MountainCar-v0": ["--preset", "tuned", "--env", "MountainCar-v0"],
    "tuned-LunarLander-v3": ["--preset", "tuned", "--env", "LunarLander-v3"],
}


def command_of(flags):
    return " ".join(["python dqn.py", *flags])


def current_settings(name):
    """The settings the reference's flags give today (JSON's plain values)."""
    return json.loads(json.dumps(settings_of(parse_args(REFERENCES[name]))))


def run_seed(task):
    """Train one seed as `python dqn.py <flags> --seed S` does, without files or watching; return its outcome."""
    flags, seed = task
    args = parse_args([*flags, "--seed", str(seed), "--quiet", "--no-show"])
    start = time.perf_counter()
    env, agent = build(args)
    hooks, records = train_with_hooks(agent, env, args)
    choose_weights_and_evaluate(hooks, records, args)
    outcome = outcome_of(agent, hooks.evaluator, records, args, hooks.learning_moments(args.snapshots))
    return dict(seed=seed, **outcome, wall_s=round(time.perf_counter() - start, 1))


def done_seeds(name, settings):
    """The seeds already run for these settings, {seed: result}."""
    path = RESULTS / f"{name}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return {r["result"]["seed"]: r["result"] for r in rows if settings_in(r) == settings}  # older rows: as they ran


def run_reference(name, seeds, jobs):
    """Run the seeds a reference lacks, one per core, appending each as it finishes."""
    settings = current_settings(name)
    missing = [seed for seed in seeds if seed not in done_seeds(name, settings)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    for result in in_pool(run_seed, [(REFERENCES[name], seed) for seed in missing], jobs):
        print(f"{name} seed {result['seed']}: solved at {result['solved_at']}, final {result['final_return']}")
        with open(RESULTS / f"{name}.jsonl", "a") as f:
            f.write(json.dumps(dict(settings=settings, result=result)) + "\n")
    found = done_seeds(name, settings)
    return [found[seed] for seed in seeds]


def pixel_runs():
    """The preset's pixel protocol seeds, as reference runs; each must have run with today's --preset pixels."""
    settings, runs = current_settings("pixels"), []
    for seed in [*pixel_protocol.PROTOCOL_SEEDS, *pixel_protocol.CONFIRM_SEEDS]:
        run_dir = pixel_protocol.OUT / pixel_protocol.PRESET_VARIANT / f"seed{seed}"
        result = json.loads((run_dir / "result.json").read_text())
        ran = json.loads(json.dumps(settings_of(parse_args([*result["flags"], "--seed", str(seed)]))))
        if ran != settings:
            sys.exit(f"pixel protocol seed {seed} ran other settings than --preset pixels: rerun it")
        with open(run_dir / "evals.csv") as f:
            rows = list(csv.DictReader(f))
        periodic = [r for r in rows if r["final"] == "0"]
        passed = [r for r in periodic if r["confirmed_mean"] and float(r["confirmed_mean"]) >= settings["early_stop"]]
        final = [r for r in rows if r["final"] == "1"]
        runs.append(
            dict(
                seed=seed,
                curve=[(int(r["env_steps"]), float(r["mean"])) for r in periodic],
                solved_at=int(passed[0]["env_steps"]) if passed else None,
                final_return=float((passed or final)[0]["mean"]) if passed or final else None,
                env_steps=result["env_steps"],
                wall_s=round(result["run_wall_s"], 1),
            )
        )
    return runs


def write_reference(name, runs, made_by):
    """beyond/reference_runs/<name>.json: the command, its settings, how it was made, and every seed's run."""
    REFERENCE_DIR.mkdir(exist_ok=True)
    reference = dict(
        command=command_of(REFERENCES[name]),
        flags=REFERENCES[name],
        settings=current_settings(name),
        made_by=made_by,
        runs=[{k: r[k] for k in ("seed", "curve", "solved_at", "final_return", "env_steps")} for r in runs],
    )
    path = REFERENCE_DIR / f"{name}.json"
    path.write_text(json.dumps(reference, separators=(",", ":")) + "\n")
    return path


def figure(path=ROOT / "docs" / "reference_bands.png"):
    """One panel per reference file: the band a run of it is drawn against, and each reference run's curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    references = load_references()
    fig, axes = plt.subplots(len(references), 1, figsize=(8, 2.6 * len(references)), squeeze=False)
    for ax, ref in zip(axes[:, 0], references.values(), strict=True):
        for run in ref["runs"]:
            steps, means = zip(*run["curve"], strict=True)
            ax.plot(steps, means, color="tab:blue", lw=0.5, alpha=0.35)
        draw_band(ax, ref).legend(fontsize=8, loc="lower right")
        measure = "the video's snapshots" if not ref["settings"]["eval_every"] else "periodic evaluations"
        ax.set_title(f"`{ref['command']}`: {len(ref['runs'])} seeds, greedy return of {measure}", fontsize=10)
        ax.set_ylabel("greedy return")
    axes[-1, 0].set_xlabel("env steps")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def outcome_words(reference):
    """How a reference's runs ended, as the normal-run table says it, with 95% bootstrap intervals."""
    settings, runs = reference["settings"], reference["runs"]
    env_id = settings["env"] or "CartPole-v1"
    threshold, random_level = threshold_of(env_id), random_return_of(env_id)
    collapses = sum(  # a run that solved stopped on weights that held: a fall before that is not a collapse
        r["solved_at"] is None and collapse(r["curve"], threshold, random_level, False, []) is not None for r in runs
    )
    if stops_early(settings):
        steps = steps_to_solve(runs)
        summary = intervals.summarize(steps)
        text = (
            f"solved {sum(np.isfinite(steps))} of {len(runs)}; solved at a median of "
            f"{intervals.fmt(summary['median'])} env steps{intervals.fmt_interval(*summary['median_ci'])}, "
            f"90th percentile {intervals.fmt(percentile_90(steps))}"
        )
    else:
        finals = [r["final_return"] for r in runs]
        summary = intervals.summarize(finals)
        text = (
            f"final greedy return: median {intervals.fmt(summary['median'], digits=1)}"
            f"{intervals.fmt_interval(*summary['median_ci'], digits=1)}, "
            f"{sum(f >= threshold for f in finals)} of {len(runs)} at {threshold:g} or more; lowest {min(finals):.1f}"
        )
    return f"{text}; a collapse on {collapses}"


def stale():
    """The reference files whose settings are no longer what their flags give."""
    return [
        path.stem
        for path in sorted(REFERENCE_DIR.glob("*.json"))
        if settings_in(json.loads(path.read_text())) != current_settings(path.stem)
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help=f"references to make: {', '.join(REFERENCES)}")
    p.add_argument("--seeds", type=seed_list, default=list(REPORT_SEEDS), help="state presets' seeds (default 0-29)")
    p.add_argument("--jobs", type=int, default=os.cpu_count(), help="seeds at a time, one worker process each")
    p.add_argument("--check", action="store_true", help="list the stale reference files and exit 1 if any")
    p.add_argument("--figure", action="store_true", help="then draw docs/reference_bands.png from every reference")
    p.add_argument("--describe", action="store_true", help="then print how each reference's runs ended")
    args = p.parse_args()
    unknown = set(args.names) - set(REFERENCES)
    if unknown:
        p.error(f"no such reference: {', '.join(sorted(unknown))} (choose from {', '.join(REFERENCES)})")
    if args.check:
        names = stale()
        print("\n".join(f"stale: {n} (python bench/reference_runs.py {n})" for n in names) or "all current")
        sys.exit(1 if names else 0)
    for name in args.names:
        if name == "pixels":
            runs, made_by = pixel_runs(), "python bench/reference_runs.py pixels (bench/results/pixel_protocol)"
        else:
            runs = run_reference(name, args.seeds, args.jobs)
            made_by = f"python bench/reference_runs.py {name} --seeds {args.seeds[0]}-{args.seeds[-1]}"
        print(f"wrote {write_reference(name, runs, made_by)} ({len(runs)} runs)")
    if args.figure:
        print(f"wrote {figure()}")
    if args.describe:
        for name, reference in load_references().items():
            print(f"{name}: {outcome_words(reference)}")


if __name__ == "__main__":
    main()
