"""How a saved agent's greedy episodes end: on CartPole-v1 pole fell, cart off the track or time
limit; on LunarLander-v3 landed, crashed, flew off the screen or time limit.

    python dqn.py --preset pixels --seed 0 --run-name pixels0
    python bench/episode_ends.py runs/pixels0/model.pt --episodes 20
    python dqn.py --preset tuned --env LunarLander-v3 --seed 0 --run-name lander0
    python bench/episode_ends.py runs/lander0/model.pt --episodes 100

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
    """Why a CartPole episode stopped, from the simulator's state."""
    x, _, theta, _ = env.unwrapped.state
    if not terminated:
        return "time limit"
    return "cart off the track" if abs(x) > env.unwrapped.x_threshold else "pole fell"


def lander_end(env, terminated, s):
    """Why a LunarLander episode stopped: gymnasium ends it when the lander comes to rest (+100),
    when its body touches the ground (-100) or when it leaves the screen (-100)."""
    if not terminated:
        return "time limit"
    if env.unwrapped.game_over:
        return "crashed"
    return "flew off the screen" if abs(s[0]) >= 1.0 else "landed"


def cartpole_line(env, end):
    x, x_dot, theta, _ = env.unwrapped.state
    return f"x {x:+.2f}, x_dot {x_dot:+.2f}, theta {theta:+.3f}: {end}"


def lander_line(s, episode_return, end):
    return f"return {episode_return:+.0f}, x {s[0]:+.2f} (pad at 0), legs down {int(s[6]) + int(s[7])}: {end}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a model.pt written by dqn.py")
    p.add_argument("--episodes", type=int, default=20)
    args = p.parse_args()
    try:
        agent, meta = load_checkpoint(args.model)
    except UsageError as e:
        raise SystemExit(f"episode_ends.py: {e}") from None
    env_id = meta.get("env_id", "CartPole-v1")
    if env_id not in ("CartPole-v1", "LunarLander-v3"):
        raise SystemExit(f"episode_ends.py: reads CartPole-v1 and LunarLander-v3 episodes, not {env_id}")
    lander = env_id == "LunarLander-v3"
    env = env_maker(agent)(env_id, unwrapped=False)
    ends = collections.Counter()
    for i in range(args.episodes):
        s, _ = env.reset(seed=20_000 + i)
        frames, episode_return = 0, 0.0
        while True:
            s, reward, terminated, truncated, info = env.step(agent.greedy_action(s))
            frames += info.get("frames", 1)
            episode_return += reward
            if terminated or truncated:
                break
        end = lander_end(env, terminated, s) if lander else episode_end(env, terminated)
        ends[end] += 1
        line = lander_line(s, episode_return, end) if lander else cartpole_line(env, end)
        print(f"episode {i}: {frames} env steps, {line}")
    print("ENDS " + ", ".join(f"{name}: {count}" for name, count in ends.most_common()))


if __name__ == "__main__":
    main()
