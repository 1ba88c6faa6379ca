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

resume.pt holds data only (beyond/statefile.py): reading one cannot run code, whoever made
it, and every field is checked against a freshly built run before training carries on.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from beyond import UsageError
from beyond.files import atomic_path
from beyond.flags import build_parser, parse_args, validate_args
from beyond.pixels import PREPROCESSING_VERSION
from beyond.statefile import (
    StateError,
    declared_state,
    from_data,
    parts_from_data,
    parts_to_data,
    read_state,
    state_names,
    to_data,
    write_state,
)

RESUME_FORMAT = "dqn-cartpole-resume/2"
RESUME_FILE = "resume.pt"
# Flags that a resume may set: the budget and how the results are shown. Any other would
# change the algorithm halfway, and the run would no longer be the one it continues.
RESUME_FLAGS = {"resume", "max_env_steps", "episodes"}
RESUME_FLAGS |= {"quiet", "no_show", "watch", "snapshots", "video", "no_overlay", "tensorboard"}
# dqn.py stays the blog, so the blog's DQN declares its state here; each extension and
# PixelDQN adds its own RESUME_STATE. Everything else an agent holds is rebuilt from the
# run's settings (tests/test_resume.py checks that nothing else changes as it trains).
DQN_STATE = ("eval_net", "target_net", "optimizer", "memory", "memory_terminated", "memory_counter")
DQN_STATE += ("learn_step_counter", "rng", "epsilon")
# The env's layers, by class, for gymnasium's classes (beyond/pixels.py's wrapper declares its own):
# the physics' state and random generator, the time limit's count, the checkers' flags.
ENV_STATE = {
    "CartPoleEnv": ("state", "steps_beyond_terminated", "_np_random", "_np_random_seed"),
    "AcrobotEnv": ("state", "_np_random", "_np_random_seed"),
    "MountainCarEnv": ("state", "_np_random", "_np_random_seed"),
    "TimeLimit": ("_elapsed_steps",),
    "OrderEnforcing": ("_has_reset",),
    # _previous_data is left out: the checker keeps it for one step, only to warn of an env
    # that hands back the same array twice, which these envs never do.
    "PassiveEnvChecker": ("checked_reset", "checked_step", "checked_render", "checked_data_reuse"),
}
PARTS = {"preprocessing", "args", "agent", "env", "hooks", "train", "torch_rng"}


def layers(env):
    """env and every env it wraps, outermost first."""
    found = [env]
    while hasattr(found[-1], "env"):
        found.append(found[-1].env)
    return found


def agent_state_names(agent):
    """The blog's DQN_STATE and the RESUME_STATE of every class the agent is made of."""
    return list(dict.fromkeys([*DQN_STATE, *declared_state(agent)]))


def save_resume_state(path, args, agent, env, hooks, records):
    """Write resume.pt for a run that has just stopped training, atomically; its path, or None if it cannot be."""
    unfinished = records[-1].get("unfinished") if records else None
    finished = records[:-1] if unfinished else records
    try:
        state = dict(
            preprocessing=PREPROCESSING_VERSION,
            args=parts_to_data(args, [k for k in vars(args) if k != "resume_state"], "args"),
            agent=parts_to_data(agent, agent_state_names(agent), "agent"),
            env=[
                parts_to_data(layer, state_names(layer, ENV_STATE), f"env.{type(layer).__name__}")
                for layer in layers(env)
            ],
            hooks=parts_to_data(hooks, hooks.RESUMABLE, "hooks"),
            train=to_data((finished, records[-1]["env_steps"] if records else 0, unfinished), "train"),
            torch_rng=torch.get_rng_state(),
        )
        with atomic_path(path) as tmp:
            write_state(tmp, RESUME_FORMAT, state)
    except TypeError as e:  # an env or extension whose state has no data form
        print(f"warning: this run cannot be resumed: its state could not be saved ({e})", file=sys.stderr)
        return None
    return path


def load_resume_state(run_dir):
    """resume.pt of run_dir, checked whole; a missing, damaged, foreign or hostile one is one UsageError line."""
    path = Path(run_dir) / RESUME_FILE
    if not Path(run_dir).is_dir():
        raise UsageError(f"--resume: no such run folder: {run_dir}")
    if not path.is_file():
        raise UsageError(f"--resume: {run_dir} has no {RESUME_FILE} (a run leaves one when it stops training)")
    try:
        state = read_state(path, RESUME_FORMAT)
    except StateError as e:
        raise UsageError(f"--resume: {path} {e}") from None
    except OSError as e:
        raise UsageError(f"--resume: {path} cannot be read ({e.strerror})") from None
    try:
        check_parts(state)
    except StateError as e:
        raise UsageError(f"--resume: {path} is damaged: {e}") from None
    if state["preprocessing"] != PREPROCESSING_VERSION and state["args"]["pixels"]:
        raise UsageError(f"--resume: {path} holds frames of pixel preprocessing version {state['preprocessing']}")
    state["path"] = str(path)
    return state


