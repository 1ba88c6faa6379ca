"""--resume: a run stopped by its budget or by Ctrl-C, carried on, writes what a run that never stopped writes."""

import os
import shutil
import signal
import time

import pytest
import torch

from beyond.resume import FORMAT_3, FORMAT_3_MEMORY, RESUME_FILE, RESUME_FORMAT, load_resume_state
from beyond.statefile import KIND, read_state, write_state
from conftest import assert_one_line_error, read_metrics, run_dqn, start_dqn

TUNED = ["--preset", "tuned", "--seed", "5", "--no-early-stop", "--eval-every", "2000"]
QUIET = ["--watch", "0", "--snapshots", "0", "--quiet", "--no-show"]
PIXELS = ["--pixels", "--memory-capacity", "300", "--learning-starts", "100", "--eval-every", "200"]
PIXELS += ["--eval-episodes", "1", "--no-keep-best", "--seed", "1"]


def without_wall_times(path):
    """A run's CSV rows, less the wall-time column, which no two runs share."""
    rows = read_metrics(path)
    for row in rows:
        row.pop("wall_s", None)
    return rows


def assert_same_run(cwd, resumed, one_go):
    for name in ("metrics.csv", "evals.csv"):
        first, second = (without_wall_times(cwd / "runs" / run / name) for run in (resumed, one_go))
        assert first == second, name
    return read_metrics(cwd / "runs" / resumed / "metrics.csv")


