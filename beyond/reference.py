"""Is my run normal? A run placed among reference runs of the same settings, and what went wrong named.

For each setting a learner runs as it is (python dqn.py, --preset tuned, --preset pixels,
--preset tuned on each other task), bench/reference_runs.py trained it on many seeds and
kept, per seed, its evaluation curve and its outcome, in reference_runs/<name>.json. A run
whose settings equal one of them, seed aside, is placed among them in one line; its plot
draws their band. Whatever its settings, its own records are checked for the known
failures (collapse, value blow-up, never learned), each named in one line with the
section of docs/normal-run.md that explains it.

The blog's default run evaluates only at its end, so its curve, and its references', is
the greedy return of the copies of eval_net that the learning video plays
(SNAPSHOT_EPISODES episodes each).
"""

import json
import os
from pathlib import Path

import numpy as np

from beyond.averaged import policy_net
from beyond.config import IDENTITY_SETTINGS, SETTINGS_ADDED_SINCE
from beyond.evaluation import eval_seed, evaluate
from beyond.hooks import weights_kept
from beyond.tasks import random_return_of, solved_threshold
from beyond.values import append_panel

# the shipped reference runs; DQN_REFERENCE_RUNS names another folder of them (bench/reference_runs.py makes them)
REFERENCE_DIR = Path(os.environ.get("DQN_REFERENCE_RUNS") or Path(__file__).resolve().parent / "reference_runs")
DOCS = "docs/normal-run.md"
NO_REFERENCE = f"no reference runs for these settings: nothing to place this run among ({DOCS} lists those there are)"
EVAL_PANEL_LABEL = "greedy eval return"  # dqn.plot's evaluation panel
SNAPSHOT_EPISODES = 10


def settings_of(args):
    """The run's settings that a reference must share (a dict of plain values, as JSON keeps them)."""
    return {name: getattr(args, name) for name in IDENTITY_SETTINGS}


def load_references(folder=None):
    """Every reference file in folder (default REFERENCE_DIR), {name: its dict}."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(Path(folder or REFERENCE_DIR).glob("*.json"))}


def settings_in(ref):
    """A reference's settings; one made before a setting existed ran at that setting's old value."""
    return {**SETTINGS_ADDED_SINCE, **ref["settings"]}


def matching(args, folder=None):
    """The reference whose settings equal the run's, or None."""
    settings = json.loads(json.dumps(settings_of(args)))  # tuples and numpy scalars as JSON has them
    return next((ref for ref in load_references(folder).values() if settings_in(ref) == settings), None)


# ---------------------------------------------------------------------------------------
# A run's curve and outcome, measured the same way for the learner's run and the references
# ---------------------------------------------------------------------------------------
def outcome_of(agent, evaluator, records, args, moments):
    """The run's curve [(env_steps, greedy mean)], when it solved, and its final greedy return.

    evaluator: the run's hooks.Evaluator. The curve is the periodic evaluations, or, for a
    run without them, the evaluations of moments (the learning video's copies of eval_net).
    """
    evals, solved = evaluator.evals, evaluator.solved
    periodic = [(e["env_steps"], e["mean"]) for e in evals if not e.get("final")]
    final = next((e for e in reversed(evals) if e.get("final")), solved[0] if solved else None)
    return dict(
        curve=periodic or snapshot_curve(agent, moments, args),
        solved_at=solved[0]["env_steps"] if solved else None,
        final_return=final["mean"] if final else None,
        env_steps=records[-1]["env_steps"] if records else 0,
    )


def snapshot_curve(agent, moments, args):
    """The greedy mean of each of moments' weights, on SNAPSHOT_EPISODES episodes of the evaluation env."""
    curve = []
    with weights_kept(policy_net(agent)):
        for moment in moments:
            policy_net(agent).load_state_dict(moment["weights"])
            result = evaluate(agent, SNAPSHOT_EPISODES, args.eval_env, seed=eval_seed(args.seed))
            curve.append((moment["env_steps"], result["mean"]))
    return curve


# ---------------------------------------------------------------------------------------
# The run among its references
# ---------------------------------------------------------------------------------------
BAND_LABELS = dict(
    band="{n} reference runs: median, 10-90%",
    run="this run",
    y="greedy return of\nthe video's copies",  # two lines: one is taller than the panel
    x="env steps",
)


PLACEMENT = dict(
    final=(
        "final greedy return {final:.1f}: above {below}{tied} of {n} reference runs of `{command}` "
        "(median {median:.1f})"
    ),
    tied=" and level with {tied}",  # a perfect run ties every other perfect one: the line says so
    no_reference=NO_REFERENCE,
)


