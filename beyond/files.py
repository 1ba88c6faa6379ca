"""Files: the run folder, atomic writes, the metrics and evals CSVs, and checkpoints.

Every file is written beside its final path and renamed over it only when complete, so
an interrupted run never leaves a half-written file behind.
"""

import contextlib
import csv
import os
import pickle
import tempfile
import time
import warnings
from pathlib import Path

import gymnasium
import numpy
import torch

from beyond import UsageError
from beyond.agents import make_agent
from beyond.pixels import PREPROCESSING_VERSION, PixelDQN

CHECKPOINT_FORMAT = "dqn-cartpole-checkpoint/1"
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
def save_checkpoint(agent, path, env_id, reward, seed, episodes):
    """Write the eval-net weights and what it takes to rebuild them."""
    meta = dict(
        format=CHECKPOINT_FORMAT,
        env_id=env_id,
        reward=reward,
        n_states=agent.n_states,
        n_actions=agent.n_actions,
        hidden=agent.hidden,
        extensions=getattr(agent, "extensions", {}),
        preprocessing=PREPROCESSING_VERSION if isinstance(agent, PixelDQN) else None,
        seed=seed,
        episodes=episodes,
        hyperparameters={
            k: v
            for k, v in vars(agent).items()
            if isinstance(v, (int, float, bool, type(None))) and not k.startswith("_")
        },
        versions=dict(torch=str(torch.__version__), gymnasium=str(gymnasium.__version__), numpy=str(numpy.__version__)),
    )
    with atomic_path(path) as tmp:
        torch.save(dict(meta=meta, eval_net=agent.eval_net.state_dict()), tmp)
    return path


def agent_for(meta, device="cpu"):
    """A fresh agent of a checkpoint's kind, size and extensions: PixelDQN for images, else the blog's DQN."""
    pixels = not isinstance(meta["n_states"], int)
    version = meta.get("preprocessing") or 1  # checkpoints from before the field were made for version 1
    if pixels and version != PREPROCESSING_VERSION:
        raise UsageError(
            f"--play: this checkpoint was trained on pixel preprocessing version {version}, but this "
            f"dqn.py makes version {PREPROCESSING_VERSION}: its net would see a different picture"
        )
    shape = tuple(meta["n_states"]) if pixels else meta["n_states"]
    extensions = meta.get("extensions", {})  # absent from checkpoints saved before the extensions
    return make_agent(shape, meta["n_actions"], None, pixels, device, hidden=meta["hidden"], **extensions)


def load_checkpoint(path, make_agent=agent_for):
    """Read a checkpoint into a fresh agent; any problem is one UsageError line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own notes on odd pickles: we say it in one line below
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UsageError(
            f"--play: {path} is not a readable dqn.py checkpoint (it holds objects other than "
            "tensors and numbers; refused, since loading them could run code)"
        ) from None
    except Exception as e:  # truncated, empty, or not a torch file at all
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(
            f"--play: {path} is not a readable dqn.py checkpoint (damaged or not a torch file: {first[:120]})"
        ) from None
    meta = data.get("meta") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT or "eval_net" not in data:
        raise UsageError(f"--play: {path} is not a dqn.py checkpoint")
    try:
        agent = make_agent(meta)
        agent.eval_net.load_state_dict(data["eval_net"])
    except UsageError:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0]
        raise UsageError(f"--play: {path} does not fit its env or network ({first[:160]})") from None
    return agent, meta
