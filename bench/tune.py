"""Choose --preset tuned's values with an Optuna study, on the judge's task (bench/judge.py).

Each trial picks hyperparameters and extension flags, then trains on the tuning seeds
(1000 and up: apart from the report seeds) within a budget of env steps. Its value is the
median (or, with --objective p90, the 90th percentile, which a slow tail cannot hide
from; with --objective mean, the mean, which feels the typical seed and the tail at once)
over those seeds of the env steps to solve, an unsolved seed counting as twice the budget.
After each seed the trial reports its running mean, so that a trial already worse than
most earlier ones at that point is pruned; so is a trial with an unsolved seed, since the
preset has to solve every seed.

The study lives in a SQLite file under bench/results by default: no server, and a study
stopped halfway resumes where it was. --storage takes any database URL Optuna accepts
(PostgreSQL, MySQL), so that workers on several machines join one study; --n-jobs starts
that many worker processes here. --n-trials is the study's total of finished trials,
however many workers share it. Each running trial beats a heartbeat into the database:
a trial whose worker died (killed, or its machine lost) is marked failed once its
heartbeat is --heartbeat x 2 seconds old, by the next worker to start a trial, and its
values are tried again. A run with one worker from an empty study, with the same
--sampler-seed and --n-trials, proposes the same trials as before and gets the same
results (each trial's training is seeded). A resumed study continues with a seed of its
own. With several workers, which trial sees which results depends on timing, so the
trials differ from run to run.

    python bench/tune.py --n-trials 150 --n-jobs 2          # resumes bench/results/tune.db
    python bench/tune.py --storage postgresql://user@host/db --study-name tuned --n-trials 300   # on each machine
    python bench/tune.py --env LunarLander-v3 --prune-curve     # long seeds: stop a trial plainly behind mid-seed
    python bench/tune.py --env MountainCar-v0 --prune-curve --enqueue n_step=3   # and try a probe's change second
    python bench/tune.py --env MountainCar-v0 --report          # the tables of the study as it stands, no trial
    python bench/tune.py --env LunarLander-v3 --objective p90 --start-from-best --out DIR   # a 2nd study from the best
    python bench/tune.py --env LunarLander-v3 --objective mean --start-from-preset --out DIR   # around the preset
    python bench/tune.py --env LunarLander-v3 --drop-waiting --enqueue dueling=true --out DIR   # next, not the queue

Writes bench/results/tune_trials.csv (every trial) and tune_best.json (the chosen values).
"""

import argparse
import csv
import json
import multiprocessing
import os
import socket
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
from judge import judge, seed_list
from optuna.trial import TrialState

from beyond.config import SETTINGS
from beyond.tasks import RL_ZOO_START, TASKS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_STORAGE = f"sqlite:///{RESULTS / 'tune.db'}"


SPACE = dict(  # the choices of each categorical value; a study's first trial adds its own values to them
    batch_size=[32, 64, 128],
    hidden=[64, 128, 256],
    gamma=[0.95, 0.98, 0.99],
    target_replace_iter=[25, 50, 100, 200, 500],
    learning_starts=[250, 500, 1000, 2000],
    memory_capacity=[5000, 20000, 50000],
    epsilon_end=[0.9, 0.95, 0.98, 1.0],
    epsilon_steps=[1000, 2500, 5000, 10000],
    double=[False, True],
    huber=[False, True],
    grad_clip=[0.0, 10.0],
    n_step=[1, 2, 3, 5],
    dueling=[False, True],
    prioritized=[False, True],
    replay_ratio=[1, 2, 4],
)
TRAIN_EVERY = [1, 4, 16]  # searched only where the first trial sets it (rl-zoo's MountainCar learns every 16 steps)
HIDDEN_LAYERS = [1, 2]  # the same: where the first trial has SB3's two hidden layers
# the same again: where the first trial sets lr_steps (--start-from-preset: 0, no schedule); lr_end only with one
LR_STEPS = [0, 50_000, 100_000, 200_000]
LR_END = [1e-5, 1e-4, 3e-4]
PER_ALPHA = [0.4, 0.6, 0.8]  # only with prioritized replay
AVERAGED_POLICY = [0.0, 0.0003, 0.001, 0.003]  # only where the first trial or --enqueue sets it
# what --enqueue may set, each to one of its choices (lr: a range of its own)
ENQUEUE_CHOICES = dict(
    SPACE,
    train_every=TRAIN_EVERY,
    hidden_layers=HIDDEN_LAYERS,
    lr_steps=LR_STEPS,
    lr_end=LR_END,
    per_alpha=PER_ALPHA,
    averaged_policy=AVERAGED_POLICY,
)


