"""Seeing the agent: a real window under Xvfb, live rendering, and video on headless machines."""

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, SHORT, finished_run, headless_env, read_metrics, run_dqn, video_in

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
    assert not list((tmp_path / "runs" / "w").glob("agent.*"))  # watched, so nothing recorded


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
    video_in(tmp_path / "runs" / "f", "agent")


def read_frames(path):
    import imageio.v2 as imageio

    return [np.asarray(frame) for frame in imageio.mimread(path, memtest=False)]


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_recorded_video_has_moving_frames(tmp_path, suffix):
    import dqn
    from beyond.video import ffmpeg_available, record_video

    agent = dqn.DQN(4, 2, seed=0)
    path = record_video(dqn.make_env(render_mode="rgb_array"), agent.greedy_action, 1, 0, tmp_path / f"clip{suffix}")
    frames = read_frames(path)
    assert path.suffix == (suffix if ffmpeg_available() else ".gif") and len(frames) >= 3
    assert frames[0].ndim == 3 and frames[0].shape[2] in (3, 4)
    assert any(not np.array_equal(frames[0], f) for f in frames[1:])  # the cart and pole move


def test_gif_when_ffmpeg_is_missing(tmp_path, monkeypatch):
    import dqn
    from beyond import video

    monkeypatch.setattr(video, "ffmpeg_available", lambda: False)
    agent = dqn.DQN(4, 2, seed=0)
    env = dqn.make_env(render_mode="rgb_array")
    path = video.record_video(env, agent.greedy_action, 1, 0, tmp_path / "clip.mp4", log=lambda *_: None)
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


# ---------------------------------------------------------------------------------------
# The Q-value overlay and the learning video
# ---------------------------------------------------------------------------------------
def test_the_overlay_shows_the_agents_own_q_values_and_greedy_action():
    import torch

    import dqn
    from beyond.overlay import panel_values

    agent = dqn.DQN(4, 2, seed=1)
    env = dqn.make_env()
    env.reset(seed=0)
    states = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    for s in states:
        env.unwrapped.state = s.astype(np.float64)
        values = panel_values(agent, env, s, step=7, episode=2, episodes=3)
        with torch.no_grad():
            expected = agent.eval_net(torch.from_numpy(s)).numpy()
        np.testing.assert_allclose(values["q"], expected, rtol=1e-6)
        assert values["action"] == int(np.argmax(expected)) == agent.greedy_action(s)
        cart, pole = values["gauges"]
        assert (cart.value, cart.high) == (float(s[0]), env.unwrapped.x_threshold)
        assert pole.value == pytest.approx(np.degrees(s[2]))
        assert pole.high == pytest.approx(np.degrees(env.unwrapped.theta_threshold_radians))
        assert (values["step"], values["episode"], values["episodes"]) == (7, 2, 3)
    assert {panel_values(agent, env, s, 0)["action"] for s in states} == {0, 1}  # both actions get highlighted


@pytest.mark.parametrize(
    "env_id, names, gauges",
    [
        ("Acrobot-v1", ["torque -1", "no torque", "torque +1"], ["tip height", "joint 1 speed"]),
        ("MountainCar-v0", ["push left", "no push", "push right"], ["position", "velocity"]),
        ("LunarLander-v3", ["nothing", "left engine", "main engine", "right engine"], ["x", "tilt", "legs down"]),
    ],
)
def test_each_task_gets_its_actions_names_and_its_own_readouts(env_id, names, gauges):
    import dqn
    from beyond.overlay import draw_panel, panel_values

    env = dqn.make_env(env_id, unwrapped=False, render_mode="rgb_array")
    s, _ = env.reset(seed=0)
    values = panel_values(dqn.DQN(len(s), len(names), seed=0), env, s, step=1)
    assert values["names"] == names and [g.name for g in values["gauges"]] == gauges
    assert all(g.low <= g.value <= g.high for g in values["gauges"])
    frame = env.render()
    assert draw_panel(frame, values).shape[1:] == (frame.shape[1], 3)
    env.close()


def test_the_acrobots_tip_height_is_the_height_the_env_judges():
    import dqn
    from beyond.overlay import panel_values

    env = dqn.make_env("Acrobot-v1", unwrapped=False)
    s, _ = env.reset(seed=0)
    for _ in range(50):
        s, *_ = env.step(2)
    theta1, theta2 = env.unwrapped.state[:2]
    tip = panel_values(dqn.DQN(6, 3, seed=0), env, s, 0)["gauges"][0]
    assert tip.value == pytest.approx(-np.cos(theta1) - np.cos(theta1 + theta2))  # gymnasium's _terminal()


def test_an_env_without_readouts_gets_numbered_actions_and_no_gauges():
    import dqn
    from beyond.overlay import panel_values

    env = dqn.make_env("CliffWalking-v1", unwrapped=False)
    s, _ = env.reset(seed=0)
    values = panel_values(dqn.DQN(1, 4, seed=0), env, np.array([s], np.float32), step=1)
    assert values["names"] == ["action 0", "action 1", "action 2", "action 3"] and values["gauges"] == []


