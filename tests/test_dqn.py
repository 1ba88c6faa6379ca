"""The algorithm's pieces: q_net, the ring buffer, learn(), the shaped reward, train()."""

import copy
import math
import os

import numpy as np
import pytest
import torch
import torch.nn as nn

import dqn


def filled_agent(seed=0, n=40, **overrides):
    """An agent whose memory holds n random CartPole-like transitions."""
    overrides = {"memory_capacity": 32, "batch_size": 8, **overrides}
    agent = dqn.DQN(4, 2, seed=seed, **overrides)
    rng = np.random.default_rng(seed)
    for i in range(n):
        s, s_ = rng.normal(size=4).astype(np.float32), rng.normal(size=4).astype(np.float32)
        agent.store_transition(s, i % 2, float(rng.normal()), s_, terminated=i % 5 == 0)
    return agent


def test_hyperparameters_are_the_blogs():
    h = dqn.hyperparameters
    assert (h["batch_size"], h["lr"], h["epsilon"], h["gamma"], h["target_replace_iter"], h["memory_capacity"]) == (
        32,
        0.01,
        0.9,
        0.9,
        100,
        2000,
    )
    agent = dqn.DQN(4, 2)
    assert isinstance(agent.memory, dqn.ReplayMemory) and agent.memory.capacity == 2000
    assert isinstance(agent.optimizer, torch.optim.Adam)


def test_unknown_override_is_refused():
    with pytest.raises(TypeError, match="unknown hyperparameter"):
        dqn.DQN(4, 2, batchsize=3)


def test_q_net_shape_and_init():
    torch.manual_seed(0)
    net = dqn.q_net(4, 2, hidden=2000)
    layers = [m for m in net.fc if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in layers] == [(4, 2000), (2000, 2)]
    assert isinstance(net.fc[1], nn.ReLU)
    assert net(torch.zeros(7, 4)).shape == (7, 2)
    std = layers[0].weight.std().item()
    assert 0.09 < std < 0.11  # N(0, 0.1), not PyTorch's default uniform init (std ~0.29 here)


def test_ring_buffer_wraps_and_gives_back_each_transition_as_stored():
    agent = dqn.DQN(4, 2, memory_capacity=3)
    for i in range(5):
        s = np.full(4, i, dtype=np.float32)
        agent.store_transition(s, i % 2, 10.0 + i, s + 0.5)
    assert agent.memory.counter == 5
    # rows 0 and 1 were overwritten by transitions 3 and 4; row 2 still holds transition 2
    for row, i in [(0, 3), (1, 4), (2, 2)]:
        batch = agent.memory.batch_at(np.array([row]))
        assert batch.s.tolist() == [[i] * 4] and batch.s_.tolist() == [[i + 0.5] * 4]
        assert batch.a.tolist() == [[i % 2]] and batch.a.dtype == torch.int64 and batch.r.tolist() == [[10.0 + i]]


def test_target_net_syncs_every_target_replace_iter_learn_steps():
    agent = filled_agent(target_replace_iter=3)

    def same():
        return all(
            torch.equal(a, b)
            for a, b in zip(agent.eval_net.state_dict().values(), agent.target_net.state_dict().values(), strict=True)
        )

    agent.learn()  # learn step 0 syncs first, then updates eval_net
    assert not same()
    agent.learn()
    agent.learn()
    assert not same()
    before = {k: v.clone() for k, v in agent.eval_net.state_dict().items()}
    agent.learn()  # learn step 3: the target becomes the eval net as it was before this update
    assert all(torch.equal(before[k], v) for k, v in agent.target_net.state_dict().items())
    assert agent.learn_step_counter == 4


