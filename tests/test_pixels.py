"""beyond/pixels.py and --pixels: frames, the CNN, the uint8 memory, a short run, --play."""

import csv
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, finished_run, read_metrics, video_in

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import dqn  # noqa: E402
from beyond import pixels  # noqa: E402
from beyond.cli import env_reward  # noqa: E402
from beyond.config import PRESETS  # noqa: E402
from beyond.flags import parse_args  # noqa: E402
from beyond.pixels import (  # noqa: E402
    FRAME_SKIP,
    FRAME_STACK,
    PREPROCESSING_VERSION,
    TRACK_ROWS,
    FrameReplayMemory,
    PixelDQN,
    conv_q_net,
    make_env,
    preprocess,
)

SHAPE = (FRAME_STACK, 21, 41)
SHORT_PIXELS = [
    "--pixels",
    "--episodes",
    "100",
    "--max-env-steps",
    "400",
    "--memory-capacity",
    "300",
    "--learning-starts",
    "100",
    "--eval-every",
    "0",
    "--no-keep-best",
    "--eval-episodes",
    "1",
    "--seed",
    "0",
]


@pytest.fixture(scope="module")
def pixel_env():
    env = pixels.make_env("CartPole-v1", unwrapped=False)
    yield env
    env.close()


def screen(env):
    return env.unwrapped.render()


def screen_at(env, x=0.0, theta=0.0):
    env.unwrapped.state = np.array([x, 0.0, theta, 0.0])
    return env.unwrapped.render()


def test_preprocess_crops_grays_and_shrinks_a_real_screen(pixel_env):
    pixel_env.reset(seed=0)
    frame = screen_at(pixel_env)
    assert frame.shape == (200, 300, 3) and frame.dtype == np.uint8  # the env draws at SCREEN_SIZE
    image = preprocess(frame)
    assert image.shape == (21, 41) and image.dtype == np.uint8
    assert image[0, 0] == 0 and image[0, -1] == 0  # white background -> 0
    # the cart (black, 50 of the view's 80 px, in its middle) is the brightest thing, at the bottom
    cart_rows, cart_cols = np.nonzero(image > 200)
    assert cart_rows.min() >= 12 and abs(cart_cols.mean() - 20) <= 1 and 24 <= len(set(cart_cols)) <= 26
    # the pole (10 px wide, upright) stands above the cart's middle
    pole_cols = np.nonzero(image[2:12] > 40)[1]
    assert len(pole_cols) and abs(pole_cols.mean() - 20) <= 1


def test_the_view_follows_the_cart_and_shows_the_pole_lean(pixel_env):
    pixel_env.reset(seed=0)
    centred = preprocess(screen_at(pixel_env, x=0.0, theta=0.1))
    # 1.28 m left is 80 whole pixels: the same view, since the cart is found in the image
    assert (preprocess(screen_at(pixel_env, x=-1.28, theta=0.1)) == centred).all()

    def tip_column(image):  # where the pole is in the top rows
        return np.nonzero(image[1:4] > 40)[1].mean()

    leaning_left = preprocess(screen_at(pixel_env, x=0.48, theta=-0.1))
    assert tip_column(centred) > 20 + 2 and tip_column(leaning_left) < 20 - 2  # theta > 0: leans right


def test_past_the_screen_edge_is_background(pixel_env):
    pixel_env.reset(seed=0)
    image = preprocess(screen_at(pixel_env, x=2.3))  # the cart's centre 6 px from the right edge
    assert image.shape == (21, 41) and (image[:, -10:] == 0).all() and image.max() == 255


