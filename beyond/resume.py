"""--resume: carry on a run stopped by Ctrl-C or by its budget, as if it had never stopped.

When training stops, before the final evaluation and the keep-best swap, the run folder
gets resume.pt: everything the rest of training depends on. That is the agent whole (both
nets, Adam and its step counts, the replay memory and its counters, the random generator,
n-step's open rows, prioritized replay's tree), the env's own state (the cart and pole,
its random generator, the time limit's count, a pixel run's frame stack), torch's random
state, the hooks' bookkeeping (the next evaluation, the evaluations so far, the best and
the last good weights, the learning video's copies) and train()'s place: its finished
episodes and the one it was in the middle of. A resumed run then writes the same
metrics.csv and evals.csv as a run that never stopped, wall times aside.

resume.pt is a pickle, since it holds whole Python objects: resume only runs you made.
"""

import argparse
import pickle
import sys
from pathlib import Path

import torch

from beyond import UsageError
from beyond.files import atomic_path
from beyond.flags import build_parser, validate_args
from beyond.pixels import PREPROCESSING_VERSION

RESUME_FORMAT = "dqn-cartpole-resume/1"
RESUME_FILE = "resume.pt"
# Flags that a resume may set: the budget and how the results are shown. Any other would
# change the algorithm halfway, and the run would no longer be the one it continues.
RESUME_FLAGS = {"resume", "max_env_steps", "episodes"}
RESUME_FLAGS |= {"quiet", "no_show", "watch", "snapshots", "video", "no_overlay", "tensorboard"}
# The env's own state is every attribute of it and of each wrapper around it (the cart and
# pole, the random generator, the time limit's count, the checkers' flags, a pixel run's
# frame stack) but these: the wrapped env, spaces and spec, and what draws on a screen.
ENV_NOT_STATE = {"env", "_saved_kwargs", "spec", "action_space", "observation_space", "render_mode", "screen", "clock"}
ENV_NOT_STATE |= {"surf", "isopen", "close_called", "_action_space", "_observation_space", "_metadata", "_cached_spec"}


def layers(env):
    """env and every env it wraps, outermost first."""
    found = [env]
    while hasattr(found[-1], "env"):
        found.append(found[-1].env)
    return found


def save_resume_state(path, args, agent, env, hooks, records):
    """Write resume.pt for a run that has just stopped training, atomically; its path, or None if it cannot be."""
    unfinished = records[-1].get("unfinished") if records else None
    finished = records[:-1] if unfinished else records
    state = dict(
        format=RESUME_FORMAT,
        preprocessing=PREPROCESSING_VERSION,
        args={k: v for k, v in vars(args).items() if k != "resume_state"},
        agent={k: v for k, v in vars(agent).items() if k != "eval_weights"},  # numpy views: remade on first use
        env=[{k: v for k, v in vars(layer).items() if k not in ENV_NOT_STATE} for layer in layers(env)],
        hooks=hooks.resume_state(),
        train=(finished, records[-1]["env_steps"] if records else 0, unfinished),
        torch_rng=torch.get_rng_state(),
    )
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp, pickle_protocol=4)
    except (TypeError, AttributeError, pickle.PicklingError) as e:  # an env with state that cannot be saved
        print(f"warning: this run cannot be resumed: its state could not be saved ({e})", file=sys.stderr)
        return None
    return path


def load_resume_state(run_dir):
    """resume.pt of run_dir; a missing, damaged or foreign one is one UsageError line."""
    path = Path(run_dir) / RESUME_FILE
    if not Path(run_dir).is_dir():
        raise UsageError(f"--resume: no such run folder: {run_dir}")
    if not path.is_file():
        raise UsageError(f"--resume: {run_dir} has no {RESUME_FILE} (a run leaves one when it stops training)")
    try:
        state = torch.load(path, weights_only=False)  # tensors back on the device they were saved from
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"--resume: {path} is damaged ({first[:120]})") from None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        found = state.get("format") if isinstance(state, dict) else None
        raise UsageError(
            f"--resume: {path} is not a {RESUME_FORMAT} file (found {found!r}); this dqn.py cannot continue it"
        )
    if state["preprocessing"] != PREPROCESSING_VERSION and state["args"]["pixels"]:
        raise UsageError(f"--resume: {path} holds frames of pixel preprocessing version {state['preprocessing']}")
    return state


def given_flags(argv):
    """The dests of the flags that argv sets explicitly."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def resumed_args(run_dir, argv):
    """The stopped run's own settings, with the budget and display flags that argv gives."""
    argv = sys.argv[1:] if argv is None else argv
    given = given_flags(argv)
    changed = sorted(given - RESUME_FLAGS)
    if changed:
        names = ", ".join("--" + name.replace("_", "-") for name in changed)
        raise UsageError(
            f"--resume continues {run_dir} with its own settings; {names} would change them "
            "(allowed: --max-env-steps, --episodes and the output flags)"
        )
    state = load_resume_state(run_dir)
    hooks = state["hooks"]
    if hooks["solved"] or hooks["diverged"]:
        why = "solved the task (--early-stop)" if hooks["solved"] else "diverged"
        raise UsageError(f"--resume: {run_dir} stopped because it {why}; there is nothing to continue")
    args = argparse.Namespace(**{**vars(build_parser().parse_args([])), **state["args"]})  # flags added since: defaults
    explicit = vars(build_parser().parse_args(argv))
    for name in given - {"resume"}:
        setattr(args, name, explicit[name])
    args.runs_dir, args.run_name, args.plot = str(Path(run_dir).parent), Path(run_dir).name, None
    args.resume, args.resume_state = run_dir, state
    finished, env_steps, _ = state["train"]
    if args.max_env_steps and env_steps >= args.max_env_steps:
        raise UsageError(f"--resume: {run_dir} has trained its {env_steps} env steps; give a larger --max-env-steps")
    if len(finished) >= args.episodes:
        raise UsageError(f"--resume: {run_dir} has trained its {len(finished)} episodes; give a larger --episodes")
    return validate_args(args)


def restore(state, agent, env):
    """Put the saved agent, env and torch random state into a freshly built agent and env."""
    vars(agent).update(state["agent"])
    vars(agent).pop("eval_weights", None)
    for layer, fields in zip(layers(env), state["env"], strict=True):
        vars(layer).update(fields)
    torch.set_rng_state(state["torch_rng"])
