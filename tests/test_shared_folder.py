"""A run folder from anyone can only make this program train, play or refuse in one line.

Each file here is built from a real stopped run and then changed the way an attacker or a
damaged disk would: env ids that import code, output paths, memory and zip bombs, settings
that hang, values of the wrong kind, and values that are well formed but not what a run
could hold. Every one must be refused in one line (exit 2), quickly and in bounded memory,
or resume correctly. The last part changes any field of the real state at random
(Hypothesis); `make fuzz` runs it for longer.
"""

import copy
import hashlib
import io
import json
import math
import os
import subprocess
import sys
import time
import zipfile

import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st
from test_resume_safety import edit, resume_in_process, sites

import dqn
from beyond import UsageError
from beyond.cli import build
from beyond.files import load_checkpoint, save_checkpoint
from beyond.flags import parse_args
from beyond.hooks import TrainingHooks
from beyond.resume import RESUME_FILE, RESUME_FORMAT, save_resume_state
from beyond.statefile import KIND, read_state, write_state
from conftest import ROOT, assert_one_line_error, first_format, headless_env, run_dqn

FLAGS = ["--memory-capacity", "60", "--seed", "0", "--watch", "1", "--quiet", "--no-show", "--eval-every", "50"]
FLAGS += ["--eval-episodes", "1", "--n-step", "3", "--prioritized", "--max-env-steps", "120", "--snapshots", "2"]
FAST = 20  # CPU seconds: the most any refusal here may take, a child process's start included (CPU time, not
# wall: a loaded machine slows a refusal down, but only work that has no bound makes it cost more)
SMALL = 1024 * 2**20  # bytes of RSS: a refusing child stays well under this (torch alone is about 300 MiB)


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A real run folder: n-step and prioritized replay on, stopped mid-episode by its budget, with snapshots."""
    run_dir = tmp_path_factory.mktemp("shared") / "runs" / "shared"
    run_dir.mkdir(parents=True)
    args = parse_args(FLAGS)
    env, agent = build(args)
    hooks = TrainingHooks(agent, env, args, log=None)
    records = dqn.train(agent, env, args.episodes, args.max_episode_steps, dqn.shaped_reward, 0, None, hooks)
    assert hooks.snapshots and save_resume_state(run_dir / RESUME_FILE, args, agent, env, hooks, records)
    save_checkpoint(agent, run_dir / "model.pt", args, len(records))
    return run_dir


@pytest.fixture(scope="module")
def stopped_pixel_run(tmp_path_factory):
    """The same for a --pixels run: frames in the memory and a frame stack in the env."""
    run_dir = tmp_path_factory.mktemp("shared-pixels") / "runs" / "pixels"
    run_dir.mkdir(parents=True)
    pixel_flags = ["--max-env-steps", "60", "--learning-starts", "30", "--eval-every", "0", "--no-keep-best"]
    args = parse_args(["--pixels", *FLAGS, *pixel_flags])
    env, agent = build(args)
    hooks = TrainingHooks(agent, env, args, log=None)
    records = dqn.train(agent, env, args.episodes, args.max_episode_steps, lambda e, s_, r: float(r), 0, None, hooks)
    assert save_resume_state(run_dir / RESUME_FILE, args, agent, env, hooks, records)
    return run_dir


@pytest.fixture(scope="module")
def stopped_runs(stopped_run, stopped_pixel_run):
    return {"state": stopped_run, "pixels": stopped_pixel_run}


def saved(run_dir):
    """(header, state) of run_dir's resume.pt, as plain data."""
    return read_state(run_dir / RESUME_FILE, RESUME_FORMAT)


def folder(tmp_path, name="copy"):
    """An empty run folder under tmp_path/runs."""
    path = tmp_path / "runs" / name
    path.mkdir(parents=True)
    return path


