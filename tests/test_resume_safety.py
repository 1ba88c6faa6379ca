"""resume.pt is data: a hostile file runs nothing, a damaged one is one line, every part declares its state."""

import ast
import copy
import hashlib
import io
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import dqn
from beyond import UsageError
from beyond.agents import EXTENSION_DEFAULTS, make_agent
from beyond.cli import build
from beyond.flags import parse_args
from beyond.hooks import TrainingHooks
from beyond.pixels import make_env as make_pixel_env
from beyond.resume import (
    ENV_STATE,
    RESUME_FILE,
    RESUME_FORMAT,
    agent_state_names,
    layers,
    load_resume_state,
    memory_state_names,
    restore,
    resumed_args,
    save_resume_state,
)
from beyond.statefile import KIND, read_state, state_names, write_state
from conftest import ROOT, assert_one_line_error, run_dqn

FLAGS = ["--memory-capacity", "60", "--seed", "0", "--watch", "0", "--quiet", "--no-show", "--eval-every", "50"]
FLAGS += ["--eval-episodes", "1", "--n-step", "3", "--prioritized", "--max-env-steps", "120"]


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A run folder with a real resume.pt: n-step and prioritized replay on, stopped mid-episode by its budget."""
    run_dir = tmp_path_factory.mktemp("safety") / "run"
    run_dir.mkdir()
    args = parse_args(FLAGS)
    env, agent = build(args)
    hooks = TrainingHooks(agent, env, args, log=None)
    records = dqn.train(agent, env, args.episodes, args.max_episode_steps, dqn.shaped_reward, 0, None, hooks)
    assert save_resume_state(run_dir / RESUME_FILE, args, agent, env, hooks, records)
    return run_dir


def resume_in_process(run_dir):
    """What python dqn.py --resume run_dir does before training goes on: read, rebuild, restore."""
    args = resumed_args(run_dir, ["--resume", str(run_dir), "--max-env-steps", "240"])
    env, agent = build(args)
    restore(args.resume_state, agent, env, TrainingHooks(agent, env, args, log=None))
    return agent


def test_a_resume_file_restores_what_was_saved(stopped_run):
    agent = resume_in_process(stopped_run)
    _, state = read_state(stopped_run / RESUME_FILE, RESUME_FORMAT)
    memory = state["memory"]
    assert agent.memory.counter == memory["counter"] == 120
    assert np.array_equal(agent.memory.rows, memory["rows"]["value"].numpy())
    assert np.array_equal(agent.memory.priorities.nodes, memory["priorities"]["parts"]["nodes"]["value"].numpy())


# ---- hostile files ----------------------------------------------------------------------
class RunsCode:
    """Unpickling this would call os.system."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def hostile_payload():
    buffer = io.BytesIO()
    torch.save({"agent": RunsCode()}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("signed", [False, True])
def test_a_hostile_resume_file_runs_nothing_and_is_one_line(stopped_run, tmp_path, signed):
    run_dir = tmp_path / "runs" / "evil"
    run_dir.mkdir(parents=True)
    if signed:  # the right tag, settings, length and checksum around a payload that would run code
        payload = hostile_payload()
        settings = read_state(stopped_run / RESUME_FILE, RESUME_FORMAT)[0]["settings"]
        header = json.dumps(dict(settings=settings, bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest()))
        (run_dir / RESUME_FILE).write_bytes(f"{RESUME_FORMAT}\n{header}\n".encode() + payload)
        needle = "objects other than data"
    else:  # what a format-1 file was: a whole pickle
        (run_dir / RESUME_FILE).write_bytes(hostile_payload())
        needle = f"is not a {RESUME_FORMAT} file"
    assert_one_line_error(run_dqn("--resume", run_dir, cwd=tmp_path), needle)
    assert not (tmp_path / "PWNED").exists()


def test_a_hostile_model_runs_nothing_and_is_one_line(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"meta": RunsCode(), "eval_net": {}}, path)
    assert_one_line_error(run_dqn("--play", path, cwd=tmp_path), "not a readable dqn.py checkpoint")
    assert not (tmp_path / "PWNED").exists()


