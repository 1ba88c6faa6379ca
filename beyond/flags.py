"""The flags of python dqn.py, the presets that set their defaults, and their validation.

Every bad value is caught here, before any training, as one UsageError line.
"""

import argparse
import math
import re
import tempfile
from pathlib import Path

import gymnasium as gym
import torch

import dqn
from beyond import UsageError, limits, tensorboard
from beyond.evaluation import eval_env_id
from beyond.pixels import FRAME_STACK, frame_shape
from beyond.tasks import TASKS, EnvIdError, check_env_id, make_env, run_settings, task_for, threshold_of

# The standard task, learned from its own reward with the known fixes: what both presets share.
STANDARD_TASK = dict(
    env="CartPole-v1",
    reward="env",
    terminal_mask=True,
    double=True,
    huber=True,
    grad_clip=10.0,
    gamma=0.99,
    learning_starts=1000,
    epsilon_start=0.0,
    early_stop=475.0,
    episodes=100_000,
)
# Presets: sets of defaults (see docs/going-further.md and docs/pixels.md).
PRESETS = {
    "blog": {},
    # CartPole's row of the task table (beyond/tasks.py); --env picks another row's
    "tuned": dict(STANDARD_TASK, **run_settings(TASKS["CartPole-v1"]), **TASKS["CartPole-v1"].tuned),
    # --pixels: from screen images (beyond/pixels.py); the screens and the protocol of
    # bench/pixel_protocol.py chose the view, the reward and n_step (docs/pixels.md)
    "pixels": dict(
        STANDARD_TASK,
        pixels=True,
        track_strip=True,
        reward="shaped",  # the blog's: its cart-position term keeps the cart off the track's ends
        n_step=3,
        lr=1e-4,
        batch_size=32,
        hidden=256,
        memory_capacity=150_000,
        train_every=4,
        target_replace_iter=1000,
        epsilon_end=0.99,
        epsilon_steps=40_000,
        eval_every=20_000,
        eval_episodes=20,
        confirm_episodes=100,
        value_estimates=False,  # playing on past each episode's end costs renders: off
        keep_best=True,
        max_env_steps=500_000,
    ),
}


