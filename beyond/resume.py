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
it. Its header holds the run's settings, which go through the same checks as the flags
(beyond/flags.py: settings_from_file) before the rest is read: they name no file to write
and no module to import, and the memory they need must fit. Every field is then checked
against a freshly built run, and its values against what the settings allow, before
training carries on.
"""

import math
import sys
from pathlib import Path

import numpy as np
import torch

from beyond import UsageError
from beyond.config import RESUME_SETTINGS
from beyond.files import atomic_path
from beyond.flags import build_parser, file_settings, observation_of, settings_from_file, validate_args
from beyond.hooks import MAX_SNAPSHOTS
from beyond.limits import memory_bytes
from beyond.pixels import PREPROCESSING_VERSION, reads_pixels
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

RESUME_FORMAT = "dqn-cartpole-resume/4"  # 3: the settings in the header, read and checked before the data;
# 4: the replay memory a part of its own. A format-3 file is read too: its memory's fields were the agent's.
FORMAT_3 = "dqn-cartpole-resume/3"
FORMAT_3_MEMORY = dict(
    memory="rows", memory_terminated="terminated", memory_counter="counter", memory_discount="discount"
)
FORMAT_3_MEMORY.update({name: name for name in ("open_rows", "priorities", "max_priority", "beta")})
RESUME_FILE = "resume.pt"
# Flags that a resume may set: the budget and how the results are shown. Any other would
# change the algorithm halfway, and the run would no longer be the one it continues.
# dqn.py stays the blog, so the blog's DQN declares its state here; each extension and
# PixelDQN adds its own RESUME_STATE. Everything else an agent holds is rebuilt from the
# run's settings (tests/test_resume.py checks that nothing else changes as it trains).
DQN_STATE = ("eval_net", "target_net", "optimizer", "learn_step_counter", "rng", "epsilon")
MEMORY_STATE = ("rows", "terminated", "counter")  # dqn.ReplayMemory's; each variant and mixin adds its RESUME_STATE
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
# Envs whose physics cannot be saved as data (LunarLander's is a Box2D world): only the random
# generator their next reset() draws from is saved, and a run stopped in mid-episode carries on
# from a new episode. Stopped at an episode's end, it carries on as if it had never stopped.
EPISODE_BOUNDARY = {"LunarLander": ("_np_random", "_np_random_seed")}
ENV_STATE.update(EPISODE_BOUNDARY)
PARTS = {"preprocessing", "agent", "memory", "env", "hooks", "train", "torch_rng"}
RECORDS_ALLOWANCE = 64 * 2**20  # bytes of a file beyond its tensors: the episodes' and evaluations' records


def layers(env):
    """env and every env it wraps, outermost first."""
    found = [env]
    while hasattr(found[-1], "env"):
        found.append(found[-1].env)
    return found


def agent_state_names(agent):
    """The blog's DQN_STATE and the RESUME_STATE of every class the agent is made of."""
    return list(dict.fromkeys([*DQN_STATE, *declared_state(agent)]))


def memory_state_names(memory):
    """The blog's MEMORY_STATE and the RESUME_STATE of every class the replay memory is made of."""
    return list(dict.fromkeys([*MEMORY_STATE, *declared_state(memory)]))


def save_resume_state(path, args, agent, env, hooks, records):
    """Write resume.pt for a run that has just stopped training, atomically; its path, or None if it cannot be.

    Its header holds the run's settings, which a reader checks before it reads the rest.
    """
    unfinished = records[-1].get("unfinished") if records else None
    finished = records[:-1] if unfinished else records
    if unfinished and type(env.unwrapped).__name__ in EPISODE_BOUNDARY:  # its episode cannot go on: it ends here
        finished, unfinished = [*records[:-1], {k: v for k, v in records[-1].items() if k != "unfinished"}], None
    try:
        state = dict(
            preprocessing=PREPROCESSING_VERSION,
            agent=parts_to_data(agent, agent_state_names(agent), "agent"),
            memory=parts_to_data(agent.memory, memory_state_names(agent.memory), "memory"),
            env=[
                parts_to_data(layer, state_names(layer, ENV_STATE), f"env.{type(layer).__name__}")
                for layer in layers(env)
            ],
            hooks={name: to_data(value, f"hooks.{name}") for name, value in hooks.resume_state().items()},
            train=to_data((finished, records[-1]["env_steps"] if records else 0, unfinished), "train"),
            torch_rng=torch.get_rng_state(),
        )
        with atomic_path(path) as tmp:
            write_state(tmp, RESUME_FORMAT, state, header=dict(settings=file_settings(args)))
    except TypeError as e:  # an env or extension whose state has no data form
        print(f"warning: this run cannot be resumed: its state could not be saved ({e})", file=sys.stderr)
        return None
    return path


