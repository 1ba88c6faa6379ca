"""Value estimates against the truth (beyond/values.py), and the two ablations of bench/why_dqn.py."""

import math
import sys

import numpy as np
import pytest
import torch

import dqn
from beyond.evaluation import evaluate
from beyond.flags import parse_args
from beyond.values import ValueCheck, discounted_returns, max_q, tail_steps
from conftest import ROOT, SHORT, finished_run, read_metrics

sys.path.insert(0, str(ROOT / "bench"))
import judge  # noqa: E402
import why_dqn  # noqa: E402


class Corridor:
    """+1 a step; terminates after `length` steps; a time limit truncates after `limit` (ignored past it)."""

    def __init__(self, length, limit):
        self.length, self.limit = length, limit

    def reset(self, seed=None):
        self.t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], dtype=np.float32), 1.0, self.t >= self.length, self.t >= self.limit, {}


class AlwaysZero:
    def greedy_action(self, s):
        return 0


def corridor_check(length, limit, gamma):
    """One evaluation episode of the corridor through ValueCheck: the visited states' true returns."""
    env, agent = Corridor(length, limit), AlwaysZero()
    check = ValueCheck(lambda env, s_, r: r, gamma)
    s, _ = env.reset()
    check.start_episode()
    while True:
        s_, r, terminated, truncated, _ = env.step(agent.greedy_action(s))
        check.step(env, s, s_, r)
        s = s_
        if terminated or truncated:
            break
    check.play_on(env, agent, s, terminated)
    return check.returns[0], env.t


def test_the_truth_is_the_closed_form_discounted_return():
    gamma, length = 0.9, 30
    # Terminating inside the limit: from step t the policy collects length - t rewards of 1.
    returns, _ = corridor_check(length, limit=1000, gamma=gamma)
    expected = [(1 - gamma ** (length - t)) / (1 - gamma) for t in range(length)]
    np.testing.assert_allclose(returns, expected, rtol=1e-12)
    # Truncated by a limit of 10, but the corridor goes on to step 30: playing on past the
    # limit finds the rewards the episode never saw, and only the 10 visited states count.
    returns, steps = corridor_check(length, limit=10, gamma=gamma)
    assert len(returns) == 10 and steps == length
    np.testing.assert_allclose(returns, expected[:10], rtol=1e-12)
    # A corridor without end: play on until gamma^k < 1e-3, so the truth is 1/(1 - gamma) to within that share.
    returns, steps = corridor_check(10**9, limit=10, gamma=gamma)
    assert steps == 10 + tail_steps(gamma)
    np.testing.assert_allclose(returns[0], 1 / (1 - gamma), rtol=1e-3)
    assert returns[0] < 1 / (1 - gamma)


def test_tail_lengths_and_the_backward_pass():
    assert tail_steps(0.9) == 66 and tail_steps(0.99) == 688 and tail_steps(0) == 0
    assert 0.9**66 < 1e-3 < 0.9**65
    np.testing.assert_allclose(discounted_returns([1.0, 2.0, 3.0], 0.5), [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3])


def test_an_evaluation_reports_the_mean_max_q_and_the_true_return_of_the_visited_states():
    agent, gamma = dqn.DQN(4, 2, seed=0), 0.9
    result = evaluate(agent, episodes=1, env_id="CartPole-v1", seed=5, values=ValueCheck(lambda e, s_, r: r, gamma))
    env = dqn.make_env("CartPole-v1", unwrapped=False)
    states, s = [], env.reset(seed=5)[0]
    for _ in range(500):  # the same episode, by hand
        states.append(s)
        s, _, terminated, truncated, _ = env.step(agent.greedy_action(s))
        if terminated or truncated:
            break
    assert terminated and len(states) < 500  # an untrained agent drops the pole: the truth ends there
    with torch.no_grad():
        estimate = agent.eval_net(torch.as_tensor(np.array(states))).max(1).values.double().mean().item()
    n = len(states)
    truth = np.mean([(1 - gamma ** (n - t)) / (1 - gamma) for t in range(n)])  # +1 a step until the fall
    np.testing.assert_allclose(result["q_estimate"], estimate, rtol=1e-6)
    np.testing.assert_allclose(result["true_return"], truth, rtol=1e-9)
    np.testing.assert_allclose(max_q(agent, states).mean(), estimate, rtol=1e-6)


def test_a_short_run_writes_the_estimate_and_the_truth(tmp_path_factory):
    run_dir, result = finished_run(
        tmp_path_factory, "values", *SHORT, "--watch", "0", "--snapshots", "0", "--eval-every", "100"
    )
    rows = read_metrics(run_dir / "evals.csv")
    assert len(rows) >= 2
    for row in rows:
        assert math.isfinite(float(row["q_estimate"])) and math.isfinite(float(row["true_return"]))
    assert "the net believes" in result.stdout and "its greedy policy gets" in result.stdout