def test_a_format_1_file_is_refused_in_one_line_that_says_why(tmp_path):
    run_dir = tmp_path / "runs" / "old"
    run_dir.mkdir(parents=True)
    torch.save(dict(format="dqn-cartpole-resume/1", args={}, agent={}), run_dir / RESUME_FILE)
    result = run_dqn("--resume", run_dir, cwd=tmp_path)
    assert_one_line_error(result, "dqn-cartpole-resume/1 file, which is a pickle and could run code", "refused")


# ---- fuzzing ----------------------------------------------------------------------------
def refused(run_dir):
    """The one-line error --resume gives run_dir; a traceback or a run that goes on fails the test."""
    with pytest.raises(UsageError) as error:
        resume_in_process(run_dir)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"--resume: {run_dir / RESUME_FILE} ")  # about the file
    return message


def corrupted(tmp_path, name, data):
    run_dir = tmp_path / name
    run_dir.mkdir()
    (run_dir / RESUME_FILE).write_bytes(data)
    return run_dir


def test_truncated_and_flipped_files_are_each_one_line(stopped_run, tmp_path):
    original = (stopped_run / RESUME_FILE).read_bytes()
    header_end = original.index(b"\n", original.index(b"\n") + 1) + 1
    rng = random.Random(0)
    cases = [original[:n] for n in [0, 1, 10, header_end - 1, header_end, len(original) - 1]]
    cases += [original[: rng.randrange(len(original))] for _ in range(30)]
    for region in [range(header_end), range(header_end, len(original))]:
        for _ in range(60):
            at, flip = rng.choice(region), rng.randrange(1, 256)
            cases.append(original[:at] + bytes([original[at] ^ flip]) + original[at + 1 :])
    for i, data in enumerate(cases):
        refused(corrupted(tmp_path, f"case{i}", data))