def test_the_panel_is_drawn_below_the_picture_and_leaves_the_picture_alone():
    import dqn
    from beyond.overlay import PANEL_HEIGHT, draw_panel, panel_values

    agent, env = dqn.DQN(4, 2, seed=0), dqn.make_env(render_mode="rgb_array")
    s, _ = env.reset(seed=0)
    frame = env.render()
    drawn = draw_panel(frame, panel_values(agent, env, s, 0, 1, 1))
    assert drawn.shape == (frame.shape[0] + PANEL_HEIGHT, frame.shape[1], 3)
    np.testing.assert_array_equal(drawn[: frame.shape[0]], frame)
    panel = drawn[frame.shape[0] :]
    assert (panel != 255).any(axis=2).mean() > 0.02  # bars, numbers and gauges, not a blank strip


def test_a_pixel_agents_panel_shows_the_frames_it_sees():
    from beyond import pixels
    from beyond.overlay import FRAMES_HEIGHT, PANEL_HEIGHT, draw_panel, panel_values

    env = pixels.make_env("CartPole-v1", unwrapped=False)
    s, _ = env.reset(seed=0)
    agent = pixels.PixelDQN(env.observation_space.shape, 2, seed=0)
    values = panel_values(agent, env, s, 0)
    frame = env.render()
    drawn = draw_panel(frame, values)
    assert values["frames"].shape == s.shape and [g.name for g in values["gauges"]] == ["cart x", "pole"]
    assert drawn.shape[0] == frame.shape[0] + PANEL_HEIGHT + FRAMES_HEIGHT
    assert (drawn[-FRAMES_HEIGHT:] < 128).all(axis=2).sum() > 4 * 20 * 40  # the dark frames, two pixels per pixel


class CollectedVideo:
    """Stands in for video.VideoFile: keeps the frames instead of encoding them."""

    frames = []

    def __init__(self, path, fps, log=print):
        from pathlib import Path

        self.path, self.gif = Path(path), False

    def __enter__(self):
        return self

    def add(self, frame):
        CollectedVideo.frames.append(frame)

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("with_overlay", [True, False])
def test_no_overlay_records_the_envs_own_frames_and_the_overlay_adds_only_its_panel(
    tmp_path, monkeypatch, with_overlay
):
    import dqn
    from beyond import overlay, video, watching
    from beyond.evaluation import eval_seed
    from beyond.flags import parse_args

    monkeypatch.setattr(video, "VideoFile", CollectedVideo)
    CollectedVideo.frames = []
    agent = dqn.DQN(4, 2, seed=0)
    flags = ["--watch", "1", "--video", str(tmp_path / "a.mp4"), "--seed", "3"]
    flags += [] if with_overlay else ["--no-overlay"]
    watching.watch(agent, parse_args(flags), tmp_path, "CartPole-v0", "shaped", "test")
    env = dqn.make_env(render_mode="rgb_array")  # the same episode, replayed on the env itself
    s, _ = env.reset(seed=eval_seed(3))
    expected = [env.render()]
    for _ in range(len(CollectedVideo.frames) - 1):
        s, *_ = env.step(agent.greedy_action(s))
        expected.append(env.render())
    assert len(CollectedVideo.frames) >= 5
    for got, bare in zip(CollectedVideo.frames, expected, strict=True):
        assert got.shape[0] == bare.shape[0] + (overlay.PANEL_HEIGHT if with_overlay else 0)
        np.testing.assert_array_equal(got[: bare.shape[0]], bare)


def test_snapshots_stay_few_and_evenly_spread_however_long_the_run():
    import dqn
    from beyond.flags import parse_args
    from beyond.hooks import MAX_SNAPSHOTS, TrainingHooks

    agent = dqn.DQN(4, 2)
    hooks = TrainingHooks(agent, dqn.make_env(), parse_args(["--quiet"]))
    for env_steps in range(0, 300_000, 10):
        agent.learn_step_counter = int(env_steps >= 1000)  # learning starts at env step 1000
        hooks.before_step(env_steps)
    taken = [s["env_steps"] for s in hooks.snapshots]
    assert taken[0] == 1000 and len(taken) <= MAX_SNAPSHOTS and taken[-1] > 290_000 - hooks.snapshot_every
    assert len(set(np.diff(taken))) == 1  # evenly spaced
    moments = [m["env_steps"] for m in hooks.learning_moments(6)]
    assert len(moments) == 6 and moments[0] == taken[0] and moments[-1] == taken[-1] and moments == sorted(moments)