def test_without_the_flag_the_columns_stay_empty(tmp_path_factory):
    run_dir, result = finished_run(
        tmp_path_factory, "novalues", *SHORT, "--watch", "0", "--snapshots", "0", "--no-value-estimates"
    )
    rows = read_metrics(run_dir / "evals.csv")
    assert rows and all(row["q_estimate"] == "" and row["true_return"] == "" for row in rows)
    assert "the net believes" not in result.stdout


def test_the_value_check_is_on_by_default_and_off_for_pixels_and_the_judge():
    assert parse_args([]).value_estimates
    assert parse_args(["--preset", "tuned"]).value_estimates
    assert not parse_args(["--pixels"]).value_estimates
    assert "--no-value-estimates" in judge.protocol_flags([], 0, 1000)


def test_a_memory_of_one_row_learns_from_the_newest_transition():
    agent = dqn.DQN(4, 2, seed=0, memory_capacity=1, batch_size=1, learning_starts=0)
    for t in range(5):
        s = np.full(4, t, dtype=np.float32)
        agent.store_transition(s, t % 2, float(t), s + 0.5)
        b_s, b_a, b_r, b_s_ = agent.memory.sample(agent.batch_size, agent.rng)[:4]
        assert (
            b_s.tolist() == [[t] * 4] and b_a.item() == t % 2 and b_r.item() == t and b_s_.tolist() == [[t + 0.5] * 4]
        )


def test_without_replay_every_batch_comes_from_the_newest_batch_size_transitions():
    args = parse_args([str(f) for f in judge.protocol_flags(why_dqn.NO_REPLAY, 0, 1000)])
    agent = dqn.DQN(4, 2, seed=0, memory_capacity=args.memory_capacity, batch_size=args.batch_size, learning_starts=0)
    assert agent.memory_capacity == agent.batch_size == 32 and args.learning_starts == 2000
    for t in range(100):
        agent.store_transition(np.full(4, t, dtype=np.float32), 0, 0.0, np.zeros(4, dtype=np.float32))
    drawn = agent.memory.sample(agent.batch_size, agent.rng).s[:, 0]
    assert drawn.min() >= 100 - 32


class CheckedTargets(dqn.DQN):
    """Records, at every TD target, whether target_net's weights equal eval_net's."""

    def td_target(self, *args, **kwargs):
        same = all(
            torch.equal(a, b) for a, b in zip(self.eval_net.parameters(), self.target_net.parameters(), strict=True)
        )
        self.target_is_eval.append(same)
        return super().td_target(*args, **kwargs)


@pytest.mark.parametrize("target_replace_iter, always_same", [(1, True), (100, False)])
def test_a_sync_every_learn_step_means_the_target_is_the_net_being_trained(target_replace_iter, always_same):
    agent = CheckedTargets(4, 2, seed=0, target_replace_iter=target_replace_iter, learning_starts=0, memory_capacity=64)
    agent.target_is_eval = []
    rng = np.random.default_rng(0)
    for _ in range(64):
        agent.store_transition(
            rng.normal(size=4).astype(np.float32), int(rng.integers(2)), 1.0, rng.normal(size=4).astype(np.float32)
        )
    for _ in range(20):
        agent.learn()
    assert all(agent.target_is_eval) == always_same
    assert agent.target_is_eval[0]  # both start from the same weights


def test_judged_to_the_budget_the_solve_is_the_same(monkeypatch):
    real_confirm = judge.confirm

    def first_fails(agent, seed, attempt=0, task=judge.CARTPOLE):  # a pass that does not hold, whatever the CPU
        return 0.0 if attempt == 0 else real_confirm(agent, seed, attempt, task)

    monkeypatch.setattr(judge, "confirm", first_fails)
    flags = ["--preset", "tuned"]  # seed 10 passes early: its first pass is refuted, a later one confirms
    stopped = judge.judge(flags, seed=10, budget=6000)
    assert stopped["solved_at"] is not None and stopped["unconfirmed"]
    on = judge.judge(flags, seed=10, budget=stopped["solved_at"] + 2000, to_budget=True, value_estimates=True)
    assert (on["solved_at"], on["confirm_mean"], on["unconfirmed"]) == (
        stopped["solved_at"],
        stopped["confirm_mean"],
        stopped["unconfirmed"],
    )
    assert len(on["evals"]) > len(stopped["evals"]) and all(len(e) == 4 for e in on["evals"])
    assert [e[:2] for e in on["evals"][: len(stopped["evals"])]] == [tuple(e) for e in stopped["evals"]]


@pytest.mark.parametrize("name", list(why_dqn.ROWS))
def test_every_why_dqn_row_is_valid_dqn_flags(name):
    parse_args([str(f) for f in judge.protocol_flags(why_dqn.ROWS[name], 0, 1000)])