SWITCH = dict(action=argparse.BooleanOptionalAction, default=False)  # off unless given; --no-X undoes a preset's X


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (no usage block), like every other input error."""

    def error(self, message):
        raise UsageError(f"{message} (see --help)")


def build_parser():
    """The argparse parser; defaults are the blog's hyperparameters."""
    h = dqn.hyperparameters
    p = OneLineErrorParser(
        prog="dqn.py",
        description="Train the blog's DQN on CartPole, plot it, then watch it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("training")
    g.add_argument("--episodes", type=int, default=300, help="training episodes")
    g.add_argument(
        "--max-episode-steps",
        type=int,
        default=dqn.MAX_EPISODE_STEPS,
        help="cap on each episode; the unwrapped env never ends once the agent is good",
    )
    g.add_argument(
        "--max-env-steps", type=int, default=0, help="stop training after this many env steps in all (0: no limit)"
    )
    g.add_argument("--seed", type=int, default=None, help="seed torch, numpy and the env for a repeatable run")
    g.add_argument(
        "--env",
        default=None,
        help="gymnasium env id with a discrete action space (default: the blog's CartPole-v0; "
        "with --play: the checkpoint's)",
    )
    g.add_argument(
        "--reward",
        choices=["shaped", "env"],
        default="shaped",
        help="shaped: the blog's r1 + r2 on the unwrapped env; env: the env's own "
        "reward on the standard, time-limited task",
    )
    g.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="a set of defaults; flags given explicitly still win (default: blog, or pixels with --pixels)",
    )
    g.add_argument(
        "--pixels",
        action="store_true",
        help="learn from screen images instead of the 4 state numbers (beyond/pixels.py); "
        "implies --preset pixels unless another preset is given",
    )
    g.add_argument(
        "--track-strip",
        **SWITCH,
        help="with --pixels: the view's bottom rows show where the cart is on the whole track",
    )
    g.add_argument(
        "--device",
        default="cpu",
        help="torch device for the --pixels CNN, e.g. cuda (the state MLP always runs on the CPU)",
    )
    g = p.add_argument_group("hyperparameters (the blog's values)")
    g.add_argument("--batch-size", type=int, default=h["batch_size"])
    g.add_argument("--lr", type=float, default=h["lr"], help="Adam learning rate")
    g.add_argument(
        "--epsilon",
        type=float,
        default=h["epsilon"],
        help="probability of acting greedily (the blog's convention, not the usual one)",
    )
    g.add_argument("--gamma", type=float, default=h["gamma"], help="discount factor")
    g.add_argument(
        "--target-replace-iter",
        type=int,
        default=h["target_replace_iter"],
        help="copy eval_net into target_net every this many learn steps",
    )
    g.add_argument("--memory-capacity", type=int, default=h["memory_capacity"], help="replay memory rows")
    g = p.add_argument_group("beyond the blog: the known DQN fixes (off by default)")
    g.add_argument("--hidden", type=int, default=h["hidden"], help="hidden units of q_net")
    g.add_argument(
        "--hidden-layers",
        type=int,
        default=1,
        help="hidden layers of --hidden units (beyond/deep.py; 1: the blog's q_net, 2: SB3's)",
    )
    g.add_argument(
        "--learning-starts",
        type=int,
        default=None,
        help="learn once more than this many transitions have been stored (default: memory capacity; "
        "more than the capacity is allowed: a small memory can wait as long as a large one)",
    )
    g.add_argument("--train-every", type=int, default=h["train_every"], help="env steps per learn() call")
    g.add_argument("--double", **SWITCH, help="Double DQN target")
    g.add_argument(
        "--terminal-mask",
        **SWITCH,
        help="no bootstrap from terminated states (truncated ones still bootstrap)",
    )
    g.add_argument("--huber", **SWITCH, help="Smooth L1 (Huber) loss instead of MSE")
    g.add_argument(
        "--grad-clip", type=float, default=None, help="clip the gradient norm at this value (0: no clipping)"
    )
    g = p.add_argument_group("beyond the blog: extensions from Rainbow (off by default; docs/going-further.md)")
    g.add_argument(
        "--n-step", type=int, default=1, help="learn from the next N rewards before bootstrapping (1: the blog's)"
    )
    g.add_argument("--dueling", **SWITCH, help="dueling head: Q = V + A - mean(A)")
    g.add_argument(
        "--prioritized",
        **SWITCH,
        help="prioritized replay: draw rows by their last |TD error|",
    )
    g.add_argument(
        "--replay-ratio",
        type=int,
        default=1,
        help="learn steps for each env step that learns (beyond/replay_ratio.py; 1: the blog's)",
    )
    g.add_argument(
        "--per-alpha", type=float, default=0.6, help="with --prioritized: priority = (|TD error| + eps)^alpha"
    )
    g.add_argument(
        "--per-beta", type=float, default=0.4, help="with --prioritized: importance-weight exponent at the start"
    )
    g.add_argument(
        "--per-beta-steps", type=int, default=100_000, help="with --prioritized: env steps over which beta rises to 1"
    )
    g = p.add_argument_group("exploration schedule (off by default)")
    g.add_argument(
        "--epsilon-start",
        type=float,
        default=None,
        help="greedy probability at step 0; rises linearly to --epsilon-end",
    )
    g.add_argument("--epsilon-end", type=float, default=None, help="greedy probability after --epsilon-steps")
    g.add_argument("--epsilon-steps", type=int, default=None, help="env steps of the linear schedule")
    g = p.add_argument_group("evaluation")
    g.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="also run a greedy evaluation every this many env steps (0: only at the end)",
    )
    g.add_argument("--eval-episodes", type=int, default=20, help="episodes of each greedy evaluation")
    g.add_argument("--early-stop", type=float, default=None, help="stop once a greedy evaluation's mean reaches this")
    g.add_argument("--no-early-stop", action="store_true", help="keep training past --early-stop")
    g.add_argument(
        "--confirm-episodes",
        type=int,
        default=0,
        help="stop early only if the passing weights pass again on this many fresh episodes (0: no check)",
    )
    g.add_argument(
        "--value-estimates",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="at each evaluation also measure the net's value estimate and the true discounted return "
        "(q_estimate, true_return in evals.csv; beyond/values.py)",
    )
    g.add_argument(
        "--keep-best",
        **SWITCH,
        help="end with the weights of the best periodic evaluation, re-measured on fresh episodes",
    )
    g = p.add_argument_group("output and watching")
    g.add_argument("--run-name", default=None, help="folder name under --runs-dir (default: a timestamp)")
    g.add_argument("--runs-dir", default="runs", help="where run folders go")
    g.add_argument("--plot", default=None, help="reward plot path (default: <run folder>/rewards.png)")
    g.add_argument("--no-show", action="store_true", help="save the plot but never open a window")
    g.add_argument(
        "--watch",
        type=int,
        default=3,
        help="greedy episodes to watch after training (recorded to video without a display); 0 skips",
    )
    g.add_argument("--no-overlay", action="store_true", help="watch the bare picture, without the Q-value panel")
    g.add_argument(
        "--snapshots",
        type=int,
        default=6,
        help="after training, play this many copies of the agent saved along the way, as learning.mp4 (0: none)",
    )
    g.add_argument("--video", default=None, help="record the watched episodes to this .mp4 or .gif path")
    g.add_argument(
        "--render",
        action="store_true",
        help="render while training as the blog does; slows training to the display's 50 fps",
    )
    g.add_argument("--render-every", type=int, default=1, help="with --render, render every K-th episode")
    g.add_argument(
        "--play", default=None, metavar="MODEL_PT", help="load a checkpoint and watch or record it, without training"
    )
    g.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="carry on a run stopped by Ctrl-C or its budget, with its own settings; "
        "--max-env-steps and --episodes set the new total",
    )
    g.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log every episode and evaluation for `tensorboard --logdir runs` (needs: pip install tensorboard)",
    )
    g.add_argument("--quiet", action="store_true", help="print only the summary and paths")
    return p


