"""The opt-in fixes, greedy evaluation, presets and the multi-seed bench."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import dqn
from beyond.evaluation import evaluate
from beyond.flags import parse_args
from beyond.hooks import linear_schedule
from conftest import ROOT, SHORT, assert_one_line_error, read_metrics, run_dqn


def agent_with_distinct_nets(**overrides):
    agent = dqn.DQN(4, 2, seed=0, **overrides)
    torch.manual_seed(1)
    agent.target_net = dqn.q_net(4, 2)  # different weights from eval_net
    return agent


def tiny_batch():
    rng = np.random.default_rng(0)
    b_r = torch.tensor([[1.0], [-0.5], [2.0], [0.25]])
    b_s_ = torch.from_numpy(rng.normal(size=(4, 4)).astype(np.float32) * 3)
    b_terminated = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    return dqn.Batch(None, None, b_r, b_s_, b_terminated)


def test_default_target_is_the_blogs():
    agent = agent_with_distinct_nets()
    batch = tiny_batch()
    with torch.no_grad():
        q = agent.target_net(batch.s_)
    expected = [r + 0.9 * max(q[i]).item() for i, r in enumerate(batch.r[:, 0].tolist())]
    got = agent.td_target(batch)  # terminal flags are ignored by default
    torch.testing.assert_close(got[:, 0], torch.tensor(expected))


def test_double_dqn_picks_with_eval_net_and_values_with_target_net():
    agent = agent_with_distinct_nets(double=True)
    batch = tiny_batch()
    b_r, b_s_ = batch.r, batch.s_
    with torch.no_grad():
        q_eval, q_target = agent.eval_net(b_s_), agent.target_net(b_s_)
    picks = q_eval.argmax(1)
    assert (picks != q_target.argmax(1)).any(), "the batch must tell Double DQN from plain max"
    expected = [b_r[i, 0].item() + 0.9 * q_target[i, picks[i]].item() for i in range(4)]
    torch.testing.assert_close(agent.td_target(batch)[:, 0], torch.tensor(expected))


def test_terminal_mask_zeroes_the_bootstrap_only_where_terminated():
    agent = agent_with_distinct_nets(terminal_mask=True)
    batch = tiny_batch()
    with torch.no_grad():
        best = agent.target_net(batch.s_).max(1).values
    got = agent.td_target(batch)[:, 0]
    assert got[0].item() == pytest.approx(1.0) and got[2].item() == pytest.approx(2.0)
    assert got[1].item() == pytest.approx(-0.5 + 0.9 * best[1].item())
    assert got[3].item() == pytest.approx(0.25 + 0.9 * best[3].item())


def test_terminal_flag_is_stored_per_row():
    agent = dqn.DQN(4, 2, memory_capacity=4, terminal_mask=True, batch_size=64, seed=0)
    s = np.zeros(4, np.float32)
    agent.store_transition(s, 0, 1.0, s, terminated=True)
    agent.store_transition(s + 1, 1, 0.0, s, terminated=False)
    batch = agent.memory.sample(agent.batch_size, agent.rng)
    assert torch.equal(batch.terminated[:, 0], (batch.s[:, 0] == 0).float())


def test_grad_clip_bounds_the_gradient_norm():
    from test_dqn import filled_agent

    agent = filled_agent(grad_clip=1e-3)
    agent.learn()
    norm = torch.norm(torch.stack([p.grad.norm() for p in agent.eval_net.parameters()]))
    assert norm.item() == pytest.approx(1e-3, rel=1e-3)


def test_hidden_and_learning_starts_and_train_every():
    agent = dqn.DQN(4, 2, seed=0, hidden=17, memory_capacity=500, learning_starts=100, train_every=4)
    assert agent.eval_net.fc[0].out_features == 17
    records = dqn.train(agent, dqn.make_env(), episodes=20, max_episode_steps=100, seed=0, log=None)
    total = records[-1]["env_steps"]
    # learning from env step 101 on, once every 4 env steps
    assert agent.learn_step_counter == sum(1 for t in range(101, total + 1) if t % 4 == 0)


def test_linear_epsilon_schedule():
    schedule = linear_schedule(0.0, 0.9, 100)
    assert [schedule(t) for t in (0, 50, 100, 1000)] == pytest.approx([0.0, 0.45, 0.9, 0.9])


def test_evaluate_is_greedy_and_deterministic_for_a_seed():
    agent = dqn.DQN(4, 2, seed=3, epsilon=0.0)  # would act randomly in training
    first = evaluate(agent, episodes=3, seed=11)
    assert first == evaluate(agent, episodes=3, seed=11)
    assert set(first) == {"mean", "std", "min"} and first["min"] <= first["mean"]
    # a fixed greedy policy of a fresh net is not a random one: it falls fast and the same way
    assert first == evaluate(dqn.DQN(4, 2, seed=3, epsilon=1.0), episodes=3, seed=11)


def test_evaluate_uses_the_standard_500_step_task():
    class AlwaysBalances:  # push the cart the way the pole leans (and is falling)
        n_states = 4  # reads the state, as dqn.DQN does

        def greedy_action(self, s):
            return int(s[2] + 0.5 * s[3] > 0)

    result = evaluate(AlwaysBalances(), episodes=2, seed=0)
    assert result["mean"] == 500.0  # capped by CartPole-v1's time limit, counted in env reward


FLAGS_ON = [
    "--double",
    "--terminal-mask",
    "--huber",
    "--grad-clip",
    "10",
    "--epsilon-start",
    "0.2",
    "--epsilon-end",
    "0.95",
    "--epsilon-steps",
    "200",
    "--env",
    "CartPole-v1",
    "--reward",
    "env",
    "--hidden",
    "32",
    "--learning-starts",
    "100",
    "--train-every",
    "2",
    "--eval-every",
    "100",
]


def test_flags_run_end_to_end_and_repeat_bit_for_bit(tmp_path):
    args = [*SHORT, *FLAGS_ON, "--watch", "0", "--quiet"]
    for name in ("a", "b"):
        result = run_dqn(*args, "--run-name", name, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
    a, b = (read_metrics(tmp_path / "runs" / n / "metrics.csv") for n in "ab")
    assert a == [dict(r, wall_s=x["wall_s"]) for r, x in zip(b, a, strict=True)]  # all but the clock
    # the standard task pays +1 a step, the schedule raises the greedy probability
    assert all(float(r["reward"]) == int(r["steps"]) for r in a)
    eps = [float(r["epsilon"]) for r in a]
    assert eps == sorted(eps) and eps[0] < 0.5 and eps[-1] == pytest.approx(0.95)
    assert sum(1 for r in a if r["eval_mean"]) >= 2  # periodic evals, plus the final one
    meta = torch.load(tmp_path / "runs" / "a" / "model.pt", weights_only=True)["meta"]
    assert meta["settings"]["env"] == "CartPole-v1" and meta["settings"]["hidden"] == 32


def test_preset_sets_defaults_and_explicit_flags_win():
    args = parse_args(["--preset", "tuned", "--lr", "0.005"])
    assert args.env == "CartPole-v1" and args.reward == "env" and args.prioritized and args.terminal_mask
    assert args.lr == 0.005
    assert args.early_stop == 475.0
    blog = parse_args([])
    assert (blog.env, blog.reward, blog.double, blog.lr) == ("CartPole-v0", "shaped", False, 0.01)


def test_early_stop_and_no_early_stop(tmp_path):
    base = [*SHORT, "--watch", "0", "--quiet", "--eval-every", "200", "--eval-episodes", "1"]
    stopped = run_dqn(*base, "--early-stop", "1", "--run-name", "s", cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert "early stop" in stopped.stdout
    assert len(read_metrics(tmp_path / "runs" / "s" / "metrics.csv")) < 25
    # the saved agent is the one that passed the evaluation, not the one a learn step later
    evals = read_metrics(tmp_path / "runs" / "s" / "evals.csv")
    data = torch.load(tmp_path / "runs" / "s" / "model.pt", weights_only=True)
    agent = dqn.DQN(4, 2)
    agent.eval_net.load_state_dict(data["eval_net"])
    again = evaluate(agent, episodes=1, env_id="CartPole-v1", seed=10_000)  # the eval seed of --seed 0
    assert float(evals[-1]["mean"]) == again["mean"] >= 1
    kept = run_dqn(*base, "--early-stop", "1", "--no-early-stop", "--run-name", "k", cwd=tmp_path)
    assert kept.returncode == 0 and "early stop" not in kept.stdout
    assert len(read_metrics(tmp_path / "runs" / "k" / "metrics.csv")) == 25


def test_a_pass_stops_early_only_once_fresh_episodes_confirm_it():
    from beyond.evaluation import confirm_seed, eval_seed
    from beyond.hooks import Evaluator

    args = parse_args(
        ["--quiet", "--seed", "4", "--eval-every", "100", "--early-stop", "475", "--confirm-episodes", "50"]
    )
    evaluator = Evaluator(dqn.DQN(4, 2), args)
    scripted = iter([480.0, 470.0, 300.0, 490.0, 476.0])  # pass, refuted; below; pass, confirmed
    asked = []

    def scripted_evaluate(seed, episodes=None):
        asked.append((seed, episodes or args.eval_episodes))
        return dict(mean=next(scripted), std=0.0, min=0.0)

    evaluator.evaluate = scripted_evaluate
    for env_steps in (100, 200):
        assert not evaluator.run_eval(env_steps) and evaluator.solved is None
    assert evaluator.unconfirmed == [(100, 480.0, 470.0)]
    assert evaluator.run_eval(300)  # stops
    assert evaluator.solved[0]["mean"] == 490.0 and evaluator.solved[0]["confirmed_mean"] == 476.0
    periodic = (eval_seed(4), args.eval_episodes)
    assert asked == [periodic, (confirm_seed(4, 0), 50), periodic, periodic, (confirm_seed(4, 1), 50)]


def test_keep_best_ends_with_the_best_evaluated_weights(tmp_path):
    result = run_dqn(
        *SHORT,
        "--episodes",
        "60",
        "--watch",
        "0",
        "--quiet",
        "--eval-every",
        "300",
        "--eval-episodes",
        "3",
        "--keep-best",
        "--run-name",
        "b",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    evals = read_metrics(tmp_path / "runs" / "b" / "evals.csv")
    periodic = [float(e["mean"]) for e in evals if e["final"] == "0"]  # the last one at the end of training
    assert [e["final"] for e in evals] == ["0"] * len(periodic) + ["1"]
    final = float(evals[-1]["mean"])
    assert len(periodic) >= 3 and len(set(periodic)) > 1
    assert f"keeping the weights of the best evaluation: {max(periodic):.1f}" in result.stdout
    agent = dqn.DQN(4, 2)
    agent.eval_net.load_state_dict(torch.load(tmp_path / "runs" / "b" / "model.pt", weights_only=True)["eval_net"])
    # the saved weights are the best ones: on the periodic evaluation's episodes they score the best mean ...
    assert evaluate(agent, episodes=3, env_id="CartPole-v1", seed=10_000)["mean"] == max(periodic)
    # ... and the final evaluation measured them on the next, unseen episodes
    assert evaluate(agent, episodes=3, env_id="CartPole-v1", seed=10_003)["mean"] == final


def test_keep_best_needs_periodic_evaluations(dqn_cli):
    assert_one_line_error(dqn_cli("--keep-best"), "--keep-best", "--eval-every")


def test_max_env_steps_caps_the_whole_run(tmp_path):
    result = run_dqn(
        *SHORT,
        "--episodes",
        "1000",
        "--max-env-steps",
        "345",
        "--watch",
        "0",
        "--quiet",
        "--run-name",
        "m",
        cwd=tmp_path,
    )
    assert result.returncode == 0
    assert int(read_metrics(tmp_path / "runs" / "m" / "metrics.csv")[-1]["env_steps"]) == 345


def test_seeds_bench_writes_its_table_and_figure(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "seeds.py"),
            "--name",
            "smoke",
            "--seeds",
            "2",
            "--solved",
            "15",
            "--out",
            str(tmp_path),
            "--",
            "--episodes",
            "30",
            "--memory-capacity",
            "200",
            "--max-episode-steps",
            "300",
            "--eval-every",
            "300",
            "--eval-episodes",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_metrics(tmp_path / "smoke.csv")
    assert [r["seed"] for r in rows] == ["0", "1"]
    assert all(float(r["wall_s"]) > 0 and int(r["env_steps"]) > 0 for r in rows)
    summary = json.loads((tmp_path / "smoke.json").read_text())
    assert summary["seeds"] == 2 and summary["solved_within_window"].endswith("/2")
    assert (tmp_path / "smoke.png").read_bytes()[:4] == b"\x89PNG"
    assert len(read_metrics(tmp_path / "smoke_curve.csv")) == 100
    assert "| seed |" in result.stdout and "SUMMARY" in result.stdout