def load_resume_state(run_dir):
    """resume.pt of run_dir, checked whole; a missing, damaged, foreign or hostile one is one UsageError line.

    The header's settings are read first and held to the flags' rules; they fix how much
    of the file may be read. Returns the state's parts, with "args" (the settings, parsed)
    and "path".
    """
    run_dir = Path(run_dir)
    path = run_dir / RESUME_FILE
    if not run_dir.is_dir():
        raise UsageError(f"--resume: no such run folder: {run_dir}")
    if not path.exists() and not path.is_symlink():
        raise UsageError(f"--resume: {run_dir} has no {RESUME_FILE} (a run leaves one when it stops training)")
    settings = []

    def payload_limit(header):
        try:
            args = settings_from_file(header.get("settings"))
        except UsageError as e:
            raise StateError(f"holds settings this program refuses: {e}") from None
        settings.append(args)
        obs_shape, n_actions = observation_of(args)
        return memory_bytes(args, obs_shape, n_actions) + RECORDS_ALLOWANCE

    try:
        header, state = read_state(path, RESUME_FORMAT, payload_limit, older=(FORMAT_3,))
        if header["format"] == FORMAT_3:
            state = memory_of_format_3(state)
        check_parts(state, settings[0])
    except StateError as e:
        raise UsageError(f"--resume: {path} {e}") from None
    state.update(args=settings[0], path=str(path))
    return state


def memory_of_format_3(state):
    """A format-3 state with its memory's fields moved out of the agent's into a part of their own, renamed."""
    agent = state.get("agent") if isinstance(state, dict) else None
    if not isinstance(agent, dict) or "memory" in state:
        return state  # not what format 3 wrote: check_parts says what is wrong
    agent = dict(agent)
    memory = {new: agent.pop(old) for old, new in FORMAT_3_MEMORY.items() if old in agent}
    frames = agent.pop("memory_frames", None)  # pixels.FrameMemory's fields, as a saved object: its frames
    if frames is not None:
        parts = frames.get("parts") if isinstance(frames, dict) else None
        memory["frames"] = parts.get("frames") if isinstance(parts, dict) else frames
    return {**state, "agent": agent, "memory": memory}


def check_parts(state, args):
    """The parts resumed_args reads before an agent exists: their keys, types and ranges."""
    if not isinstance(state, dict) or set(state) != PARTS:
        found = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        raise StateError(f"is damaged: not the parts of a run's state (found {found})")
    hooks = state["hooks"]
    if not isinstance(hooks, dict):
        raise StateError("is damaged: hooks: not a set of fields")
    if hooks.get("solved") is not None or hooks.get("diverged") is not None:
        why = "solved the task (--early-stop)" if hooks.get("solved") is not None else "diverged"
        raise StateError(f"is of a run that stopped because it {why}; there is nothing to continue")
    if type(state["preprocessing"]) is not int:
        raise StateError("is damaged: preprocessing: not a version number")
    if state["preprocessing"] != PREPROCESSING_VERSION and args.pixels:
        raise StateError(f"holds frames of pixel preprocessing version {state['preprocessing']}")
    rng, fresh_rng = state["torch_rng"], torch.get_rng_state()
    if not (isinstance(rng, torch.Tensor) and rng.dtype == fresh_rng.dtype and rng.shape == fresh_rng.shape):
        raise StateError("is damaged: torch_rng: not torch's random state")
    try:
        state["train"] = check_train(from_data(state["train"], (), "train"), args)
    except StateError as e:
        raise StateError(f"is damaged: {e}") from None


