"""How fast is dqn.py against the blog's own code (and Stable-Baselines3, if installed)?

Runs `python dqn.py` (its defaults) and bench/blog_literal.py for the same episodes and
seed, interleaved A B A B, each in a fresh process. The figure of merit is env steps per
second in the learning phase: from the end of the first episode that learned to the end
of the last one, so that the cheap memory-filling episodes do not flatter anyone.
Then it times each part of one step in isolation, to show where the time goes.

    python bench/speed.py                   # 3 repeats of the blog's 300 episodes, capped at 2000 steps
    python bench/speed.py --repeats 5 --episodes 300 --max-episode-steps 10000

Writes bench/results/speed.md (the table docs/performance.md quotes) and speed.json.
"""

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def learning_phase_rate(episode_ends):
    """Env steps/s between the end of the first learning episode and the end of the last."""
    learning = [(steps, wall) for steps, wall, learned in episode_ends if learned]
    if len(learning) < 2:
        raise SystemExit("too few learning episodes to time: raise --episodes")
    (s0, t0), (s1, t1) = learning[0], learning[-1]
    return (s1 - s0) / (t1 - t0), s1 - s0


def run_literal(args, seed):
    out = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            str(ROOT / "bench" / "blog_literal.py"),
            str(args.episodes),
            str(args.max_episode_steps),
            str(seed),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out.split("RESULT ", 1)[1])
    return learning_phase_rate(result["episode_ends"])