def test_the_track_strip_shows_where_the_cart_is_on_the_whole_track(pixel_env):
    pixel_env.reset(seed=0)
    rows = TRACK_ROWS

    def strip_centre(x):  # the bright blocks' centre, in strip columns
        strip = preprocess(screen_at(pixel_env, x=x), track_strip=True)[-rows:]
        assert strip.shape == (rows, 41) and strip.dtype == np.uint8 and (strip == strip[0]).all()
        return np.average(np.arange(41), weights=strip[0].astype(float))

    centred = screen_at(pixel_env, x=0.0)
    with_strip, close_up = preprocess(centred, track_strip=True), preprocess(centred)
    assert (with_strip[:-rows] == close_up[:-rows]).all() and not (with_strip[-rows:] == close_up[-rows:]).all()
    assert strip_centre(0.0) == pytest.approx(20, abs=0.3)  # the track's middle
    # the close-up cannot tell these apart; the strip moves 62.5 px a metre, 1/8 of a block a pixel
    assert strip_centre(-1.28) == pytest.approx(20 - 80 / 8, abs=0.3)
    assert strip_centre(2.0) == pytest.approx(20 + 125 / 8, abs=0.6)  # the cart's right part is off screen
    assert strip_centre(0.016) > strip_centre(0.0)  # one pixel


def test_the_pixel_env_shows_people_its_screen_at_twice_the_size(pixel_env):
    pixel_env.reset(seed=0)
    small, shown = pixel_env.unwrapped.render(), pixel_env.render()
    assert shown.shape == (400, 600, 3) and (shown[::2, ::2] == small).all() and (shown[1::2, 1::2] == small).all()


def test_observation_is_a_uint8_stack_that_shifts_by_one_frame(pixel_env):
    s, _ = pixel_env.reset(seed=0)
    assert s.shape == SHAPE and s.dtype == np.uint8
    assert pixel_env.observation_space.contains(s)
    assert all((s[i] == s[0]).all() for i in range(FRAME_STACK))  # no motion yet at reset
    s_, reward, terminated, truncated, info = pixel_env.step(1)
    assert info["frames"] == FRAME_SKIP and reward == FRAME_SKIP  # +1 per frame, summed
    assert (s_[:-1] == s[1:]).all()
    s2, *_ = pixel_env.step(1)
    assert (s2[:-1] == s_[1:]).all() and not (s2[-1] == s2[-2]).all()  # the cart moved


def test_frame_skip_stops_at_the_end_of_an_episode(pixel_env):
    pixel_env.reset(seed=0)
    pixel_env.unwrapped.state = np.array([0.0, 0.0, 0.2, 3.0])  # falling: past 12 degrees in one frame
    _, reward, terminated, _, info = pixel_env.step(1)
    assert terminated and info["frames"] == 1 and reward == 1.0


@pytest.mark.parametrize("batch", [1, 32])
def test_cnn_gives_one_value_per_action(batch):
    net = conv_q_net(SHAPE, 2, hidden=64)
    x = torch.randint(0, 256, (batch, *SHAPE), dtype=torch.uint8)
    q = net(x)
    assert q.shape == (batch, 2) and q.dtype == torch.float32 and torch.isfinite(q).all()


def test_every_pixel_of_the_view_reaches_the_q_values():
    """Two 5x5 stride-2 convolutions read all of a 21x41 image; of a 20x40 one, not the last 3 rows and columns."""
    net = conv_q_net(SHAPE, 2)
    x = (torch.rand(8, *SHAPE) * 255).requires_grad_(True)
    net(x).sum().backward()
    assert (x.grad.abs().sum((0, 1)) > 0).all()
    blind = conv_q_net((FRAME_STACK, 20, 40), 2)
    x = (torch.rand(8, FRAME_STACK, 20, 40) * 255).requires_grad_(True)
    blind(x).sum().backward()
    assert (x.grad[:, :, 17:] == 0).all() and (x.grad[:, :, :, 37:] == 0).all()


def test_the_pixel_agent_is_the_blogs_dqn_with_a_cnn():
    assert isinstance(dqn.DQN(4, 2).eval_net, dqn.q_net)
    agent = PixelDQN(SHAPE, 2, seed=0)
    assert (
        isinstance(agent, dqn.DQN)
        and isinstance(agent.eval_net, conv_q_net)
        and isinstance(agent.target_net, conv_q_net)
    )
    s = np.zeros(SHAPE, np.uint8)
    assert agent.greedy_action(s) in (0, 1)


