"""A run's state as plain data, in a file that cannot run code when read.

Each part of a run says which of its attributes are state (RESUME_STATE, or the tables in
beyond/resume.py for classes this project does not own). to_data turns those values into
containers, numbers, strings and tensors only: nets and Adam become their state dicts,
numpy arrays become tensors, a random generator its bit generator's state, and a tuple,
deque or numpy scalar a small tagged dict. Nothing in the file names a class to build.

The file is one line of format tag, one line of JSON (the run's settings, the payload's
length and SHA-256), then the payload: torch.save of that data. Before torch.load builds
anything, the reader checks that the file is a plain file no larger than its settings
allow, that the checksum matches, that every zip record is stored (a deflated one could
inflate to any size) and that the pickle is at most MOST_PICKLE_OPS instructions; torch
then reads it with weights_only=True, which builds tensors and plain containers and
refuses anything else. Once loaded, the values are at most DEEPEST deep and every tensor
is dense and contiguous. from_data puts each value back into a freshly built run, checking
it against what is there: the kind, the type, the dtype, the shape and that it is finite.
Any mismatch is a StateError naming the field.
"""

import collections
import contextlib
import hashlib
import io
import json
import os
import pickle
import pickletools
import stat
import warnings
import zipfile

import numpy as np
import torch

KIND = "__kind__"  # marks a tagged dict: a value that is not a plain container
RESUMABLE_BIT_GENERATORS = {"PCG64"}  # what numpy's default_rng makes


class StateError(Exception):
    """A state file or one of its fields is not what this program wrote: one line says which and why."""


# ---------------------------------------------------------------------------------------
# Objects to data
# ---------------------------------------------------------------------------------------
def declares_state(obj):
    """True when one of obj's classes says which of its attributes are state (RESUME_STATE)."""
    return any("RESUME_STATE" in cls.__dict__ for cls in type(obj).__mro__)


def declared_state(obj):
    """The RESUME_STATE of every class obj is made of, in order, each name once."""
    return list(dict.fromkeys(name for cls in type(obj).__mro__ for name in cls.__dict__.get("RESUME_STATE", ())))


def state_names(obj, table=None):
    """The attributes obj declares as state: RESUME_STATE over its classes, else table[its class name]."""
    if declares_state(obj):
        return declared_state(obj)
    if table is None or type(obj).__name__ not in table:
        raise TypeError(f"{type(obj).__name__} declares no resume state")
    return list(table[type(obj).__name__])


def parts_to_data(obj, names, where):
    """{name: to_data(obj.name)} for the named attributes."""
    return {name: to_data(getattr(obj, name), f"{where}.{name}") for name in names}