def parse_args(argv=None):
    """Parse and validate argv; the chosen preset's values replace the defaults, explicit flags win."""
    parser = build_parser()
    first, _ = parser.parse_known_args(argv)
    if first.env is not None:  # before the preset looks the env up
        checked_env(first.env)
    preset = first.preset or ("pixels" if first.pixels else "blog")
    parser.set_defaults(**preset_defaults(preset, first.env), preset=preset)
    return validate_args(parser.parse_args(argv))


def preset_defaults(preset, env_id):
    """The preset's values on env_id: --preset tuned takes that env's row of the task table, and
    a preset that stops early stops at that env's threshold (none where gymnasium has none)."""
    task = task_for(env_id or "")
    if preset == "tuned" and task:
        return dict(STANDARD_TASK, **run_settings(task), **task.tuned)
    defaults = PRESETS[preset]
    if env_id and "early_stop" in defaults:
        return dict(defaults, early_stop=threshold_of(eval_env_id(env_id)))
    return defaults


# Settings that name where a run writes: only the command line gives them, never a file.
OUTPUT_SETTINGS = ("run_name", "runs_dir", "plot", "video", "play", "resume")
LONGEST_TEXT = 200  # characters of a text setting


def setting_kinds():
    """{dest: (type, may be None, choices)} of every flag: what a value read from a file must be."""
    kinds = {}
    for action in build_parser()._actions:  # argparse has no public list of its actions
        if action.dest == "help":
            continue
        kind = bool if action.nargs == 0 else action.type or str
        kinds[action.dest] = (kind, action.default is None, action.choices)
    return kinds


def file_settings(args):
    """The settings a file keeps: every flag's value except the outputs'."""
    return {name: getattr(args, name) for name in setting_kinds() if name not in OUTPUT_SETTINGS}


SETTINGS_ADDED_SINCE = dict(hidden_layers=1)  # settings newer than resume format 3 and the reference files, as they ran


def settings_from_file(values):
    """A file's settings as parsed flags, held to every rule a flag is: kinds, choices, validate_args.

    The outputs are the defaults (no file names a path to write), and the env must be one
    of tasks.KNOWN_ENVS. Raises UsageError naming the setting.
    """
    kinds = {name: kind for name, kind in setting_kinds().items() if name not in OUTPUT_SETTINGS}
    if isinstance(values, dict):  # a file from before a setting existed ran at its default
        values = {**{name: value for name, value in SETTINGS_ADDED_SINCE.items() if name in kinds}, **values}
    if not isinstance(values, dict) or set(values) != set(kinds):
        differ = sorted(map(str, set(values) ^ set(kinds)))[:5] if isinstance(values, dict) else type(values).__name__
        raise UsageError(f"its settings are not this program's (differing: {differ})")
    parsed = {}
    for name, value in values.items():
        parsed[name] = setting_value(name, value, *kinds[name])
    try:
        check_env_id(parsed["env"], from_file=True)
    except EnvIdError as e:
        raise UsageError(f"--env: {e}") from None
    defaults = vars(build_parser().parse_args([]))
    return validate_args(argparse.Namespace(**{**defaults, **parsed}))


