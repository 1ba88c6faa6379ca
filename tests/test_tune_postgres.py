"""bench/tune.py on a real PostgreSQL server: several workers on one study, as on several machines.

The server is Debian's postgresql package (.ci/run installs it), started here on a free
loopback port in a scratch folder. initdb refuses to run as root, so where the tests run
as root the server runs as the package's postgres user.
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import ROOT

optuna = pytest.importorskip("optuna")
pytest.importorskip("psycopg2", reason="the PostgreSQL driver is in bench/requirements.txt")

sys.path.insert(0, str(ROOT / "bench"))
from tune import SPACE  # noqa: E402

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
TUNE = [sys.executable, "tune.py", "--seeds", "1000", "--budget", "1500", "--heartbeat", "1"]


def server_user():
    """Who runs the server: this user, or postgres where this is root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root, and there is no postgres user to run the server as")


@pytest.fixture(scope="module")
def postgres_url():
    if not BIN:
        pytest.skip("no PostgreSQL server here: .ci/run installs Debian's postgresql package")
    user = server_user()
    folder = tempfile.mkdtemp(prefix="pg-", dir="/tmp")
    if user:
        os.chown(folder, user.pw_uid, user.pw_gid)
    as_user = ["runuser", "-u", user.pw_name, "--"] if user else []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data, log = f"{folder}/data", f"{folder}/server.log"
    run = lambda *args: subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)  # noqa: E731
    try:
        run(f"{BIN[-1]}/initdb", "-D", data, "--auth=trust", "-U", "postgres")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
        run(f"{BIN[-1]}/pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "start")
        run(f"{BIN[-1]}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "tune")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/tune"
    finally:
        subprocess.run([*as_user, f"{BIN[-1]}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def tune(url, study, *flags, tmp_path):
    out = subprocess.run(
        [*TUNE, "--storage", url, "--study-name", study, "--out", str(tmp_path), *flags],
        cwd=ROOT / "bench",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def trials(url, study, *states):
    loaded = optuna.load_study(study_name=study, storage=url)
    return loaded.get_trials(deepcopy=False, states=states or None)


FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def test_two_workers_share_one_study_and_n_trials_is_its_total(postgres_url, tmp_path):
    tune(postgres_url, "shared", "--n-jobs", "2", "--n-trials", "6", tmp_path=tmp_path)
    finished = trials(postgres_url, "shared", *FINISHED)
    assert len(finished) == 6  # the study's total, not 6 for each worker
    assert len({t.user_attrs["worker"] for t in finished}) == 2  # both workers took trials
    everything = trials(postgres_url, "shared")
    assert all(t.state in FINISHED or "surplus" in t.user_attrs for t in everything)  # nothing left running
    pruned = [t for t in finished if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(t.intermediate_values for t in pruned)  # reports reached the server; pruned there

    tune(postgres_url, "shared", "--n-jobs", "2", "--n-trials", "9", tmp_path=tmp_path)  # a stopped study resumes
    assert len(trials(postgres_url, "shared", *FINISHED)) == 9
    assert (tmp_path / "tune_trials.csv").read_text().count("\n") == 1 + len(trials(postgres_url, "shared"))


def chosen(trial):
    """Whether a running trial has all its values: the search space's, and per_alpha where it has prioritized replay."""
    names = {"lr", *SPACE} | ({"per_alpha"} if trial.params.get("prioritized") else set())
    return names <= set(trial.params)


def poll(found, seconds=120):
    """found()'s first truthy value, asked every 0.1 s; [] after seconds (a study not yet created counts as none)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = found()
        except KeyError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    return []


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_killed_workers_trial_is_failed_and_tried_again(postgres_url, tmp_path):
    command = [*TUNE, "--budget", "50000", "--seeds", "1000-1004", "--storage", postgres_url]
    slow = subprocess.Popen(
        [*command, "--study-name", "killed", "--n-trials", "3", "--out", str(tmp_path)], cwd=ROOT / "bench"
    )
    try:
        state = optuna.trial.TrialState.RUNNING
        running = poll(lambda: [t for t in trials(postgres_url, "killed", state) if chosen(t)])
        assert running, "the worker never started a trial"
    finally:
        slow.send_signal(signal.SIGKILL)
        slow.wait()
    (dead,) = running
    assert dead.params  # the values that must be tried again
    assert trials(postgres_url, "killed", optuna.trial.TrialState.RUNNING)  # the dead worker's trial says running
    time.sleep(2.5)  # past the grace period of 2 heartbeats
    tune(postgres_url, "killed", "--n-trials", "3", tmp_path=tmp_path)
    states = {t.number: t.state for t in trials(postgres_url, "killed")}
    assert states[dead.number] == optuna.trial.TrialState.FAIL
    assert optuna.trial.TrialState.RUNNING not in states.values()
    retried = [
        t
        for t in trials(postgres_url, "killed", *FINISHED)
        if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == dead.number
    ]
    assert len(retried) == 1 and retried[0].params == dead.params  # the same values, tried again
    assert len(trials(postgres_url, "killed", *FINISHED)) == 3
