"""n-step returns, the dueling head and prioritized replay, each replayed by hand on a fixed batch."""

import numpy as np
import pytest
import torch
import torch.nn as nn

import dqn
from beyond.agents import agent_class, make_agent
from beyond.config import EXTENSION_DEFAULTS
from beyond.deep import deep_q_net
from beyond.dueling import DuelingHead, dueling_q_net
from beyond.hooks import linear_schedule
from beyond.pixels import FRAME_STACK, FrameReplayMemory, PixelDQN
from beyond.prioritized import PRIORITY_EPSILON
from beyond.sumtree import SumTree
from conftest import SHORT, assert_one_line_error, read_metrics, run_dqn

GAMMA = 0.9


def play_episode(agent, rewards, end, first_state=0.0):
    """Store one episode whose step t has state [t + first_state] * 4 and reward rewards[t].

    end: "terminated" or "truncated" ends it on its last step; "open" leaves it running.
    Returns the states, so that s_t is states[t] and the last s_ is states[len(rewards)].
    """
    states = [np.full(4, first_state + t, np.float32) for t in range(len(rewards) + 1)]
    for t, r in enumerate(rewards):
        last = t == len(rewards) - 1
        agent.store_transition(
            states[t], t % 2, r, states[t + 1], last and end == "terminated", last and end == "truncated"
        )
    return states


def n_step_row(rewards, t, n):
    """Direct sum: (return, steps k summed, index of s_) of the transition that starts at step t.

    k is n, or fewer where the episode ended (or, while it runs, has not yet gone) further.
    """
    k = min(n, len(rewards) - t)
    return sum(GAMMA**i * rewards[t + i] for i in range(k)), k, t + k


# n-step returns ---------------------------------------------------------------------


def test_n_step_rows_match_a_direct_sum_with_flushed_tails():
    agent = make_agent(4, 2, seed=0, gamma=GAMMA, memory_capacity=50, terminal_mask=True, n_step=3)
    episodes = [([1.0, 2.0, 3.0, 4.0, 5.0], "terminated"), ([0.5, -1.0, 2.0, 0.25], "truncated"), ([7.0, 1.0], "open")]
    # Every episode first, then the checks: a row left open past its episode's end would
    # take the next episode's rewards, and only a check after that episode sees it.
    played = [
        play_episode(agent, rewards, end, first_state=100 * number) for number, (rewards, end) in enumerate(episodes)
    ]
    row = 0
    for number, ((rewards, end), states) in enumerate(zip(episodes, played, strict=True)):
        for t in range(len(rewards)):
            expected, k, next_index = n_step_row(rewards, t, 3)
            s, a, r, s_, terminated, discount = agent.memory.batch_at(np.array([row]))[:6]
            assert r.item() == pytest.approx(expected, rel=1e-6), (number, t)
            assert discount.item() == pytest.approx(GAMMA**k, rel=1e-6), (number, t)
            torch.testing.assert_close(s_[0], torch.from_numpy(states[next_index]))
            torch.testing.assert_close(s[0], torch.from_numpy(states[t]))
            assert a.item() == t % 2
            # only a row whose k steps reach a termination stops bootstrapping; truncation always bootstraps
            assert terminated.item() == (end == "terminated" and next_index == len(rewards))
            row += 1
    assert agent.memory.counter == row  # one row per env step, as the blog's memory has


def test_n_step_target_is_the_return_plus_discounted_bootstrap():
    agent = make_agent(4, 2, seed=1, gamma=GAMMA, memory_capacity=50, terminal_mask=True, n_step=3, double=True)
    play_episode(agent, [1.0, 2.0, 3.0, 4.0], "terminated")
    play_episode(agent, [1.0, 1.0, 1.0, 1.0], "truncated", first_state=10)
    index = np.arange(agent.memory.counter)
    batch = agent.memory.batch_at(index)
    b_s_ = batch.s_
    with torch.no_grad():
        target = agent.td_target(batch)
        best = agent.eval_net(b_s_).argmax(1, keepdim=True)
        bootstrap = agent.target_net(b_s_).gather(1, best)
    rewards = [1.0, 2.0, 3.0, 4.0]
    for t in range(4):
        expected, k, next_index = n_step_row(rewards, t, 3)
        future = 0.0 if next_index == 4 else GAMMA**k * bootstrap[t].item()  # terminated: no future
        assert target[t].item() == pytest.approx(expected + future, rel=1e-5)
    for t in range(4, 8):  # truncated: every row bootstraps, the last ones with fewer steps
        k = min(3, 8 - t)
        expected = sum(GAMMA**i for i in range(k)) + GAMMA**k * bootstrap[t].item()
        assert target[t].item() == pytest.approx(expected, rel=1e-5)


