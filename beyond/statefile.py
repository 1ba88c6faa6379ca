"""A run's state as plain data, in a file that cannot run code when read.

Each part of a run says which of its attributes are state (RESUME_STATE, or the tables in
beyond/resume.py for classes this project does not own). to_data turns those values into
containers, numbers, strings and tensors only: nets and Adam become their state dicts,
numpy arrays become tensors, a random generator its bit generator's state, and a tuple,
deque or numpy scalar a small tagged dict. Nothing in the file names a class to build.

The file is one line of format tag, one line of JSON with the payload's length and
SHA-256, then the payload: torch.save of that data, read back with weights_only=True,
which builds tensors and plain containers and refuses anything else. from_data puts each
value back into a freshly built run, checking it against what is there: the kind, the
type, the dtype and the shape. Any mismatch is a StateError naming the field.
"""

import collections
import hashlib
import io
import json
import pickle
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
    kind = data.get(KIND) if isinstance(data, dict) else None
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
    elif type(fresh) in (bool, int, float, str, list, tuple, dict, collections.deque):
        expect(type(value) is type(fresh), where, f"a {type(fresh).__name__}")
    if isinstance(fresh, collections.deque):
        value = collections.deque(value, maxlen=fresh.maxlen)
    return value


def plain_from_data(data, where):
    """data with its tagged dicts made values again: arrays, tuples, deques, numpy scalars, generators."""
    if data is None or isinstance(data, (bool, int, float, str, torch.Tensor)):
        return data
    if isinstance(data, list):
        return [plain_from_data(v, f"{where}[{i}]") for i, v in enumerate(data)]
    if not isinstance(data, dict):
        raise StateError(f"{where}: a {type(data).__name__}, which this program never saves")
    kind = data.get(KIND)
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
            expect(
                same and saved[name].shape == tensor.shape, f"{where}.{name}", f"a {tensor.dtype} {tuple(tensor.shape)}"
            )
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
        same = isinstance(group, dict) and set(group) == set(fresh_group) and group["params"] == fresh_group["params"]
        expect(
            same and all(type(group[k]) is type(v) for k, v in fresh_group.items()),
            f"{where}.param_groups.{i}",
            "Adam's settings",
        )
    params = [p for group in optimizer.param_groups for p in group["params"]]
    moments = {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if groups[0].get("amsgrad") else set())
    # Adam has moments for every parameter once it has stepped, for none before
    expect(set(saved["state"]) in (set(), set(range(len(params)))), where, "moments of every parameter")
    for index, saved_moments in saved["state"].items():
        expect(set(saved_moments) == moments, f"{where}.state.{index}", "Adam's moments")
        for name, tensor in saved_moments.items():
            shape = () if name == "step" else params[index].shape
            if not isinstance(tensor, torch.Tensor) or tensor.shape != shape or tensor.dtype != params[index].dtype:
                raise StateError(f"{where}.state.{index}.{name}: not a {params[index].dtype} tensor of shape {shape}")


def generator_from_data(data, fresh, where):
    """A numpy Generator in the saved state: fresh itself where there is one."""
    expect(isinstance(data, dict) and set(data) == {KIND, "state"} and data[KIND] == "generator", where, "a generator")
    state = data["state"]
    expect(isinstance(state, dict) and state.get("bit_generator") in RESUMABLE_BIT_GENERATORS, where, "a PCG64 state")
    generator = fresh if isinstance(fresh, np.random.Generator) else np.random.default_rng()
    expect(same_layout(state, generator.bit_generator.state), where, "a PCG64 state")
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as e:
        raise StateError(f"{where}: {first_line(e)}") from None
    return generator


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
    if not condition:
        raise StateError(f"{where}: not {what}")


def first_line(error):
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:160]


# ---------------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------------
def write_state(path, format_tag, data):
    """format_tag, a JSON line with the payload's length and SHA-256, then the payload (torch.save of data)."""
    buffer = io.BytesIO()
    torch.save(data, buffer)
    payload = buffer.getvalue()
    header = json.dumps(dict(bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest()))
    with open(path, "wb") as f:
        f.write(f"{format_tag}\n{header}\n".encode())
        f.write(payload)


def read_state(path, format_tag):
    """The data write_state wrote, checked whole before anything is unpickled; StateError otherwise."""
    with open(path, "rb") as f:
        raw = f.read()
    family = format_tag.rsplit("/", 1)[0] + "/"
    tag, _, rest = raw.partition(b"\n")
    if not tag.startswith(family.encode()):
        raise StateError(f"is not a {format_tag} file{older_format(raw, family)}")
    if tag.decode(errors="replace") != format_tag:
        raise StateError(f"is of format {tag.decode(errors='replace')!r}; this program reads {format_tag}")
    header, _, payload = rest.partition(b"\n")
    try:
        fields = json.loads(header)
        size, digest = fields["bytes"], fields["sha256"]
    except (ValueError, KeyError, TypeError):
        raise StateError("is damaged: its header is not the JSON this program writes") from None
    if len(payload) != size:
        raise StateError(f"is damaged: {len(payload):,} bytes of data where its header says {size:,}")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise StateError("is damaged: its data do not match their SHA-256")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise StateError("is refused: it holds objects other than data, and loading them could run code") from None
    except Exception as e:
        raise StateError(f"is damaged: {first_line(e)}") from None


def older_format(raw, family):
    """' (format 1, ...)' when raw is the pickle an earlier version wrote, found without unpickling it."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            pickled = [archive.read(name) for name in archive.namelist() if name.endswith("data.pkl")]
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError):
        return ""
    if any((family + "1").encode() in data for data in pickled):
        return (
            f" but a {family}1 file, which is a pickle and could run code when read: refused "
            "(train it again, or resume it with the version that wrote it)"
        )
    return ""