def test_memory_stores_and_returns_frames_unchanged(pixel_env):
    agent = PixelDQN(pixel_env.observation_space.shape, 2, seed=0, memory_capacity=50, batch_size=8)
    assert agent.memory.frames.dtype == np.uint8
    s, _ = pixel_env.reset(seed=0)
    stored = []
    for i in range(20):
        a = i % 2
        s_, r, terminated, truncated, _ = pixel_env.step(a)
        agent.store_transition(s, a, r, s_, terminated)
        stored.append((s, a, r, s_, terminated))
        s = pixel_env.reset()[0] if terminated or truncated else s_
    agent.rng = np.random.default_rng(1)
    index = np.random.default_rng(1).integers(20, size=8)
    b_s, b_a, b_r, b_s_ = agent.memory.sample(agent.batch_size, agent.rng)[:4]
    for row, i in enumerate(index):
        s, a, r, s_, _ = stored[i]
        assert b_s.dtype == torch.uint8 and (b_s[row].numpy() == s).all() and (b_s_[row].numpy() == s_).all()
        assert b_a[row, 0] == a and b_r[row, 0] == r
    # a row holds FRAME_STACK + 1 frames, not two stacks
    assert agent.memory.frames.shape == (50, FRAME_STACK + 1, *SHAPE[1:])


def test_frame_memory_ring_overwrites_the_oldest():
    memory = FrameReplayMemory(3, (2, 1, 1))
    for i in range(5):
        memory.store(np.full((2, 1, 1), i, np.uint8), i % 2, float(i), np.full((2, 1, 1), i + 1, np.uint8))
    batch = memory.batch_at(np.array([0, 1, 2]))
    assert batch.s[:, 0, 0, 0].tolist() == [3, 4, 2] and batch.s_[:, -1, 0, 0].tolist() == [4, 5, 3]
    assert batch.r[:, 0].tolist() == [3.0, 4.0, 2.0] and memory.counter == 5


def test_learn_on_frames_moves_the_cnn_and_syncs_the_target():
    shape = SHAPE
    agent = PixelDQN(
        shape,
        2,
        seed=0,
        memory_capacity=64,
        batch_size=16,
        lr=1e-3,
        target_replace_iter=3,
        terminal_mask=True,
        double=True,
        huber=True,
        grad_clip=1.0,
    )
    rng = np.random.default_rng(0)
    for _ in range(64):
        s = rng.integers(0, 256, shape, dtype=np.uint8)
        s_ = np.concatenate([s[1:], rng.integers(0, 256, (1, *SHAPE[1:]), dtype=np.uint8)])
        agent.store_transition(s, int(rng.integers(2)), 1.0, s_, bool(rng.random() < 0.1))
    before = [p.clone() for p in agent.eval_net.parameters()]
    losses = [agent.learn() for _ in range(3)]
    assert all(np.isfinite(losses))
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.eval_net.parameters(), strict=True))
    grad_norm = torch.norm(torch.stack([p.grad.norm() for p in agent.eval_net.parameters()]))
    assert grad_norm <= 1.0 + 1e-5  # --grad-clip applies to the CNN too
    agent.learn()  # learn step 3: the target copies eval_net first
    for p, q in zip(agent.target_net.parameters(), before, strict=True):
        assert not torch.equal(p, q)


def test_same_seed_same_pixel_run():
    def run():
        env = pixels.make_env("CartPole-v1", unwrapped=False)
        agent = PixelDQN(env.observation_space.shape, 2, seed=3, memory_capacity=100, learning_starts=30, batch_size=8)
        records = dqn.train(agent, env, episodes=15, seed=3, reward_fn=env_reward, log=None)
        env.close()
        return [(r["steps"], r["reward"], r["loss"], r["env_steps"]) for r in records]

    first = run()
    assert first == run()
    assert any(r[2] == r[2] for r in first)  # some episode learned (loss is not NaN)


@pytest.fixture(scope="module")
def pixel_run(tmp_path_factory):
    """One short --pixels run shared by the tests that inspect its output."""
    return finished_run(tmp_path_factory, "px", *SHORT_PIXELS, "--watch", "1", "--value-estimates")