def to_data(value, where="state"):
    """value as containers, numbers, strings and tensors; TypeError for what has no data form."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.generic):
        return {KIND: "numpy scalar", "value": torch.from_numpy(np.array(value))}
    if isinstance(value, np.ndarray):
        return {KIND: "numpy", "value": torch.from_numpy(np.ascontiguousarray(value))}
    if isinstance(value, tuple):
        return {KIND: "tuple", "items": [to_data(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, collections.deque):
        return {KIND: "deque", "items": [to_data(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [to_data(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if KIND in value or not all(isinstance(k, (str, int)) for k in value):
            raise TypeError(f"{where}: a dict with keys other than names and numbers")
        return {k: to_data(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, np.random.Generator):
        return {KIND: "generator", "state": value.bit_generator.state}
    if isinstance(value, (torch.nn.Module, torch.optim.Optimizer)):
        return {KIND: "state dict", "state": to_data(dict(value.state_dict()), where)}
    if declares_state(value):
        return {KIND: "parts", "parts": parts_to_data(value, state_names(value), where)}
    raise TypeError(f"{where}: a {type(value).__name__} has no data form")


# ---------------------------------------------------------------------------------------
# Data back into a fresh run's objects
# ---------------------------------------------------------------------------------------
def parts_from_data(obj, data, names, where):
    """Set each named attribute of obj from data, which must hold exactly those names."""
    if not isinstance(data, dict) or KIND in data:
        raise StateError(f"{where}: not a set of fields")
    missing, extra = set(names) - set(data), set(data) - set(names)
    if missing or extra:
        listed = sorted(map(str, missing or extra))
        raise StateError(f"{where}: {'missing' if missing else 'unknown'} {', '.join(listed)}")
    for name in names:
        setattr(obj, name, from_data(data[name], getattr(obj, name, None), f"{where}.{name}"))


def from_data(data, fresh, where="state"):
    """The value data describes, checked against fresh: what a new run has in its place (None: no model)."""
    kind = kind_of(data)
    if isinstance(fresh, (torch.nn.Module, torch.optim.Optimizer)):
        return state_dict_from_data(data, fresh, where)
    if isinstance(fresh, np.random.Generator) or kind == "generator":
        return generator_from_data(data, fresh, where)
    if fresh is not None and declares_state(fresh):
        expect(kind == "parts" and set(data) == {KIND, "parts"}, where, "a saved object's fields")
        parts_from_data(fresh, data["parts"], state_names(fresh), where)
        return fresh
    value = plain_from_data(data, where)
    if isinstance(fresh, np.ndarray):
        expect(isinstance(value, np.ndarray), where, "an array")
        if value.shape != fresh.shape or value.dtype != fresh.dtype:
            raise StateError(f"{where}: {value.dtype} {value.shape}, expected {fresh.dtype} {fresh.shape}")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise StateError(f"{where}: holds a value that is not finite")
    elif type(fresh) in (bool, int, float, str, list, tuple, dict, collections.deque):
        expect(type(value) is type(fresh), where, f"a {type(fresh).__name__}")
    if isinstance(fresh, collections.deque):  # a frame stack: as many frames as the fresh one, each like its first
        first = fresh[0]
        alike = all(isinstance(v, np.ndarray) and v.shape == first.shape and v.dtype == first.dtype for v in value)
        expect(len(value) == len(fresh) and alike, where, f"{len(fresh)} frames of {first.dtype} {first.shape}")
        value = collections.deque(value, maxlen=fresh.maxlen)
    return value


def kind_of(data):
    """The tag of a tagged dict (a name), or None for any other value."""
    kind = data.get(KIND) if isinstance(data, dict) else None
    if not (kind is None or isinstance(kind, str)):
        raise StateError(f"{KIND}: not the name of a kind of value")
    return kind


def plain_from_data(data, where):
    """data with its tagged dicts made values again: arrays, tuples, deques, numpy scalars, generators."""
    if data is None or isinstance(data, (bool, int, float, str, torch.Tensor)):
        return data
    if isinstance(data, list):
        return [plain_from_data(v, f"{where}[{i}]") for i, v in enumerate(data)]
    if not isinstance(data, dict):
        raise StateError(f"{where}: a {type(data).__name__}, which this program never saves")
    kind = kind_of(data)
    if kind is None:
        return {k: plain_from_data(v, f"{where}.{k}") for k, v in data.items()}
    fields = {"numpy": {"value"}, "numpy scalar": {"value"}, "tuple": {"items"}, "deque": {"items"}}
    fields["generator"] = {"state"}
    expect(kind in fields and set(data) == fields[kind] | {KIND}, where, "a known kind of value")
    if kind in ("numpy", "numpy scalar"):
        expect(isinstance(data["value"], torch.Tensor), where, "a tensor")
        array = data["value"].numpy()  # shares the loaded tensor's memory, which nothing else holds
        return array if kind == "numpy" else array[()]
    if kind == "generator":
        return generator_from_data(data, None, where)
    expect(isinstance(data["items"], list), where, "a list of items")
    items = [plain_from_data(v, f"{where}[{i}]") for i, v in enumerate(data["items"])]
    return tuple(items) if kind == "tuple" else collections.deque(items)


def state_dict_from_data(data, fresh, where):
    """A net's or Adam's saved state dict loaded into fresh, whose own tensors fix every shape."""
    tagged = isinstance(data, dict) and set(data) == {KIND, "state"} and data[KIND] == "state dict"
    expect(tagged, where, "a state dict")
    saved = plain_from_data(data["state"], where)
    if isinstance(fresh, torch.optim.Optimizer):
        check_adam_state(saved, fresh, where)
    else:  # load_state_dict would quietly convert another dtype
        expected = fresh.state_dict()
        expect(isinstance(saved, dict) and set(saved) == set(expected), where, "this net's layers")
        for name, tensor in expected.items():
            same = isinstance(saved[name], torch.Tensor) and saved[name].dtype == tensor.dtype
            same = same and saved[name].shape == tensor.shape and bool(torch.isfinite(saved[name]).all())
            expect(same, f"{where}.{name}", f"a finite {tensor.dtype} {tuple(tensor.shape)}")
    try:
        fresh.load_state_dict(saved)
    except Exception as e:  # missing, unknown or misshapen entries
        raise StateError(f"{where}: {first_line(e)}") from None
    return fresh


def check_adam_state(saved, optimizer, where):
    """Adam's per-parameter moments must have their parameter's shape; load_state_dict does not check."""
    expect(isinstance(saved, dict) and set(saved) == {"state", "param_groups"}, where, "an optimizer's state")
    expect(
        isinstance(saved["state"], dict) and all(isinstance(m, dict) for m in saved["state"].values()),
        where,
        "Adam's moments",
    )
    groups = optimizer.state_dict()["param_groups"]  # its settings: the saved groups must have the same kinds
    expect(
        isinstance(saved["param_groups"], list) and len(saved["param_groups"]) == len(groups), where, "Adam's groups"
    )
    for i, (group, fresh_group) in enumerate(zip(saved["param_groups"], groups, strict=True)):
        # the run's settings make Adam's (betas, eps, no maximize): a saved group must be the same; its
        # learning rate may be one a schedule has moved on (resume.check_agent holds it to the run's span)
        same = isinstance(group, dict) and set(group) == set(fresh_group)
        same = same and all(type(group[k]) is type(v) and (k == "lr" or group[k] == v) for k, v in fresh_group.items())
        expect(same, f"{where}.param_groups.{i}", "Adam's settings for this run")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    moments = {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if groups[0].get("amsgrad") else set())
    # Adam has moments for every parameter once it has stepped, for none before
    expect(set(saved["state"]) in (set(), set(range(len(params)))), where, "moments of every parameter")
    for index, saved_moments in saved["state"].items():
        expect(set(saved_moments) == moments, f"{where}.state.{index}", "Adam's moments")
        for name, tensor in saved_moments.items():
            shape = () if name == "step" else params[index].shape
            fits = isinstance(tensor, torch.Tensor) and tensor.shape == shape and tensor.dtype == params[index].dtype
            fits = fits and bool(torch.isfinite(tensor).all())
            if name != "exp_avg":  # the step count and the squared moments are never negative
                fits = fits and bool((tensor >= 0).all())
            if not fits:
                raise StateError(f"{where}.state.{index}.{name}: not a {params[index].dtype} tensor of shape {shape}")


def generator_from_data(data, fresh, where):
    """A numpy Generator in the saved state: fresh itself where there is one."""
    expect(isinstance(data, dict) and set(data) == {KIND, "state"} and data[KIND] == "generator", where, "a generator")
    state = data["state"]
    named = isinstance(state, dict) and isinstance(state.get("bit_generator"), str)
    expect(named and state["bit_generator"] in RESUMABLE_BIT_GENERATORS, where, "a PCG64 state")
    generator = fresh if isinstance(fresh, np.random.Generator) else np.random.default_rng()
    expect(same_layout(state, generator.bit_generator.state) and pcg64_in_range(state), where, "a PCG64 state")
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise StateError(f"{where}: {first_line(e)}") from None
    return generator


def pcg64_in_range(state):
    """PCG64's numbers within their widths: a 128-bit state and odd increment, a 32-bit spare and its flag."""
    inner = state["state"]
    whole = all(0 <= inner[k] < 2**128 for k in ("state", "inc")) and inner["inc"] % 2 == 1
    return whole and state["has_uint32"] in (0, 1) and 0 <= state["uinteger"] < 2**32