def test_learn_changes_eval_net_and_leaves_target_alone():
    agent = filled_agent()
    agent.learn()  # the first call syncs; measure the second
    eval_before = [p.clone() for p in agent.eval_net.parameters()]
    target_before = [p.clone() for p in agent.target_net.parameters()]
    agent.learn()
    assert all(not torch.equal(a, b) for a, b in zip(eval_before, agent.eval_net.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(target_before, agent.target_net.parameters(), strict=True))


@pytest.mark.parametrize("huber", [False, True])
def test_hand_written_backprop_equals_autograd(huber):
    """learn() writes the chain rule out instead of calling loss.backward(): same gradients."""
    agent = filled_agent(huber=huber)
    agent.learn()  # move away from the initial weights
    b_s, b_a, b_r, b_s_ = agent.memory.sample(agent.batch_size, agent.rng)[:4]
    with torch.no_grad():
        q_target = b_r + agent.gamma * agent.target_net(b_s_).max(1, keepdim=True).values
        hidden = torch.relu(agent.eval_net.fc[0](b_s))
        q_eval = agent.eval_net.fc[2](hidden).gather(1, b_a)
        td_error = q_eval - q_target
        d_q = td_error.clamp(-1, 1) / len(b_s) if huber else 2 * td_error / len(b_s)
        agent.eval_net.backprop(b_s, hidden, b_a, d_q)
    by_hand = [p.grad.clone() for p in agent.eval_net.parameters()]

    agent.eval_net.zero_grad()
    criterion = nn.SmoothL1Loss() if huber else nn.MSELoss()
    criterion(agent.eval_net(b_s).gather(1, b_a), q_target).backward()
    for mine, autograd in zip(by_hand, agent.eval_net.parameters(), strict=True):
        torch.testing.assert_close(mine, autograd.grad, rtol=1e-5, atol=1e-7)


def test_learn_is_the_blogs_update():
    """One learn() equals: MSE(Q(s,a), r + gamma max Q_target(s_)) and one Adam step."""
    agent = filled_agent(seed=3)
    agent.learn()
    reference = dqn.q_net(4, 2)
    reference.load_state_dict(agent.eval_net.state_dict())
    optimizer = torch.optim.Adam(reference.parameters(), lr=agent.lr)
    optimizer.load_state_dict(copy.deepcopy(agent.optimizer.state_dict()))  # else they share moments
    state = agent.rng.bit_generator.state
    b_s, b_a, b_r, b_s_ = agent.memory.sample(agent.batch_size, agent.rng)[:4]
    agent.rng.bit_generator.state = state  # learn() draws the same batch
    q_target = b_r + agent.gamma * agent.target_net(b_s_).max(1, keepdim=True).values.detach()
    loss = nn.MSELoss()(reference(b_s).gather(1, b_a), q_target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    got = agent.learn()
    assert got == pytest.approx(loss.item(), rel=1e-5)
    for a, b in zip(agent.eval_net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_sampling_is_uniform_with_replacement_over_the_filled_rows():
    agent = dqn.DQN(4, 2, memory_capacity=50, batch_size=50, seed=1)
    for i in range(10):
        agent.store_transition(np.full(4, i, np.float32), 0, 0.0, np.zeros(4, np.float32))
    seen = torch.cat([agent.memory.sample(agent.batch_size, agent.rng).s[:, 0] for _ in range(200)])
    counts = torch.bincount(seen.long(), minlength=10)
    assert len(counts) == 10  # never an empty (unfilled) row
    assert counts.min() > 800 and counts.max() < 1200  # 10,000 draws over 10 rows
    first = agent.memory.sample(agent.batch_size, agent.rng).s[:, 0]
    assert len(set(first.tolist())) < len(first)  # with replacement: repeats within a batch


def test_choose_action_greedy_at_epsilon_1_and_random_at_0():
    agent = dqn.DQN(4, 2, seed=0, epsilon=1.0)
    s = np.array([0.1, -0.2, 0.05, 0.3], dtype=np.float32)
    best = int(agent.eval_net(torch.from_numpy(s)).argmax())
    actions = {agent.choose_action(s) for _ in range(200)}
    assert actions == {best}
    assert type(agent.choose_action(s)) is int
    agent.epsilon = 0.0
    assert {agent.choose_action(s) for _ in range(200)} == {0, 1}


def test_shaped_reward_at_known_states():
    env = dqn.make_env()
    # centred and upright: r1 = 1 - 0.8, r2 = 1 - 0.5
    assert dqn.shaped_reward(env, np.zeros(4)) == pytest.approx(0.2 + 0.5)
    # at the edges of the track and of the allowed angle: r1 = -0.8, r2 = -0.5
    edge = np.array([env.x_threshold, 0, -env.theta_threshold_radians, 0])
    assert dqn.shaped_reward(env, edge) == pytest.approx(-1.3)
    half = np.array([-env.x_threshold / 2, 3.0, env.theta_threshold_radians / 2, -3.0])
    assert dqn.shaped_reward(env, half) == pytest.approx(0.5 - 0.8 + 0.5 - 0.5)


def test_make_env_is_unwrapped_by_default():
    env = dqn.make_env()
    assert env is env.unwrapped
    assert dqn.make_env("CartPole-v1", unwrapped=False).spec.max_episode_steps == 500


def short_run(seed, episodes=12, **overrides):
    agent = dqn.DQN(4, 2, seed=seed, **{"memory_capacity": 100, **overrides})
    return agent, dqn.train(agent, dqn.make_env(), episodes=episodes, max_episode_steps=200, seed=seed, log=None)


def test_train_learns_after_the_memory_fills_and_returns_records():
    agent, records = short_run(0)
    assert agent.learn_step_counter > 0
    first = next(r for r in records if r["learning"])
    assert sum(r["steps"] for r in records[: first["episode"]]) <= 100 < first["env_steps"]
    assert records[-1]["env_steps"] == sum(r["steps"] for r in records)
    # one learn() per env step once the memory holds more than memory_capacity rows
    assert agent.learn_step_counter == records[-1]["env_steps"] - 100
    assert all(math.isfinite(r["loss"]) for r in records if r["learning"])


def test_episode_cap_ends_every_episode():
    agent = dqn.DQN(4, 2, seed=0)
    records = dqn.train(agent, dqn.make_env(), episodes=3, max_episode_steps=5, seed=0, log=None)
    assert all(r["steps"] <= 5 for r in records)


def test_same_seed_same_run_bit_for_bit():
    _, a = short_run(7)
    _, b = short_run(7)
    _, c = short_run(8)
    key = [(r["steps"], r["reward"], r["loss"]) for r in a]
    assert key == [(r["steps"], r["reward"], r["loss"]) for r in b]
    assert key != [(r["steps"], r["reward"], r["loss"]) for r in c]


def test_import_has_no_side_effects():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "import dqn"],
        capture_output=True,
        text=True,
        cwd=dqn.__file__.rsplit("/", 1)[0],
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout == "" and out.stderr == ""


def test_importing_dqn_runs_torch_on_one_thread():
    """A learner's own script, a notebook or a bench that imports dqn gets the CLI's speed (docs/performance.md)."""
    import subprocess
    import sys

    code = "import torch; before = torch.get_num_threads(); import dqn; print(before, torch.get_num_threads())"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}  # what torch takes by itself on a 2-core machine
    root = dqn.__file__.rsplit("/", 1)[0]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env, timeout=60)
    assert out.stdout.split() == ["2", "1"], out.stderr