def place_run(agent, records, moments, flags, seed, words=PLACEMENT, labels=None):
    """For the notebook: a run of the blog's train() with dqn.py's flags, placed among its references.

    Returns the placement line and the figure of its snapshots over the band (None without a reference).
    """
    from beyond.flags import parse_args

    args = parse_args([*flags, "--seed", str(seed)])
    reference = matching(args)
    if reference is None:
        return words["no_reference"], None
    final = evaluate(agent, args.eval_episodes, args.eval_env, seed=eval_seed(seed))["mean"]
    curve = snapshot_curve(agent, moments, args)
    outcome = dict(curve=curve, solved_at=None, final_return=final, env_steps=records[-1]["env_steps"])
    return placement(outcome, reference, words), reference_figure(curve, reference, labels or BAND_LABELS)


def placement(outcome, reference, words=PLACEMENT):
    """One line that places the run among the reference runs (solved at, or final greedy return)."""
    runs, command = reference["runs"], reference["command"]
    if stops_early(reference["settings"]):
        solved = sorted(r["solved_at"] for r in runs if r["solved_at"] is not None)
        median = np.median([r["solved_at"] if r["solved_at"] is not None else np.inf for r in runs])
        typical = f"median {median:,.0f}" if np.isfinite(median) else "most did not solve"
        if outcome["solved_at"] is None:
            return (
                f"not solved in {outcome['env_steps']:,} env steps; {len(solved)} of {len(runs)} reference runs "
                f"of `{command}` solved ({typical})"
            )
        faster = sum(s < outcome["solved_at"] for s in solved)
        return (
            f"solved at {outcome['solved_at']:,} env steps; {faster} of {len(runs)} reference runs of `{command}` "
            f"were faster ({typical})"
        )
    if outcome["final_return"] is None:
        return f"no final evaluation to place among the reference runs of `{command}`"
    finals = [r["final_return"] for r in runs]
    final, median = outcome["final_return"], float(np.median(finals))
    tied = sum(f == final for f in finals)
    return words["final"].format(
        final=final,
        below=sum(f < final for f in finals),
        tied=words["tied"].format(tied=tied) if tied else "",
        n=len(runs),
        command=command,
        median=median,
    )


def stops_early(settings):
    """Whether runs of these settings stop at a confirmed pass (and are placed by when they solved)."""
    return settings["early_stop"] is not None and not settings["no_early_stop"]


def band(reference, grid=None):
    """(env steps, 10th percentile, median, 90th percentile) of the reference curves.

    A run that stopped (solved, or out of episodes) keeps its last value to the end, so that
    the band at a late step counts every run, not only the slow ones still training.
    """
    curves = [np.asarray(r["curve"], float) for r in reference["runs"] if r["curve"]]
    if grid is None:
        grid = np.unique(np.concatenate([c[:, 0] for c in curves]))
    values = np.array([np.interp(grid, c[:, 0], c[:, 1], left=np.nan) for c in curves])
    ok = ~np.isnan(values).all(axis=0)
    low, median, high = np.nanpercentile(values[:, ok], [10, 50, 90], axis=0)
    return grid[ok], low, median, high


def draw_band(ax, reference, labels=BAND_LABELS):
    """The reference band (10th to 90th percentile, and the median) behind whatever ax shows against env steps."""
    steps, low, median, high = band(reference)
    label = labels["band"].format(n=len(reference["runs"]))
    ax.fill_between(steps, low, high, color="grey", alpha=0.3, lw=0, zorder=0, label=label)
    ax.plot(steps, median, color="grey", lw=1, zorder=0)
    return ax


def add_reference_band(figure, reference, outcome, labels=BAND_LABELS):
    """The band behind the plot's evaluation panel; a run without one gets a panel of its snapshots' curve."""
    panel = next((ax for ax in figure.axes if ax.get_ylabel() == EVAL_PANEL_LABEL), None)
    if panel is None:
        if not outcome["curve"]:
            return figure
        draw_run_over_band(append_panel(figure), outcome["curve"], reference, labels)
    else:
        draw_band(panel, reference, labels).legend(fontsize=8, loc="best")
    figure.tight_layout()
    return figure


def reference_figure(curve, reference, labels=BAND_LABELS):
    """A figure of its own: the run's curve over the reference band (the notebook's)."""
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(8, 3))
    draw_run_over_band(ax, curve, reference, labels)
    figure.tight_layout()
    return figure