def signed(run_dir, header, payload):
    """resume.pt around payload with the right tag, length and checksum: only its contents can be wrong."""
    fields = dict(header, bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    (run_dir / RESUME_FILE).write_bytes(f"{RESUME_FORMAT}\n{json.dumps(fields)}\n".encode() + payload)
    return run_dir


def payload_of(state, protocol=2):
    buffer = io.BytesIO()
    torch.save(state, buffer, pickle_protocol=protocol)
    return buffer.getvalue()


def rezipped(payload, change):
    """torch.save's zip with each record's (name, bytes, compression) passed through change."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(payload)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            name, data, compression = change(info.filename, src.read(info), zipfile.ZIP_STORED)
            dst.writestr(name, data, compress_type=compression)
    return out.getvalue()


def with_settings(stopped_run, tmp_path, name="edited", **changes):
    """A copy of the stopped run whose header settings have changes."""
    header, state = saved(stopped_run)
    header = dict(header, settings={**header["settings"], **changes})
    run_dir = folder(tmp_path, name)
    write_state(run_dir / RESUME_FILE, RESUME_FORMAT, state, header)
    return run_dir


def with_state(stopped_run, tmp_path, path, value, name="edited"):
    """A copy of the stopped run with the state's value at path replaced (value(old) if callable)."""
    header, state = saved(stopped_run)
    edit(state, path, value if callable(value) else lambda _: value)
    run_dir = folder(tmp_path, name)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # pickle writes nested lists by recursion; the reader must not need to
    try:
        write_state(run_dir / RESUME_FILE, RESUME_FORMAT, state, header)
    finally:
        sys.setrecursionlimit(limit)
    return run_dir


def refused(run_dir, *needles):
    """--resume run_dir is one UsageError line about its file; returns the message."""
    with pytest.raises(UsageError) as error:
        resume_in_process(run_dir)
    message = str(error.value)
    assert "\n" not in message and message.startswith("--resume: "), message
    for needle in needles:
        assert needle in message, message
    return message


CHILD = """
import resource, sys
sys.path.insert(0, {root!r})
from beyond.cli import main
code = main(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_SELF)
print(f"maxrss_kib={{usage.ru_maxrss}} cpu_s={{usage.ru_utime + usage.ru_stime}}")
sys.exit(code)
"""


def in_child(*args, cwd):
    """python dqn.py ARGS in a child process that reports its peak RSS; (result, peak bytes, CPU seconds)."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT)), *map(str, args)],
        cwd=cwd,
        env=headless_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    peak = int(result.stdout.rsplit("maxrss_kib=", 1)[1].split()[0]) * 1024
    return result, peak, float(result.stdout.rsplit("cpu_s=", 1)[1].split()[0])


def refused_in_child(run_dir, cwd, *needles, flag="--resume"):
    """One line, exit 2, in bounded time and memory, in a child process."""
    result, peak, seconds = in_child(flag, run_dir, cwd=cwd)
    assert_one_line_error(result, *needles)
    assert peak < SMALL and seconds < FAST, (peak / 2**20, seconds)


# ---- 1. nothing is imported -------------------------------------------------------------------
PAYLOAD = "import pathlib\npathlib.Path('PWNED').write_text('ran')\n"


@pytest.mark.parametrize("env_id", ["runs.evil.payload:CartPole-v0", "this:CartPole-v0", "Pendulum-v1", 5, ""])
def test_an_env_id_in_a_resume_file_imports_nothing(stopped_run, tmp_path, env_id):
    run_dir = with_settings(stopped_run, tmp_path, "evil", env=env_id)
    (run_dir / "payload.py").write_text(PAYLOAD)
    (run_dir.parent / "__init__.py").write_text("")
    result = run_dqn("--resume", run_dir, cwd=tmp_path)
    assert_one_line_error(result, "--env")
    assert not (tmp_path / "PWNED").exists() and "Beautiful is better" not in result.stdout


@pytest.mark.parametrize("env_id", ["runs.evil.payload:CartPole-v0", "this:CartPole-v0", "Pendulum-v1", None])
def test_an_env_id_in_a_checkpoint_imports_nothing(stopped_run, tmp_path, env_id):
    run_dir = folder(tmp_path, "evil")
    (run_dir / "payload.py").write_text(PAYLOAD)
    data = torch.load(stopped_run / "model.pt", weights_only=True)
    if env_id is None:
        del data["meta"]["settings"]["env"]
    else:
        data["meta"]["settings"]["env"] = env_id
    torch.save(data, run_dir / "model.pt")
    result = run_dqn("--play", run_dir / "model.pt", cwd=tmp_path)
    assert_one_line_error(result, "--play")
    assert not (tmp_path / "PWNED").exists() and "Beautiful is better" not in result.stdout


def test_a_module_env_id_on_the_command_line_imports_nothing(tmp_path):
    result = run_dqn("--env", "this:CartPole-v0", cwd=tmp_path)
    assert_one_line_error(result, "names a module to import")
    assert "Beautiful is better" not in result.stdout


def test_every_env_is_made_through_the_one_function_that_checks_its_id():
    """Any call of gym.make or dqn.make_env outside tasks.make_env fails this audit (literal ids aside)."""
    import ast

    def unchecked_makes(tree, checker=None):
        """Calls that make an env from an id that is not a literal, outside the function named checker."""
        allowed = set()
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef) and function.name == checker:
                allowed |= {id(node) for node in ast.walk(function)}
        found = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("gym.make", "gymnasium.make", "dqn.make_env"):
                literal = not node.args or isinstance(node.args[0], ast.Constant)  # no id: dqn.py's own
                if id(node) not in allowed and not literal:
                    found.append(node)
        return found

    offenders = []
    for path in [*(ROOT / "beyond").glob("*.py"), *(ROOT / "bench").glob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = unchecked_makes(tree, "make_env" if path.name == "tasks.py" else None)
        offenders += [f"{path.name}:{node.lineno}" for node in found]
    assert not offenders, offenders
    planted = "def f(env_id):\n    return gym.make(env_id)\ndef make_env(env_id):\n    return dqn.make_env(env_id)\n"
    assert len(unchecked_makes(ast.parse(planted))) == 2  # the audit finds what it looks for
    assert len(unchecked_makes(ast.parse(planted), "make_env")) == 1
    tasks_source = (ROOT / "beyond" / "tasks.py").read_text()
    assert "dqn.make_env(check_env_id(env_id)" in tasks_source  # the one allowed maker checks the id


# ---- 2. nothing is written outside the folder --------------------------------------------------
@pytest.mark.parametrize("setting", ["video", "plot", "runs_dir", "run_name"])
def test_a_resume_file_names_no_output(stopped_run, tmp_path, setting):
    holiday = tmp_path / "holiday.gif"
    holiday.write_bytes(b"GIF89a the user's own")
    run_dir = with_settings(stopped_run, tmp_path, **{setting: str(holiday)})
    assert_one_line_error(run_dqn("--resume", run_dir, "--max-env-steps", "240", cwd=tmp_path), "settings")
    assert holiday.read_bytes() == b"GIF89a the user's own"


def files_under(path):
    return {p for p in path.rglob("*") if p.is_file()}


def test_a_resumed_run_writes_only_inside_its_own_folder(stopped_run, tmp_path):
    run_dir = folder(tmp_path, "mine")
    (run_dir / RESUME_FILE).write_bytes((stopped_run / RESUME_FILE).read_bytes())
    before = files_under(tmp_path)
    result = run_dqn("--resume", ".", "--max-env-steps", "240", cwd=run_dir)  # `--resume .` from inside it
    assert result.returncode == 0, result.stderr[-2000:]
    new = files_under(tmp_path) - before
    assert new and all(run_dir in p.parents for p in new), sorted(map(str, new))


# ---- 3. memory is bounded before anything is built ----------------------------------------------
def test_a_compressed_tensor_record_is_refused_before_it_is_inflated(stopped_run, tmp_path):
    header, state = saved(stopped_run)
    state["memory"]["counter"] = torch.zeros(100 * 2**20 // 4)  # 100 MiB of zeros, deflated to about 100 KB
    deflated = rezipped(payload_of(state), lambda name, data, _: (name, data, zipfile.ZIP_DEFLATED))
    assert len(deflated) < 2**20
    run_dir = signed(folder(tmp_path), header, deflated)
    refused_in_child(run_dir, tmp_path, "compressed records")


def test_huge_settings_are_refused_before_the_nets_and_memory_are_built(stopped_run, tmp_path):
    refused(with_settings(stopped_run, tmp_path, "wide", hidden=50_000_000), "needs about", "GiB")
    refused(with_settings(stopped_run, tmp_path, "deep", memory_capacity=10**9), "needs about", "GiB")
    refused_in_child(with_settings(stopped_run, tmp_path, "child", hidden=50_000_000), tmp_path, "GiB")


def test_a_checkpoint_whose_size_does_not_fit_its_weights_builds_nothing(stopped_run, tmp_path):
    data = torch.load(stopped_run / "model.pt", weights_only=True)
    data["meta"]["settings"]["hidden"] = 50_000_000
    torch.save(data, tmp_path / "model.pt")
    refused_in_child(tmp_path / "model.pt", tmp_path, "hidden size 50000000", flag="--play")


def test_an_old_untagged_zip_is_looked_at_through_a_bounded_read(tmp_path):
    run_dir = folder(tmp_path)
    with zipfile.ZipFile(run_dir / RESUME_FILE, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", bytes(300 * 2**20))  # 300 MiB that deflate to about 300 KB
    refused_in_child(run_dir, tmp_path, f"is not a {RESUME_FORMAT} file")


def test_a_sparse_file_is_not_read_past_what_its_settings_allow(stopped_run, tmp_path):
    header, _ = saved(stopped_run)
    run_dir = folder(tmp_path)
    fields = dict(header, bytes=10 * 2**30, sha256="0" * 64)
    with open(run_dir / RESUME_FILE, "wb") as f:
        f.write(f"{RESUME_FORMAT}\n{json.dumps(fields)}\n".encode())
        f.truncate(10 * 2**30)  # 10 GiB, sparse: nothing on disk
    refused_in_child(run_dir, tmp_path, "its settings make at most")


def test_a_pickle_of_millions_of_values_is_refused_before_it_is_built(stopped_run, tmp_path):
    header, state = saved(stopped_run)
    lists = b"\x80\x02](" + b"]" * 5_000_000 + b"e."  # a list of 5 million empty lists, 5 MB
    bomb = rezipped(payload_of(state), lambda n, d, c: (n, lists if n.endswith("/data.pkl") else d, c))
    refused_in_child(signed(folder(tmp_path), header, bomb), tmp_path, "more than 4,000,000 values")


# ---- 4. nothing hangs ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, needle",
    [
        (dict(eval_episodes=10**12), "--eval-episodes must be at most"),
        (dict(eval_every=1), "would spend far more env steps evaluating than training"),
        (dict(confirm_episodes=10**9), "--confirm-episodes must be at most"),
        (dict(episodes=10**15), "--episodes must be at most"),
        (dict(replay_ratio=10**6), "--replay-ratio must be at most"),
        (dict(watch=10**4), "--watch must be at most 100"),
    ],
)
def test_settings_that_would_hang_are_refused(stopped_run, tmp_path, changes, needle):
    start = time.process_time()
    refused(with_settings(stopped_run, tmp_path, **changes), needle)
    assert time.process_time() - start < FAST


def test_a_long_list_of_evaluations_is_refused_quickly(stopped_run, tmp_path):
    row = dict(env_steps=50, mean=10.0, std=0.0, min=10.0, final=0)
    run_dir = with_state(stopped_run, tmp_path, ("hooks", "evals"), [row] * 200_000)
    start = time.process_time()
    refused(run_dir, "more evaluations than the run could have had")
    assert time.process_time() - start < FAST


# ---- 5. well-formed files of the wrong kinds: one line each, never a traceback ---------------------
SETTINGS_OF_THE_WRONG_KIND = [
    dict(episodes="300"),
    dict(memory_capacity=60.0),
    dict(env=5),
    dict(lr="0.01"),
    dict(double="yes"),
    dict(preset="fast"),
    dict(device=3),
    dict(seed=-1),
    dict(gamma=math.nan),
    dict(learning_starts=1e300),
    dict(reward="shaped" * 100),
]


@pytest.mark.parametrize("changes", SETTINGS_OF_THE_WRONG_KIND, ids=lambda c: next(iter(c)))
def test_settings_of_the_wrong_kind_are_one_line(stopped_run, tmp_path, changes):
    refused(with_settings(stopped_run, tmp_path, **changes), "settings")


def test_missing_and_unknown_settings_are_one_line(stopped_run, tmp_path):
    header, state = saved(stopped_run)
    for i, settings_ in enumerate([{k: v for k, v in header["settings"].items() if k != "lr"},
                                    {**header["settings"], "unknown": 1}, [], None]):  # fmt: skip
        run_dir = folder(tmp_path, f"case{i}")
        write_state(run_dir / RESUME_FILE, RESUME_FORMAT, state, dict(header, settings=settings_))
        refused(run_dir, "settings")


def test_a_file_from_before_a_setting_existed_resumes_at_its_default(stopped_run, tmp_path):
    header, state = saved(stopped_run)
    older = {k: v for k, v in header["settings"].items() if k != "hidden_layers"}
    assert len(older) == len(header["settings"]) - 1
    run_dir = folder(tmp_path, "older")
    write_state(run_dir / RESUME_FILE, RESUME_FORMAT, state, dict(header, settings=older))
    assert outcome(run_dir) == "resumed"
    assert type(resume_in_process(run_dir).eval_net) is type(resume_in_process(stopped_run).eval_net)
    refused(with_settings(stopped_run, tmp_path, "deeper", hidden_layers=2), "not this net's layers")


def tagged_tuple(*items):
    return {KIND: "tuple", "items": list(items)}


def deep(levels):
    value = []
    for _ in range(levels):
        value = [value]
    return value


WRONG_STATE = [  # (what, path, new value or a function of the old one)
    ("evals as tuples", ("hooks", "evals"), lambda rows: [tagged_tuple(*r.values()) for r in rows]),
    (
        "an eval without env_steps",
        ("hooks", "evals"),
        lambda rows: [{k: v for k, v in rows[0].items() if k != "env_steps"}],
    ),
    ("an eval with an extra key", ("hooks", "evals"), lambda rows: [dict(rows[0], extra=1)]),
    ("an unknown hooks field", ("hooks", "unknown"), 1),
    ("a snapshot with an extra key", ("hooks", "snapshots"), lambda s: [dict(s[0], extra=1)]),
    ("unconfirmed rows of strings", ("hooks", "unconfirmed"), [tagged_tuple("a", "b", "c")]),
    ("next_eval a string", ("hooks", "next_eval"), "soon"),
    (
        "the unfinished reward a string",
        ("train", "items", 2),
        lambda u: dict(u, items=[*u["items"][:1], "x", *u["items"][2:]]),
    ),
    ("the unfinished step 0", ("train", "items", 2), lambda u: dict(u, items=[*u["items"][:4], 0])),
    (
        "the unfinished state misshapen",
        ("train", "items", 2),
        lambda u: dict(u, items=[{KIND: "numpy", "value": torch.zeros(3)}, *u["items"][1:]]),
    ),
    ("episodes out of order", ("train", "items", 0), lambda rows: rows[::-1]),
    ("a PCG64 state past 128 bits", ("agent", "rng", "state", "state", "state"), 2**200),
    ("a PCG64 increment even", ("agent", "rng", "state", "state", "inc"), 2),
    ("a PCG64 flag of 5", ("agent", "rng", "state", "has_uint32"), 5),
    ("a stride-0 memory", ("memory", "rows", "value"), lambda t: torch.zeros(1, t.shape[1]).expand(*t.shape)),
    ("a sparse memory", ("memory", "rows", "value"), lambda t: t.to_sparse()),
    ("a transposed memory", ("memory", "rows", "value"), lambda t: t.T.contiguous().T),
    ("a memory that requires grad", ("memory", "rows", "value"), lambda t: t.clone().requires_grad_()),
    ("lists nested 5,000 deep", ("hooks", "evals"), deep(5000)),
    ("one env layer too few", ("env",), lambda layers: layers[1:]),
    ("one env layer too many", ("env",), lambda layers: [layers[0], *layers]),
    ("a NaN greedy probability", ("agent", "epsilon"), math.nan),
    ("a greedy probability of 2", ("agent", "epsilon"), 2.0),
    ("Adam's lr negative", ("agent", "optimizer", "state", "param_groups", 0, "lr"), -0.01),
    ("Adam's lr not the run's", ("agent", "optimizer", "state", "param_groups", 0, "lr"), 0.5),
    ("Adam's lr NaN", ("agent", "optimizer", "state", "param_groups", 0, "lr"), math.nan),
    ("Adam maximizing", ("agent", "optimizer", "state", "param_groups", 0, "maximize"), True),
    ("the memory's counter 10^30", ("memory", "counter"), 10**30),
    ("more learn steps than env steps", ("agent", "learn_step_counter"), 10**6),
    ("a NaN weight", ("agent", "eval_net", "state", "fc.0.weight"), lambda t: t.clone().fill_(math.nan)),
    ("a NaN in the memory", ("memory", "rows", "value"), lambda t: t.clone().fill_(math.nan)),
    ("a negative priority", ("memory", "priorities", "parts", "nodes", "value"), lambda t: t.clone().fill_(-1.0)),
    ("a time limit passed", ("env", 0, "_elapsed_steps"), 10**6),
]


@pytest.mark.parametrize("what, path, value", WRONG_STATE, ids=[w[0] for w in WRONG_STATE])
def test_state_of_the_wrong_kind_is_one_line(stopped_run, tmp_path, what, path, value):
    refused(with_state(stopped_run, tmp_path, path, value))


@pytest.mark.parametrize(
    "fields",
    [dict(bytes="12"), dict(bytes=True), dict(sha256=5), dict(sha256="g" * 64), dict(settings=[1])],
    ids=["bytes a string", "bytes a bool", "sha256 a number", "sha256 not hex", "settings a list"],
)
def test_header_fields_of_the_wrong_kind_are_one_line(stopped_run, tmp_path, fields):
    header, state = saved(stopped_run)
    payload = payload_of(state)
    real = dict(header, bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    run_dir = folder(tmp_path)
    (run_dir / RESUME_FILE).write_bytes(f"{RESUME_FORMAT}\n{json.dumps({**real, **fields})}\n".encode() + payload)
    refused(run_dir)


def settings_of(data):
    """Where a checkpoint keeps the settings that build its net: meta.settings, or in the first format meta itself."""
    meta = data["meta"]
    return meta.get("settings", meta)


def extensions_of(data):
    """Where a checkpoint keeps its extensions: meta.settings, or in the first format meta.extensions."""
    meta = data["meta"]
    return meta.get("settings", meta.get("extensions"))


def the_other_formats_field(data):
    """A field of the other format: a meta holds its own format's fields only."""
    meta = data["meta"]
    meta.update(env_id="CartPole-v1") if "settings" in meta else meta.update(settings={})


@pytest.mark.parametrize("saved_by", ["this program", "the first format"])
@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["eval_net"].update({"fc.0.weight": d["eval_net"]["fc.0.weight"].fill_(math.nan)}),
        lambda d: d["eval_net"].update({"fc.0.weight": torch.zeros(1, 4).expand(*d["eval_net"]["fc.0.weight"].shape)}),
        lambda d: settings_of(d).update(hidden="50"),
        lambda d: extensions_of(d).update(n_step=10**9),
        lambda d: extensions_of(d).update(dueling="yes"),
        lambda d: d["meta"].update(n_states=(4, 10**9, 10**9)),
        lambda d: d["meta"].update(unknown=1),
        the_other_formats_field,
    ],
    ids=[
        "NaN weights",
        "stride-0 weights",
        "hidden a string",
        "n_step 10^9",
        "dueling a string",
        "huge screens",
        "an unknown field",
        "the other format's fields",
    ],
)
def test_a_checkpoint_of_the_wrong_kind_is_one_line(stopped_run, tmp_path, change, saved_by):
    data = torch.load(stopped_run / "model.pt", weights_only=True)
    if saved_by == "the first format":
        first_format(data)
    torch.save(data, tmp_path / "intact.pt")
    load_checkpoint(tmp_path / "intact.pt")  # loads before the change
    change(data)
    torch.save(data, tmp_path / "model.pt")
    with pytest.raises(UsageError) as error:
        load_checkpoint(tmp_path / "model.pt")
    assert "\n" not in str(error.value) and str(error.value).startswith("--play: ")