def test_n_step_1_is_the_blogs_agent_and_its_run_is_unchanged(tmp_path):
    assert agent_class(n_step=1) is dqn.DQN
    assert type(make_agent(4, 2, n_step=1)) is dqn.DQN
    runs = []
    for extra in ([], ["--n-step", "1"]):
        name = f"run{len(runs)}"
        result = run_dqn(*SHORT, "--watch", "0", "--run-name", name, *extra, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        runs.append(
            [
                {k: v for k, v in r.items() if k != "wall_s"}
                for r in read_metrics(tmp_path / "runs" / name / "metrics.csv")
            ]
        )
    assert runs[0] == runs[1]


def test_pixel_memory_keeps_the_frames_an_n_step_transition_needs():
    agent = make_agent((FRAME_STACK, 20, 40), 2, seed=0, pixels=True, memory_capacity=20, n_step=3)
    assert agent.memory.frames.shape == (20, 2 * FRAME_STACK, 20, 40)
    frames = [np.full((20, 40), 10 * t, np.uint8) for t in range(10)]
    stacks = [np.stack(frames[t : t + FRAME_STACK]) for t in range(6)]
    for t in range(5):
        agent.store_transition(stacks[t], 0, 1.0, stacks[t + 1], terminated=t == 4)
    batch = agent.memory.batch_at(np.arange(5))
    b_s, b_r, b_s_, discount = batch.s, batch.r, batch.s_, batch.discount
    for t in range(5):
        k = min(3, 5 - t)
        assert np.array_equal(b_s[t].numpy(), stacks[t]) and np.array_equal(b_s_[t].numpy(), stacks[t + k])
        assert b_r[t].item() == pytest.approx(sum(agent.gamma**i for i in range(k)))
        assert discount[t].item() == pytest.approx(agent.gamma**k)


def test_frame_memory_one_step_rows_still_hold_one_new_frame():
    memory = FrameReplayMemory(2, (3, 1, 1))
    memory.store(np.arange(3).reshape(3, 1, 1), 1, 0.5, np.arange(1, 4).reshape(3, 1, 1))
    batch = memory.batch_at(np.array([0]))
    assert memory.frames.shape == (2, 4, 1, 1)
    assert batch.s.flatten().tolist() == [0, 1, 2] and batch.s_.flatten().tolist() == [1, 2, 3]
    assert batch.a.item() == 1 and batch.r.item() == 0.5


# the dueling head -------------------------------------------------------------------


def test_dueling_head_is_value_plus_advantage_minus_its_mean():
    torch.manual_seed(0)
    head, h = DuelingHead(5, 3), torch.randn(7, 5)
    v, a = head.value(h), head.advantage(h)
    torch.testing.assert_close(head(h), v + a - a.mean(1, keepdim=True))
    torch.testing.assert_close(head(h).mean(1, keepdim=True), v)  # the advantages average to zero


def assert_update_gradients_are_the_loss_gradients(agent, reference):
    """agent.update's gradients on a weighted batch equal loss.backward()'s through reference, a copy of its net."""
    play_episode(agent, list(np.linspace(-1, 1, 60)), "terminated")
    agent.learn()  # away from the initial weights
    batch = agent.memory.sample(agent.batch_size, agent.rng)
    weights = torch.linspace(0.2, 1.0, agent.batch_size)[:, None]
    reference.load_state_dict(agent.eval_net.state_dict())
    b_s, b_a = batch.s, batch.a
    with torch.no_grad():
        q_target = agent.td_target(batch)
    loss_fn = nn.functional.smooth_l1_loss if agent.huber else nn.functional.mse_loss
    loss = (loss_fn(reference(b_s).gather(1, b_a), q_target, reduction="none") * weights).mean()
    loss.backward()
    agent.optimizer.step = lambda: None  # keep the gradients to compare, not the step
    got, td_error = agent.update(batch._replace(weights=weights))
    assert got == pytest.approx(loss.item(), rel=1e-5)
    assert td_error.shape == (agent.batch_size, 1)
    for mine, autograd in zip(agent.eval_net.parameters(), reference.parameters(), strict=True):
        assert mine.grad is not None and mine.grad.abs().sum() > 0
        torch.testing.assert_close(mine.grad, autograd.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("huber", [False, True])
def test_dueling_update_gradients_equal_autograds(huber):
    agent = make_agent(4, 2, seed=2, dueling=True, huber=huber, memory_capacity=100, learning_starts=0)
    assert isinstance(agent.eval_net, dueling_q_net)
    assert_update_gradients_are_the_loss_gradients(agent, dueling_q_net(4, 2, agent.hidden))


def test_dueling_greedy_action_is_the_argmax_of_q():
    agent = make_agent(4, 2, seed=3, dueling=True)
    states = np.random.default_rng(0).normal(scale=10, size=(200, 4)).astype(np.float32)
    with torch.no_grad():
        expected = agent.eval_net(torch.from_numpy(states)).argmax(1).tolist()
    assert [agent.greedy_action(s) for s in states] == expected
    assert len(set(expected)) == 2  # both actions occur, so the check can fail


def test_dueling_pixels_puts_the_head_on_the_cnn():
    agent = make_agent((FRAME_STACK, 20, 40), 2, seed=0, pixels=True, dueling=True, memory_capacity=10)
    assert isinstance(agent, PixelDQN) and isinstance(agent.eval_net.fc[-1], DuelingHead)
    assert agent.eval_net(torch.zeros(3, FRAME_STACK, 20, 40)).shape == (3, 2)


# prioritized replay -----------------------------------------------------------------


def test_sum_tree_totals_and_finds_by_cumulative_priority():
    tree = SumTree(5)
    tree[np.arange(5)] = [1.0, 2.0, 3.0, 4.0, 0.5]
    assert tree.total == 10.5
    assert tree.find([0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 9.99, 10.0, 10.49]).tolist() == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
    ]
    tree[3] = 0.0
    tree[np.array([1, 1, 2])] = 5.0  # a repeated row is set once
    assert tree.total == 11.5 and tree[[0, 1, 2, 3, 4]].tolist() == [1.0, 5.0, 5.0, 0.0, 0.5]


def prioritized_agent(**overrides):
    agent = make_agent(4, 2, seed=4, prioritized=True, memory_capacity=64, learning_starts=0, **overrides)
    play_episode(agent, list(np.linspace(-1, 1, 40)), "terminated")
    return agent


def test_new_rows_enter_at_the_highest_priority_so_far():
    agent = prioritized_agent()
    assert agent.memory.priorities[np.arange(40)].tolist() == [1.0] * 40  # nothing learned yet: the initial maximum
    agent.memory.priorities[5] = 3.0
    agent.memory.max_priority = 3.0
    agent.store_transition(np.zeros(4, np.float32), 0, 0.0, np.zeros(4, np.float32))
    assert agent.memory.priorities[40] == 3.0 and agent.memory.priorities[41] == 0.0


def test_sampling_frequencies_follow_the_priorities():
    agent = prioritized_agent(batch_size=32)
    priorities = np.linspace(0.1, 4.0, 40)
    agent.memory.priorities[np.arange(40)] = priorities
    draws = 4000
    drawn = []
    for _ in range(draws):
        drawn.append(agent.memory.sample(agent.batch_size, agent.rng).rows)
    counts = np.bincount(np.concatenate(drawn), minlength=64)
    n = draws * 32
    p = priorities / priorities.sum()
    assert counts[40:].sum() == 0  # rows not yet filled are never drawn
    # each row's count is within 5 binomial standard deviations of n P(i): by the normal
    # approximation a chance failure is below 1 in 40,000 over the 40 rows (stratified
    # sampling only narrows the spread); uniform sampling would miss the end rows by over 200
    assert np.all(np.abs(counts[:40] - n * p) <= 5 * np.sqrt(n * p * (1 - p)))


def test_importance_weights_are_the_formula_normalised_by_the_batch_max():
    agent = prioritized_agent(per_beta=0.5)
    agent.memory.priorities[np.arange(40)] = np.arange(1, 41, dtype=float)
    batch = agent.memory.sample(agent.batch_size, agent.rng)
    prob = (batch.rows + 1) / np.arange(1, 41).sum()
    expected = (40 * prob) ** -0.5
    np.testing.assert_allclose(batch.weights[:, 0].numpy(), expected / expected.max(), rtol=1e-6)


def test_priorities_follow_the_td_errors_after_a_learn_step():
    agent = prioritized_agent(per_alpha=0.7)
    state = agent.rng.bit_generator.state
    batch = agent.memory.sample(agent.batch_size, agent.rng)
    rows = batch.rows
    with torch.no_grad():
        td = (agent.eval_net(batch.s).gather(1, batch.a) - agent.td_target(batch)).numpy()[:, 0]
    agent.rng.bit_generator.state = state
    learned = []
    agent.update = lambda batch: learned.append(batch) or type(agent).update(agent, batch)
    agent.learn()
    assert np.array_equal(learned[0].rows, rows)
    last = {row: i for i, row in enumerate(rows)}  # a row drawn twice keeps its last priority
    expected = [(abs(td[i]) + PRIORITY_EPSILON) ** 0.7 for i in last.values()]
    np.testing.assert_allclose(agent.memory.priorities[list(last)], expected, rtol=1e-5)
    assert agent.memory.max_priority == pytest.approx(max(1.0, max(expected)))


def test_beta_rises_linearly_to_one():
    schedule = linear_schedule(0.4, 1.0, 1000)
    assert [schedule(s) for s in (0, 500, 1000, 5000)] == pytest.approx([0.4, 0.7, 1.0, 1.0])


# together and from the command line -------------------------------------------------


SUBSETS = [
    dict(n_step=n_step, dueling=dueling, prioritized=prioritized)
    for n_step in (1, 3)
    for dueling in (False, True)
    for prioritized in (False, True)
    if n_step > 1 or dueling or prioritized
]


@pytest.mark.parametrize("pixels", [False, True], ids=["state", "pixels"])
@pytest.mark.parametrize("extensions", SUBSETS, ids=lambda e: "+".join(k for k, v in e.items() if v > 1 or v is True))
def test_any_subset_stacks_on_either_agent_and_learns(pixels, extensions):
    shape = (FRAME_STACK, 20, 40) if pixels else 4
    fixes = dict(terminal_mask=True, double=True, huber=True, grad_clip=10.0)
    agent = make_agent(shape, 2, seed=5, pixels=pixels, memory_capacity=100, learning_starts=0, **fixes, **extensions)
    rng = np.random.default_rng(0)
    for t in range(60):
        s = rng.integers(0, 255, size=shape, dtype=np.uint8) if pixels else rng.normal(size=4).astype(np.float32)
        agent.store_transition(s, t % 2, 1.0, s, terminated=t % 20 == 19)
    before = [p.clone() for p in agent.eval_net.parameters()]
    losses = [agent.learn() for _ in range(3)]
    assert all(np.isfinite(losses))
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.eval_net.parameters(), strict=True))
    assert agent.greedy_action(s) in (0, 1)
    if extensions["prioritized"]:
        assert agent.memory.priorities.total != 60 * 1.0  # the learned rows' priorities moved