def suggest(trial, first=None):
    """The trial's values: dqn.py's own settings and the extension flags, by flag name.

    first: the study's first trial, whose values join the choices (an env's rl-zoo values
    lie partly outside CartPole's space).
    """
    first = first or {}

    def choices(name, base):
        extra = [first[name]] if name in first and first[name] not in base else []
        return sorted(base + extra)

    values = dict(lr=trial.suggest_float("lr", 3e-4, 1e-2, log=True))
    if "hidden_layers" in first:
        values["hidden_layers"] = trial.suggest_categorical("hidden_layers", choices("hidden_layers", HIDDEN_LAYERS))
    for name, base in SPACE.items():
        if name == "dueling" and values.get("hidden_layers", 1) > 1 and name not in enqueued(trial):
            values[name] = False  # drawn on the one-layer net only, as the studies ran; --enqueue may set it
            continue
        values[name] = trial.suggest_categorical(name, choices(name, base))
    if "train_every" in first:
        values["train_every"] = trial.suggest_categorical("train_every", choices("train_every", TRAIN_EVERY))
    if values["prioritized"]:
        values["per_alpha"] = trial.suggest_categorical("per_alpha", PER_ALPHA)
    if "lr_steps" in first:
        values["lr_steps"] = trial.suggest_categorical("lr_steps", choices("lr_steps", LR_STEPS))
    if values.get("lr_steps"):
        values["lr_end"] = trial.suggest_categorical("lr_end", choices("lr_end", LR_END))
    if "averaged_policy" in first or "averaged_policy" in enqueued(trial):
        averaged = choices("averaged_policy", AVERAGED_POLICY)
        values["averaged_policy"] = trial.suggest_categorical("averaged_policy", averaged)
    return values


def enqueued(trial):
    """The values --enqueue fixed for this trial (none for one the sampler draws)."""
    return trial.study.get_trials(deepcopy=False)[trial.number].system_attrs.get("fixed_params", {})


def as_flags(values):
    """dqn.py flags for a dict of values, on top of the standard task's terminal mask and schedule start."""
    flags = ["--terminal-mask", "--epsilon-start", "0"]
    for name, value in values.items():
        flag = SETTINGS[name].option
        if isinstance(value, bool):
            flags += [flag] if value else []
        elif name in ("grad_clip", "lr_steps"):  # 0: off
            flags += [flag, str(value)] if value else []
        else:
            flags += [flag, str(value)]
    return flags


class StudyFull(Exception):
    """The study already holds --n-trials trials, finished or running: this one is not needed."""


def trials_before(trial, study):
    """The study's trials numbered before this one that count towards --n-trials (all but failed ones)."""
    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    return [t for t in study.get_trials(deepcopy=False, states=counted) if t.number < trial.number]


OBJECTIVES = {  # what a trial's per-seed env steps to solve come to
    "median": statistics.median,
    "mean": statistics.mean,  # the body and the tail at once: a rank against another agent's seeds feels both
    "p90": lambda steps: float(np.percentile(steps, 90)),  # the slow tail a learner's own seed may meet
}


# --prune-curve's reports: at CURVE_STEPS + env steps, then the per-seed ones at SEED_STEPS + i, so that each
# comes after the last (the pruner looks at a trial's last step) and each kind is compared with its own kind
CURVE_STEPS, SEED_STEPS = 10**9, 2 * 10**9


def curve_pruning(trial):
    """on_eval for the first tuning seed: report -(eval mean) at each evaluation, and stop a trial behind most.

    The pruner compares a trial with the others at the same env step only, so a trial
    whose first seed is plainly behind the study's earlier ones there is stopped at once,
    instead of after the whole seed's budget.
    """

    def on_eval(env_steps, mean):
        trial.report(-mean, CURVE_STEPS + env_steps)
        if trial.should_prune():
            raise optuna.TrialPruned()

    return on_eval