# ---- 7. special files and odd arguments: one line that says what is wrong ------------------------
def test_special_files_are_one_line_and_never_block(stopped_run, tmp_path):
    fifo = folder(tmp_path, "fifo")
    os.mkfifo(fifo / RESUME_FILE)
    refused(fifo, "is not a plain file")
    directory = folder(tmp_path, "directory")
    (directory / RESUME_FILE).mkdir()
    refused(directory, "is a folder, not a file")
    device = folder(tmp_path, "device")
    (device / RESUME_FILE).symlink_to("/dev/zero")
    refused(device, "is not a plain file")


def test_a_resume_file_given_to_play_says_what_it_is(stopped_run, tmp_path):
    assert_one_line_error(run_dqn("--play", stopped_run / RESUME_FILE, cwd=tmp_path), "is a run's resume.pt")


def test_a_protocol_4_payload_prints_no_warning(stopped_run, tmp_path):
    header, state = saved(stopped_run)
    run_dir = signed(folder(tmp_path), header, payload_of(state, protocol=4))
    result = run_dqn("--resume", run_dir, "--max-env-steps", "240", cwd=tmp_path)
    assert "Warning" not in result.stderr and "warn" not in result.stderr.lower(), result.stderr
    assert result.returncode == 0 or len(result.stderr.strip().splitlines()) == 1, result.stderr