def test_extension_flags_train_save_and_play(dqn_cli, tmp_path):
    result = dqn_cli(*SHORT, "--n-step", "3", "--dueling", "--prioritized", "--watch", "0", "--run-name", "ext")
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "runs" / "ext"
    checkpoint = torch.load(run_dir / "model.pt", weights_only=True)
    settings = checkpoint["meta"]["settings"]
    assert {name: settings[name] for name in EXTENSION_DEFAULTS} == dict(
        n_step=3,
        dueling=True,
        prioritized=True,
        per_alpha=0.6,
        per_beta=0.4,
        replay_ratio=1,
        track_strip=False,
        hidden_layers=1,
        averaged_policy=0.0,
    )
    played = dqn_cli("--play", run_dir / "model.pt", "--watch", "1", "--video", run_dir / "played.gif")
    assert played.returncode == 0, played.stderr[-2000:]
    assert (run_dir / "played.gif").stat().st_size > 0


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--n-step", "0"], ["--n-step", "0"]),
        (["--n-step", "300", "--memory-capacity", "200"], ["--n-step", "--memory-capacity"]),
        (["--prioritized", "--per-alpha", "1.5"], ["--per-alpha", "[0, 1]"]),
        (["--prioritized", "--per-beta", "-0.1"], ["--per-beta", "[0, 1]"]),
        (["--prioritized", "--per-beta-steps", "0"], ["--per-beta-steps"]),
    ],
)
def test_bad_extension_values_are_one_line_errors(dqn_cli, args, needles):
    assert_one_line_error(dqn_cli(*args), *needles)


