"""Files: the run folder, atomic writes, the metrics and evals CSVs, and checkpoints.

Every file is written beside its final path and renamed over it only when complete, so
an interrupted run never leaves a half-written file behind.
"""

import contextlib
import csv
import os
import tempfile
import time
from pathlib import Path

import gymnasium
import numpy
import torch

import dqn
from beyond import UsageError
from beyond.agents import make_agent
from beyond.averaged import policy_net
from beyond.config import EXTENSION_DEFAULTS, SETTINGS, names
from beyond.flags import check_range, checked_settings, file_settings, setting_value
from beyond.limits import net_parameters
from beyond.pixels import FRAME_STACK, PREPROCESSING_VERSION, frame_shape, reads_pixels
from beyond.statefile import StateError, load_data, open_regular_file
from beyond.tasks import EnvIdError, check_env_id

CHECKPOINT_FORMAT = "dqn-cartpole-checkpoint/2"
FIRST_FORMAT = "dqn-cartpole-checkpoint/1"  # before checkpoints kept their run's settings: the net's as fields
FORMATS = (CHECKPOINT_FORMAT, FIRST_FORMAT)
RESUME_TAG_START = b"dqn-cartpole-resume/"  # what a resume file's first line starts with
UMASK = os.umask(0o22)  # the only way to read the umask is to set it: put it back at once
os.umask(UMASK)


def make_run_dir(args):
    """runs/<name>/, the name a timestamp unless --run-name sets it."""
    name = args.run_name or time.strftime("%Y%m%d-%H%M%S")
    path = Path(args.runs_dir) / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--runs-dir: cannot create {path} ({e.strerror})") from None
    return path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside path; rename it over path only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # --video and --plot may name a folder that is not there yet
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes it private; give it a normal file's mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_figure(figure, path):
    """Save a matplotlib figure as PNG, atomically."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


METRIC_FIELDS = ["episode", "steps", "reward", "epsilon", "loss", "learning", "env_steps", "wall_s"]
# final: 1 for the evaluation after training; q_estimate and true_return: with --value-estimates (beyond/values.py);
# confirmed_mean: with --confirm-episodes, for a passing evaluation
EVAL_FIELDS = ["env_steps", "mean", "std", "min", "final", "q_estimate", "true_return", "confirmed_mean"]


def save_evals(evals, path):
    """One CSV row per greedy evaluation: when it ran (env steps) and what it scored."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(EVAL_FIELDS)
        writer.writerows([e.get(k, "") for k in EVAL_FIELDS] for e in evals)
    return path


def save_metrics(records, evals, path):
    """One CSV row per episode; eval columns hold the last evaluation run during that episode."""
    eval_by_step = {e["env_steps"]: e for e in evals}
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(METRIC_FIELDS + ["eval_mean", "eval_std", "eval_min"])
        previous = 0
        for r in records:
            hits = [eval_by_step[s] for s in eval_by_step if previous < s <= r["env_steps"]]
            previous = r["env_steps"]
            e = hits[-1] if hits else {}
            writer.writerow([r[k] for k in METRIC_FIELDS] + [e.get("mean", ""), e.get("std", ""), e.get("min", "")])
    return path


# Checkpoints: plain tensors and numbers only, loaded with weights_only=True so that a
# file from anywhere can never run code while it is read.
def save_checkpoint(agent, path, args, episodes):
    """Write the weights the agent acts with (eval_net, or its --averaged-policy average), the run's
    settings (flags.file_settings) and the shape of what the net reads."""
    meta = dict(
        format=CHECKPOINT_FORMAT,
        settings=file_settings(args),
        n_states=agent.n_states,
        n_actions=agent.n_actions,
        preprocessing=PREPROCESSING_VERSION if reads_pixels(agent.n_states) else None,
        episodes=episodes,
        versions=dict(torch=str(torch.__version__), gymnasium=str(gymnasium.__version__), numpy=str(numpy.__version__)),
    )
    with atomic_path(path) as tmp:
        torch.save(dict(meta=meta, eval_net=policy_net(agent).state_dict()), tmp)
    return path