# ---- 6. any field, changed any way: Hypothesis ---------------------------------------------------
def odd_tensors(tensor):
    """Ways to change a tensor: its dtype, shape, layout, grad, and values."""
    choices = [
        st.sampled_from([torch.float64, torch.float32, torch.int64, torch.uint8, torch.bool, torch.float16]).map(
            lambda dtype: tensor.to(dtype)
        ),
        st.just(tensor.reshape(-1)[:-1].clone() if tensor.numel() else torch.zeros(3)),
        st.just(tensor.unsqueeze(0).clone()),
        st.just(tensor.reshape(-1)[:1].expand(tensor.numel()).reshape(tensor.shape) if tensor.numel() else tensor),
        st.sampled_from([math.nan, math.inf, -math.inf, 1e30, -1.0, 0.0]).map(
            lambda v: (
                tensor.to(torch.float64).clone().fill_(v).to(tensor.dtype) if tensor.is_floating_point() else tensor
            )
        ),
    ]
    if tensor.dim() == 2:
        choices.append(st.just(tensor.T))
    if tensor.is_floating_point():
        choices.append(st.just(tensor.clone().requires_grad_()))
    if tensor.dim():
        choices.append(st.just(tensor.to_sparse()))
    return st.one_of(choices)


PLAIN_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**140),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(-3, 3), max_size=3),
    st.just(deep(200)),
)


