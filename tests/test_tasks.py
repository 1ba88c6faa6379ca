"""The same DQN on the tasks after CartPole: the per-env table, --preset tuned on each, Box2D, the SB3 anchor."""

import json
import sys

import gymnasium as gym
import numpy as np
import pytest
import yaml

from conftest import ROOT, headless_env, run_dqn, video_in

sys.path.insert(0, str(ROOT / "bench"))
import sb3_anchor  # noqa: E402
import tune  # noqa: E402

from beyond.flags import parse_args  # noqa: E402
from beyond.tasks import TASKS, run_settings  # noqa: E402

OTHER_TASKS = ["Acrobot-v1", "MountainCar-v0", "LunarLander-v3"]


@pytest.mark.parametrize("env_id", list(TASKS))
def test_each_tasks_threshold_is_gymnasiums(env_id):
    assert TASKS[env_id].threshold == gym.spec(env_id).reward_threshold


@pytest.mark.parametrize("env_id", list(TASKS))
def test_each_tasks_random_return_is_what_a_random_policy_gets(env_id):
    env = gym.make(env_id)
    returns = []
    for episode in range(100):
        env.reset(seed=episode)
        env.action_space.seed(episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total, done = total + reward, terminated or truncated
        returns.append(total)
    assert np.mean(returns) == pytest.approx(TASKS[env_id].random_return, abs=0.1 * abs(TASKS[env_id].random_return))


@pytest.mark.parametrize("env_id", OTHER_TASKS)
def test_preset_tuned_on_a_task_takes_its_row(env_id):
    task, args = TASKS[env_id], parse_args(["--preset", "tuned", "--env", env_id])
    settings = run_settings(task)
    assert set(settings) == {"env", "early_stop", "eval_every", "eval_episodes", "confirm_episodes", "max_env_steps"}
    assert all(getattr(args, name) == value for name, value in settings.items())
    assert (args.env, args.early_stop, args.eval_every, args.eval_episodes, args.confirm_episodes) == (
        env_id,
        task.threshold,
        task.eval_every,
        task.eval_episodes,
        task.confirm_episodes,
    )
    assert args.max_env_steps == 2 * task.budget
    parsed = {**task.tuned, "grad_clip": task.tuned.get("grad_clip") or None}  # --grad-clip 0 switches it off
    assert all(getattr(args, name) == value for name, value in parsed.items() if name in task.tuned)
    assert parse_args(["--preset", "tuned", "--env", env_id, "--early-stop", "-1"]).early_stop == -1


def test_preset_tuned_without_env_stays_cartpoles():
    args = parse_args(["--preset", "tuned"])
    assert args.env == "CartPole-v1" and args.early_stop == 475 and args.lr == TASKS["CartPole-v1"].tuned["lr"]


def test_a_preset_that_stops_early_stops_at_the_envs_threshold():
    assert parse_args(["--preset", "pixels"]).early_stop == 475
    assert parse_args(["--preset", "tuned", "--env", "CartPole-v0"]).early_stop == 475  # evaluated on v1
    assert parse_args(["--env", "Acrobot-v1", "--reward", "env"]).early_stop is None  # the blog's runs do not stop


@pytest.mark.parametrize("env_id", OTHER_TASKS)
def test_each_task_trains_saves_plays_back_and_records(tmp_path, env_id):
    # A threshold every evaluation passes: the early stop must use it, confirm it, and stop there.
    flags = ["--preset", "tuned", "--env", env_id, "--learning-starts", "100", "--memory-capacity", "1000"]
    flags += ["--eval-every", "200", "--eval-episodes", "1", "--confirm-episodes", "1", "--early-stop", "-10000"]
    flags += ["--seed", "0", "--watch", "1", "--snapshots", "2", "--run-name", "run", "--no-show"]
    result = run_dqn(*flags, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "early stop: greedy eval" in result.stdout and ">= -10000.0 after 200 env steps" in result.stdout
    run_dir = tmp_path / "runs" / "run"
    assert video_in(run_dir, "agent") and video_in(run_dir, "learning")
    played = run_dqn("--play", run_dir / "model.pt", "--watch", "1", "--video", tmp_path / "again.gif", cwd=tmp_path)
    assert played.returncode == 0, played.stderr[-2000:]
    assert (tmp_path / "again.gif").stat().st_size > 0
    assert env_id in result.stdout  # the plot and the messages name the env


def test_the_tuned_early_stop_on_a_task_uses_its_threshold_and_confirms(tmp_path):
    result = run_dqn(
        *("--preset", "tuned", "--env", "Acrobot-v1", "--max-env-steps", "2500", "--eval-episodes", "2"),
        *("--seed", "0", "--watch", "0", "--snapshots", "0", "--no-show"),
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "eval @ 2000 env steps" in result.stdout  # the task's own cadence
    assert "early stop" not in result.stdout  # -100 is not reached in 2,500 steps


def test_lunar_lander_without_box2d_is_a_one_line_error(tmp_path):
    import subprocess

    hide_box2d = f"import sys, runpy; sys.path.insert(0, {str(ROOT)!r}); sys.modules['Box2D'] = None; "
    hide_box2d += "sys.argv = ['dqn.py', *sys.argv[1:]]; "
    hide_box2d += f"runpy.run_path({str(ROOT / 'dqn.py')!r}, run_name='__main__')"
    result = subprocess.run(
        [sys.executable, "-c", hide_box2d, "--preset", "tuned", "--env", "LunarLander-v3"],
        cwd=tmp_path,
        env=headless_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == 'dqn.py: error: --env LunarLander-v3 needs box2d: pip install "gymnasium[box2d]"'


def rl_zoo_values():
    """bench/rl_zoo3-2.9.2-dqn.yml: rl-baselines3-zoo 2.9.2's hyperparams/dqn.yml, as shipped in its wheel."""
    return yaml.safe_load((ROOT / "bench" / "rl_zoo3-2.9.2-dqn.yml").read_text())


@pytest.mark.parametrize("env_id", list(TASKS))
def test_the_sb3_anchor_runs_rl_zoos_values(env_id):
    zoo = dict(rl_zoo_values()[env_id])
    assert sb3_anchor.ZOO_STEPS[env_id] == zoo.pop("n_timesteps") and zoo.pop("policy") == "MlpPolicy"
    zoo["policy_kwargs"] = eval(zoo["policy_kwargs"], {"dict": dict})  # the zoo writes it as Python source
    assert sb3_anchor.ZOO[env_id] == zoo


def test_each_tuner_starts_from_rl_zoos_values_in_dqn_pys_terms():
    zoo = rl_zoo_values()
    for env_id, start in tune.RL_ZOO_START.items():
        z = zoo[env_id]
        assert (start["lr"], start["batch_size"], start["gamma"]) == (z["learning_rate"], z["batch_size"], z["gamma"])
        assert start["memory_capacity"] == z["buffer_size"]
        assert start["epsilon_end"] == pytest.approx(1 - z["exploration_final_eps"])
        assert start["epsilon_steps"] == pytest.approx(z["exploration_fraction"] * z["n_timesteps"])
        learn_steps_per_env_step = start["replay_ratio"] / start.get("train_every", 1)
        zoo_learn_steps = (z["gradient_steps"] if z["gradient_steps"] > 0 else z["train_freq"]) / z["train_freq"]
        assert learn_steps_per_env_step == zoo_learn_steps
        assert start["target_replace_iter"] == z["target_update_interval"] * zoo_learn_steps
        net_arch = eval(z["policy_kwargs"], {"dict": dict})["net_arch"]  # the zoo writes it as Python source
        assert [start["hidden"]] * start.get("hidden_layers", 1) == net_arch or (
            env_id == "Acrobot-v1" and start["hidden"] == net_arch[0]  # its study began with one layer
        )


def test_a_tuner_trial_keeps_its_first_trials_values_among_the_choices():
    import optuna

    study = optuna.create_study()
    study.enqueue_trial(tune.RL_ZOO_START["MountainCar-v0"])
    trial = study.ask()
    assert tune.suggest(trial, tune.RL_ZOO_START["MountainCar-v0"]) == tune.RL_ZOO_START["MountainCar-v0"]


@pytest.mark.parametrize("env_id", OTHER_TASKS)
def test_each_tasks_tuned_values_are_its_studys_best_or_rl_zoos_before_one(env_id):
    study = {"LunarLander-v3": "tune_LunarLander-v3/fresh-seeds"}.get(env_id, f"tune_{env_id}")  # a later study's
    best = ROOT / "bench" / "results" / study / "tune_best.json"
    chosen = json.loads(best.read_text())["params"] if best.exists() else tune.RL_ZOO_START[env_id]
    assert TASKS[env_id].tuned == chosen


def test_mountaincars_preset_bootstraps_from_the_time_limits_cut():
    """The 200-step limit ends an episode but not the car's future: its last row keeps gamma * max Q."""
    import torch

    import dqn
    from beyond.cli import REWARDS, build

    args = parse_args(["--preset", "tuned", "--env", "MountainCar-v0", "--seed", "0"])
    env, agent = build(args)
    records = dqn.train(agent, env, 1, args.max_episode_steps, REWARDS[args.reward], seed=0, log=None)
    assert records[-1]["steps"] == 200 and agent.memory.counter == 200  # cut by the time limit, not the flag
    assert agent.terminal_mask and not agent.memory.terminated[:200].any()
    batch = agent.memory.batch_at(np.array([199]))
    discount = torch.as_tensor(agent.gamma if batch.discount is None else batch.discount)  # n-step rows have their own
    with torch.no_grad():
        bootstrap = agent.target_net(batch.s_).max(1, keepdim=True).values
        assert bootstrap.abs().item() > 0 and (discount > 0).all()
        torch.testing.assert_close(agent.td_target(batch), batch.r + discount * bootstrap)
