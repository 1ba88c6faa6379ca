"""What --resume costs: the time to write and read resume.pt, and its size, for a full replay memory.

    python bench/resume_cost.py                    # --preset pixels and --preset tuned, memories full

The agent is built as `python dqn.py --preset NAME` builds it, its memory filled as a run
that has stored more transitions than the memory holds would leave it (random contents:
whatever they are, the file copies their bytes), then saved, read and restored into a
freshly built run as --resume does.
Prints one line per preset; docs/going-further.md quotes them.
"""

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from speed import cpu_model  # noqa: E402

from beyond.cli import build  # noqa: E402
from beyond.flags import parse_args  # noqa: E402
from beyond.hooks import TrainingHooks  # noqa: E402
from beyond.resume import load_resume_state, restore, save_resume_state  # noqa: E402


def fill(agent, rng):
    """Every array of the agent's memory filled, as after more transitions than it holds."""
    memories = [agent.memory.rows] + ([agent.memory.frames] if hasattr(agent.memory, "frames") else [])
    for memory in memories:
        memory[...] = rng.integers(0, 255, size=memory.shape) if memory.dtype == np.uint8 else rng.random(memory.shape)
    agent.memory.counter = agent.memory_capacity
    return sum(m.nbytes for m in memories)


def measure(preset):
    args = parse_args(["--preset", preset, "--watch", "0", "--quiet", "--seed", "0"])
    env, agent = build(args)
    memory_bytes = fill(agent, np.random.default_rng(0))
    env.reset(seed=0)
    hooks = TrainingHooks(agent, env, args, log=None)
    records = [dict(episode=0, steps=1, reward=1.0, epsilon=1.0, loss=0.0, learning=True, env_steps=1, wall_s=0.0)]
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        path = save_resume_state(Path(folder) / "resume.pt", args, agent, env, hooks, records)
        saved = time.perf_counter() - start
        start = time.perf_counter()
        state = load_resume_state(folder)
        fresh_env, fresh_agent = build(args)  # what --resume rebuilds, every field checked as it is restored
        restore(state, fresh_agent, fresh_env, TrainingHooks(fresh_agent, fresh_env, args, log=None))
        loaded = time.perf_counter() - start
        fresh_env.close()
        size = path.stat().st_size
    env.close()
    return (
        f"--preset {preset}: a memory of {agent.memory_capacity:,} rows ({memory_bytes / 2**20:,.1f} MiB): "
        f"resume.pt {size / 2**20:,.1f} MiB, written in {saved:.2f} s, read and restored in {loaded:.2f} s"
    )


def main():
    torch.set_num_threads(1)
    print(f"{cpu_model()}, torch {torch.__version__}")
    for preset in ("pixels", "tuned", "blog"):
        print(measure(preset), flush=True)


if __name__ == "__main__":
    main()