class LatestMedianPruner(optuna.pruners.BasePruner):
    """Stop a trial whose latest running mean is worse than the finished trials' median at that seed.

    Optuna's MedianPruner weighs a trial's best report so far, so a trial whose first seed
    was fast would never be stopped by the slow seeds after it. The first seed's evaluation
    curve (--prune-curve) keeps MedianPruner's rule: a noisy curve is behind only if it has
    never been ahead.
    """

    def __init__(self, n_startup_trials=5):
        self.n_startup_trials = n_startup_trials
        self.curve = optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=0)

    def prune(self, study, trial):
        step = trial.last_step
        if step is None:
            return False
        if CURVE_STEPS <= step < SEED_STEPS:
            return self.curve.prune(study, trial)
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        there = [t.intermediate_values[step] for t in finished if step in t.intermediate_values]
        if len(finished) < self.n_startup_trials or not there:
            return False
        return trial.intermediate_values[step] > statistics.median(there)


def objective(
    trial, seeds, budget, n_trials, summary="median", env_id="CartPole-v1", first=None, curve=False, warmup=1
):
    """Env steps to solve over the tuning seeds, summarised (unsolved: 2 x budget); pruned early when poor.

    curve: also prune on the first seed's evaluation curve (curve_pruning).
    warmup: the seeds a trial finishes before the pruner may stop it for being behind (a seed it
    does not solve stops it at once): one seed's luck decides less.
    Trial numbers come from the database in order, so two workers that start a trial at
    the same moment agree on which of them is one too many: that one ends as failed.
    """
    if len(trials_before(trial, trial.study)) >= n_trials:
        trial.set_user_attr("surplus", "the study already had --n-trials trials")
        raise StudyFull()
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    flags = as_flags(suggest(trial, first))
    steps = []
    for i, seed in enumerate(seeds):
        result = judge(flags, seed, budget, env_id=env_id, on_eval=curve_pruning(trial) if curve and i == 0 else None)
        steps.append(result["solved_at"] or 2 * budget)
        trial.set_user_attr(f"seed{seed}", dict(solved_at=result["solved_at"], wall_s=round(result["wall_s"], 1)))
        trial.report(statistics.mean(steps), SEED_STEPS + i if curve else i)
        behind = i + 1 >= warmup and trial.should_prune()
        if result["solved_at"] is None or behind:  # a preset must solve every seed
            raise optuna.TrialPruned()
    return OBJECTIVES[summary](steps)


# The preset's values before this study (within the search space): the first trial, so
# that the search starts from a known working point rather than from random ones alone.
PREVIOUS_PRESET = dict(
    lr=3e-3,
    batch_size=64,
    hidden=128,
    gamma=0.99,
    target_replace_iter=200,
    learning_starts=1000,
    memory_capacity=50000,
    epsilon_end=0.98,
    epsilon_steps=5000,
    double=True,
    huber=True,
    grad_clip=10.0,
    n_step=1,
    dueling=False,
    prioritized=False,
)


def default_out(env_id):
    """Where an env's study writes by default: bench/results for CartPole, else bench/results/tune_<env>."""
    return RESULTS if env_id == "CartPole-v1" else RESULTS / f"tune_{env_id}"


def first_trial(args):
    """A new study's first trial: with --start-from-best, the best trial of the env's default study (its
    tune_best.json); else on CartPole the earlier preset, and on another env its rl-zoo values in
    dqn.py's terms (beyond/tasks.py), the ones it was judged with first. With --start-from-preset, the
    env's tuned preset as it stands: the one a new search means to beat."""
    if args.start_from_preset:
        return {"lr_steps": 0, **TASKS[args.env].tuned}
    if args.start_from_best:
        return json.loads((default_out(args.env) / "tune_best.json").read_text())["params"]
    return PREVIOUS_PRESET if args.env == "CartPole-v1" else RL_ZOO_START[args.env]