def is_size(value):
    """A whole number from 1 to a billion (not a bool): a size a checkpoint's meta may give."""
    return type(value) is int and 0 < value <= 10**9


CHECKPOINT_LIMIT = 64 * 2**20  # bytes: a pixel agent's model.pt is about 1 MB
META_FIELDS = {  # what a checkpoint's meta may hold, each value's test (a saved agent's, or one of an older version)
    "format": lambda v: v in FORMATS,
    "settings": lambda v: isinstance(v, dict),
    "env_id": lambda v: isinstance(v, str),
    "reward": lambda v: v in ("shaped", "env"),
    "n_states": lambda v: is_size(v) or (isinstance(v, (list, tuple)) and len(v) == 3 and all(map(is_size, v))),
    "n_actions": lambda v: is_size(v) and v >= 2,
    "hidden": is_size,
    "extensions": lambda v: isinstance(v, dict),
    "preprocessing": lambda v: v is None or is_size(v),
    "seed": lambda v: v is None or (type(v) is int and 0 <= v <= 10**9),
    "episodes": lambda v: type(v) is int and 0 <= v <= 10**9,
    "hyperparameters": lambda v: isinstance(v, dict),
    "versions": lambda v: isinstance(v, dict),
}
FROM_SETTINGS = ("env_id", "reward", "hidden", "seed", "extensions")  # a first-format checkpoint's own fields
REQUIRED_META = {
    CHECKPOINT_FORMAT: ("format", "settings", "n_states", "n_actions"),
    FIRST_FORMAT: ("format", "env_id", "reward", "n_states", "n_actions", "hidden"),
}


def check_extensions(extensions, path):
    """A checkpoint's extensions: the flags' own kinds and ranges (n-step at most the default memory's rows)."""
    try:
        if not isinstance(extensions, dict) or not set(extensions) <= set(EXTENSION_DEFAULTS):
            raise UsageError("not the extensions this program has")
        values = {name: setting_value(SETTINGS[name], value) for name, value in extensions.items()}
        for name, value in values.items():
            check_range(SETTINGS[name], value)
        if values.get("n_step", 1) > dqn.hyperparameters["memory_capacity"]:
            raise UsageError("--n-step longer than the replay memory")
    except UsageError as e:
        raise UsageError(f"--play: {path} is damaged: meta.extensions: {e}") from None


def agent_for(meta, device="cpu"):
    """A fresh agent of a checkpoint's kind, size and extensions: PixelDQN for images, else the blog's DQN.

    A checkpoint that keeps its run's settings gets the agent the run built, except that
    --play never learns: it keeps one replay row, whatever the run kept.
    """
    pixels = reads_pixels(meta["n_states"])
    version = meta.get("preprocessing") or 1  # checkpoints from before the field were made for version 1
    if pixels and version != PREPROCESSING_VERSION:
        raise UsageError(
            f"--play: this checkpoint was trained on pixel preprocessing version {version}, but this "
            f"dqn.py makes version {PREPROCESSING_VERSION}: its net would see a different picture"
        )
    shape = tuple(meta["n_states"]) if pixels else meta["n_states"]
    if "settings" in meta:
        settings = {name: meta["settings"][name] for name in names("agent")}
        settings.update(memory_capacity=1, learning_starts=None, batch_size=1)
    else:
        settings = dict(hidden=meta["hidden"], **meta.get("extensions", {}))  # absent from the first checkpoints
    return make_agent(shape, meta["n_actions"], None, pixels, device, **settings)