def sites(data, path=()):
    """Every (path, value) inside data, containers and leaves, tagged dicts' insides included."""
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from sites(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from sites(value, (*path, i))


def mutations(value):
    """Ways to break one value while keeping the file well formed: type, dtype, shape."""
    if isinstance(value, torch.Tensor):
        other = torch.float64 if value.dtype != torch.float64 else torch.float32
        yield "dtype", value.to(other)
        if value.dim():
            yield "shape", value[:-1].clone()
    elif isinstance(value, (bool, int)):
        yield "type", str(value)
        yield "range", -5 if not isinstance(value, bool) else "yes"
    elif isinstance(value, list):
        yield "type", {"items": value}
    elif isinstance(value, dict) and KIND not in value:
        yield "type", list(value.values())


def checked_sites(state):
    """The places a fresh run fixes: the agent's fields, its memory's, the env's, the parts and the hooks' keys."""
    for path, value in sites(state):
        if path[:1] in (("agent",), ("memory",), ("env",)) and path[-1] != KIND:
            if path[:1] == ("env",) and "_np_random_seed" in path:
                continue  # the seed an env was last reset with: a record, not used to draw
            yield path, value


def edit(state, path, change):
    """state with the value at path replaced (change(value)) or, for change None, removed."""
    *parents, last = path
    holder = state
    for key in parents:
        holder = holder[key]
    if change is None:
        del holder[last]
    else:
        holder[last] = change(holder.get(last) if isinstance(holder, dict) else holder[last])


def test_removed_renamed_extra_mistyped_and_misshapen_fields_are_each_one_line(stopped_run, tmp_path):
    header, original = read_state(stopped_run / RESUME_FILE, RESUME_FORMAT)
    rng = random.Random(1)
    fields = [(p, v) for p, v in checked_sites(original) if p and isinstance(p[-1], str)]
    keyed = [p for p, _ in fields] + [(part,) for part in original] + [("hooks", k) for k in original["hooks"]]
    cases = [(f"remove {p}", p, None) for p in rng.sample(keyed, 40)]
    cases += [(f"rename {p}", p, "rename") for p in rng.sample(keyed, 20)]
    cases += [(f"extra in {p}", p, "extra") for p in rng.sample([p for p, v in fields if isinstance(v, dict)], 20)]
    breakable = [(p, how, bad) for p, v in checked_sites(original) for how, bad in mutations(v)]
    breakable = [b for b in breakable if b[1] != "range" or "counter" in str(b[0])]  # counts may not be negative
    cases += [(f"{how} of {p}", p, bad) for p, how, bad in rng.sample(breakable, 80)]
    for i, (what, path, change) in enumerate(cases):
        state = read_state(stopped_run / RESUME_FILE, RESUME_FORMAT)[1]
        if change == "rename":
            edit(state, path, None)
            edit(state, (*path[:-1], f"{path[-1]}_renamed"), lambda _, p=path: original_value(original, p))
        elif change == "extra":
            edit(state, (*path, "unexpected"), lambda _: 1)
        else:
            edit(state, path, None if change is None else lambda _, bad=change: bad)
        run_dir = tmp_path / f"case{i}"
        run_dir.mkdir()
        write_state(run_dir / RESUME_FILE, RESUME_FORMAT, state, header)  # well formed: its checksum matches
        try:
            refused(run_dir)
        except BaseException as e:
            raise AssertionError(f"{what} was not refused in one line") from e


def original_value(state, path):
    for key in path:
        state = state[key]
    return state


# ---- every part declares its state --------------------------------------------------------
AGENT_SETTINGS = {*dqn.hyperparameters, *EXTENSION_DEFAULTS, "n_states", "n_actions", "extensions", "device"}
AGENT_SETTINGS |= {"eval_weights"}  # numpy views of eval_net's weights, remade on first use after a restore
AGENT_SETTINGS |= {"policy_weights"}  # --averaged-policy's views of policy_net's, which a restore loads in place


AGENT_SETTINGS |= {"memory"}  # the replay memory: a part of its own, with its own state and settings
MEMORY_SETTINGS = {"capacity", "n_states", "gamma", "n_step", "per_alpha", "new_frames"}


def undeclared_agent_attributes(agent):
    """The attributes of the agent and of its memory that are neither declared state nor settings."""
    undeclared = set(vars(agent)) - set(agent_state_names(agent)) - AGENT_SETTINGS
    memory = agent.memory
    in_memory = set(vars(memory)) - set(memory_state_names(memory)) - MEMORY_SETTINGS
    return undeclared | {f"memory.{name}" for name in in_memory}


AGENTS = [
    dict(),
    dict(n_step=3),
    dict(prioritized=True),
    dict(dueling=True),
    dict(replay_ratio=2),
    dict(n_step=3, prioritized=True, dueling=True, replay_ratio=2),
]


STATE_AGENTS = [dict(averaged_policy=0.01), dict(averaged_policy=0.01, hidden_layers=2, dueling=True)]  # no --pixels


@pytest.mark.parametrize(
    "extensions, pixels", [(e, p) for e in AGENTS for p in (False, True)] + [(e, False) for e in STATE_AGENTS]
)
def test_every_attribute_of_every_agent_is_declared_state_or_a_setting(extensions, pixels):
    shape = (4, 21, 41) if pixels else 4
    agent = make_agent(shape, 2, 0, pixels, memory_capacity=50, learning_starts=10, batch_size=4, **extensions)
    env = make_pixel_env("CartPole-v1", unwrapped=False) if pixels else dqn.make_env("CartPole-v1", unwrapped=False)
    dqn.train(agent, env, episodes=3, max_episode_steps=30, reward_fn=lambda env, s_, r: float(r), seed=0, log=None)
    assert agent.learn_step_counter > 0 and not undeclared_agent_attributes(agent)


def test_an_extension_that_forgets_its_state_is_caught():
    class Forgetful:
        def learn(self):
            self.learned_so_far = getattr(self, "learned_so_far", 0) + 1  # state, but not in RESUME_STATE
            return super().learn()

    agent = type("ForgetfulDQN", (Forgetful, dqn.DQN), {})(4, 2, seed=0, memory_capacity=50, learning_starts=10)
    dqn.train(agent, dqn.make_env(), episodes=3, max_episode_steps=30, seed=0, log=None)
    assert undeclared_agent_attributes(agent) == {"learned_so_far"}


def test_a_memory_that_forgets_its_state_is_caught():
    class Forgetful(dqn.ReplayMemory):
        def store(self, *transition):
            self.stored_so_far = getattr(self, "stored_so_far", 0) + 1  # state, but not in RESUME_STATE
            super().store(*transition)

    agent = type("ForgetfulDQN", (dqn.DQN,), {"memory_class": Forgetful})(4, 2, seed=0, memory_capacity=50)
    dqn.train(agent, dqn.make_env(), episodes=2, max_episode_steps=30, seed=0, log=None)
    assert undeclared_agent_attributes(agent) == {"memory.stored_so_far"}


def values_of(layer):
    return {k: v for k, v in vars(layer).items() if isinstance(v, (bool, int, float, str, type(None), np.ndarray))}


@pytest.mark.parametrize(
    "make",
    [
        lambda: dqn.make_env("CartPole-v0"),
        lambda: dqn.make_env("CartPole-v1", unwrapped=False),
        lambda: dqn.make_env("Acrobot-v1", unwrapped=False),
        lambda: dqn.make_env("MountainCar-v0", unwrapped=False),
        lambda: make_pixel_env("CartPole-v1", unwrapped=False),
    ],
)
def test_what_an_env_changes_as_it_runs_is_declared_state(make):
    """An attribute that differs between an env just reset and one that ran on is state: it must be declared."""
    fresh, played = make(), make()
    fresh.reset(seed=0)
    played.reset(seed=1)
    for _ in range(15):
        _, _, terminated, truncated, _ = played.step(played.action_space.sample())
        if terminated or truncated:
            played.reset()
    for before, after in zip(layers(fresh), layers(played), strict=True):
        declared = set(state_names(after, ENV_STATE))
        a, b = values_of(before), values_of(after)
        changed = {k for k in a.keys() & b.keys() if not np.array_equal(a[k], b[k])} - declared
        assert not changed, (type(after).__name__, changed)


# ---- no loader that can run code ------------------------------------------------------------
def code_running_loads(tree):
    """Calls that can run code from a file: pickle/dill loads, torch.load without weights_only=True,
    numpy's load with allow_pickle=True, yaml.load, pandas' read_pickle."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = ast.unparse(node.func.value)
        name = node.func.attr
        keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
        if (
            owner in ("pickle", "dill", "cloudpickle", "joblib", "marshal")
            and name in ("load", "loads")
            or owner == "torch"
            and name == "load"
            and keywords.get("weights_only") != "True"
            or owner in ("np", "numpy")
            and name == "load"
            and keywords.get("allow_pickle") not in (None, "False")
            or (owner, name) in (("yaml", "load"), ("yaml", "unsafe_load"), ("pd", "read_pickle"))
        ):
            found.append(node)
    return found


def test_no_loader_in_the_program_or_the_benches_can_run_code_from_a_file():
    offenders = []
    for path in [ROOT / "dqn.py", *(ROOT / "beyond").glob("*.py"), *(ROOT / "bench").glob("*.py")]:
        for node in code_running_loads(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, "\n".join(offenders)
    bad = "import pickle, torch, numpy as np\npickle.load(f)\ntorch.load(p)\ntorch.load(p, weights_only=False)\n"
    bad += "np.load(p, allow_pickle=True)\ntorch.load(p, weights_only=True)\nnp.load(p)\n"
    assert len(code_running_loads(ast.parse(bad))) == 4  # the audit finds what it looks for


def test_load_resume_state_reads_the_folder_and_names_the_file(stopped_run):
    state = load_resume_state(stopped_run)
    assert state["path"] == str(Path(stopped_run) / RESUME_FILE)


def test_lunarlanders_next_episode_depends_on_its_declared_state_alone():
    """Resumed at an episode boundary, what reset() does not make anew is its random generator: declared."""
    pytest.importorskip("Box2D", reason="gymnasium[box2d] (requirements-dev.txt)")
    played, fresh = (dqn.make_env("LunarLander-v3", unwrapped=False) for _ in range(2))
    played.reset(seed=1)
    for _ in range(40):
        played.step(played.action_space.sample())
    fresh.reset(seed=2)
    for name in ENV_STATE["LunarLander"]:  # what resume.pt keeps of it
        setattr(fresh.unwrapped, name, copy.deepcopy(getattr(played.unwrapped, name)))
    (s1, _), (s2, _) = played.reset(), fresh.reset()
    assert np.array_equal(s1, s2)
    for _ in range(30):
        a = int(np.argmax(s1[:4]))
        (s1, r1, *_), (s2, r2, *_) = played.step(a), fresh.step(a)
        assert np.array_equal(s1, s2) and r1 == r2