def setting_value(name, value, kind, nullable, choices):
    """value, if a flag of this kind could have given it; ints stand for floats."""
    flag = "--" + name.replace("_", "-")
    if value is None and nullable:
        return None
    fits = type(value) is kind or (kind is float and type(value) is int)
    if not fits:
        raise UsageError(f"{flag}: a {type(value).__name__} where a flag gives a {kind.__name__}")
    if kind is str and len(value) > LONGEST_TEXT:
        raise UsageError(f"{flag}: longer than {LONGEST_TEXT} characters")
    if choices is not None and value not in choices:
        raise UsageError(f"{flag}: {str(value)[:40]!r} is not one of {', '.join(map(str, choices))}")
    return float(value) if kind is float else value


POSITIVE_INTS = [
    "episodes",
    "max_episode_steps",
    "batch_size",
    "target_replace_iter",
    "memory_capacity",
    "hidden",
    "hidden_layers",
    "train_every",
    "eval_episodes",
    "render_every",
    "epsilon_steps",
    "n_step",
    "per_beta_steps",
    "replay_ratio",
]
NON_NEGATIVE_INTS = ["watch", "eval_every", "learning_starts", "max_env_steps", "snapshots", "confirm_episodes"]
PROBABILITIES = ["epsilon", "gamma", "epsilon_start", "epsilon_end", "per_alpha", "per_beta"]


def validate_args(args):
    """Check every flag; raise UsageError naming the flag and what it allows."""

    def flag(name):
        return "--" + name.replace("_", "-")

    for name in POSITIVE_INTS:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"{flag(name)} must be a positive integer, got {value}")
    for name in NON_NEGATIVE_INTS:
        value = getattr(args, name)
        if value is not None and value < 0:
            raise UsageError(f"{flag(name)} must be 0 or more, got {value}")
    for name in [*POSITIVE_INTS, *NON_NEGATIVE_INTS, "seed"]:
        value = getattr(args, name)
        if value is not None and value > limits.LARGEST_COUNT:
            raise UsageError(f"{flag(name)} must be at most {limits.LARGEST_COUNT:,}, got {value:,}")
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")
    check_evaluation_cost(args)
    for name in PROBABILITIES:
        value = getattr(args, name)
        if value is not None and not 0 <= value <= 1:
            raise UsageError(f"{flag(name)} must be in [0, 1], got {value}")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        raise UsageError(f"--lr must be a finite number > 0, got {args.lr}")
    if args.grad_clip == 0:
        args.grad_clip = None  # 0 switches clipping off, e.g. over a preset's
    if args.grad_clip is not None and not (args.grad_clip > 0 and math.isfinite(args.grad_clip)):
        raise UsageError(f"--grad-clip must be a finite number > 0 (or 0: off), got {args.grad_clip}")
    if args.batch_size > args.memory_capacity:
        raise UsageError(f"--batch-size ({args.batch_size}) cannot exceed --memory-capacity ({args.memory_capacity})")
    if args.n_step > args.memory_capacity:
        raise UsageError(f"--n-step ({args.n_step}) cannot exceed --memory-capacity ({args.memory_capacity})")
    schedule = [args.epsilon_start, args.epsilon_end, args.epsilon_steps]
    if any(v is not None for v in schedule) and any(v is None for v in schedule):
        raise UsageError("--epsilon-start, --epsilon-end and --epsilon-steps go together: give all three")
    if args.keep_best and not args.eval_every:
        raise UsageError("--keep-best chooses among periodic evaluations: give --eval-every too, or --no-keep-best")
    if args.early_stop is not None and not math.isfinite(args.early_stop):
        raise UsageError(f"--early-stop must be a finite number, got {args.early_stop}")
    if args.play is not None:
        if not Path(args.play).is_file():
            raise UsageError(f"--play: no such file: {args.play}")
    else:
        args.env = args.env or dqn.ENV_ID
        obs_shape, n_actions = observation_of(args)
        args.eval_env = eval_env_id(args.env)
        check_memory(args, obs_shape, n_actions)
    check_device(args)
    if args.hidden_layers > 1 and (args.pixels or args.dueling):
        raise UsageError("--hidden-layers stacks the state MLP's layers; it does not go with --pixels or --dueling")
    if args.track_strip and not args.pixels and args.play is None:
        raise UsageError("--track-strip is part of the --pixels view; the state has the cart's position already")
    if args.pixels and args.play is None:
        if not args.env.startswith("CartPole"):
            raise UsageError(f"--pixels crops and scales CartPole's screen; it cannot read {args.env}'s")
        if args.render:
            raise UsageError(
                "--render cannot show a --pixels run while it trains; watch it afterwards "
                "(--watch) or record it (--video)"
            )
    if args.video and Path(args.video).suffix.lower() not in (".mp4", ".gif"):
        raise UsageError(f"--video must end in .mp4 or .gif, got {args.video}")
    if args.run_name is not None and (not args.run_name or "/" in args.run_name or args.run_name in (".", "..")):
        raise UsageError(f"--run-name must be a plain folder name, got {args.run_name!r}")
    for name in ["video", "plot"]:
        if getattr(args, name):
            check_writable_folder(flag(name), Path(getattr(args, name)).parent)
    if args.play is None:
        check_writable_folder("--runs-dir", args.runs_dir)
    if args.tensorboard:
        tensorboard.check_installed()
    return args