def test_short_pixel_run_learns_and_writes_its_artifacts(pixel_run):
    run_dir, result = pixel_run
    summary = [line for line in result.stdout.splitlines() if line.startswith("trained ")][0]
    learn_steps = int(summary.split(" learn steps")[0].split()[-1])
    env_steps = int(summary.split(" env steps")[0].split()[-1])
    assert learn_steps >= 1 and 400 <= env_steps <= 400 + FRAME_SKIP
    assert "greedy evaluation on CartPole-v1, 1 episodes" in result.stdout
    for name in ["rewards.png", "metrics.csv", "evals.csv", "model.pt"]:
        assert (run_dir / name).stat().st_size > 0, name
    video_in(run_dir, "agent")
    video_in(run_dir, "learning")
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert int(rows[-1]["env_steps"]) == env_steps
    (final,) = read_metrics(run_dir / "evals.csv")  # --value-estimates: the net's estimate and the truth
    # the preset learns from the blog's shaped reward, whose discounted return can be negative
    assert math.isfinite(float(final["q_estimate"])) and math.isfinite(float(final["true_return"]))
    assert float(final["true_return"]) != 0
    meta = torch.load(run_dir / "model.pt", weights_only=True)["meta"]
    assert tuple(meta["n_states"]) == SHAPE and meta["settings"]["env"] == "CartPole-v1" and meta["settings"]["pixels"]


def test_play_a_pixel_checkpoint(pixel_run, dqn_cli, tmp_path):
    run_dir, _ = pixel_run
    video = tmp_path / "pixel_agent.gif"
    result = dqn_cli("--play", run_dir / "model.pt", "--watch", "1", "--video", video)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "watch episode 1/1" in result.stdout and video.stat().st_size > 0
    import imageio.v2 as imageio

    from beyond.overlay import FRAMES_HEIGHT, PANEL_HEIGHT

    first = np.asarray(imageio.mimread(video, memtest=False)[0])  # the 300x200 screen, shown at 600x400
    assert first.shape[:2] == (400 + PANEL_HEIGHT + FRAMES_HEIGHT, 600)


def test_play_a_pixel_checkpoint_on_a_missing_gpu(pixel_run, dqn_cli):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    run_dir, _ = pixel_run
    assert_one_line_error(dqn_cli("--play", run_dir / "model.pt", "--device", "cuda"), "--device", "GPU")


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--pixels", "--env", "Acrobot-v1", "--reward", "env"], ["--pixels", "Acrobot-v1"]),
        (["--pixels", "--render"], ["--render", "--pixels"]),
        (["--pixels", "--device", "tpu9"], ["--device", "tpu9"]),
        (["--device", "cuda:0"], ["--device"]),
        (["--pixels", "--eval-every", "0"], ["--keep-best", "--no-keep-best"]),  # the preset keeps the best eval
        (["--track-strip"], ["--track-strip", "--pixels"]),
    ],
)
def test_bad_pixel_flags_are_one_line_errors(dqn_cli, args, needles):
    assert_one_line_error(dqn_cli(*args), *needles)


def test_pixels_implies_its_preset_and_flags_still_win():
    args = parse_args(["--pixels", "--lr", "0.001"])
    assert args.preset == "pixels" and args.pixels and args.lr == 0.001
    assert args.memory_capacity == PRESETS["pixels"]["memory_capacity"]
    assert parse_args(["--preset", "pixels"]).pixels
    blog = parse_args(["--pixels", "--preset", "blog"])
    assert blog.pixels and blog.lr == dqn.hyperparameters["lr"]


def test_pixel_update_weighs_each_sample_as_autograd_does():
    agent = PixelDQN(SHAPE, 2, seed=0, memory_capacity=16, batch_size=8, huber=True)
    rng = np.random.default_rng(0)
    for _ in range(16):
        s = rng.integers(0, 256, SHAPE, dtype=np.uint8)
        agent.store_transition(s, int(rng.integers(2)), float(rng.normal()), np.roll(s, 1, axis=0))
    batch = agent.memory.sample(agent.batch_size, agent.rng)
    b_s, b_a, b_r, b_s_ = batch[:4]
    weights = torch.linspace(0.2, 1.0, 8)[:, None]
    reference = conv_q_net(SHAPE, 2, hidden=agent.hidden)
    reference.load_state_dict(agent.eval_net.state_dict())
    with torch.no_grad():
        q_target = b_r + agent.gamma * agent.target_net(b_s_).max(1, keepdim=True).values
    q_eval = reference(b_s).gather(1, b_a)
    (weights * torch.nn.functional.smooth_l1_loss(q_eval, q_target, reduction="none")).mean().backward()
    _, td_error = agent.update(batch._replace(weights=weights))
    torch.testing.assert_close(td_error, (q_eval - q_target).detach())
    for mine, autograd in zip(agent.eval_net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine.grad, autograd.grad, rtol=1e-4, atol=1e-6)