def test_greedy_action_follows_eval_net_as_it_learns_and_is_reloaded():
    """greedy_action runs q_net's forward in numpy on views of eval_net's weights."""
    agent = filled_agent(seed=5, lr=0.1)
    states = np.random.default_rng(1).normal(size=(300, 4)).astype(np.float32) * 2

    def torch_argmax():
        with torch.no_grad():
            return agent.eval_net(torch.from_numpy(states)).argmax(1).tolist()

    for _ in range(3):
        agent.learn()
        assert [agent.greedy_action(s) for s in states] == torch_argmax()
    other = dqn.q_net(4, 2)
    agent.eval_net.load_state_dict(other.state_dict())  # as --play and early stop do
    assert [agent.greedy_action(s) for s in states] == torch_argmax()
    assert len(set(torch_argmax())) == 2


@pytest.mark.parametrize("huber", [False, True])
def test_update_weighs_each_sample_and_returns_the_td_errors(huber):
    """A batch with weights w gives the gradients of mean(w * per-sample loss), as autograd computes them."""
    agent = filled_agent(seed=2, huber=huber)
    agent.learn()
    batch = agent.memory.sample(agent.batch_size, agent.rng)
    b_s, b_a, b_r, b_s_ = batch[:4]
    weights = torch.linspace(0.1, 1.0, agent.batch_size)[:, None]
    reference = copy.deepcopy(agent.eval_net)
    with torch.no_grad():
        q_target = b_r + agent.gamma * agent.target_net(b_s_).max(1, keepdim=True).values
    q_eval = reference(b_s).gather(1, b_a)
    per_sample = nn.functional.smooth_l1_loss if huber else nn.functional.mse_loss
    expected = (weights * per_sample(q_eval, q_target, reduction="none")).mean()
    expected.backward()
    loss, td_error = agent.update(batch._replace(weights=weights))
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(td_error, (q_eval - q_target).detach())
    for mine, autograd in zip(agent.eval_net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine.grad, autograd.grad, rtol=1e-5, atol=1e-7)