def test_a_presets_switches_can_be_turned_off_again():
    from beyond.flags import parse_args

    args = parse_args(["--preset", "tuned", "--no-double", "--no-huber", "--grad-clip", "0", "--n-step", "1"])
    assert (args.double, args.huber, args.grad_clip, args.n_step) == (False, False, None, 1)
    assert args.terminal_mask  # what was not turned off stays the preset's


# replay ratio -------------------------------------------------------------------------


def test_a_replay_ratio_of_k_is_k_learn_steps_per_learn_call():
    def filled(agent):
        rng = np.random.default_rng(0)
        for _ in range(64):
            s, s_ = rng.normal(size=(2, 4)).astype(np.float32)
            agent.store_transition(s, int(rng.integers(2)), float(rng.normal()), s_)
        return agent

    settings = dict(seed=0, memory_capacity=64, learning_starts=0, target_replace_iter=3)
    twice, plain = filled(make_agent(4, 2, replay_ratio=2, **settings)), filled(make_agent(4, 2, **settings))
    losses = [twice.learn() for _ in range(5)]
    plain_losses = [plain.learn() for _ in range(10)]
    assert twice.learn_step_counter == plain.learn_step_counter == 10
    for a, b in zip(twice.eval_net.parameters(), plain.eval_net.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the same 10 learn steps, target syncs included
    assert losses == pytest.approx([(x + y) / 2 for x, y in zip(plain_losses[::2], plain_losses[1::2], strict=True)])


def test_the_replay_ratio_flag_reaches_the_agent_and_its_checkpoint(dqn_cli, tmp_path):
    result = dqn_cli(*SHORT, "--replay-ratio", "3", "--watch", "0", "--snapshots", "0", "--run-name", "rr")
    assert result.returncode == 0, result.stderr[-2000:]
    meta = torch.load(tmp_path / "runs" / "rr" / "model.pt", weights_only=True)["meta"]
    assert meta["settings"]["replay_ratio"] == 3
    summary = [line for line in result.stdout.splitlines() if line.startswith("trained ")][0]
    learn_steps = int(summary.split(" learn steps")[0].split()[-1])
    assert learn_steps % 3 == 0 and learn_steps > 0
    assert_one_line_error(dqn_cli("--replay-ratio", "0"), "--replay-ratio must be a positive integer")


# hidden layers --------------------------------------------------------------------------


def test_hidden_layers_stack_linear_relu_with_the_blogs_init():
    net = deep_q_net(4, 2, hidden=64, layers=3)
    linears = [m for m in net.fc if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 64), (64, 64), (64, 64), (64, 2)]
    assert [type(m) for m in net.fc[1::2]] == [nn.ReLU] * 3
    for layer in linears:
        assert abs(layer.weight.std().item() - 0.1) < 0.02  # N(0, 0.1), as q_net's


