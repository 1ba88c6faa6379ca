"""Where a --pixels step's time goes, and its env steps/s against another checkout.

The parts are timed in one process, one torch thread: a physics step, drawing the screen
at CartPole's default 600x400 and at the 300x200 that --pixels draws, preprocessing, one
CNN forward to act, and one learn step. Per action, --preset pixels does FRAME_SKIP physics
steps, one drawing, one preprocessing and one forward, and a learn step every train_every
actions. --baseline DIR also times whole training runs (`--preset pixels` with one-step
returns and CartPole-v1's reward, 30,000 env steps, no evaluations) of this checkout and of
DIR, interleaved, and quotes the ratio of their learning-phase env steps/s.

    python bench/pixel_speed.py
    git worktree add /tmp/before <commit> && python bench/pixel_speed.py --baseline /tmp/before

Writes bench/results/pixel_speed.md, which docs/pixels.md quotes.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402
from speed import RESULTS, cpu_model, run_dqn  # noqa: E402

from beyond import pixels  # noqa: E402
from beyond.config import PRESETS  # noqa: E402

# The learning of the first pixel preset (one-step returns, CartPole-v1's reward), which any checkout runs
RUN_FLAGS = ["--preset", "pixels", "--n-step", "1", "--reward", "env"]
RUN_FLAGS += ["--max-env-steps", "30000", "--eval-every", "0", "--no-keep-best"]


def per_call_ms(work, repeats):
    """Median over 5 rounds of the mean milliseconds per call of work()."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            work()
        rounds.append((time.perf_counter() - start) / repeats * 1e3)
    return statistics.median(rounds)


def cartpole(size):
    """An rgb_array CartPole that draws at size (width, height), reset, and a step that resets when it ends."""
    env = gym.make("CartPole-v1", render_mode="rgb_array").unwrapped
    env.screen_width, env.screen_height = size
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def step():
        if env.step(int(rng.integers(2)))[2]:
            env.reset()

    return env, step


PHYSICS, PREPROCESS, ACT = "physics step", "preprocess (300x200 -> 21x41)", "CNN forward to act"


def drawing(size):
    """The parts table's label for drawing the screen at size (width, height)."""
    return f"draw the screen at {size[0]}x{size[1]}"


def learning(batch_size):
    """The parts table's label for one learn step."""
    return f"learn step (batch {batch_size})"


def parts(repeats=500):
    """Milliseconds per call of each part of a pixel step."""
    torch.set_num_threads(1)
    times = {}
    for size in [(600, 400), pixels.SCREEN_SIZE]:
        env, step = cartpole(size)
        times[drawing(size)] = per_call_ms(env.render, repeats)
    times[PHYSICS] = per_call_ms(step, repeats)
    frame = env.render()
    times[PREPROCESS] = per_call_ms(lambda: pixels.preprocess(frame), repeats)
    preset = PRESETS["pixels"]
    shape = (pixels.FRAME_STACK, *pixels.preprocess(frame).shape)
    agent = pixels.PixelDQN(
        shape, 2, seed=0, hidden=preset["hidden"], batch_size=preset["batch_size"], memory_capacity=5000
    )
    s = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    for _ in range(agent.memory_capacity):
        agent.store_transition(s, 0, 1.0, s)
    times[ACT] = per_call_ms(lambda: agent.greedy_action(s), repeats)
    times[learning(agent.batch_size)] = per_call_ms(agent.learn, repeats // 5)
    return times


def per_action(times):
    """Each part's milliseconds per action at --preset pixels: frame skip, one drawing, a learn step per train_every."""
    preset = PRESETS["pixels"]
    return {
        "env (physics, drawing, preprocess)": pixels.FRAME_SKIP * times[PHYSICS]
        + times[drawing(pixels.SCREEN_SIZE)]
        + times[PREPROCESS],
        "acting": times[ACT],
        "learning": times[learning(preset["batch_size"])] / preset["train_every"],
    }


def compare(baseline, repeats):
    """Learning-phase env steps/s of this checkout and of baseline's, interleaved, repeats times."""
    args = argparse.Namespace(episodes=10**9, max_episode_steps=500)
    rates = {"this checkout": [], "baseline": []}
    for r in range(repeats):
        for name, script in [("baseline", Path(baseline) / "dqn.py"), ("this checkout", ROOT / "dqn.py")]:
            rate, _ = run_dqn(args, 0, extra=RUN_FLAGS, script=script)
            rates[name].append(rate)
            print(f"repeat {r + 1}: {name:14s} {rate:6.0f} env steps/s", flush=True)
    return rates


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default=None, help="another checkout (a git worktree) whose pixel runs to time")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()
    times = parts()
    lines = [f"Processor: {cpu_model()}; one torch thread. `python bench/pixel_speed.py`", ""]
    lines += ["| part | ms per call |", "|---|---|"]
    lines += [f"| {name} | {ms:.3f} |" for name, ms in times.items()]
    shares = per_action(times)
    total = sum(shares.values())
    lines += ["", "| per action at --preset pixels | ms | share |", "|---|---|---|"]
    lines += [f"| {name} | {ms:.2f} | {ms / total:.0%} |" for name, ms in shares.items()]
    if args.baseline:
        commit = subprocess.run(["git", "-C", args.baseline, "rev-parse", "--short", "HEAD"], capture_output=True)
        rates = compare(args.baseline, args.repeats)
        mine, theirs = statistics.median(rates["this checkout"]), statistics.median(rates["baseline"])
        ratios = [a / b for a, b in zip(rates["this checkout"], rates["baseline"], strict=True)]
        lines += [
            "",
            f"Training (`python dqn.py {' '.join(RUN_FLAGS)}`, learning phase, {args.repeats} interleaved repeats):",
            f"this checkout {mine:.0f} env steps/s, dqn.py at {commit.stdout.decode().strip()} {theirs:.0f}; "
            f"median paired ratio {statistics.median(ratios):.2f} (each: {', '.join(f'{x:.2f}' for x in ratios)}).",
        ]
    text = "\n".join(lines) + "\n"
    Path(args.out, "pixel_speed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