def changed(value):
    """A strategy for a value to put where value was: of another kind, extreme, misshapen, deep or huge."""
    options = [PLAIN_VALUES]
    if isinstance(value, torch.Tensor):
        options.append(odd_tensors(value))
    if isinstance(value, list):
        options += [st.just(value[:-1]), st.just(value * 50), st.just([value] * 2), st.just([value])]
    if isinstance(value, dict) and value:
        key = sorted(value, key=str)[0]
        options += [st.just({k: v for k, v in value.items() if k != key}), st.just({**value, "extra": 0})]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        options.append(st.sampled_from([-1, 0, value + 1, value * 1000, 10**18, math.nan, -0.0, float(value)]))
    return st.one_of(options)


def one_line_or(action, prefix, success):
    """'refused' where action() raises one UsageError line that starts with prefix, else success.

    Any other exception, or an error of more than one line, fails the test.
    """
    try:
        action()
    except UsageError as e:
        assert "\n" not in str(e) and str(e).startswith(prefix), str(e)
        return "refused"
    return success


def outcome(run_dir):
    """'refused' or 'resumed': what --resume run_dir comes to."""
    return one_line_or(lambda: resume_in_process(run_dir), "--resume: ", "resumed")


def all_sites(run_dir):
    header, state = saved(run_dir)
    return [("settings", *p) for p, _ in sites(header["settings"]) if p] + [p for p, _ in sites(state) if p]


