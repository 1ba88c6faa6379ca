"""python dqn.py as a user runs it: flags, bad input, files written, checkpoints, Ctrl-C."""

import os
import pickle
import signal
import time
from pathlib import Path

import pytest
import torch

import dqn  # noqa: E402 (conftest puts the repo root on the path)
from beyond import UsageError  # noqa: E402
from beyond.cli import build  # noqa: E402
from beyond.flags import file_settings, parse_args  # noqa: E402
from conftest import (
    SHORT,
    assert_one_line_error,
    finished_run,
    first_format,
    read_metrics,
    run_dqn,
    start_dqn,
    video_in,
)


def test_help_explains_every_flag(dqn_cli):
    out = dqn_cli("--help")
    assert out.returncode == 0
    for flag in [
        "--episodes",
        "--seed",
        "--max-episode-steps",
        "--plot",
        "--no-show",
        "--batch-size",
        "--lr",
        "--epsilon",
        "--gamma",
        "--target-replace-iter",
        "--memory-capacity",
        "--watch",
        "--video",
        "--play",
        "--run-name",
        "--render",
        "--render-every",
        "--quiet",
        "--double",
        "--terminal-mask",
        "--huber",
        "--grad-clip",
        "--preset",
        "--eval-every",
        "--keep-best",
        "--pixels",
        "--device",
    ]:
        assert flag in out.stdout, flag
    assert "greedily" in out.stdout  # the reversed epsilon convention is spelled out


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """One short training run shared by the tests that inspect its output."""
    return finished_run(tmp_path_factory, "short", *SHORT, "--watch", "1")


def test_short_run_prints_blog_lines_summary_and_paths(short_run):
    run_dir, result = short_run
    out = result.stdout
    assert "Ep: " in out and "| reward: " in out and "| steps: " in out
    summary = [line for line in out.splitlines() if line.startswith("trained 25 episodes")]
    assert summary and "learn steps in" in summary[0] and "steps/s)" in summary[0]
    assert f"saved {run_dir.relative_to(run_dir.parent.parent)}/rewards.png" in out
    assert "greedy evaluation on CartPole-v1" in out
    assert "display" not in result.stderr.lower()  # headless: no complaints about screens