@pytest.mark.parametrize("dueling", [False, True], ids=["plain", "dueling"])
@pytest.mark.parametrize("layers", [2, 3])
def test_a_deep_agents_greedy_action_is_the_argmax_of_its_net(layers, dueling):
    agent = make_agent(4, 3, seed=3, hidden_layers=layers, hidden=32, dueling=dueling)
    assert isinstance(agent.eval_net, deep_q_net)
    assert isinstance(agent.eval_net.fc[-1], DuelingHead if dueling else nn.Linear)
    states = np.random.default_rng(0).normal(scale=10, size=(300, 4)).astype(np.float32)
    with torch.no_grad():
        expected = agent.eval_net(torch.from_numpy(states)).argmax(1).tolist()
    assert [agent.greedy_action(s) for s in states] == expected
    assert len(set(expected)) >= 2  # more than one action occurs, so the check can fail


@pytest.mark.parametrize("huber", [False, True])
def test_a_deep_agents_update_is_the_loss_gradient_step(huber):
    agent = make_agent(4, 2, seed=2, hidden_layers=2, huber=huber, memory_capacity=100, learning_starts=0)
    assert_update_gradients_are_the_loss_gradients(agent, deep_q_net(4, 2, agent.hidden, 2))


def test_a_deep_dueling_agents_update_is_the_loss_gradient_step():
    agent = make_agent(4, 2, seed=2, hidden_layers=2, dueling=True, memory_capacity=100, learning_starts=0)
    reference = deep_q_net(4, 2, agent.hidden, 2)
    reference.fc[-1] = DuelingHead(agent.hidden, 2)
    assert_update_gradients_are_the_loss_gradients(agent, reference)
    head = agent.eval_net.fc[-1]
    for layer in (head.value, head.advantage):  # N(0, 0.1), as the layers below
        assert abs(layer.weight.std().item() - 0.1) < 0.03