def test_a_per_sample_discount_replaces_gamma():
    agent = filled_agent(seed=4)
    batch = agent.memory.sample(agent.batch_size, agent.rng)
    discount = torch.linspace(0.0, 0.99, agent.batch_size)[:, None]  # gamma^k for k-step returns, say
    with torch.no_grad():
        best = agent.target_net(batch.s_).max(1, keepdim=True).values
        torch.testing.assert_close(agent.td_target(batch._replace(discount=discount)), batch.r + discount * best)
        torch.testing.assert_close(agent.td_target(batch), batch.r + agent.gamma * best)


def test_train_tells_the_agent_how_each_episode_ended():
    """The last transition of each episode says terminated (the pole fell) or truncated (the cap)."""

    class RecordingDQN(dqn.DQN):
        def store_transition(self, s, a, r, s_, terminated=False, truncated=False):
            self.ends.append((bool(terminated), bool(truncated)))
            super().store_transition(s, a, r, s_, terminated, truncated)

    for cap, expected_end in [(4, (False, True)), (10_000, (True, False))]:
        agent = RecordingDQN(4, 2, seed=0, epsilon=0.0)  # random actions: the pole falls within ~40 steps
        agent.ends = []
        records = dqn.train(agent, dqn.make_env(), episodes=5, max_episode_steps=cap, seed=0, log=None)
        ends_at = np.cumsum([r["steps"] for r in records]) - 1
        assert [agent.ends[i] for i in ends_at] == [expected_end] * 5
        assert sum(map(any, agent.ends)) == 5  # nothing else is marked as an end


def test_a_subclass_supplies_its_own_network_and_memory():
    class WideDQN(dqn.DQN):
        def make_net(self):
            return dqn.q_net(self.n_states, self.n_actions, hidden=7)

        class memory_class(dqn.ReplayMemory):
            def make_rows(self):
                return np.ones((self.capacity, self.n_states * 2 + 2), dtype=np.float32)

    agent = WideDQN(4, 2, seed=0, memory_capacity=5)
    assert agent.eval_net.fc[0].out_features == agent.target_net.fc[0].out_features == 7
    batch = agent.memory.batch_at(np.arange(5))
    assert all((t == 1).all() for t in (batch.s, batch.a, batch.r, batch.s_)) and len(batch.s) == 5
    assert agent.optimizer.param_groups[0]["params"][0] is agent.eval_net.fc[0].weight


def test_dqn_py_imports_nothing_from_the_package_above_it():
    import subprocess
    import sys

    code = "import sys, dqn; print(sorted(m for m in sys.modules if m == 'beyond' or m.startswith('beyond.')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=dqn.__file__.rsplit("/", 1)[0], timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("lr", [0.01, 0.00123])
def test_the_learning_rate_reaches_adam(lr):
    agent = dqn.DQN(4, 2, seed=0, lr=lr)
    assert agent.optimizer.param_groups[0]["lr"] == lr
