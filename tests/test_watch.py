"""Seeing the agent: a real window under Xvfb, live rendering, and video on headless machines."""

import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from conftest import SHORT, headless_env, run_dqn

needs_xvfb = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def x_display():
    """A real X server on a free display number, for as long as the module's tests need it."""
    for number in range(99, 120):
        if not os.path.exists(f"/tmp/.X11-unix/X{number}") and not os.path.exists(f"/tmp/.X{number}-lock"):
            break
    server = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 20
    while not os.path.exists(f"/tmp/.X11-unix/X{number}"):
        if server.poll() is not None or time.time() > deadline:
            pytest.skip("Xvfb did not start")
        time.sleep(0.1)
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def windowed_env(display):
    env = headless_env(DISPLAY=display)
    env.pop("SDL_VIDEODRIVER")  # a real window this time
    return env


@needs_xvfb
def test_watch_opens_a_window_and_plays_greedy_episodes(tmp_path, x_display):
    result = run_dqn(*SHORT, "--watch", "1", "--run-name", "w", cwd=tmp_path, env=windowed_env(x_display))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "watch episode 1/1: pole stayed up for" in result.stdout
    assert "no window could open" not in result.stdout
    assert not (tmp_path / "runs" / "w" / "agent.mp4").exists()  # watched, so nothing recorded


@needs_xvfb
def test_render_during_training_every_kth_episode(tmp_path, x_display):
    start = time.perf_counter()
    result = run_dqn(
        "--episodes",
        "4",
        "--render",
        "--render-every",
        "2",
        "--max-episode-steps",
        "25",
        "--watch",
        "0",
        "--seed",
        "0",
        "--run-name",
        "r",
        cwd=tmp_path,
        env=windowed_env(x_display),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "training without rendering" not in result.stdout
    assert time.perf_counter() - start < 120


def test_render_without_display_trains_anyway(dqn_cli):
    env = headless_env()
    env.pop("SDL_VIDEODRIVER")  # as on a real server: any attempt to open a window would fail
    result = dqn_cli(
        "--episodes", "3", "--render", "--watch", "0", "--seed", "0", "--max-episode-steps", "50", env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--render: no display" in result.stdout


def test_window_that_cannot_open_falls_back_to_recording(dqn_cli, tmp_path):
    # DISPLAY points at an X server that does not exist: the window fails, the video is made.
    env = headless_env(DISPLAY=":987")
    env.pop("SDL_VIDEODRIVER")
    result = run_dqn(*SHORT, "--watch", "1", "--run-name", "f", cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no window could open" in result.stdout
    assert (tmp_path / "runs" / "f" / "agent.mp4").stat().st_size > 0


def read_frames(path):
    import imageio.v2 as imageio

    return [np.asarray(frame) for frame in imageio.mimread(path, memtest=False)]


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_recorded_video_has_moving_frames(tmp_path, suffix):
    import dqn
    from beyond.watching import record_video

    agent = dqn.DQN(4, 2, seed=0)
    make = lambda render_mode: dqn.make_env(render_mode=render_mode)  # noqa: E731
    path = record_video(make, agent.greedy_action, 1, 0, tmp_path / f"clip{suffix}")
    frames = read_frames(path)
    assert path.suffix == suffix and len(frames) >= 3
    assert frames[0].ndim == 3 and frames[0].shape[2] in (3, 4)
    assert any(not np.array_equal(frames[0], f) for f in frames[1:])  # the cart and pole move


def test_gif_when_ffmpeg_is_missing(tmp_path, monkeypatch):
    import dqn
    from beyond import watching

    monkeypatch.setattr(watching, "ffmpeg_available", lambda: False)
    agent = dqn.DQN(4, 2, seed=0)
    make = lambda render_mode: dqn.make_env(render_mode=render_mode)  # noqa: E731
    path = watching.record_video(make, agent.greedy_action, 1, 0, tmp_path / "clip.mp4", log=lambda *_: None)
    assert path == tmp_path / "clip.gif" and path.stat().st_size > 0


def test_progress_is_shown_while_the_memory_fills(dqn_cli):
    result = dqn_cli("--episodes", "30", "--memory-capacity", "300", "--watch", "0", "--seed", "0")
    assert result.returncode == 0
    assert "collecting experience" in result.stderr and "transition" in result.stderr


def test_render_every_kth_episode_switches_the_window_on_and_off():
    import math

    import dqn
    from beyond.flags import parse_args
    from beyond.hooks import TrainingHooks

    env = dqn.make_env()
    env.render_mode = "human"  # as --render leaves it once a window could open; nothing is stepped here
    hooks = TrainingHooks(dqn.DQN(4, 2), env, parse_args(["--render", "--render-every", "3", "--quiet"]))
    modes = []
    for episode in range(6):
        hooks.after_episode(dict(episode=episode, steps=10, loss=math.nan, learning=False))
        modes.append(env.render_mode)
    assert modes == [None, None, "human", None, None, "human"]  # episodes 3 and 6 (counting from 1) are shown