@pytest.mark.parametrize("kind", ["state", "pixels"])
@given(data=st.data())
def test_any_field_changed_any_way_is_one_line_or_a_resume(stopped_runs, kind, tmp_path_factory, data):
    header, state = saved(stopped_runs[kind])
    path = data.draw(st.sampled_from(all_sites(stopped_runs[kind])), label="field")
    holder = header if path[0] == "settings" else state
    old = holder
    for key in path:
        old = old[key]
    new = data.draw(changed(copy.deepcopy(old) if not isinstance(old, torch.Tensor) else old), label="value")
    edit(holder, path, lambda _: new)
    run_dir = tmp_path_factory.mktemp("fuzz") / "runs" / "case"
    run_dir.mkdir(parents=True)
    write_state(run_dir / RESUME_FILE, RESUME_FORMAT, state, header)
    start = time.process_time()
    event(outcome(run_dir))
    assert time.process_time() - start < FAST


@pytest.mark.parametrize(
    "path, value",
    [
        (("env", 0, "frames", "items", 0, "value"), torch.zeros(3, 3, dtype=torch.uint8)),
        (("env", 0, "frames", "items"), lambda frames: frames[:2]),
        (("memory", "frames", "value"), lambda t: t.to(torch.float32)),
    ],
    ids=["a misshapen frame", "two frames of four", "float frames"],
)
def test_a_pixel_run_with_frames_of_the_wrong_kind_is_one_line(stopped_pixel_run, tmp_path, path, value):
    refused(with_state(stopped_pixel_run, tmp_path, path, value))