def test_learning_video_has_one_captioned_part_per_snapshot(tmp_path_factory):
    run_dir, result = finished_run(tmp_path_factory, "lv", *SHORT, "--snapshots", "3", "--watch", "1")
    parts = [line for line in result.stdout.splitlines() if line.startswith("learning video: after ")]
    assert len(parts) == 3, result.stdout
    steps = [int(line.split("after ")[1].split(" env steps")[0].replace(",", "")) for line in parts]
    assert steps == sorted(steps) and len(set(steps)) == 3
    assert all("greedy return" in line for line in parts)
    video = video_in(run_dir, "learning")
    assert f"saved learning video {video.relative_to(video.parent.parent.parent)}" in result.stdout
    frames = read_frames(video)
    shown = 32 + 400 + 120  # the caption, the picture and the panel
    if video.suffix == ".mp4":  # then blank rows, up to a 16-pixel block, where a player's controls go
        from beyond.video import PLAYER_MARGIN

        assert frames[0].shape[:2] == (640, 608) and frames[0].shape[0] - shown >= PLAYER_MARGIN
        assert frames[0][shown + 2 :].min() > 240  # white (the codec blurs the edge a little)
    else:
        assert frames[0].shape[0] == shown
    assert not np.array_equal(frames[0][:32], frames[-1][:32])  # different captions


def test_no_learning_video_with_snapshots_0_or_watch_0_and_the_metrics_never_change(tmp_path_factory):
    runs = {
        name: finished_run(tmp_path_factory, name, *SHORT, *flags)
        for name, flags in [
            ("on", ["--snapshots", "3", "--watch", "1"]),
            ("s0", ["--snapshots", "0"]),
            ("w0", ["--watch", "0"]),
        ]
    }
    for name in ("s0", "w0"):
        run_dir, result = runs[name]
        assert not list(run_dir.glob("learning.*")) and "learning video" not in result.stdout
    metrics = {name: read_metrics(run_dir / "metrics.csv") for name, (run_dir, _) in runs.items()}
    without_clock = {name: [dict(r, wall_s="") for r in rows] for name, rows in metrics.items()}
    assert without_clock["on"] == without_clock["s0"] == without_clock["w0"]


WINDOW_PROBE = """
import pygame
import dqn
from beyond.overlay import QValueOverlay
from beyond.video import watch_in_window

agent = dqn.DQN(4, 2, seed=0)
seen = []

def policy(s):  # looks at the window while the episodes play
    seen.append((pygame.display.get_caption()[0], pygame.display.get_surface().get_size()))
    return agent.greedy_action(s)

make = lambda: QValueOverlay(dqn.make_env(render_mode="rgb_array"), agent, 2)
assert watch_in_window(make, policy, 2, 0, "runs/probe", log=lambda *_: None)
print(seen[0], seen[-1], sep="\\n")
"""


@needs_xvfb
def test_the_window_shows_the_overlay_and_says_what_is_playing(x_display):
    result = subprocess.run(
        [sys.executable, "-c", WINDOW_PROBE],
        cwd=ROOT,
        env=windowed_env(x_display),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    first, last = result.stdout.strip().splitlines()[-2:]
    assert first == "('DQN: runs/probe, episode 1 of 2', (600, 520))"  # the picture and the panel below it
    assert last == "('DQN: runs/probe, episode 2 of 2', (600, 520))"


def test_three_readouts_fit_in_the_panel():
    """LunarLander's three gauges: nothing of the last one is cut off at the panel's bottom edge."""
    import dqn
    from beyond.overlay import draw_panel, panel_values

    env = dqn.make_env("LunarLander-v3", unwrapped=False, render_mode="rgb_array")
    s, _ = env.reset(seed=0)
    values = panel_values(dqn.DQN(len(s), 4, seed=0), env, s, step=1)
    drawn = draw_panel(env.render(), values)
    env.close()
    assert len(values["gauges"]) == 3 and (drawn[-4:] == 255).all()  # the bottom rows are the panel's white margin


def test_the_learning_video_and_the_snapshot_curve_leave_the_agents_weights_as_they_were(tmp_path):
    from types import SimpleNamespace

    import torch

    import dqn
    from beyond.hooks import copy_weights
    from beyond.reference import snapshot_curve
    from beyond.video import record_learning_video

    agent, other = dqn.DQN(4, 2, seed=0), dqn.DQN(4, 2, seed=1)
    before = copy_weights(agent.eval_net)
    moments = [dict(env_steps=100, episode=1, weights=copy_weights(other.eval_net))]
    record_learning_video(agent, moments, "CartPole-v1", 0, tmp_path / "learning.gif", log=lambda *_: None)
    curve = snapshot_curve(agent, moments, SimpleNamespace(eval_env="CartPole-v1", seed=0))
    assert len(curve) == 1 and (tmp_path / "learning.gif").stat().st_size > 0
    for name, weights in agent.eval_net.state_dict().items():
        assert torch.equal(weights, before[name]) and not torch.equal(weights, moments[0]["weights"][name])
