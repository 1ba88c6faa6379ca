"""Support code for dqn.py that a reader of the blog never needs.

The command line and its validation, the training hooks (progress, Ctrl-C, divergence,
periodic evaluation), run folders, atomic files, checkpoints, and watching or recording
the agent. dqn.py imports from here only in its "beyond the blog" part.
"""
import argparse
import contextlib
import csv
import math
import os
import pickle
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path

import gymnasium as gym
import torch

WATCH_MAX_STEPS = 500
CHECKPOINT_FORMAT = "dqn-cartpole-checkpoint/1"


UMASK = os.umask(0o22)
os.umask(UMASK)


class UsageError(Exception):
    """A bad flag, path or file: reported as one line on stderr, exit status 2."""


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------
class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (no usage block), like every other input error."""

    def error(self, message):
        raise UsageError(f"{message} (see --help)")


def build_parser(hyperparameters, presets):
    """The argparse parser; defaults are the blog's hyperparameters."""
    h = hyperparameters
    p = OneLineErrorParser(
        prog="dqn.py", description="Train the blog's DQN on CartPole, plot it, then watch it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("training")
    g.add_argument("--episodes", type=int, default=300, help="training episodes")
    g.add_argument("--max-episode-steps", type=int, default=10_000,
                   help="cap on each episode; the unwrapped env never ends once the agent is good")
    g.add_argument("--max-env-steps", type=int, default=0,
                   help="stop training after this many env steps in all (0: no limit)")
    g.add_argument("--seed", type=int, default=None, help="seed torch, numpy and the env for a repeatable run")
    g.add_argument("--env", default=None,
                   help="gymnasium env id with a discrete action space (default: the blog's CartPole-v0; "
                        "with --play: the checkpoint's)")
    g.add_argument("--reward", choices=["shaped", "env"], default="shaped",
                   help="shaped: the blog's r1 + r2 on the unwrapped env; env: the env's own "
                        "reward on the standard, time-limited task")
    g.add_argument("--preset", choices=sorted(presets), default=None,
                   help="a set of defaults; flags given explicitly still win (default: blog, or pixels with --pixels)")
    g.add_argument("--pixels", action="store_true",
                   help="learn from screen images instead of the 4 state numbers (dqn_pixels.py); "
                        "implies --preset pixels unless another preset is given")
    g.add_argument("--device", default="cpu",
                   help="torch device for the --pixels CNN, e.g. cuda (the state MLP always runs on the CPU)")
    g = p.add_argument_group("hyperparameters (the blog's values)")
    g.add_argument("--batch-size", type=int, default=h["batch_size"])
    g.add_argument("--lr", type=float, default=h["lr"], help="Adam learning rate")
    g.add_argument("--epsilon", type=float, default=h["epsilon"],
                   help="probability of acting greedily (the blog's convention, not the usual one)")
    g.add_argument("--gamma", type=float, default=h["gamma"], help="discount factor")
    g.add_argument("--target-replace-iter", type=int, default=h["target_replace_iter"],
                   help="copy eval_net into target_net every this many learn steps")
    g.add_argument("--memory-capacity", type=int, default=h["memory_capacity"], help="replay memory rows")
    g = p.add_argument_group("beyond the blog: the known DQN fixes (off by default)")
    g.add_argument("--hidden", type=int, default=h["hidden"], help="hidden units of q_net")
    g.add_argument("--learning-starts", type=int, default=None,
                   help="learn once the memory holds more than this many transitions (default: memory capacity)")
    g.add_argument("--train-every", type=int, default=h["train_every"], help="env steps per learn() call")
    g.add_argument("--double", action="store_true", help="Double DQN target")
    g.add_argument("--terminal-mask", action="store_true",
                   help="no bootstrap from terminated states (truncated ones still bootstrap)")
    g.add_argument("--huber", action="store_true", help="Smooth L1 (Huber) loss instead of MSE")
    g.add_argument("--grad-clip", type=float, default=None, help="clip the gradient norm at this value")
    g.add_argument("--epsilon-start", type=float, default=None,
                   help="greedy probability at step 0; rises linearly to --epsilon-end")
    g.add_argument("--epsilon-end", type=float, default=None, help="greedy probability after --epsilon-steps")
    g.add_argument("--epsilon-steps", type=int, default=None, help="env steps of the linear schedule")
    g = p.add_argument_group("evaluation")
    g.add_argument("--eval-every", type=int, default=0,
                   help="also run a greedy evaluation every this many env steps (0: only at the end)")
    g.add_argument("--eval-episodes", type=int, default=20, help="episodes of each greedy evaluation")
    g.add_argument("--early-stop", type=float, default=None,
                   help="stop once a greedy evaluation's mean reaches this")
    g.add_argument("--no-early-stop", action="store_true", help="keep training past --early-stop")
    g.add_argument("--keep-best", action=argparse.BooleanOptionalAction, default=False,
                   help="end with the weights of the best periodic evaluation, re-measured on fresh episodes")
    g = p.add_argument_group("output and watching")
    g.add_argument("--run-name", default=None, help="folder name under --runs-dir (default: a timestamp)")
    g.add_argument("--runs-dir", default="runs", help="where run folders go")
    g.add_argument("--plot", default=None, help="reward plot path (default: <run folder>/rewards.png)")
    g.add_argument("--no-show", action="store_true", help="save the plot but never open a window")
    g.add_argument("--watch", type=int, default=3,
                   help="greedy episodes to watch after training (recorded to video without a display); 0 skips")
    g.add_argument("--video", default=None, help="record the watched episodes to this .mp4 or .gif path")
    g.add_argument("--render", action="store_true",
                   help="render while training as the blog does; slows training to the display's 50 fps")
    g.add_argument("--render-every", type=int, default=1, help="with --render, render every K-th episode")
    g.add_argument("--play", default=None, metavar="MODEL_PT",
                   help="load a checkpoint and watch or record it, without training")
    g.add_argument("--quiet", action="store_true", help="print only the summary and paths")
    return p


def parse_with_preset(parser, presets, argv):
    """Parse argv; the chosen preset's values replace the defaults, explicit flags still win."""
    first, _ = parser.parse_known_args(argv)
    preset = first.preset or ("pixels" if first.pixels else "blog")
    parser.set_defaults(**presets[preset], preset=preset)
    return parser.parse_args(argv)


POSITIVE_INTS = ["episodes", "max_episode_steps", "batch_size", "target_replace_iter", "memory_capacity",
                 "hidden", "train_every", "eval_episodes", "render_every", "epsilon_steps"]
PROBABILITIES = ["epsilon", "gamma", "epsilon_start", "epsilon_end"]


def validate_args(args, make_env, default_env):
    """Check every flag; raise UsageError naming the flag and what it allows."""
    def flag(name):
        return "--" + name.replace("_", "-")

    for name in POSITIVE_INTS:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"{flag(name)} must be a positive integer, got {value}")
    for name in ["watch", "eval_every", "learning_starts", "max_env_steps"]:
        value = getattr(args, name)
        if value is not None and value < 0:
            raise UsageError(f"{flag(name)} must be 0 or more, got {value}")
    for name in PROBABILITIES:
        value = getattr(args, name)
        if value is not None and not 0 <= value <= 1:
            raise UsageError(f"{flag(name)} must be in [0, 1], got {value}")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        raise UsageError(f"--lr must be a finite number > 0, got {args.lr}")
    if args.grad_clip is not None and not (args.grad_clip > 0 and math.isfinite(args.grad_clip)):
        raise UsageError(f"--grad-clip must be a finite number > 0, got {args.grad_clip}")
    if args.batch_size > args.memory_capacity:
        raise UsageError(f"--batch-size ({args.batch_size}) cannot exceed --memory-capacity ({args.memory_capacity})")
    if args.learning_starts is not None and args.learning_starts > args.memory_capacity:
        raise UsageError(f"--learning-starts must be at most --memory-capacity ({args.memory_capacity})")
    schedule = [args.epsilon_start, args.epsilon_end, args.epsilon_steps]
    if any(v is not None for v in schedule) and any(v is None for v in schedule):
        raise UsageError("--epsilon-start, --epsilon-end and --epsilon-steps go together: give all three")
    if args.keep_best and not args.eval_every:
        raise UsageError("--keep-best chooses among periodic evaluations: give --eval-every too, "
                         "or --no-keep-best")
    if args.early_stop is not None and not math.isfinite(args.early_stop):
        raise UsageError(f"--early-stop must be a finite number, got {args.early_stop}")
    if args.play is not None:
        if not Path(args.play).is_file():
            raise UsageError(f"--play: no such file: {args.play}")
    else:
        args.env = args.env or default_env
        check_env(make_env, args.env, args.reward)
        # CartPole agents are judged on the standard v1 task; any other env on itself
        args.eval_env = "CartPole-v1" if args.env.startswith("CartPole") else args.env
    check_device(args)
    if args.pixels and args.play is None:
        if not args.env.startswith("CartPole"):
            raise UsageError(f"--pixels crops and scales CartPole's screen; it cannot read {args.env}'s")
        if args.render:
            raise UsageError("--render cannot show a --pixels run while it trains; watch it afterwards "
                             "(--watch) or record it (--video)")
    if args.video and Path(args.video).suffix.lower() not in (".mp4", ".gif"):
        raise UsageError(f"--video must end in .mp4 or .gif, got {args.video}")
    if args.run_name is not None and (not args.run_name or "/" in args.run_name or args.run_name in (".", "..")):
        raise UsageError(f"--run-name must be a plain folder name, got {args.run_name!r}")
    for name in ["video", "plot"]:
        if getattr(args, name):
            check_writable_folder(flag(name), Path(getattr(args, name)).parent)
    if args.play is None:
        check_writable_folder("--runs-dir", args.runs_dir)
    return args