def test_the_fuzzing_reaches_both_outcomes(stopped_run, tmp_path):
    """The property above can tell a refusal from a resume: a harmless change resumes, a bad one is refused."""
    assert outcome(with_settings(stopped_run, tmp_path, "harmless", quiet=False)) == "resumed"
    assert outcome(with_settings(stopped_run, tmp_path, "bad", lr=-1.0)) == "refused"


@pytest.mark.parametrize("case", range(4))
def test_fuzzed_files_stay_small_and_quick_in_a_child_process(stopped_run, tmp_path, case):
    """A few of the worst changes, each in its own process: one line or a resume, under SMALL bytes of RSS."""
    header, state = saved(stopped_run)
    worst = [
        (("hooks", "evals"), [dict(env_steps=50, mean=1.0, std=0.0, min=1.0, final=0)] * 500_000),
        (("train", "items", 0), lambda rows: rows * 10_000),
        (("memory", "rows", "value"), lambda t: torch.zeros(1, t.shape[1]).expand(10**7, t.shape[1])),
        (("hooks", "snapshots"), lambda s: s * 10_000),
    ]
    path, value = worst[case]
    edit(state, path, value if callable(value) else lambda _: value)
    run_dir = folder(tmp_path)
    write_state(run_dir / RESUME_FILE, RESUME_FORMAT, state, header)
    result, peak, seconds = in_child("--resume", run_dir, "--max-env-steps", "240", cwd=tmp_path)
    assert result.returncode in (0, 2) and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert peak < SMALL and seconds < FAST * 2, (peak / 2**20, seconds)