def load_checkpoint(path, make_agent=agent_for):
    """Read a checkpoint into a fresh agent; any problem is one UsageError line.

    The file is read only if it is small and plain (statefile.load_data), and the agent is
    built only once its metadata name a known env and fit the weights the file holds.
    """
    try:
        with open_regular_file(path) as f:
            if RESUME_TAG_START in f.read(len(RESUME_TAG_START)):
                raise UsageError(
                    f"--play: {path} is a run's resume.pt; --play takes its model.pt (--resume its folder)"
                )
            if os.fstat(f.fileno()).st_size > CHECKPOINT_LIMIT:
                raise UsageError(f"--play: {path} is larger than a checkpoint of this program can be")
            f.seek(0)
            data = load_data(f.read())
    except StateError as e:
        raise UsageError(f"--play: {path} is not a readable dqn.py checkpoint ({e})") from None
    meta = data.get("meta") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or meta.get("format") not in FORMATS or "eval_net" not in data:
        raise UsageError(f"--play: {path} is not a dqn.py checkpoint")
    meta = spelled_out(meta, path)
    check_meta(meta, data["eval_net"], path)
    try:
        agent = make_agent(meta)
        for net in {agent.eval_net, policy_net(agent)}:  # what it learned, and what it acts with
            net.load_state_dict(data["eval_net"])
    except UsageError:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0]
        raise UsageError(f"--play: {path} does not fit its env or network ({first[:160]})") from None
    return agent, meta


def spelled_out(meta, path):
    """The meta with its settings checked as a flag's and the net's fields spelled out from them, as the
    first format held them; a first-format meta as it is."""
    first = meta["format"] == FIRST_FORMAT
    if first:  # the fields of one format only
        wrong = ["settings"] if "settings" in meta else []
    else:
        wrong = [name for name in (*FROM_SETTINGS, "hyperparameters") if name in meta]
        wrong += [] if "settings" in meta else ["settings"]
    if wrong:
        raise UsageError(f"--play: {path} is damaged: its meta.{wrong[0]} is not what this program saves")
    if first:
        return meta
    try:
        settings = checked_settings(meta["settings"])
    except UsageError as e:
        raise UsageError(f"--play: {path} is damaged: meta.settings: {e}") from None
    extensions = {name: settings[name] for name in EXTENSION_DEFAULTS}
    net = dict(env_id=settings["env"], reward=settings["reward"], hidden=settings["hidden"], seed=settings["seed"])
    return {**meta, **net, "settings": settings, "extensions": extensions}


def check_meta(meta, weights, path):
    """The checkpoint's metadata: known fields of the right kinds, a known env, and the size of its weights."""
    unknown = set(meta) - set(META_FIELDS)
    wrong = [name for name in REQUIRED_META[meta["format"]] if name not in meta] + sorted(unknown)
    wrong += [name for name, value in meta.items() if name in META_FIELDS and not META_FIELDS[name](value)]
    if wrong:
        raise UsageError(f"--play: {path} is damaged: its meta.{wrong[0]} is not what this program saves")
    try:
        check_env_id(meta["env_id"], from_file=True)
    except EnvIdError as e:
        raise UsageError(f"--play: {path} names env {e}") from None
    check_extensions(meta.get("extensions", {}), path)
    pixels = reads_pixels(meta["n_states"])
    if "settings" in meta and meta["settings"]["pixels"] != pixels:
        raise UsageError(f"--play: {path} is damaged: its meta.settings say --pixels {'is not' if pixels else 'is'} on")
    if pixels and list(meta["n_states"]) != [FRAME_STACK, *frame_shape()]:
        raise UsageError(f"--play: {path} expects screens of shape {meta['n_states']}, not this program's")
    if not isinstance(weights, dict) or any(
        not isinstance(t, torch.Tensor) or not torch.isfinite(t).all() for t in weights.values()
    ):
        raise UsageError(f"--play: {path} is damaged: its weights are not all finite numbers")
    # building the agent allocates the nets its meta describes: only at the size of the weights the file holds
    shape = tuple(meta["n_states"]) if pixels else (meta["n_states"],)
    extensions = meta.get("extensions", {})
    dueling, layers = bool(extensions.get("dueling")), extensions.get("hidden_layers", 1)
    if pixels and layers > 1:
        raise UsageError(f"--play: {path} is damaged: meta.extensions: hidden layers on a pixel net (no run makes one)")
    described = net_parameters(shape, meta["n_actions"], meta["hidden"], pixels, dueling, layers)
    if described != sum(t.numel() for t in weights.values()):
        raise UsageError(
            f"--play: {path} does not fit its network: its meta (hidden size {meta['hidden']}, "
            f"{meta['n_actions']} actions) describes {described:,} weights"
        )