def check_evaluation_cost(args):
    """Evaluations and watching that would take the run over: bounded before it starts."""
    for name, most in [
        ("eval_episodes", limits.LARGEST_EVAL_EPISODES),
        ("confirm_episodes", limits.LARGEST_EVAL_EPISODES),
        ("watch", limits.LARGEST_WATCH),
        ("snapshots", limits.LARGEST_SNAPSHOTS),
        ("replay_ratio", limits.LARGEST_REPLAY_RATIO),
        ("hidden_layers", limits.LARGEST_HIDDEN_LAYERS),
    ]:
        if getattr(args, name) > most:
            raise UsageError(f"--{name.replace('_', '-')} must be at most {most:,}, got {getattr(args, name):,}")
    least = limits.STEPS_PER_EVAL_EPISODE * args.eval_episodes
    if args.eval_every and args.eval_every < least:
        raise UsageError(
            f"--eval-every {args.eval_every} with --eval-episodes {args.eval_episodes} would spend far more env "
            f"steps evaluating than training: give --eval-every at least {least} or fewer --eval-episodes"
        )


def observation_of(args):
    """The shape of what the run's agent reads (the state, or --pixels' frame stack) and its number of actions.

    check_env's checks come with it: one line for an env that cannot be made or used.
    """
    obs_shape, n_actions = check_env(args.env, args.reward)
    return ((FRAME_STACK, *frame_shape()) if args.pixels else obs_shape), n_actions


def check_memory(args, obs_shape, n_actions):
    """Refuse settings whose replay memory and nets would not fit in this machine's memory."""
    too_much = limits.fits_in_memory(args, obs_shape, n_actions)
    if too_much:
        raise UsageError(
            f"--memory-capacity {args.memory_capacity:,} with --hidden {args.hidden:,} and --batch-size "
            f"{args.batch_size:,} {too_much}"
        )


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


def checked_env(env_id):
    """env_id if this program makes it (tasks.check_env_id), else one UsageError line."""
    try:
        return check_env_id(env_id)
    except EnvIdError as e:
        raise UsageError(f"--env: {e}") from None


def check_env(env_id, reward):
    """The env must exist, have a discrete action space, and (for --reward shaped) be a CartPole.

    Returns its observation's shape and its number of actions.
    """
    try:
        env = make_env(checked_env(env_id), unwrapped=False)
    except gym.error.DependencyNotInstalled as e:
        raise UsageError(f"--env {env_id} needs {missing_extra(e)}") from None
    except gym.error.Error as e:
        raise UsageError(f"--env: unknown or unusable env id {env_id!r} ({e})") from None
    try:
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise UsageError(
                f"--env {env_id} has a {type(env.action_space).__name__} action space; "
                "DQN needs a discrete one (e.g. CartPole-v1)"
            )
        if len(env.observation_space.shape or ()) != 1:
            raise UsageError(f"--env {env_id} has image or structured observations; DQN here needs a flat vector")
        if reward == "shaped" and not hasattr(env.unwrapped, "theta_threshold_radians"):
            raise UsageError(f"--reward shaped needs a CartPole env, not {env_id}; use --reward env")
        return env.observation_space.shape, int(env.action_space.n)
    finally:
        env.close()


def missing_extra(error):
    """What to install for an env whose package is missing: the gymnasium extra that its message names."""
    extra = re.search(r"gymnasium\[([\w-]+)\]", str(error))
    if extra:
        return f'{extra[1]}: pip install "gymnasium[{extra[1]}]"'
    return f"a package that is not installed ({str(error).splitlines()[0]})"


def check_writable_folder(flag, folder):
    """Prove, before any training, that folder can be written (made where missing); nothing is created yet."""
    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--{flag.lstrip('-')}: cannot write into {folder} ({existing} is not a folder)")
    try:  # a file that vanishes when closed: nothing is left behind
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise UsageError(f"--{flag.lstrip('-')}: cannot write into {folder} ({e.strerror or e})") from None