# ---- what train() and the hooks carry on from: records of plain values -----------------------
def is_count(value):
    """A whole number, 0 or more (not a bool)."""
    return type(value) is int and value >= 0


def is_number(value):
    """An int or float that is finite (not a bool)."""
    return type(value) in (int, float) and math.isfinite(value)


RECORD_FIELDS = {  # a finished episode's record (dqn.train); loss is nan for an episode that learned nothing
    "episode": is_count,
    "steps": is_count,
    "reward": is_number,
    "epsilon": is_number,
    "loss": lambda v: type(v) is float,
    "learning": lambda v: type(v) is bool,
    "env_steps": is_count,
    "wall_s": is_number,
}
EVAL_FIELDS = {"env_steps": is_count, "mean": is_number, "std": is_number, "min": is_number}
EVAL_FIELDS.update(final=lambda v: v in (0, 1) and type(v) is int)
OPTIONAL_EVAL_FIELDS = {"q_estimate": is_number, "true_return": is_number, "confirmed_mean": is_number}


def check_fields(row, fields, where, optional=None):
    """row: a dict with fields' keys (and any of optional's), each value passing its test."""
    optional = optional or {}
    if not (isinstance(row, dict) and set(fields) <= set(row) <= set(fields) | set(optional)):
        raise StateError(f"{where}: not a record of {', '.join(fields)}")
    for name, value in row.items():
        if not {**fields, **optional}[name](value):
            raise StateError(f"{where}.{name}: not a value this program records")


def check_train(train, args):
    """train()'s place: (finished episodes' records, env steps, the unfinished episode or None)."""
    if not (isinstance(train, tuple) and len(train) == 3 and isinstance(train[0], list) and is_count(train[1])):
        raise StateError("train: not (episodes, env steps, unfinished episode)")
    finished, env_steps, unfinished = train
    if len(finished) > args.episodes or len(finished) > env_steps:
        raise StateError("train: more episodes than the run could have had")
    previous = 0
    for i, record in enumerate(finished):
        check_fields(record, RECORD_FIELDS, f"train[0][{i}]")
        ended = record["episode"] == i and previous <= record["env_steps"] <= env_steps
        loss_kind = math.isfinite(record["loss"]) if record["learning"] else math.isnan(record["loss"])
        if not (ended and loss_kind):
            raise StateError(f"train[0][{i}]: not the next episode of this run")
        previous = record["env_steps"]
    if unfinished is not None:
        fits = isinstance(unfinished, tuple) and len(unfinished) == 5
        s, reward, loss_sum, learn_steps, step = unfinished if fits else (None,) * 5
        fits = fits and isinstance(s, np.ndarray) and is_number(reward) and is_number(loss_sum)
        if not (fits and is_count(learn_steps) and is_count(step) and 2 <= step <= args.max_episode_steps):
            raise StateError("train: the unfinished episode is not (state, reward, loss sum, learn steps, step)")
    return train