def same_layout(saved, template):
    """saved has template's keys, nested, with values of the same types (numpy ignores keys it does not know)."""
    if isinstance(template, dict):
        return (
            isinstance(saved, dict)
            and set(saved) == set(template)
            and all(same_layout(saved[k], v) for k, v in template.items())
        )
    return type(saved) is type(template)


def expect(condition, where, what):
    """StateError "where: not what" unless condition holds."""
    if not condition:
        raise StateError(f"{where}: not {what}")


def first_line(error):
    """An exception's message as one short line (its type's name where it has none)."""
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:160]


# ---------------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------------
TAG_LINE_LIMIT = 100  # bytes of the format line
HEADER_LINE_LIMIT = 64 * 1024  # bytes of the JSON header line
# Before torch.load builds anything: at most this many pickle instructions, each of which makes
# one value at most; once loaded, at most this many values in all, nested at most this deep.
MOST_PICKLE_OPS = 4_000_000
MOST_VALUES = 4_000_000
DEEPEST = 32
DATA_DTYPES = {torch.float32, torch.float64, torch.int64, torch.int32, torch.uint8, torch.bool}


def write_state(path, format_tag, data, header=None):
    """format_tag, a JSON line (header's fields, the payload's length and SHA-256), then torch.save of data."""
    buffer = io.BytesIO()
    torch.save(data, buffer)
    payload = buffer.getvalue()
    fields = dict(header or {}, bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    with open(path, "wb") as f:
        f.write(f"{format_tag}\n{json.dumps(fields)}\n".encode())
        f.write(payload)


def read_state(path, format_tag, payload_limit=None, older=()):
    """(header, data) as write_state wrote them, checked whole before anything is unpickled; StateError otherwise.

    payload_limit(header) -> the most bytes of data this header's file may hold (it may
    raise StateError); by default, the file's own size. Nothing past it is read. older:
    earlier tags that are read too; header["format"] is the file's own.
    """
    with open_regular_file(path) as f:
        size = os.fstat(f.fileno()).st_size
        tag = f.readline(TAG_LINE_LIMIT)
        family = format_tag.rsplit("/", 1)[0] + "/"
        if not tag.startswith(family.encode()):
            raise StateError(f"is not a {format_tag} file{older_format(path, family)}")
        found = tag.rstrip(b"\n").decode(errors="replace")
        if found not in (format_tag, *older):
            raise StateError(f"is of format {found.rstrip()!r}; this program reads {format_tag}")
        header = dict(parse_header(f.readline(HEADER_LINE_LIMIT)), format=found)
        limit = payload_limit(header) if payload_limit else size
        if header["bytes"] > limit:
            raise StateError(f"says it holds {header['bytes']:,} bytes of data; its settings make at most {limit:,}")
        if size - f.tell() != header["bytes"]:
            raise StateError(f"is damaged: {size - f.tell():,} bytes of data where its header says {header['bytes']:,}")
        payload = f.read(header["bytes"])
    if hashlib.sha256(payload).hexdigest() != header["sha256"]:
        raise StateError("is damaged: its data do not match their SHA-256")
    return header, load_data(payload)


@contextlib.contextmanager
def open_regular_file(path):
    """path opened for reading if it is a plain file; a folder, FIFO or device is a StateError, and never blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise StateError(f"cannot be read ({e.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise StateError("is a folder, not a file" if stat.S_ISDIR(mode) else "is not a plain file")
    with os.fdopen(fd, "rb") as f:
        yield f


def parse_header(line):
    """The header line's fields: bytes (a count) and sha256 (64 hex digits), and any others."""
    try:
        fields = json.loads(line)
    except (ValueError, RecursionError):
        fields = None
    valid = isinstance(fields, dict) and type(fields.get("bytes")) is int and fields["bytes"] >= 0
    digest = fields.get("sha256") if valid else None
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise StateError("is damaged: its header is not the JSON this program writes")
    return fields


def load_data(payload):
    """torch.load(weights_only=True) of payload, once its records and its pickle are known to be small and plain."""
    check_archive(payload)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on odd pickles: the one line below says it
            data = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise StateError("is refused: it holds objects other than data, and loading them could run code") from None
    except Exception as e:
        raise StateError(f"is damaged: {first_line(e)}") from None
    check_values(data)
    return data


def check_archive(payload):
    """torch.save's zip: stored records (a deflated one could inflate to any size) and one pickle of bounded length."""
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            records = archive.infolist()
            pickles = [r for r in records if r.filename.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise StateError("is damaged: not one pickle in its data")
            if any(r.compress_type != zipfile.ZIP_STORED or r.file_size != r.compress_size for r in records):
                raise StateError("is refused: it holds compressed records, which torch.save never writes")
            if sum(r.file_size for r in records) > len(payload):
                raise StateError("is damaged: its records are larger than the file")
            check_pickle(archive.read(pickles[0]))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, NotImplementedError, EOFError) as e:
        raise StateError(f"is damaged: {first_line(e)}") from None


def check_pickle(data):
    """Count the pickle's instructions without running them: at most MOST_PICKLE_OPS, each making one value at most."""
    try:
        for count, _ in enumerate(pickletools.genops(data)):
            if count > MOST_PICKLE_OPS:
                raise StateError(f"is refused: its data are more than {MOST_PICKLE_OPS:,} values")
    except ValueError as e:  # not a pickle genops can read
        raise StateError(f"is damaged: {first_line(e)}") from None


def check_values(data):
    """Every value at most DEEPEST containers deep, MOST_VALUES in all; tensors plain, dense and finite."""
    pending, seen = [(data, 0, "state")], 0
    while pending:
        value, depth, where = pending.pop()
        seen += 1
        if seen > MOST_VALUES or depth > DEEPEST:
            raise StateError("is refused: its data are nested too deeply or are too many values")
        if isinstance(value, dict):
            pending.extend((v, depth + 1, f"{where}.{k}") for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            pending.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(value))
        elif isinstance(value, torch.Tensor):
            check_tensor(value, where)


def check_tensor(tensor, where):
    """A tensor as torch.save writes this program's: dense, contiguous, on the CPU, without grad.

    Whether its values are finite is checked where it is put back (a diverged run's are not,
    and it is refused for that, in its own words)."""
    plain = tensor.layout == torch.strided and tensor.device.type == "cpu" and not tensor.requires_grad
    if not (plain and tensor.dtype in DATA_DTYPES and tensor.is_contiguous()):
        raise StateError(f"{where}: not a dense, contiguous tensor of numbers")


def older_format(path, family):
    """' (format 1, ...)' when path is the pickle an earlier version wrote, found without unpickling it."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist()[:100] if name.endswith("data.pkl")]
            with archive.open(names[0]) if names else contextlib.nullcontext(None) as pickled:
                start = pickled.read(64 * 1024) if pickled else b""  # the tag comes first; a bounded read
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, RuntimeError, NotImplementedError, EOFError):
        return ""
    if (family + "1").encode() in start:
        return (
            f" but a {family}1 file, which is a pickle and could run code when read: refused "
            "(train it again, or resume it with the version that wrote it)"
        )
    return ""