def test_a_checkpoint_from_before_the_preprocessing_field_is_refused(pixel_run, dqn_cli, tmp_path):
    """Checkpoints without the field were made for version 1: a 160x120 view of the 600x400 screen."""
    run_dir, _ = pixel_run
    data = torch.load(run_dir / "model.pt", weights_only=True)
    del data["meta"]["preprocessing"]
    torch.save(data, tmp_path / "first_view.pt")
    result = dqn_cli("--play", tmp_path / "first_view.pt", "--watch", "1")
    assert_one_line_error(result, "preprocessing version 1", f"makes version {PREPROCESSING_VERSION}")


def test_a_checkpoint_for_another_preprocessing_is_refused(pixel_run, dqn_cli, tmp_path):
    run_dir, _ = pixel_run
    data = torch.load(run_dir / "model.pt", weights_only=True)
    assert data["meta"]["preprocessing"] == PREPROCESSING_VERSION
    data["meta"]["preprocessing"] = PREPROCESSING_VERSION + 1  # same shapes, another view
    torch.save(data, tmp_path / "other_view.pt")
    result = dqn_cli("--play", tmp_path / "other_view.pt", "--watch", "1")
    assert_one_line_error(result, "preprocessing version", str(PREPROCESSING_VERSION + 1))


def test_a_track_strip_checkpoint_plays_on_a_screen_with_the_strip(tmp_path):
    from beyond.agents import make_agent
    from beyond.config import names
    from beyond.files import load_checkpoint, save_checkpoint
    from beyond.flags import parse_args

    def saved(*flags):
        args = parse_args(["--pixels", "--memory-capacity", "64", "--learning-starts", "64", *flags])
        agent = make_agent(SHAPE, 2, 0, True, **{name: getattr(args, name) for name in names("agent")})
        return save_checkpoint(agent, tmp_path / "model.pt", args, 1)

    loaded, _ = load_checkpoint(saved("--track-strip"))
    env = pixels.env_maker(loaded)("CartPole-v1", unwrapped=False)
    assert loaded.track_strip and env.track_strip
    s, _ = env.reset(seed=0)
    assert (s[-1] == preprocess(env.unwrapped.render(), track_strip=True)).all()
    env.close()
    loaded, _ = load_checkpoint(saved("--no-track-strip"))  # the pixels preset has the strip
    assert not loaded.track_strip and not pixels.env_maker(loaded)("CartPole-v1", unwrapped=False).track_strip


def test_gymnasiums_env_checker_passes_on_the_pixel_env():
    import warnings

    from gymnasium.utils.env_checker import check_env

    env = make_env("CartPole-v1", unwrapped=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)  # among its checks: env.spec makes the same env again, wrapper included
    env.close()
    assert env.spec.additional_wrappers[-1].name == "PixelObservation"
    unexpected = [str(w.message) for w in caught if "different from the unwrapped" not in str(w.message)]
    assert not unexpected


def test_a_committed_checkpoint_of_the_first_format_still_loads():
    """bench/results keeps model.pt files saved before checkpoints kept their run's settings."""
    from beyond.files import FIRST_FORMAT, load_checkpoint

    model = Path(__file__).resolve().parent.parent / "bench/results/pixel_protocol/track-nstep3/seed100/model.pt"
    agent, meta = load_checkpoint(model)
    assert meta["format"] == FIRST_FORMAT and "settings" not in meta
    assert agent.n_step == 3 and agent.track_strip and agent.n_states == SHAPE