def trial_changes(text):
    """--enqueue's NAME=VALUE pairs: names of the search space, values among their choices (JSON: 3, true, 0.5)."""
    changes = {}
    for pair in text.split(","):
        name, _, value = pair.partition("=")
        choices = ENQUEUE_CHOICES.get(name)
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise argparse.ArgumentTypeError(f"{pair!r}: the value is not a number or true/false") from None
        if name == "lr" and isinstance(value, float | int) and 3e-4 <= value <= 1e-2:
            changes[name] = float(value)
        elif choices is not None and value in choices and type(value) is type(choices[0]):
            changes[name] = value
        else:
            raise argparse.ArgumentTypeError(f"{pair!r}: not a value the search space holds")
    return changes


def study_start(study, args):
    """The study's first trial: as it was queued when the study began, since the preset or the env's best
    may have changed since; with --start-from-preset, a study begun before the learning-rate schedule
    existed ran without one (lr_steps 0)."""
    trials = study.get_trials(deepcopy=False)
    if not trials:
        return first_trial(args)
    start = trials[0].system_attrs.get("fixed_params", trials[0].params)
    return {"lr_steps": 0, **start} if args.start_from_preset else dict(start)


def already_queued(study, values):
    """Whether a trial of the study that did not fail was queued with these values (a failed one's, dropped
    from the queue or stopped, may be queued again); lr_steps 0 is what a trial queued before the
    learning-rate schedule existed ran with."""
    without_schedule = {k: v for k, v in values.items() if not (k == "lr_steps" and v == 0)}
    kept = (t for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL)
    queued = (t.system_attrs.get("fixed_params", t.params) for t in kept)
    return any(fixed in (values, without_schedule) for fixed in queued)


def drop_waiting(args):
    """--drop-waiting: mark the study's queued trials that never started as failed; return how many.

    A resumed study runs what it has queued first, in order: dropping the queue lets new
    --enqueue values run next (a dropped trial's values may be queued again).
    """
    try:
        study = optuna.load_study(study_name=args.study_name, storage=args.storage)
    except KeyError:  # no such study yet: nothing queued
        return 0
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    for t in waiting:  # Optuna has no public call that ends a queued trial: its storage's own
        study._storage.set_trial_user_attr(t._trial_id, "dropped", "queued, never started: --drop-waiting")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return len(waiting)


