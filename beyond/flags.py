"""The flags of python dqn.py, built from the run configuration (beyond/config.py), and their validation.

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
from beyond import UsageError, config, limits, tensorboard
from beyond.evaluation import eval_env_id
from beyond.pixels import FRAME_STACK, frame_shape
from beyond.tasks import EnvIdError, check_env_id, is_cartpole, is_cartpole_env, make_env, task_for, threshold_of


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (no usage block), like every other input error."""

    def error(self, message):
        raise UsageError(f"{message} (see --help)")


def build_parser(defaults=True):
    """The argparse parser of config.GROUPS; defaults are the blog's hyperparameters.

    defaults=False: a parser whose namespace holds only the flags that argv gives.
    """
    p = OneLineErrorParser(
        prog="dqn.py",
        description="Train the blog's DQN on CartPole, plot it, then watch it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=None if defaults else argparse.SUPPRESS,
    )
    for title, settings in config.GROUPS:
        group = p.add_argument_group(title)
        for setting in settings:
            group.add_argument(setting.option, **argparse_options(setting, defaults))
    return p


def argparse_options(setting, defaults=True):
    """add_argument's keywords for one setting."""
    options = dict(help=setting.help)
    if defaults:
        options["default"] = setting.default
    if setting.flag == "switch":
        return dict(options, action=argparse.BooleanOptionalAction)
    if setting.flag == "on":
        return dict(options, action="store_true")
    if setting.kind is not str:
        options["type"] = setting.kind
    if setting.choices:
        options["choices"] = list(setting.choices)
    if setting.metavar:
        options["metavar"] = setting.metavar
    return options


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
        return config.tuned_on(task)
    defaults = config.PRESETS[preset]
    if env_id and "early_stop" in defaults:
        return dict(defaults, early_stop=threshold_of(eval_env_id(env_id)))
    return defaults


LONGEST_TEXT = 200  # characters of a text setting
FILE_SETTINGS = [setting for setting in config.SETTINGS.values() if not setting.output]


def file_settings(args):
    """The settings a file keeps: every setting's value except the outputs'."""
    return {setting.name: getattr(args, setting.name) for setting in FILE_SETTINGS}


def settings_from_file(values):
    """A file's settings as parsed flags, held to every rule a flag is: kinds, choices, validate_args.

    The outputs are the defaults (no file names a path to write), and the env must be one
    of tasks.KNOWN_ENVS. Raises UsageError naming the setting.
    """
    defaults = vars(build_parser().parse_args([]))
    return validate_args(argparse.Namespace(**{**defaults, **checked_settings(values)}))


def checked_settings(values):
    """A file's settings, each of its flag's kind, choices and range, the env a known one: a dict by name."""
    kept = {setting.name for setting in FILE_SETTINGS}
    if isinstance(values, dict):  # a file from before a setting existed ran at its default
        values = {**config.SETTINGS_ADDED_SINCE, **values}
    if not isinstance(values, dict) or set(values) != kept:
        differ = sorted(map(str, set(values) ^ kept))[:5] if isinstance(values, dict) else type(values).__name__
        raise UsageError(f"its settings are not this program's (differing: {differ})")
    parsed = {name: setting_value(config.SETTINGS[name], value) for name, value in values.items()}
    for name, value in parsed.items():
        check_range(config.SETTINGS[name], value)
    try:
        check_env_id(parsed["env"], from_file=True)
    except EnvIdError as e:
        raise UsageError(f"--env: {e}") from None
    return parsed


def setting_value(setting, value):
    """value, if the setting's flag could have given it; ints stand for floats."""
    if value is None and setting.default is None:
        return None
    kind = setting.kind
    fits = type(value) is kind or (kind is float and type(value) is int)
    if not fits:
        raise UsageError(f"{setting.option}: a {type(value).__name__} where a flag gives a {kind.__name__}")
    if kind is str and len(value) > LONGEST_TEXT:
        raise UsageError(f"{setting.option}: longer than {LONGEST_TEXT} characters")
    if setting.choices is not None and value not in setting.choices:
        raise UsageError(f"{setting.option}: {str(value)[:40]!r} is not one of {', '.join(map(str, setting.choices))}")
    return float(value) if kind is float else value


def check_range(setting, value):
    """One UsageError line if value lies outside the setting's range (None: not set, nothing to check)."""
    if value is None:
        return
    if setting.kind is int and setting.least is not None and value < setting.least:
        allowed = "be a positive integer" if setting.least == 1 else "be 0 or more"
        raise UsageError(f"{setting.option} must {allowed}, got {value}")
    if setting.kind is int and setting.most is not None and value > setting.most:
        raise UsageError(f"{setting.option} must be at most {setting.most:,}, got {value:,}")
    if setting.kind is float and setting.least is not None and not setting.least <= value <= setting.most:
        raise UsageError(f"{setting.option} must be in [{setting.least:g}, {setting.most:g}], got {value}")


def validate_args(args):
    """Check every flag; raise UsageError naming the flag and what it allows."""
    for setting in config.SETTINGS.values():
        check_range(setting, getattr(args, setting.name))
    check_evaluation_cost(args)
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
    if (args.lr_end is None) != (args.lr_steps is None):
        raise UsageError("--lr-end and --lr-steps go together: give both")
    if args.lr_end is not None and not (args.lr_end > 0 and math.isfinite(args.lr_end)):
        raise UsageError(f"--lr-end must be a finite number > 0, got {args.lr_end}")
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
    if args.hidden_layers > 1 and args.pixels:
        raise UsageError("--hidden-layers stacks the state MLP's layers; it does not go with --pixels")
    if args.averaged_policy and args.pixels:
        raise UsageError("--averaged-policy averages the state MLP's weights; it does not go with --pixels")
    if args.track_strip and not args.pixels and args.play is None:
        raise UsageError("--track-strip is part of the --pixels view; the state has the cart's position already")
    if args.pixels and args.play is None:
        if not is_cartpole(args.env):
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
            check_writable_folder(config.SETTINGS[name].option, Path(getattr(args, name)).parent)
    if args.play is None:
        check_writable_folder("--runs-dir", args.runs_dir)
    if args.tensorboard:
        tensorboard.check_installed()
    return args


def check_evaluation_cost(args):
    """Evaluations that would take the run over: bounded before it starts."""
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
        if reward == "shaped" and not is_cartpole_env(env):
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