def run_dqn(args, seed, extra=(), script=ROOT / "dqn.py"):
    """dqn.py's learning-phase rate for args' episodes; extra: more flags, script: another checkout's dqn.py."""
    with tempfile.TemporaryDirectory() as runs:
        subprocess.run(
            [
                sys.executable,
                str(script),
                "--episodes",
                str(args.episodes),
                "--max-episode-steps",
                str(args.max_episode_steps),
                "--seed",
                str(seed),
                "--watch",
                "0",
                "--quiet",
                "--no-show",
                "--eval-episodes",
                "1",
                "--runs-dir",
                runs,
                "--run-name",
                "speed",
                *extra,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        with open(Path(runs) / "speed" / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
    ends = [(int(r["env_steps"]), float(r["wall_s"]), r["learning"] == "True") for r in rows]
    return learning_phase_rate(ends)


def run_sb3(args, seed, total_steps):
    """SB3 DQN at the blog's cadence; None when stable-baselines3 is not installed."""
    code = f"""
import time, torch, gymnasium as gym
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
torch.set_num_threads(1)
class Clock(BaseCallback):
    def _on_step(self):
        if self.num_timesteps == 2001: self.t0 = time.perf_counter()
        return True
env = gym.wrappers.TimeLimit(gym.make("CartPole-v0").unwrapped, {args.max_episode_steps})
model = DQN("MlpPolicy", env, learning_rate=0.01, buffer_size=2000, learning_starts=2000, batch_size=32,
            gamma=0.9, train_freq=1, gradient_steps=1, target_update_interval=100,
            exploration_fraction=1e-9, exploration_initial_eps=0.1, exploration_final_eps=0.1,
            policy_kwargs=dict(net_arch=[50]), seed={seed}, device="cpu")
clock = Clock()
model.learn({total_steps}, callback=clock)
print("RATE", ({total_steps} - 2001) / (time.perf_counter() - clock.t0))
"""
    try:
        out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True)
    except OSError:
        return None
    if out.returncode != 0:
        if "No module named 'stable_baselines3'" in out.stderr:
            return None
        raise SystemExit("SB3 run failed:\n" + out.stderr[-2000:])
    return float(out.stdout.split("RATE", 1)[1])


def breakdown(seed=0, repeats=2000):
    """Microseconds per call of each part of one learning-phase step, timed in isolation."""
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    import dqn

    torch.set_num_threads(1)
    env = dqn.make_env()
    agent = dqn.DQN(4, 2, seed=seed)
    s, _ = env.reset(seed=seed)
    while agent.memory.counter <= agent.memory_capacity:
        a = agent.choose_action(s)
        s_, r, terminated, _, _ = env.step(a)
        agent.store_transition(s, a, dqn.shaped_reward(env, s_), s_, terminated)
        s = env.reset()[0] if terminated else s_
    state = np.array(s)

    def env_step():
        _, _, terminated, _, _ = env.step(int(agent.rng.integers(2)))
        if terminated:
            env.reset()

    def timed(fn):
        for _ in range(200):
            fn()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - start) / repeats * 1e6

    learn = timed(agent.learn)  # first: it leaves every weight with a .grad for the Adam timing
    parts = {
        "acting (choose_action)": timed(lambda: agent.choose_action(state)),
        "env step": timed(env_step),
        "shaped reward": timed(lambda: dqn.shaped_reward(env, state)),
        "storing (store_transition)": timed(lambda: agent.store_transition(state, 1, 0.5, state)),
        "sampling (memory.sample)": timed(lambda: agent.memory.sample(agent.batch_size, agent.rng)),
        "optimizer (Adam step)": timed(agent.optimizer.step),
        "target sync / 100": timed(lambda: agent.target_net.load_state_dict(agent.eval_net.state_dict())) / 100,
    }
    parts["forward/backward (rest of learn)"] = learn - sum(
        parts[k] for k in ["sampling (memory.sample)", "optimizer (Adam step)", "target sync / 100"]
    )
    return parts


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--episodes", type=int, default=300)
    p.add_argument("--max-episode-steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()

    rates = {"blog literal": [], "dqn.py": [], "SB3 DQN": []}
    steps_timed = {}
    for r in range(args.repeats):
        for name, fn in [("blog literal", run_literal), ("dqn.py", run_dqn)]:
            rate, steps = fn(args, args.seed)
            rates[name].append(rate)
            steps_timed[name] = steps
            print(f"repeat {r + 1}: {name:13s} {rate:7.0f} env steps/s over {steps} learning-phase steps", flush=True)
        sb3 = run_sb3(args, args.seed, 2000 + min(steps_timed["dqn.py"], 20_000))
        if sb3 is not None:
            rates["SB3 DQN"].append(sb3)
            print(f"repeat {r + 1}: {'SB3 DQN':13s} {sb3:7.0f} env steps/s", flush=True)
    ratios = [b / a for a, b in zip(rates["blog literal"], rates["dqn.py"], strict=True)]
    parts = breakdown(args.seed)

    import torch

    lines = [
        f"Machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"torch {torch.__version__}, one torch thread.",
        f"Command: `python bench/speed.py --repeats {args.repeats} --episodes {args.episodes} "
        f"--max-episode-steps {args.max_episode_steps} --seed {args.seed}` ({time.strftime('%Y-%m-%d')})",
        "",
        "| implementation | env steps/s, learning phase (median) | runs | vs blog literal |",
        "|---|---|---|---|",
    ]
    base = statistics.median(rates["blog literal"])
    for name, values in rates.items():
        if values:
            med = statistics.median(values)
            lines.append(f"| {name} | {med:.0f} | {', '.join(f'{v:.0f}' for v in values)} | {med / base:.2f}x |")
    lines += [
        "",
        f"Median of the per-repeat ratios dqn.py / blog literal: **{statistics.median(ratios):.2f}x**",
        "",
        "Where a learning-phase step of dqn.py spends its time (each part timed alone):",
        "",
        "| part | µs per env step |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.1f} |" for k, v in parts.items()]
    lines.append(f"| **sum** | **{sum(parts.values()):.1f}** |")
    table = "\n".join(lines)
    print("\n" + table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.md").write_text(table + "\n")
    (out / "speed.json").write_text(json.dumps(dict(rates=rates, ratios=ratios, breakdown=parts), indent=1))


if __name__ == "__main__":
    main()