def check_parts(state):
    """The parts resumed_args reads before an agent exists: their keys, types and ranges."""
    if not isinstance(state, dict) or set(state) != PARTS:
        found = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        raise StateError(f"not the parts of a run's state (found {found})")
    if not isinstance(state["preprocessing"], int):
        raise StateError("preprocessing: not a version number")
    known = set(vars(parse_args([]))) - {"resume_state"}  # the flags, and what validation derives from them
    args = state["args"]
    if not isinstance(args, dict) or set(args) != known:
        differ = sorted(set(args) ^ known) if isinstance(args, dict) else args
        raise StateError(f"args: not the settings this program has (differing: {differ})")
    for name, value in args.items():
        if not (value is None or isinstance(value, (bool, int, float, str))):
            raise StateError(f"args.{name}: not a flag's value")
    if not isinstance(state["hooks"], dict):
        raise StateError("hooks: not a set of fields")
    state["train"] = from_data(state["train"], (), "train")
    finished, env_steps, unfinished = state["train"] if len(state["train"]) == 3 else (None, None, None)
    if not (isinstance(finished, list) and all(isinstance(r, dict) for r in finished)):
        raise StateError("train: not (episodes, env steps, unfinished episode)")
    if not (isinstance(env_steps, int) and env_steps >= 0):
        raise StateError("train: env steps not a count")
    if unfinished is not None and not (isinstance(unfinished, tuple) and len(unfinished) == 5):
        raise StateError("train: the unfinished episode is not (state, reward, loss sum, learn steps, step)")
    if not (isinstance(state["torch_rng"], torch.Tensor) and state["torch_rng"].shape == torch.get_rng_state().shape):
        raise StateError("torch_rng: not torch's random state")


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
    if hooks.get("solved") or hooks.get("diverged"):
        why = "solved the task (--early-stop)" if hooks.get("solved") else "diverged"
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
    try:
        return validate_args(args)
    except UsageError as e:
        raise UsageError(f"--resume: {state['path']}: its settings are not valid ({e})") from None


def restore(state, agent, env, hooks):
    """Put the saved agent, env, hooks and torch random state into a freshly built run, checking every field."""
    try:
        parts_from_data(agent, state["agent"], agent_state_names(agent), "agent")
        vars(agent).pop("eval_weights", None)  # numpy views of the nets' old weights: remade on first use
        check_counts(agent)
        env.reset()  # so that each layer has values of the kinds the saved ones must match
        saved_layers, env_layers = state["env"], layers(env)
        if not isinstance(saved_layers, list) or len(saved_layers) != len(env_layers):
            raise StateError("env: not the layers of this run's env")
        for layer, fields in zip(env_layers, saved_layers, strict=True):
            parts_from_data(layer, fields, state_names(layer, ENV_STATE), f"env.{type(layer).__name__}")
        saved_hooks = {}
        for name in hooks.RESUMABLE:
            if name not in state["hooks"]:
                raise StateError(f"hooks: missing {name}")
            saved_hooks[name] = from_data(state["hooks"][name], getattr(hooks, name), f"hooks.{name}")
        if set(state["hooks"]) != set(hooks.RESUMABLE):
            raise StateError(f"hooks: unknown {', '.join(sorted(set(state['hooks']) - set(hooks.RESUMABLE)))}")
        check_hooks(saved_hooks, agent.eval_net.state_dict())
    except StateError as e:
        raise UsageError(f"--resume: {state['path']} is damaged: {e}") from None
    hooks.load_resume_state(saved_hooks)
    torch.set_rng_state(state["torch_rng"])


def check_hooks(saved, weights):
    """The hooks' weights fit eval_net, and their records hold numbers where training reads them."""
    if not all(isinstance(s, dict) for s in saved["snapshots"]):
        raise StateError("hooks.snapshots: not copies of eval_net")
    copies = [s.get("weights") for s in saved["snapshots"]]
    copies += [pair[1] for pair in (saved["solved"], saved["best"]) if pair is not None]
    copies += [saved["good_state"]] if saved["good_state"] is not None else []
    for copy in copies:
        fits = isinstance(copy, dict) and set(copy) == set(weights)
        if not fits or any(
            not isinstance(copy[k], torch.Tensor) or copy[k].shape != v.shape or copy[k].dtype != v.dtype
            for k, v in weights.items()
        ):
            raise StateError("hooks: a copy of eval_net's weights that does not fit eval_net")
    for name in ("evals", "unconfirmed"):
        rows = [row.values() if isinstance(row, dict) else row for row in saved[name]]
        if not all(isinstance(row, (dict, tuple)) for row in saved[name]) or not all(
            value is None or isinstance(value, (int, float)) for row in rows for value in row
        ):
            raise StateError(f"hooks.{name}: not rows of numbers")


def check_counts(agent):
    """The counters that index the memory: whole and not negative."""
    for name in ("memory_counter", "learn_step_counter"):
        if getattr(agent, name) < 0:
            raise StateError(f"agent.{name}: negative")
    pixels = not isinstance(agent.n_states, int)
    shape, dtype = (tuple(agent.n_states), np.uint8) if pixels else ((agent.n_states,), np.float32)
    for row in getattr(agent, "open_rows", []):
        fits = isinstance(row, list) and len(row) == 5
        index, s, a, total, k = row if fits else (None,) * 5
        fits = fits and type(index) is int and 0 <= index < agent.memory_capacity and type(a) is int
        fits = fits and 0 <= a < agent.n_actions and type(total) is float and type(k) is int and 0 <= k < agent.n_step
        if not (fits and isinstance(s, np.ndarray) and s.shape == shape and s.dtype == dtype):
            raise StateError("agent.open_rows: not rows of the memory")