@pytest.mark.parametrize(
    "others", [dict(n_step=3), dict(prioritized=True), dict(replay_ratio=2), dict(dueling=True, n_step=3)]
)
def test_hidden_layers_stack_with_the_other_extensions_and_learn(others):
    agent = make_agent(4, 2, seed=5, hidden_layers=2, memory_capacity=100, learning_starts=0, **others)
    rng = np.random.default_rng(0)
    for t in range(60):
        s = rng.normal(size=4).astype(np.float32)
        agent.store_transition(s, t % 2, 1.0, s, terminated=t % 20 == 19)
    before = [p.clone() for p in agent.eval_net.parameters()]
    assert all(np.isfinite([agent.learn() for _ in range(3)]))
    assert all(not torch.equal(a, b) for a, b in zip(before, agent.eval_net.parameters(), strict=True))


@pytest.mark.parametrize(
    "head, last_layer", [([], 50 * 2 + 2), (["--dueling"], (50 + 1) + (50 * 2 + 2))], ids=["plain", "dueling"]
)
def test_the_hidden_layers_flag_reaches_the_checkpoint_and_plays_back(dqn_cli, tmp_path, head, last_layer):
    result = dqn_cli(*SHORT, "--hidden-layers", "2", *head, "--watch", "0", "--snapshots", "0", "--run-name", "deep")
    assert result.returncode == 0, result.stderr[-2000:]
    model = tmp_path / "runs" / "deep" / "model.pt"
    checkpoint = torch.load(model, weights_only=True)
    assert checkpoint["meta"]["settings"]["hidden_layers"] == 2
    assert checkpoint["meta"]["settings"]["dueling"] == bool(head)
    assert sum(t.numel() for t in checkpoint["eval_net"].values()) == 4 * 50 + 50 + 50 * 50 + 50 + last_layer
    played = dqn_cli("--play", model, "--watch", "1", "--video", tmp_path / "played.gif")
    assert played.returncode == 0, played.stderr[-2000:]
    for args, needle in [
        (["--hidden-layers", "0"], "--hidden-layers must be a positive integer"),
        (["--hidden-layers", "9"], "--hidden-layers must be at most 8"),
        (["--hidden-layers", "2", "--pixels"], "--hidden-layers stacks the state MLP's layers"),
    ]:
        assert_one_line_error(dqn_cli(*args), needle)


# averaged policy ------------------------------------------------------------------------


def filled_agent(**settings):
    agent = make_agent(4, 3, seed=3, hidden=32, memory_capacity=64, learning_starts=0, lr=0.05, epsilon=1.0, **settings)
    rng = np.random.default_rng(0)
    for _ in range(64):
        s, s_ = rng.normal(size=(2, 4)).astype(np.float32)
        agent.store_transition(s, int(rng.integers(3)), float(rng.normal()), s_)
    return agent


