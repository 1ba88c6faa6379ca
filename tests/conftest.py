import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The fuzzing tests' budgets: "ci" (the default) is fast and the same every run; `make fuzz`
# runs "long", with a fresh random seed that Hypothesis prints when it finds something.
settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True,
                          suppress_health_check=list(HealthCheck), database=None)  # fmt: skip
settings.register_profile("long", max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# A short run that still learns: a small memory fills in a few episodes.
SHORT = [
    "--episodes",
    "25",
    "--memory-capacity",
    "200",
    "--max-episode-steps",
    "300",
    "--seed",
    "0",
    "--eval-episodes",
    "2",
]


def headless_env(**extra):
    """The environment a CI job has: CI=true, no display, SDL told to draw off-screen."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(CI="true", SDL_VIDEODRIVER="dummy", PYTHONUNBUFFERED="1", **extra)
    return env


def quick_reference(tmp_path):
    """A folder with a reference for the quick run's settings (the shipped ones have none), made up for the test."""
    from beyond.flags import parse_args
    from beyond.reference import settings_of

    flags = ["--episodes", "40", "--learning-starts", "200"]
    settings = json.loads(json.dumps(settings_of(parse_args(flags))))
    runs = [dict(seed=s, curve=[(300, 20.0 * s), (2500, 100.0 * s)], solved_at=None, final_return=100.0 * s,
                 env_steps=2500) for s in range(1, 4)]  # fmt: skip
    folder = tmp_path / "references"
    folder.mkdir()
    reference = dict(
        command="python dqn.py --episodes 40 --learning-starts 200", flags=flags, settings=settings, runs=runs
    )
    (folder / "quick.json").write_text(json.dumps(reference))
    return folder


def run_dqn(*args, cwd, env=None, timeout=300):
    """Run `python dqn.py ARGS` as a user would, with no stdin."""
    return subprocess.run(
        [sys.executable, str(ROOT / "dqn.py"), *map(str, args)],
        cwd=cwd,
        env=env or headless_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_dqn(*args, cwd):
    """Start `python dqn.py ARGS` as a user would, with no stdin; its stdout and stderr are pipes to read."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "dqn.py"), *map(str, args)],
        cwd=cwd,
        env=headless_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished_run(tmp_path_factory, name, *args):
    """Run dqn.py ARGS to the end in a fresh folder; return its run folder and the result."""
    cwd = tmp_path_factory.mktemp(name)
    result = run_dqn(*args, "--run-name", name, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "runs" / name, result


@pytest.fixture
def dqn_cli(tmp_path):
    """run_dqn bound to a scratch folder (runs/ lands there)."""
    return lambda *args, **kw: run_dqn(*args, cwd=tmp_path, **kw)


def read_metrics(path):
    """The rows of a CSV that a run wrote (metrics.csv, evals.csv), as dicts of strings."""
    with open(path) as f:
        return list(csv.DictReader(f))


def video_in(run_dir, stem):
    """The video a run wrote as stem: stem.mp4, or stem.gif where ffmpeg is missing."""
    found = [p for p in (run_dir / f"{stem}.mp4", run_dir / f"{stem}.gif") if p.exists()]
    assert len(found) == 1, f"{stem}.mp4 or {stem}.gif in {sorted(p.name for p in run_dir.iterdir())}"
    assert found[0].stat().st_size > 0
    return found[0]


def assert_one_line_error(result, *needles):
    """Exit status 2, a single stderr line naming the problem, and no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def first_format(data):
    """A checkpoint as the program saved it before checkpoints kept their run's settings."""
    from beyond.config import EXTENSION_DEFAULTS

    meta = data["meta"]
    settings = meta.pop("settings")
    meta.update(
        format="dqn-cartpole-checkpoint/1",
        env_id=settings["env"],
        reward=settings["reward"],
        hidden=settings["hidden"],
        seed=settings["seed"],
        extensions={name: settings[name] for name in EXTENSION_DEFAULTS},
        hyperparameters=dict(lr=settings["lr"], gamma=settings["gamma"]),  # a record that loading never read
    )
    return data