def open_study(args, worker=0):
    """The study, created or resumed; its sampler seeded by --sampler-seed, the worker and the trials so far.

    A resumed study must not replay the random proposals its first run already made, and
    two workers must not propose the same ones: both get their own seed.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # heartbeats are marked experimental; the tests hold them to their word
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            args.storage,
            heartbeat_interval=args.heartbeat,
            grace_period=2 * args.heartbeat,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
        )
    study = optuna.create_study(
        study_name=args.study_name,
        storage=storage,
        load_if_exists=True,
        direction="minimize",
        pruner=LatestMedianPruner(n_startup_trials=5),
    )
    existing = len(study.get_trials(deepcopy=False))
    if not existing:
        study.enqueue_trial(first_trial(args))
    for changes in args.enqueue:  # queued once: a study that holds these values already skips them
        values = {**study_start(study, args), **changes}
        if not already_queued(study, values):
            study.enqueue_trial(values)
    seed = args.sampler_seed + 10_007 * worker + existing
    study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=10)
    return study


def work(args, worker=0):
    """One worker: run trials until the study holds --n-trials of them (or --timeout passes)."""
    study = open_study(args, worker)
    start = time.monotonic()

    def log(study, trial):
        if "surplus" not in trial.user_attrs:
            print(f"trial {trial.number}: {trial.state.name.lower()} {trial.value}", flush=True)

    first = study_start(study, args) if args.env != "CartPole-v1" else None
    while args.timeout is None or time.monotonic() - start < args.timeout:
        study.optimize(
            lambda trial: objective(
                trial,
                args.seeds,
                args.budget,
                args.n_trials,
                args.objective,
                args.env,
                first,
                args.prune_curve,
                args.warmup_seeds,
            ),
            n_trials=1,
            catch=(StudyFull,),
            callbacks=[log],
        )
        last = study.get_trials(deepcopy=False)[-1]
        if "surplus" in last.user_attrs or started_trials(study) >= args.n_trials:
            break


def started_trials(study):
    """Finished and running trials: once they make --n-trials, a worker stops; a queued trial still runs first."""
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states))


def write_results(study, out):
    """The trials table (CSV) and the best trial's values (JSON)."""
    out.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    names = sorted({name for t in trials for name in t.params})
    with open(out / "tune_trials.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "state", "value", "duration_s", *names, "seeds", "worker"])
        for t in trials:
            duration = t.duration.total_seconds() if t.duration else ""
            seeds = json.dumps({k: v for k, v in t.user_attrs.items() if k.startswith("seed")})
            values = [t.params.get(n, "") for n in names]
            writer.writerow([t.number, t.state.name, t.value, duration, *values, seeds, t.user_attrs.get("worker", "")])
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        (out / "tune_best.json").write_text(
            json.dumps(
                dict(trial=best.number, value=best.value, params=best.params, flags=as_flags(best.params)), indent=1
            )
            + "\n"
        )
    return len(trials), len(complete)


def run_workers(args):
    """--n-jobs workers on the study, each in a process of its own when there are several."""
    if args.n_jobs == 1:
        return work(args)
    open_study(args)  # create it once, before the workers race to
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=work, args=(args, i)) for i in range(args.n_jobs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if any(w.exitcode for w in workers):
        sys.exit("a worker failed: see its output above")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", choices=list(TASKS), default="CartPole-v1", help="the task (beyond/tasks.py)")
    p.add_argument("--n-trials", type=int, default=150, help="the study's total of trials, over all workers")
    p.add_argument("--n-jobs", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--timeout", type=float, default=None, help="seconds after which each worker stops starting trials")
    p.add_argument(
        "--storage", default=None, help="an Optuna storage URL (default: tune.db in --out, or results/tune.db)"
    )
    p.add_argument("--study-name", default="tuned")
    p.add_argument("--sampler-seed", type=int, default=0)
    p.add_argument(
        "--heartbeat", type=int, default=30, help="seconds between a running trial's heartbeats; 2x: it is dead"
    )
    p.add_argument("--seeds", type=seed_list, default=list(range(1000, 1005)), help="tuning seeds, e.g. 1000-1004")
    p.add_argument(
        "--budget", type=int, default=None, help="env steps per tuning seed (CartPole: 30,000, else the task's)"
    )
    p.add_argument("--objective", choices=sorted(OBJECTIVES), default="median", help="a trial's value from its seeds")
    p.add_argument(
        "--warmup-seeds",
        type=int,
        default=1,
        metavar="K",
        help="seeds a trial finishes before it can be stopped for trailing the others (an unsolved seed stops it)",
    )
    start = p.add_mutually_exclusive_group()
    start.add_argument(
        "--start-from-best",
        action="store_true",
        help="a new study's first trial: the best of the env's default study (its tune_best.json)",
    )
    start.add_argument(
        "--start-from-preset", action="store_true", help="a new study's first trial: the env's tuned preset"
    )
    p.add_argument("--out", default=None, help="default: bench/results, or bench/results/tune_<env> for another env")
    p.add_argument(
        "--prune-curve", action="store_true", help="also stop a trial whose first seed's evaluations trail the others'"
    )
    p.add_argument(
        "--enqueue",
        type=trial_changes,
        action="append",
        default=[],
        metavar="NAME=VALUE[,NAME=VALUE]",
        help="also try the first trial with these values changed, next (e.g. n_step=3: what a probe found)",
    )
    p.add_argument(
        "--drop-waiting", action="store_true", help="first mark the queued trials that never started as failed"
    )
    p.add_argument("--report", action="store_true", help="run no trial: write the tables of the study as it stands")
    args = p.parse_args()
    if args.warmup_seeds < 1:
        p.error(f"--warmup-seeds must be at least 1, got {args.warmup_seeds}")
    cartpole = args.env == "CartPole-v1"
    args.out = args.out or str(default_out(args.env))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    args.storage = args.storage or (DEFAULT_STORAGE if cartpole else f"sqlite:///{Path(args.out) / 'tune.db'}")
    args.budget = args.budget or (30_000 if cartpole else TASKS[args.env].budget)
    if args.drop_waiting:
        print(f"dropped {drop_waiting(args)} queued trials", flush=True)
    if not args.report:
        run_workers(args)
    total, complete = write_results(open_study(args), Path(args.out))
    print(f"{total} trials, {complete} complete; wrote {args.out}/tune_trials.csv and tune_best.json")


if __name__ == "__main__":
    main()