@pytest.mark.parametrize("others", [dict(), dict(hidden_layers=2), dict(dueling=True), dict(replay_ratio=2)])
def test_the_average_moves_tau_of_the_way_after_each_learn_step_and_plays_while_eval_net_explores(others):
    agent = filled_agent(averaged_policy=0.25, **others)
    for _ in range(5):
        before = [p.clone() for p in agent.policy_net.parameters()]
        agent.learn()
        for average, old, live in zip(agent.policy_net.parameters(), before, agent.eval_net.parameters(), strict=True):
            assert not torch.equal(average, old)
            if "replay_ratio" not in others:  # with it, the average moves after each of a call's learn steps
                torch.testing.assert_close(average, old + 0.25 * (live - old))
    states = np.random.default_rng(1).normal(scale=10, size=(300, 4)).astype(np.float32)
    with torch.no_grad():
        by_average = agent.policy_net(torch.from_numpy(states)).argmax(1).tolist()
        by_eval_net = agent.eval_net(torch.from_numpy(states)).argmax(1).tolist()
    assert [agent.greedy_action(s) for s in states] == by_average
    assert [agent.choose_action(s) for s in states] == by_eval_net  # greedy probability 1: always eval_net's argmax
    assert by_average != by_eval_net  # the two nets disagree somewhere, so the checks can fail


@pytest.mark.parametrize("hidden_layers", [1, 2])
def test_an_averaged_policy_leaves_training_as_it_was_bit_for_bit(hidden_layers):
    runs = []
    for averaged_policy in (0.0, 0.01):
        settings = dict(memory_capacity=200, learning_starts=50, hidden_layers=hidden_layers)
        agent = make_agent(4, 2, seed=0, averaged_policy=averaged_policy, **settings)
        env = dqn.make_env("CartPole-v1", unwrapped=False)
        records = dqn.train(agent, env, episodes=30, seed=0, log=None, reward_fn=lambda env, s_, r: float(r))
        without_clock = [{k: v for k, v in record.items() if k != "wall_s"} for record in records]
        runs.append((without_clock, agent))
    (plain, plain_agent), (averaged, averaged_agent) = runs
    assert plain == averaged and plain[-1]["env_steps"] > 200
    for a, b, average in zip(
        plain_agent.eval_net.parameters(),
        averaged_agent.eval_net.parameters(),
        averaged_agent.policy_net.parameters(),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert not torch.equal(average, b)  # the average is its own net, so the check can fail


def test_a_checkpoint_keeps_the_averaged_policy_and_plays_it(tmp_path):
    from beyond.files import load_checkpoint, save_checkpoint
    from beyond.flags import parse_args

    agent = filled_agent(averaged_policy=0.1)
    for _ in range(10):
        agent.learn()
    args = parse_args(["--averaged-policy", "0.1", "--hidden", "32"])
    path = save_checkpoint(agent, tmp_path / "model.pt", args, episodes=1)
    for name, weights in torch.load(path, weights_only=True)["eval_net"].items():
        torch.testing.assert_close(weights, agent.policy_net.state_dict()[name], rtol=0, atol=0)
    played, meta = load_checkpoint(path)
    assert meta["settings"]["averaged_policy"] == 0.1
    states = np.random.default_rng(2).normal(scale=10, size=(200, 4)).astype(np.float32)
    assert [played.greedy_action(s) for s in states] == [agent.greedy_action(s) for s in states]


def test_the_averaged_policy_flag_trains_saves_and_plays(dqn_cli, tmp_path):
    flags = ("--averaged-policy", "0.01", "--keep-best", "--eval-every", "500", "--watch", "0", "--snapshots", "0")
    result = dqn_cli(*SHORT, *flags, "--run-name", "avg")
    assert result.returncode == 0, result.stderr[-2000:]
    model = tmp_path / "runs" / "avg" / "model.pt"
    assert torch.load(model, weights_only=True)["meta"]["settings"]["averaged_policy"] == 0.01
    played = dqn_cli("--play", model, "--watch", "1", "--video", tmp_path / "played.gif")
    assert played.returncode == 0, played.stderr[-2000:]
    for args, needle in [
        (["--averaged-policy", "1.5"], "--averaged-policy"),
        (["--averaged-policy", "-0.1"], "--averaged-policy"),
        (["--averaged-policy", "0.01", "--pixels"], "--averaged-policy averages the state MLP's weights"),
    ]:
        assert_one_line_error(dqn_cli(*args), needle)