def run_ok(*args, cwd):
    result = run_dqn(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def saved_state(cwd, run):
    """What a run left in resume.pt, as data (beyond/statefile.py), the way --resume reads it."""
    return load_resume_state(cwd / "runs" / run)


def as_format_3(run_dir):
    """Rewrite run_dir's resume.pt the way format 3 wrote it: the memory's fields among the agent's, named as there."""
    path = run_dir / RESUME_FILE
    header, state = read_state(path, RESUME_FORMAT)
    memory, old_names = state.pop("memory"), {new: old for old, new in FORMAT_3_MEMORY.items()}
    state["agent"].update({old_names[name]: value for name, value in memory.items() if name != "frames"})
    if "frames" in memory:  # a pixel run's: pixels.FrameMemory, a saved object of its own
        state["agent"]["memory_frames"] = {KIND: "parts", "parts": {"frames": memory["frames"]}}
    write_state(path, FORMAT_3, state, header=dict(settings=header["settings"]))


@pytest.fixture(scope="module")
def one_go(tmp_path_factory):
    """The tuned preset (n-step and prioritized replay on) trained to 6,000 env steps without a stop."""
    cwd = tmp_path_factory.mktemp("resume")
    run_ok(*TUNED, *QUIET, "--max-env-steps", "6000", "--run-name", "one-go", cwd=cwd)
    return cwd


@pytest.fixture(scope="module")
def stopped_at_3000(one_go):
    """The same run stopped by its budget of 3,000 env steps, in the middle of an episode."""
    run_ok(*TUNED, *QUIET, "--max-env-steps", "3000", "--run-name", "split", cwd=one_go)
    finished, env_steps, unfinished = saved_state(one_go, "split")["train"]
    assert env_steps == 3000 and unfinished is not None  # it stopped in the middle of an episode
    return one_go / "runs" / "split", len(finished)


@pytest.mark.parametrize("saved_by", ["this program", "format 3"])
def test_a_run_stopped_by_its_budget_and_resumed_is_the_run_that_never_stopped(one_go, stopped_at_3000, saved_by):
    stopped, finished = stopped_at_3000
    split = f"split-{saved_by.replace(' ', '-')}"
    shutil.copytree(stopped, one_go / "runs" / split)  # each resumes its own copy
    if saved_by == "format 3":
        as_format_3(one_go / "runs" / split)
        assert (one_go / "runs" / split / RESUME_FILE).read_bytes().startswith(FORMAT_3.encode())
    result = run_ok("--resume", one_go / "runs" / split, "--max-env-steps", "6000", *QUIET, cwd=one_go)
    assert "saved" in result.stdout
    rows = assert_same_run(one_go, split, "one-go")
    assert int(rows[-1]["env_steps"]) == 6000 and len(rows) > finished + 1
    wall_s = [float(row["wall_s"]) for row in rows]
    assert wall_s == sorted(wall_s) and wall_s[finished] >= wall_s[finished - 1] > 0  # the clock carries on


def test_a_run_stopped_by_ctrl_c_and_resumed_is_the_run_that_never_stopped(one_go):
    proc = start_dqn(*TUNED, *QUIET[:4], "--max-env-steps", "6000", "--run-name", "cut", cwd=one_go)
    for line in proc.stdout:  # Ctrl-C at some moment after learning started
        if line.startswith("eval @ 2000"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    _, env_steps, _ = saved_state(one_go, "cut")["train"]
    assert 2000 <= env_steps < 6000
    run_ok("--resume", one_go / "runs" / "cut", *QUIET, cwd=one_go)  # to the run's own budget
    assert_same_run(one_go, "cut", "one-go")


def test_a_run_whose_learning_rate_falls_and_whose_policy_is_an_average_resumes_exactly(tmp_path):
    """The optimizer's scheduled rate and the averaged net that acts are both carried over: one run holds both."""
    falling = ["--lr", "0.01", "--lr-steps", "4000", "--lr-end", "0.0001", "--averaged-policy", "0.01"]
    run_ok(*TUNED, *QUIET, *falling, "--max-env-steps", "6000", "--run-name", "one-go", cwd=tmp_path)
    run_ok(*TUNED, *QUIET, *falling, "--max-env-steps", "3000", "--run-name", "split", cwd=tmp_path)

    def saved_lr():
        return saved_state(tmp_path, "split")["agent"]["optimizer"]["state"]["param_groups"][0]["lr"]

    assert saved_lr() == pytest.approx(0.01 + (0.0001 - 0.01) * 2999 / 4000)  # set before the 3,000th step
    assert "policy_net" in saved_state(tmp_path, "split")["agent"]  # the average, which acts, is not eval_net
    run_ok("--resume", tmp_path / "runs" / "split", "--max-env-steps", "6000", *QUIET, cwd=tmp_path)
    assert_same_run(tmp_path, "split", "one-go")
    assert saved_lr() == pytest.approx(0.0001)


def test_a_pixel_run_resumes_exactly(tmp_path):
    run_ok(*PIXELS, *QUIET, "--max-env-steps", "600", "--run-name", "one-go", cwd=tmp_path)
    run_ok(*PIXELS, *QUIET, "--max-env-steps", "301", "--run-name", "split", cwd=tmp_path)
    state = saved_state(tmp_path, "split")
    assert state["train"][2] is not None and len(state["env"][0]["frames"]["items"]) == 4  # mid-episode
    shutil.copytree(tmp_path / "runs" / "split", tmp_path / "runs" / "format-3")  # resumed from its own copy
    for split in ("split", "format-3"):
        if split == "format-3":
            as_format_3(tmp_path / "runs" / split)
        run_ok("--resume", tmp_path / "runs" / split, "--max-env-steps", "600", *QUIET, cwd=tmp_path)
        assert_same_run(tmp_path, split, "one-go")


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("stopped")
    run_ok("--episodes", "3", "--memory-capacity", "100", "--seed", "0", *QUIET, "--run-name", "s", cwd=cwd)
    return cwd


@pytest.mark.parametrize(
    "flags, needles",
    [
        (["--lr", "0.001"], ["--lr would change them"]),
        (["--preset", "tuned", "--gamma", "0.5"], ["--gamma, --preset would change them"]),
        ([], ["has trained its 3 episodes", "larger --episodes"]),
    ],
)
def test_a_resume_that_would_change_the_run_or_has_nothing_to_do_is_one_line(stopped, flags, needles):
    assert_one_line_error(run_dqn("--resume", stopped / "runs" / "s", *flags, cwd=stopped), *needles)


def test_damaged_missing_and_foreign_resume_files_are_one_line(stopped, tmp_path):
    assert_one_line_error(run_dqn("--resume", tmp_path / "nothing", cwd=tmp_path), "no such run folder")
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    assert_one_line_error(run_dqn("--resume", tmp_path / "runs" / "empty", cwd=tmp_path), "has no resume.pt")
    damaged = tmp_path / "runs" / "damaged"
    damaged.mkdir()
    data = (stopped / "runs" / "s" / RESUME_FILE).read_bytes()
    (damaged / RESUME_FILE).write_bytes(data[: len(data) // 2])
    assert_one_line_error(run_dqn("--resume", damaged, cwd=tmp_path), "is damaged")
    foreign = tmp_path / "runs" / "foreign"
    foreign.mkdir()
    torch.save(dict(format="dqn-cartpole-resume/0"), foreign / RESUME_FILE)
    assert_one_line_error(run_dqn("--resume", foreign, cwd=tmp_path), f"is not a {RESUME_FORMAT} file")
    newer = tmp_path / "runs" / "newer"
    newer.mkdir()
    (newer / RESUME_FILE).write_bytes(b"dqn-cartpole-resume/5\n" + data.split(b"\n", 1)[1])
    assert_one_line_error(run_dqn("--resume", newer, cwd=tmp_path), "of format 'dqn-cartpole-resume/5'", "reads")


def test_a_solved_run_has_nothing_to_resume(tmp_path):
    run_ok("--env", "CartPole-v0", "--reward", "shaped", "--eval-every", "1000", "--early-stop", "-100", "--seed", "0",
           *QUIET, "--run-name", "solved", cwd=tmp_path)  # fmt: skip
    assert_one_line_error(run_dqn("--resume", tmp_path / "runs" / "solved", "--episodes", "999", cwd=tmp_path),
                          "solved the task", "nothing to continue")  # fmt: skip


def test_resume_state_is_written_whole_even_with_a_second_ctrl_c(tmp_path):
    """The resume file is written inside the same Ctrl-C shield as the rest; one written by a kill is never half."""
    loud = [flag for flag in QUIET if flag != "--quiet"]  # its "Ep:" lines say that training is under way
    proc = start_dqn(
        "--episodes", "100000", "--memory-capacity", "200", "--seed", "0", *loud, "--run-name", "twice", cwd=tmp_path
    )  # fmt: skip
    while not proc.stdout.readline().startswith("Ep:"):  # a fixed wait can end before training starts, under load
        assert proc.poll() is None, proc.stderr.read()[-2000:]
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # while it saves, or as training ends: ignored either way
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    state = saved_state(tmp_path, "twice")
    assert state["memory"]["counter"] == state["train"][1]  # one row per env step, as trained
    assert not [p for p in os.listdir(tmp_path / "runs" / "twice") if p.startswith(".")]  # no temporary files left


LUNAR = ["--preset", "tuned", "--env", "LunarLander-v3", "--seed", "3", "--no-early-stop", "--eval-every", "1000"]
LUNAR += ["--learning-starts", "300", *QUIET]


def test_a_lunarlander_run_resumes_from_an_episode_boundary(tmp_path):
    """Box2D's world is not data: a stop at an episode's end resumes exactly; one mid-episode starts a new one."""
    pytest.importorskip("Box2D", reason="gymnasium[box2d] (requirements-dev.txt)")
    run_ok(*LUNAR, "--max-env-steps", "1500", "--run-name", "one-go", cwd=tmp_path)
    ends = [int(row["env_steps"]) for row in read_metrics(tmp_path / "runs" / "one-go" / "metrics.csv")]
    boundary = next(end for end in ends if end > 500)  # an episode's last step: the stop falls between episodes
    assert boundary < 1000  # after learning starts, before the evaluation at 1,000 that the resumed run must match
    run_ok(*LUNAR, "--max-env-steps", boundary, "--run-name", "at-end", cwd=tmp_path)
    assert saved_state(tmp_path, "at-end")["train"][2] is None
    run_ok("--resume", tmp_path / "runs" / "at-end", "--max-env-steps", "1500", *QUIET, cwd=tmp_path)
    assert_same_run(tmp_path, "at-end", "one-go")
    run_ok(*LUNAR, "--max-env-steps", boundary - 7, "--run-name", "mid", cwd=tmp_path)
    finished, env_steps, unfinished = saved_state(tmp_path, "mid")["train"]
    assert unfinished is None and env_steps == boundary - 7  # the cut episode counts as ended where it stopped
    run_ok("--resume", tmp_path / "runs" / "mid", "--max-env-steps", "1500", *QUIET, cwd=tmp_path)
    rows = read_metrics(tmp_path / "runs" / "mid" / "metrics.csv")
    assert int(rows[len(finished) - 1]["env_steps"]) == boundary - 7 and int(rows[-1]["env_steps"]) == 1500


def test_a_ctrl_c_while_the_run_is_saved_is_ignored_and_the_save_completes(tmp_path, monkeypatch):
    """Deterministic: the SIGINT arrives inside save_resume_state, as a second Ctrl-C would."""
    from beyond import cli

    real_save = cli.save_resume_state

    def interrupted_save(*args):
        os.kill(os.getpid(), signal.SIGINT)  # delivered now: the shield must ignore it
        return real_save(*args)

    monkeypatch.setattr(cli, "save_resume_state", interrupted_save)
    flags = ["--episodes", "30", "--memory-capacity", "200", "--seed", "0", *QUIET, "--run-name", "saved"]
    assert cli.main([*flags, "--runs-dir", str(tmp_path / "runs")]) == 0
    run_dir = tmp_path / "runs" / "saved"
    assert load_resume_state(run_dir)["train"][1] > 0 and (run_dir / "model.pt").exists()
    assert not [p for p in os.listdir(run_dir) if p.startswith(".")]  # no temporary files left