def check_hooks(saved, weights, env_steps, args):
    """The hooks' records hold numbers where training reads them, and their weights fit eval_net."""
    evals, most_evals = saved["evals"], env_steps // args.eval_every + 1 if args.eval_every else 0
    if not isinstance(evals, list) or len(evals) > most_evals:
        raise StateError("hooks.evals: more evaluations than the run could have had")
    for i, row in enumerate(evals):
        check_fields(row, EVAL_FIELDS, f"hooks.evals[{i}]", OPTIONAL_EVAL_FIELDS)
    passes = saved["unconfirmed"]
    if not isinstance(passes, list) or len(passes) > len(evals):
        raise StateError("hooks.unconfirmed: not the passes of these evaluations")
    for row in passes:
        if not (isinstance(row, tuple) and len(row) == 3 and is_count(row[0]) and all(map(is_number, row[1:]))):
            raise StateError("hooks.unconfirmed: not (env steps, mean, confirmation)")
    snapshots = saved["snapshots"]
    if not (isinstance(snapshots, list) and len(snapshots) <= MAX_SNAPSHOTS + 1):
        raise StateError("hooks.snapshots: not the learning video's copies")
    for i, snapshot in enumerate(snapshots):
        check_fields(
            snapshot, {"env_steps": is_count, "episode": is_count, "weights": lambda v: True}, f"hooks.snapshots[{i}]"
        )
    best = saved["best"]
    if best is not None:
        if not (isinstance(best, tuple) and len(best) == 2):
            raise StateError("hooks.best: not (evaluation, weights)")
        check_fields(best[0], EVAL_FIELDS, "hooks.best[0]", OPTIONAL_EVAL_FIELDS)
    for name in ("next_eval", "next_snapshot", "episode"):
        if not is_count(saved[name]):
            raise StateError(f"hooks.{name}: not a count")
    if (
        not (is_count(saved["snapshot_every"]) and saved["snapshot_every"] >= 1)
        or type(saved["taking_snapshots"]) is not bool
    ):
        raise StateError("hooks: the learning video's schedule is not counts")
    copies = [s["weights"] for s in snapshots] + ([best[1]] if best else [])
    copies += [saved["good_state"]] if saved["good_state"] is not None else []
    for copy in copies:
        check_weights(copy, weights, "hooks: a copy of eval_net's weights")


def check_weights(copy, weights, where):
    """copy: tensors of weights' names, shapes and dtypes, every one finite."""
    fits = isinstance(copy, dict) and set(copy) == set(weights)
    for name, tensor in weights.items():
        value = copy.get(name) if fits else None
        fits = fits and isinstance(value, torch.Tensor) and value.shape == tensor.shape and value.dtype == tensor.dtype
        if not (fits and torch.isfinite(value).all()):
            raise StateError(f"{where} does not fit eval_net")


def given_flags(argv):
    """The dests of the flags that argv sets explicitly."""
    return set(vars(build_parser(defaults=False).parse_args(argv)))


def resumed_args(run_dir, argv):
    """The stopped run's own settings, with the budget and display flags that argv gives.

    The run writes only inside its own folder: the outputs come from argv, never the file.
    """
    argv = sys.argv[1:] if argv is None else argv
    given = given_flags(argv)
    changed = sorted(given - set(RESUME_SETTINGS))
    if changed:
        names = ", ".join("--" + name.replace("_", "-") for name in changed)
        raise UsageError(
            f"--resume continues {run_dir} with its own settings; {names} would change them "
            "(allowed: --max-env-steps, --episodes and the output flags)"
        )
    state = load_resume_state(run_dir)
    args = state["args"]
    explicit = vars(build_parser().parse_args(argv))
    for name in given - {"resume"}:
        setattr(args, name, explicit[name])
    folder = Path(run_dir).resolve()  # `--resume .` names the folder it is run from
    args.runs_dir, args.run_name, args.plot = str(folder.parent), folder.name, None
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
    args, (_, env_steps, unfinished) = state["args"], state["train"]
    try:
        parts_from_data(agent, state["agent"], agent_state_names(agent), "agent")
        parts_from_data(agent.memory, state["memory"], memory_state_names(agent.memory), "memory")
        vars(agent).pop("eval_weights", None)  # numpy views of the nets' old weights: remade on first use
        check_agent(agent, env_steps, args)
        env.reset()  # so that each layer has values of the kinds the saved ones must match
        saved_layers, env_layers = state["env"], layers(env)
        if not isinstance(saved_layers, list) or len(saved_layers) != len(env_layers):
            raise StateError("env: not the layers of this run's env")
        for layer, fields in zip(env_layers, saved_layers, strict=True):
            parts_from_data(layer, fields, state_names(layer, ENV_STATE), f"env.{type(layer).__name__}")
        check_env_state(env, unfinished)
        saved_hooks = {}
        if not isinstance(state["hooks"], dict) or set(state["hooks"]) != set(hooks.RESUME_STATE):
            differ = sorted(map(str, set(state["hooks"]) ^ set(hooks.RESUME_STATE)))
            raise StateError(f"hooks: not the hooks' fields (differing: {', '.join(differ)})")
        for name, template in hooks.resume_state().items():
            saved_hooks[name] = from_data(state["hooks"][name], template, f"hooks.{name}")
        check_hooks(saved_hooks, agent.eval_net.state_dict(), env_steps, args)
    except StateError as e:
        raise UsageError(f"--resume: {state['path']} is damaged: {e}") from None
    hooks.load_resume_state(saved_hooks)
    torch.set_rng_state(state["torch_rng"])