def check_device(args):
    """--device must name a torch device that exists here; only the --pixels CNN uses it."""
    try:
        device = torch.device(args.device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device: not a torch device: {args.device!r} (try cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {args.device}: torch sees no CUDA GPU here (torch {torch.__version__})")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UsageError(f"--device {args.device}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {args.device}: only cpu and cuda are supported")
    if device.type != "cpu" and not args.pixels and args.play is None:
        raise UsageError(f"--device {args.device} is for --pixels; the blog's small MLP runs on the CPU")


def check_env(make_env, env_id, reward):
    """The env must exist, have a discrete action space, and (for --reward shaped) be a CartPole."""
    try:
        env = make_env(env_id, unwrapped=False)
    except gym.error.Error as e:
        raise UsageError(f"--env: unknown or unusable env id {env_id!r} ({e})") from None
    try:
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise UsageError(f"--env {env_id} has a {type(env.action_space).__name__} action space; "
                             "DQN needs a discrete one (e.g. CartPole-v1)")
        if len(env.observation_space.shape or ()) != 1:
            raise UsageError(f"--env {env_id} has image or structured observations; DQN here needs a flat vector")
        if reward == "shaped" and not hasattr(env.unwrapped, "theta_threshold_radians"):
            raise UsageError(f"--reward shaped needs a CartPole env, not {env_id}; use --reward env")
    finally:
        env.close()


def check_writable_folder(flag, folder):
    """Make folder if needed and prove a file can be written there, before any training."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UsageError(f"{flag}: cannot write into {folder} ({e.strerror or e})") from None


# ---------------------------------------------------------------------------------------
# Training hooks: everything the loop needs beyond the blog, in one place
# ---------------------------------------------------------------------------------------
class TrainingHooks:
    """Progress bar, Ctrl-C, divergence guard, epsilon schedule, periodic eval, rendering."""

    stop = False

    def __init__(self, agent, env, args, evaluate, epsilon_schedule=None, log=print, render=False):
        self.agent, self.env, self.args, self.log, self.render = agent, env, args, log, render
        self.evaluate, self.epsilon_schedule = evaluate, epsilon_schedule
        self.evals, self.interrupted, self.diverged = [], False, None
        self.good_state = None  # eval_net weights after the last finite episode
        self.solved = None  # (eval result, eval_net weights) of the eval that triggered --early-stop
        self.best = None  # (eval result, eval_net weights) of the best periodic eval, for --keep-best
        self.progress = None
        self.next_eval = args.eval_every  # a threshold, not a multiple: --pixels steps count 2 frames
        if not args.quiet:
            from tqdm import tqdm

            self.progress = tqdm(total=agent.learning_starts + 1, desc="collecting experience",
                                 unit="transition", leave=False, file=sys.stderr)

    def before_step(self, env_steps):
        if self.args.max_env_steps and env_steps + 1 >= self.args.max_env_steps:
            self.stop = True  # this step is the last one
        if self.epsilon_schedule is not None:
            self.agent.epsilon = self.epsilon_schedule(env_steps)
        if self.args.eval_every and env_steps >= self.next_eval:
            self.next_eval += self.args.eval_every
            self.run_eval(env_steps)

    def run_eval(self, env_steps):
        result = self.evaluate(self.agent, self.args.eval_episodes, self.args.eval_env, seed=eval_seed(self.args))
        result.update(env_steps=env_steps, final=0)
        self.evals.append(result)
        if self.args.keep_best and (self.best is None or result["mean"] > self.best[0]["mean"]):
            self.best = (result, copy_weights(self.agent.eval_net))
        if not self.args.quiet:
            self.log(f"eval @ {env_steps} env steps: greedy return {result['mean']:.1f} "
                     f"± {result['std']:.1f} (min {result['min']:.0f})")
        if self.args.early_stop is not None and not self.args.no_early_stop \
                and result["mean"] >= self.args.early_stop:
            print(f"early stop: greedy eval {result['mean']:.1f} >= {self.args.early_stop} "
                  f"after {env_steps} env steps")
            # the loop still finishes this step; keep the agent exactly as it was evaluated
            self.solved = (result, copy_weights(self.agent.eval_net))
            self.stop = True

    def after_episode(self, record):
        if self.progress is not None:
            self.progress.update(min(record["steps"], self.progress.total - self.progress.n))
            self.progress.set_postfix(episode=record["episode"], steps=record["steps"])
            if record["learning"] or self.progress.n >= self.progress.total:
                self.progress.close()
                self.progress = None
        if math.isfinite(record["loss"]) or not record["learning"]:
            self.good_state = copy_weights(self.agent.eval_net)
        else:
            self.diverged = record
            self.stop = True
        if self.render:  # human mode renders inside env.step; switch it per episode
            next_episode = record["episode"] + 1
            self.env.unwrapped.render_mode = "human" if next_episode % self.args.render_every == 0 else None

    def choose_weights_and_evaluate(self, env_steps, trained):
        """After training: settle which eval_net weights to keep, then the final evaluation.

        Diverged: the last finite weights. Early stop: the weights that passed. --keep-best:
        the best periodic evaluation's (the last weights compete too), re-measured on fresh
        episodes. Otherwise the last weights.
        """
        agent, args = self.agent, self.args
        final = None
        if self.diverged:
            agent.eval_net.load_state_dict(self.good_state)
            r = self.diverged
            print(f"training diverged in episode {r['episode']} (by env step {r['env_steps']}): the loss is "
                  f"{r['loss']}; try a smaller --lr than {args.lr}. Saving the last finite weights.",
                  file=sys.stderr)
        elif self.solved:  # early stop: keep the agent that passed, not the one a step later
            final, weights = self.solved
            agent.eval_net.load_state_dict(weights)
        elif not self.interrupted and trained:
            seed = eval_seed(args)
            if args.keep_best:
                self.run_eval(env_steps)
                result, weights = self.best
                agent.eval_net.load_state_dict(weights)
                print(f"keeping the weights of the best evaluation: {result['mean']:.1f} "
                      f"at {result['env_steps']} env steps")
                seed += args.eval_episodes  # episodes the choice was not made on
            final = self.evaluate(agent, args.eval_episodes, args.eval_env, seed=seed)
            self.evals.append(dict(final, env_steps=env_steps, final=1))
        if final:
            print(f"greedy evaluation on {args.eval_env}, {args.eval_episodes} episodes: "
                  f"mean {final['mean']:.1f} ± {final['std']:.1f}, min {final['min']:.0f}")

    @contextlib.contextmanager
    def ctrl_c_stops_training(self):
        """Inside: the first SIGINT asks the loop to stop at the next step boundary."""
        def handler(signum, frame):
            self.interrupted = True
            self.stop = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            if self.progress is not None:
                self.progress.close()


def copy_weights(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def eval_seed(args):
    """Evaluation episodes get their own seeds, apart from the training env's."""
    return 10_000 + (args.seed or 0)


@contextlib.contextmanager
def ignore_ctrl_c():
    """While saving, a second Ctrl-C must not leave half-written files behind."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------------------------------
# Files: run folders, atomic writes, the metrics CSV
# ---------------------------------------------------------------------------------------
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
EVAL_FIELDS = ["env_steps", "mean", "std", "min", "final"]  # final: 1 for the evaluation after training


def save_evals(evals, path):
    """One CSV row per greedy evaluation: when it ran (env steps) and what it scored."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(EVAL_FIELDS)
        writer.writerows([e[k] for k in EVAL_FIELDS] for e in evals)
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


# ---------------------------------------------------------------------------------------
# Checkpoints: plain tensors and numbers only, loaded with weights_only=True so that a
# file from anywhere can never run code while it is read.
# ---------------------------------------------------------------------------------------
def save_checkpoint(agent, path, env_id, reward, seed, episodes):
    """Write the eval-net weights and what it takes to rebuild them."""
    import gymnasium
    import numpy

    meta = dict(format=CHECKPOINT_FORMAT, env_id=env_id, reward=reward, n_states=agent.n_states,
                n_actions=agent.n_actions, hidden=agent.hidden, seed=seed, episodes=episodes,
                hyperparameters={k: v for k, v in vars(agent).items() if isinstance(v, (int, float, bool, type(None)))
                                 and not k.startswith("_")},
                versions=dict(torch=str(torch.__version__), gymnasium=str(gymnasium.__version__),
                              numpy=str(numpy.__version__)))
    with atomic_path(path) as tmp:
        torch.save(dict(meta=meta, eval_net=agent.eval_net.state_dict()), tmp)
    return path


def load_checkpoint(path, make_agent):
    """Read a checkpoint into a fresh agent; any problem is one UsageError line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own notes on odd pickles: we say it in one line below
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UsageError(f"--play: {path} is not a readable dqn.py checkpoint (it holds objects other than "
                         "tensors and numbers; refused, since loading them could run code)") from None
    except Exception as e:  # truncated, empty, or not a torch file at all
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"--play: {path} is not a readable dqn.py checkpoint (damaged or not a torch file: "
                         f"{first[:120]})") from None
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


# ---------------------------------------------------------------------------------------
# Watching and recording
# ---------------------------------------------------------------------------------------
def can_render(make_env, env_id, log=print):
    """--render needs a window: check once before training instead of failing mid-run."""
    if not display_available():
        log("--render: no display (DISPLAY/WAYLAND_DISPLAY unset); training without rendering")
        return False
    name_display_driver()
    try:
        env = make_env(env_id, render_mode="human")
        env.reset()
        env.render()
        env.close()
        return True
    except Exception as e:
        log(f"--render: no window could open ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
            "training without rendering")
        return False


def name_display_driver():
    """Tell SDL which display to use. Left to choose, it quietly falls back to an invisible
    off-screen driver when the X server is unreachable, and the user would see nothing."""
    if not os.environ.get("SDL_VIDEODRIVER"):
        os.environ["SDL_VIDEODRIVER"] = "x11" if os.environ.get("DISPLAY") else "wayland"


def display_available():
    """True where a window can plausibly open (X11 or Wayland)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def play_episodes(env, policy, episodes, seed, max_steps=WATCH_MAX_STEPS, log=print, frames=None):
    """Run greedy episodes on env; collect rgb frames into frames when given. Returns steps each."""
    lengths = []
    for i in range(episodes):
        s, _ = env.reset(seed=seed + i)
        if frames is not None:
            frames.append(env.render())
        for step in range(1, max_steps + 1):
            s, _, terminated, truncated, _ = env.step(policy(s))
            if frames is not None:
                frames.append(env.render())
            if terminated or truncated:
                break
        lengths.append(step)
        log(f"watch episode {i + 1}/{episodes}: pole stayed up for {step} steps")
    return lengths


def watch_in_window(make_env, policy, episodes, seed, log=print):
    """Play in a real window at the env's own speed. Returns False if no window could open."""
    name_display_driver()
    try:
        env = make_env(render_mode="human")
        try:
            play_episodes(env, policy, episodes, seed, log=log)
        finally:
            env.close()
        return True
    except Exception as e:  # pygame.error and friends: no usable display after all
        log(f"no window could open ({str(e).splitlines()[0] if str(e) else type(e).__name__}); recording instead")
        return False


def record_video(make_env, policy, episodes, seed, path, log=print):
    """Record greedy episodes to path (.mp4 via ffmpeg, else .gif). Returns the path written."""
    import imageio.v2 as imageio

    os.environ["SDL_VIDEODRIVER"] = "dummy"  # frames are drawn off-screen: no display needed
    env = make_env(render_mode="rgb_array")
    frames = []
    try:
        play_episodes(env, policy, episodes, seed, log=log, frames=frames)
    finally:
        env.close()
    path = Path(path)
    if path.suffix.lower() == ".mp4" and not ffmpeg_available():
        path = path.with_suffix(".gif")
        log("ffmpeg is not available: writing a GIF instead")
    fps = env.metadata.get("render_fps", 50)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".gif":
            imageio.mimsave(tmp, frames[::2], format="GIF", duration=2000 / fps, loop=0)
        else:
            imageio.mimsave(tmp, frames, format="FFMPEG", fps=fps, macro_block_size=8)
    return path


def ffmpeg_available():
    """True when imageio's ffmpeg plugin can find an ffmpeg binary."""
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
        return True
    except Exception:
        return False