def draw_run_over_band(ax, curve, reference, labels=BAND_LABELS):
    """On ax, the run's curve [(env_steps, greedy mean)] in front of the reference band, labelled."""
    if curve:
        steps, means = zip(*curve, strict=True)
        ax.plot(steps, means, "o-", color="tab:green", label=labels["run"])
    draw_band(ax, reference, labels).legend(fontsize=8, loc="best")
    ax.set_xlabel(labels["x"])
    ax.set_ylabel(labels["y"])
    return ax


# ---------------------------------------------------------------------------------------
# What went wrong, named
# ---------------------------------------------------------------------------------------
def diagnoses(outcome, evals, records, args, agent, reference=None):
    """One line for each known failure the run's records show, with the docs section that explains it."""
    threshold = solved_threshold(args)
    random_level = random_return_of(args.eval_env)
    found = [
        never_learned(records, agent, args, outcome["curve"], threshold, random_level),
        # a run that solved stopped on weights that passed and held on fresh episodes: a fall after an
        # earlier pass that did not hold is not a collapse of what it kept
        None
        if outcome.get("solved_at") is not None
        else collapse(outcome["curve"], threshold, random_level, args.keep_best, evals),
        value_blow_up(evals),
        behind(outcome["curve"], reference) if reference else None,
    ]
    return [line for line in found if line]


def never_learned(records, agent, args, curve, threshold, random_level):
    """Learning never started within the run, or the greedy return never rose above the random policy's."""
    if records and not agent.learn_step_counter:
        waits = agent.learning_starts  # the agent's: the memory's capacity where no flag gave it
        return (
            f"never learned: learning starts after {waits:,} transitions and the run stopped at "
            f"{records[-1]['env_steps']:,}; give it more episodes or a smaller --learning-starts ({DOCS}#never-learned)"
        )
    known = curve and threshold is not None and random_level is not None
    if known and max(mean for _, mean in curve) <= random_level + 0.1 * (threshold - random_level):
        measured = f"; --preset tuned --env {args.env} is measured to learn it"
        measured = "" if args.preset in ("tuned", "pixels") else measured
        return (
            f"never learned: every greedy evaluation stayed near the random policy's {random_level:g}"
            f"{measured} ({DOCS}#never-learned)"
        )
    return None


def collapse(curve, threshold, random_level, keep_best, evals):
    """A greedy evaluation passed, and a later one fell more than halfway back to the random policy's level."""
    if threshold is None or random_level is None:
        return None
    passed = next((i for i, (_, mean) in enumerate(curve) if mean >= threshold), None)
    if passed is None:
        return None
    floor = random_level + 0.5 * (threshold - random_level)
    fallen = [(steps, mean) for steps, mean in curve[passed + 1 :] if mean < floor]
    if not fallen:
        return None
    (pass_steps, pass_mean), (fall_steps, fall_mean) = curve[passed], fallen[0]
    line = (
        f"collapse: greedy return {pass_mean:.1f} at {pass_steps:,} env steps, then {fall_mean:.1f} at "
        f"{fall_steps:,} ({DOCS}#collapse)"
    )
    final = next((e for e in reversed(evals) if e.get("final")), None)
    if keep_best and final and final["mean"] >= threshold:
        line += "; --keep-best kept the weights that passed"
    return line


def value_blow_up(evals, growth=3):
    """The net's value estimate far above the true return (more than twice it) and its lead growing."""
    checked = [e for e in evals if "q_estimate" in e and not e.get("final")]
    if len(checked) < growth:
        return None
    gaps = [e["q_estimate"] - e["true_return"] for e in checked[-growth:]]
    last = checked[-1]
    if gaps[-1] > max(abs(last["true_return"]), 1.0) and all(a < b for a, b in zip(gaps[:-1], gaps[1:], strict=True)):
        return (
            f"value blow-up: the net believes {last['q_estimate']:.1f} where its policy gets "
            f"{last['true_return']:.1f}, and the gap grew over the last {growth} evaluations ({DOCS}#value-blow-up)"
        )
    return None


def behind(curve, reference):
    """The run's last evaluation below the 10th percentile of its reference runs at the same env steps."""
    if not curve:
        return None
    steps, mean = curve[-1]
    grid, low, _, _ = band(reference, np.array([steps], float))
    if len(grid) and mean < low[0]:
        return (
            f"behind the reference: greedy return {mean:.1f} at {steps:,} env steps, below the 10th percentile "
            f"of the reference runs there ({low[0]:.1f}) ({DOCS}#behind-the-reference)"
        )
    return None