def check_agent(agent, env_steps, args):
    """The counters within what env_steps allow, the schedules' values in range, the open n-step rows in the memory."""
    lowest, highest = sorted([args.lr, args.lr_end if args.lr_steps else args.lr])
    if not all(lowest <= group["lr"] <= highest for group in agent.optimizer.param_groups):
        raise StateError("agent.optimizer: a learning rate outside what --lr and --lr-end give")
    memory = agent.memory
    if not (is_count(memory.counter) and is_count(agent.learn_step_counter)):
        raise StateError("agent: a counter that is not a count")
    if not memory.counter <= env_steps:
        raise StateError(f"memory.counter: more rows than the run's {env_steps} env steps")
    if not agent.learn_step_counter <= env_steps * getattr(agent, "replay_ratio", 1):
        raise StateError(f"agent.learn_step_counter: more learn steps than the run's {env_steps} env steps allow")
    for where, value in (("agent.epsilon", agent.epsilon), ("memory.beta", getattr(memory, "beta", 0.0))):
        if not (type(value) is float and 0 <= value <= 1):
            raise StateError(f"{where}: not a probability")
    if hasattr(memory, "max_priority") and not (
        type(memory.max_priority) is float and 0 < memory.max_priority < math.inf
    ):
        raise StateError("memory.max_priority: not a priority")
    if hasattr(memory, "priorities") and not (memory.priorities.nodes >= 0).all():
        raise StateError("memory.priorities: a negative priority")
    check_open_rows(agent)


def check_open_rows(agent):
    """The n-step rows still collecting rewards: [row, s, a, return so far, rewards summed] of this memory."""
    pixels = reads_pixels(agent.n_states)
    shape, dtype = (tuple(agent.n_states), np.uint8) if pixels else ((agent.n_states,), np.float32)
    for row in getattr(agent.memory, "open_rows", []):
        fits = isinstance(row, list) and len(row) == 5
        index, s, a, total, k = row if fits else (None,) * 5
        fits = fits and type(index) is int and 0 <= index < agent.memory_capacity and type(a) is int
        fits = fits and 0 <= a < agent.n_actions and type(total) is float and type(k) is int and 0 <= k < agent.n_step
        if not (fits and isinstance(s, np.ndarray) and s.shape == shape and s.dtype == dtype):
            raise StateError("memory.open_rows: not rows of the memory")


def check_env_state(env, unfinished):
    """The time limit's count within the limit, and the unfinished episode's state one the env could show."""
    for layer in layers(env):
        for name in ("steps_beyond_terminated", "_np_random_seed"):  # None in a fresh env: any value would pass
            value = getattr(layer, name, None)
            if not (value is None or is_count(value)):
                raise StateError(f"env.{type(layer).__name__}.{name}: not a count")
        limit = getattr(layer, "_max_episode_steps", None)
        if limit is not None and not (is_count(layer._elapsed_steps) and layer._elapsed_steps <= limit):
            raise StateError("env.TimeLimit._elapsed_steps: past the time limit")
    if unfinished is not None:
        space = env.observation_space
        if unfinished[0].shape != space.shape or unfinished[0].dtype != space.dtype:
            raise StateError("train: the unfinished episode's state is not one this env shows")
