"""How a saved agent's greedy CartPole-v1 episodes end: pole fell, cart off the track, or time limit.

    python dqn.py --preset pixels --seed 0 --run-name pixels0
    python bench/episode_ends.py runs/pixels0/model.pt --episodes 20

The evaluation episodes use seeds 20000, 20001, ... (apart from training's and evaluate()'s).
Works for state and --pixels checkpoints alike.
"""

import argparse
import collections
import os
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from beyond import UsageError  # noqa: E402
from beyond.files import load_checkpoint  # noqa: E402
from beyond.pixels import env_maker  # noqa: E402


def episode_end(env, terminated):
    """Why the episode stopped, from the simulator's state."""
    x, _, theta, _ = env.unwrapped.state
    if not terminated:
        return "time limit"
    return "cart off the track" if abs(x) > env.unwrapped.x_threshold else "pole fell"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a model.pt written by dqn.py")
    p.add_argument("--episodes", type=int, default=20)
    args = p.parse_args()
    try:
        agent, meta = load_checkpoint(args.model)
    except UsageError as e:
        raise SystemExit(f"episode_ends.py: {e}") from None
    env = env_maker(agent)("CartPole-v1", unwrapped=False)
    ends = collections.Counter()
    for i in range(args.episodes):
        s, _ = env.reset(seed=20_000 + i)
        frames = 0
        while True:
            s, _, terminated, truncated, info = env.step(agent.greedy_action(s))
            frames += info.get("frames", 1)
            if terminated or truncated:
                break
        end = episode_end(env, terminated)
        ends[end] += 1
        x, x_dot, theta, _ = env.unwrapped.state
        print(f"episode {i}: {frames} env steps, x {x:+.2f}, x_dot {x_dot:+.2f}, theta {theta:+.3f}: {end}")
    print("ENDS " + ", ".join(f"{name}: {count}" for name, count in ends.most_common()))


if __name__ == "__main__":
    main()