def test_short_run_writes_every_artifact(short_run):
    run_dir, result = short_run
    for name in ["rewards.png", "metrics.csv", "model.pt"]:
        path = run_dir / name
        assert path.is_file() and path.stat().st_size > 0, name
    video_in(run_dir, "agent")
    assert (run_dir / "rewards.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]  # no temp files left


def test_metrics_csv_has_one_row_per_episode_and_sums_to_the_env_steps(short_run):
    run_dir, result = short_run
    rows = read_metrics(run_dir / "metrics.csv")
    assert [int(r["episode"]) for r in rows] == list(range(25))
    total = int(result.stdout.split(" env steps")[0].rsplit(" ", 1)[1])
    assert sum(int(r["steps"]) for r in rows) == total == int(rows[-1]["env_steps"])
    assert {"reward", "epsilon", "loss", "wall_s", "eval_mean"} <= set(rows[0])
    assert any(r["learning"] == "True" for r in rows)


def test_same_seed_same_metrics_bit_for_bit(tmp_path):
    args = [*SHORT, "--watch", "0", "--quiet"]
    first = run_dqn(*args, "--run-name", "a", cwd=tmp_path)
    second = run_dqn(*args, "--run-name", "b", cwd=tmp_path)
    assert first.returncode == second.returncode == 0

    def columns(name):
        return [
            (r["steps"], r["reward"], r["loss"], r["eval_mean"])
            for r in read_metrics(tmp_path / "runs" / name / "metrics.csv")
        ]

    assert columns("a") == columns("b")


def test_another_discrete_env_trains_and_evaluates_on_itself(dqn_cli):
    out = dqn_cli(
        "--env",
        "Acrobot-v1",
        "--reward",
        "env",
        "--episodes",
        "2",
        "--max-episode-steps",
        "200",
        "--eval-episodes",
        "1",
        "--watch",
        "1",
        "--snapshots",
        "2",
        "--seed",
        "0",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "greedy evaluation on Acrobot-v1" in out.stdout
    # Off CartPole nothing speaks of a pole; the watched episode reports its return.
    watched = [line for line in out.stdout.splitlines() if line.startswith("watch episode 1/1: ")]
    assert len(watched) == 1 and " return -" in watched[0], out.stdout
    assert "pole" not in out.stdout.lower()
    # Acrobot's 500x500 frames are padded for the encoder rather than resized by it, with a warning.
    assert "macro_block_size" not in out.stderr and "resizing" not in out.stderr.lower(), out.stderr[-2000:]


def test_plot_flag_and_quiet(dqn_cli, tmp_path):
    out = dqn_cli(*SHORT, "--watch", "0", "--quiet", "--plot", tmp_path / "mine.png", "--run-name", "q")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "mine.png").stat().st_size > 0
    assert "Ep: " not in out.stdout and "trained 25 episodes" in out.stdout
    assert out.stderr == ""  # --quiet silences the progress bar too


BAD_INPUTS = [
    (["--episodes", "0"], "--episodes"),
    (["--episodes", "-3"], "--episodes"),
    (["--episodes", "many"], "--episodes"),
    (["--max-episode-steps", "0"], "--max-episode-steps"),
    (["--memory-capacity", "0"], "--memory-capacity"),
    (["--gamma", "1.5"], "--gamma"),
    (["--gamma", "-0.1"], "--gamma"),
    (["--lr", "0"], "--lr"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--epsilon", "2"], "--epsilon"),
    (["--batch-size", "64", "--memory-capacity", "32"], "--batch-size"),
    (["--watch", "-1"], "--watch"),
    (["--env", "NoSuchEnv-v9"], "--env"),
    (["--env", "Pendulum-v1", "--reward", "env"], "discrete"),
    (["--env", "Acrobot-v1"], "--reward shaped"),
    (["--play", "does/not/exist.pt"], "--play"),
    (["--plot", "/proc/forbidden/plot.png"], "--plot"),
    (["--video", "clip.avi"], "--video"),
    (["--epsilon-start", "0.1"], "--epsilon-start"),
    (["--grad-clip", "-1"], "--grad-clip"),
    (["--lr-steps", "1000"], "--lr-end"),
    (["--lr-steps", "1000", "--lr-end", "0"], "--lr-end"),
    (["--lr-steps", "1000", "--lr-end", "inf"], "--lr-end"),
    (["--lr-end", "0.001", "--lr-steps", "0"], "--lr-steps"),
    (["--run-name", "a/b"], "--run-name"),
    (["--no-such-flag"], "no-such-flag"),
]


@pytest.mark.parametrize("args,needle", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(dqn_cli, tmp_path, args, needle):
    result = dqn_cli("--episodes", "1", "--watch", "0", *args, timeout=60)  # the bad flag comes last and wins
    assert_one_line_error(result, needle)
    assert not (tmp_path / "runs").exists()  # nothing half-made


# ---- checkpoints -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(short_run):
    return short_run[0] / "model.pt"


def test_checkpoint_holds_weights_and_metadata(checkpoint):
    data = torch.load(checkpoint, weights_only=True)
    meta, settings = data["meta"], data["meta"]["settings"]
    assert settings["env"] == "CartPole-v0" and meta["n_states"] == 4 and meta["n_actions"] == 2
    assert settings["seed"] == 0 and meta["episodes"] == 25 and settings["hidden"] == 50
    assert settings["lr"] == 0.01 and "torch" in meta["versions"]
    assert settings == file_settings(parse_args([*SHORT, "--watch", "1"]))
    assert set(data["eval_net"]) == {"fc.0.weight", "fc.0.bias", "fc.2.weight", "fc.2.bias"}


def test_save_load_gives_the_same_greedy_actions(checkpoint, tmp_path):
    import numpy as np

    import dqn
    from beyond.files import load_checkpoint, save_checkpoint

    data = torch.load(checkpoint, weights_only=True)
    original = dqn.DQN(4, 2, epsilon=1.0)
    original.eval_net.load_state_dict(data["eval_net"])
    save_checkpoint(original, tmp_path / "again.pt", parse_args(["--env", "CartPole-v0"]), 25)
    loaded, meta = load_checkpoint(tmp_path / "again.pt", lambda m: dqn.DQN(4, 2, epsilon=1.0))
    states = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    assert [original.choose_action(s) for s in states] == [loaded.choose_action(s) for s in states]
    assert len({loaded.greedy_action(s) for s in states}) == 2  # a real policy, not a constant


def test_play_records_a_checkpoint_without_training(dqn_cli, checkpoint, tmp_path):
    out = dqn_cli("--play", checkpoint, "--watch", "1", "--video", tmp_path / "play.gif")
    assert out.returncode == 0, out.stderr
    assert "trained" not in out.stdout and "watch episode 1/1" in out.stdout
    assert (tmp_path / "play.gif").stat().st_size > 0


def test_play_refuses_another_env(dqn_cli, checkpoint):
    assert_one_line_error(dqn_cli("--play", checkpoint, "--env", "Acrobot-v1"), "CartPole-v0")


class RunsCode:
    """Unpickling this would call os.system: a checkpoint must never do that."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_hostile_checkpoint_is_refused_and_runs_nothing(dqn_cli, tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"meta": RunsCode(), "eval_net": {}}, path)
    result = dqn_cli("--play", path)
    assert_one_line_error(result, "not a readable dqn.py checkpoint")
    assert not (tmp_path / "PWNED").exists()


def test_plain_pickle_with_code_is_refused(dqn_cli, tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(RunsCode()))
    assert_one_line_error(dqn_cli("--play", path), "--play")
    assert not (tmp_path / "PWNED").exists()


def test_broken_checkpoints_are_refused(dqn_cli, checkpoint, tmp_path):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoint.read_bytes()[:600])
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pt"
    text.write_text("not a model\n")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    for path in [truncated, empty, text, other]:
        assert_one_line_error(dqn_cli("--play", path), "--play", str(path.name))


def test_wrong_network_shape_is_refused(dqn_cli, checkpoint, tmp_path):
    data = torch.load(checkpoint, weights_only=True)
    data["meta"]["settings"]["hidden"] = 64  # the weights inside are still 50 wide
    bad = tmp_path / "shape.pt"
    torch.save(data, bad)
    assert_one_line_error(dqn_cli("--play", bad), "does not fit")
    data["meta"]["settings"]["hidden"], data["meta"]["n_states"] = 50, 6  # CartPole has 4 state variables
    torch.save(data, bad)
    assert_one_line_error(dqn_cli("--play", bad), "--play")


def test_a_checkpoint_builds_the_agent_its_run_trained(checkpoint):
    from beyond.files import load_checkpoint

    agent, meta = load_checkpoint(checkpoint)
    run = parse_args([*SHORT, "--watch", "1"])
    assert meta["env_id"] == run.env and meta["reward"] == run.reward
    for name in ["lr", "gamma", "epsilon", "hidden", "target_replace_iter", "double", "huber", "train_every"]:
        assert getattr(agent, name) == getattr(run, name), name
    assert agent.memory_capacity == 1  # --play never learns: no replay memory of the run's size


def test_a_checkpoint_saved_before_settings_were_kept_still_plays(dqn_cli, checkpoint, tmp_path):
    from beyond.files import load_checkpoint

    torch.save(first_format(torch.load(checkpoint, weights_only=True)), tmp_path / "first.pt")
    agent, meta = load_checkpoint(tmp_path / "first.pt")
    assert meta["env_id"] == "CartPole-v0" and agent.hidden == 50 and agent.lr == dqn.hyperparameters["lr"]
    out = dqn_cli("--play", tmp_path / "first.pt", "--watch", "1", "--video", tmp_path / "first.gif")
    assert out.returncode == 0 and (tmp_path / "first.gif").stat().st_size > 0, out.stderr[-2000:]


# ---- interruption and blow-ups --------------------------------------------------------------
def test_ctrl_c_saves_what_was_trained_and_exits_130(tmp_path):
    proc = start_dqn(
        "--episodes", "100000", "--memory-capacity", "200", "--seed", "0", "--run-name", "cut", "--watch", "0",
        cwd=tmp_path,
    )  # fmt: skip
    deadline = time.time() + 120
    for line in proc.stdout:  # wait until learning has started
        if line.startswith("Ep: ") or time.time() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    run_dir = tmp_path / "runs" / "cut"
    rows = read_metrics(run_dir / "metrics.csv")
    assert rows and any(r["learning"] == "True" for r in rows)
    assert (run_dir / "model.pt").stat().st_size > 0 and (run_dir / "rewards.png").stat().st_size > 0
    assert str(run_dir.relative_to(tmp_path) / "model.pt") in out
    torch.load(run_dir / "model.pt", weights_only=True)  # complete, loadable


def test_huge_learning_rate_stops_with_advice_and_saves(dqn_cli, tmp_path):
    result = dqn_cli(*SHORT, "--lr", "1e30", "--run-name", "boom", "--watch", "0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "diverged in episode" in result.stderr and "smaller --lr" in result.stderr
    run_dir = tmp_path / "runs" / "boom"
    data = torch.load(run_dir / "model.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in data["eval_net"].values())
    assert (run_dir / "metrics.csv").is_file()


def test_atomic_write_leaves_no_half_file(tmp_path):
    from beyond.files import atomic_path

    target = tmp_path / "model.pt"
    target.write_text("old, complete")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        Path(tmp).write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old, complete"
    assert list(tmp_path.iterdir()) == [target]


def test_a_second_ctrl_c_while_saving_is_ignored(tmp_path):
    from beyond.files import atomic_path
    from beyond.hooks import ignore_ctrl_c

    target = tmp_path / "metrics.csv"
    # a shell starts a background job with SIGINT ignored; this is about Ctrl-C's usual handler, so install it
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with ignore_ctrl_c(), atomic_path(target) as tmp:
            Path(tmp).write_text("complete\n")
            os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt mid-save otherwise
        assert target.read_text() == "complete\n"
        with pytest.raises(KeyboardInterrupt):  # and Ctrl-C works again afterwards
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("argv", [["--lr", "0.0042"], ["--preset", "tuned"], ["--pixels", "--lr", "0.0003"]])
def test_the_learning_rate_flag_and_a_presets_lr_reach_adam(argv):
    args = parse_args(argv)
    env, agent = build(args)
    env.close()
    assert agent.optimizer.param_groups[0]["lr"] == args.lr != dqn.hyperparameters["lr"]


def test_checking_the_flags_creates_no_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parse_args(["--runs-dir", "a/b", "--video", "c/d.mp4", "--plot", "e/f.png"])
    assert not list(tmp_path.iterdir())
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="is not a folder"):
        parse_args(["--runs-dir", "file/runs"])