def checkpoint_outcome(path):
    """'refused' or 'loaded': what reading the checkpoint at path comes to."""
    return one_line_or(lambda: load_checkpoint(path), "--play: ", "loaded")


@pytest.mark.parametrize("saved_by", ["this program", "the first format"])
@given(data=st.data())
def test_any_checkpoint_field_changed_any_way_is_one_line_or_an_agent(stopped_run, tmp_path_factory, data, saved_by):
    checkpoint = torch.load(stopped_run / "model.pt", weights_only=True)
    if saved_by == "the first format":
        first_format(checkpoint)
    path = data.draw(st.sampled_from([p for p, _ in sites(checkpoint) if p]), label="field")
    old = checkpoint
    for key in path:
        old = old[key]
    new = data.draw(changed(copy.deepcopy(old) if not isinstance(old, torch.Tensor) else old), label="value")
    edit(checkpoint, path, lambda _: new)
    model = tmp_path_factory.mktemp("fuzz") / "model.pt"
    torch.save(checkpoint, model)
    start = time.process_time()
    event(checkpoint_outcome(model))
    assert time.process_time() - start < FAST


def test_the_checkpoint_fuzzing_reaches_both_outcomes(stopped_run, tmp_path):
    checkpoint = torch.load(stopped_run / "model.pt", weights_only=True)
    checkpoint["meta"]["settings"]["seed"] = 7  # a record, not used to build the agent
    torch.save(checkpoint, tmp_path / "harmless.pt")
    checkpoint["meta"]["n_actions"] = 3
    torch.save(checkpoint, tmp_path / "bad.pt")
    assert checkpoint_outcome(tmp_path / "harmless.pt") == "loaded"
    assert checkpoint_outcome(tmp_path / "bad.pt") == "refused"


@pytest.mark.parametrize("saved_by", ["this program", "the first format"])
@pytest.mark.parametrize("field, value", [("n_actions", 23_526_535), ("hidden", 10**8)])
def test_a_checkpoint_whose_meta_describes_a_larger_net_than_its_weights_builds_nothing(
    stopped_run, tmp_path, field, value, saved_by
):
    data = torch.load(stopped_run / "model.pt", weights_only=True)
    if saved_by == "the first format":
        first_format(data)
    (data["meta"] if field == "n_actions" else settings_of(data))[field] = value
    torch.save(data, tmp_path / "model.pt")
    refused_in_child(tmp_path / "model.pt", tmp_path, "does not fit its network", flag="--play")
