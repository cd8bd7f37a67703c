"""Reading Apollo checkpoints without ever running code from them.

The checkpoints in the wild are pickles (``torch.save``): the official
``pytorch_model.bin``, Lightning training checkpoints and community models, some of
which carry pickled objects next to the weights. Unpickling with the standard
``pickle`` runs whatever the file asks for, so this module unpickles with a
restricted unpickler:

* tensors, storages and plain containers (dict, list, tuple, str, numbers) are
  rebuilt as usual;
* any other object the file wants built (a training config, an optimizer state
  class, ...) is replaced by an inert placeholder that is never constructed, and
  the entry holding it is dropped;
* a file that names a code-execution primitive (``os.system``, ``eval``,
  ``subprocess``, ``importlib``, ...) is refused outright with
  :class:`UnsafeCheckpointError`. Even without that check nothing would run, since
  every unknown name only ever yields a placeholder; the refusal is there so the
  user learns the file is hostile rather than merely odd.

Safetensors files are read with the ``safetensors`` library.
"""

from __future__ import annotations

import collections
import os
import pickle
import types
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .errors import CheckpointError, UnsafeCheckpointError

# What a checkpoint may build. Storages are handled by torch's own unpickler
# wrapper before our ``find_class`` is asked, so they need no entry here.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
}
_ALLOWED.update(
    {("torch", name): value for name, value in vars(torch).items() if isinstance(value, torch.dtype)}
)

# Names whose only purpose in a pickle is to run code. Module prefixes match the
# module and its submodules.
_CODE_MODULES = (
    "os",
    "posix",
    "nt",
    "subprocess",
    "_posixsubprocess",
    "sys",
    "importlib",
    "runpy",
    "pty",
    "shutil",
    "socket",
    "code",
    "codeop",
    "ctypes",
    "pickle",
    "_pickle",
    "marshal",
    "types",
    "operator",
    "functools",
    "timeit",
    "pdb",
    "webbrowser",
    "multiprocessing",
    "signal",
    "asyncio",
    "threading",
    "io",
    "pathlib",
    "tempfile",
    "urllib",
    "http",
    "torch.hub",
    "torch.jit",
    "torch.serialization",
    "torch._C",
    "torch.ops",
    "torch.utils.cpp_extension",
    "numpy.testing",
    "numpy.f2py",
)
_CODE_BUILTINS = {
    "eval",
    "exec",
    "compile",
    "__import__",
    "getattr",
    "setattr",
    "delattr",
    "open",
    "input",
    "breakpoint",
    "globals",
    "locals",
    "vars",
    "execfile",
    "apply",
    "memoryview",
    "__builtins__",
    "help",
    "exit",
    "quit",
}


def _runs_code(module: str, name: str) -> bool:
    if module in ("builtins", "__builtin__"):
        return name in _CODE_BUILTINS
    return any(module == m or module.startswith(m + ".") for m in _CODE_MODULES)


class _Skipped:
    """Placeholder for an object a checkpoint wanted built: inert, never constructed.

    It absorbs the pickle opcodes that would fill a real object (state, items,
    appended elements) without doing anything.
    """

    source = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> _Skipped:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if _runs_code(module, name):
            raise UnsafeCheckpointError(
                f"refused: the checkpoint tries to run code ({module}.{name}) when loaded; "
                "nothing was run. Do not use this file"
            )
        return type(name, (_Skipped,), {"source": f"{module}.{name}"})


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return _RestrictedUnpickler(file, **kwargs).load()


# torch.load takes a "pickle module": anything with Unpickler and load. It wraps
# our Unpickler (for storages), so the restriction applies to every object in the
# file, in the zip format and the legacy one alike.
_restricted_pickle = types.SimpleNamespace(
    __name__="apollo_restricted_pickle", Unpickler=_RestrictedUnpickler, load=_restricted_load
)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read the generator's state dict from a checkpoint file, safely.

    Accepts the official Apollo format (``{"state_dict": ...}``), Lightning training
    checkpoints (keys prefixed ``audio_model.``), bare state dicts, and safetensors
    files. Returns float tensors on the CPU keyed as the generator names them.
    Raises :class:`CheckpointError` for anything else.
    """
    path = Path(path)
    name = path.name
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a checkpoint file") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    if not head:
        raise CheckpointError(f"checkpoint {name} is empty (0 bytes); download it again")
    if _looks_like_safetensors(head):
        raw: Any = _read_safetensors(path)
    elif head.startswith(b"PK") or head[:1] == b"\x80":
        raw = _read_torch_pickle(path)
    else:
        raise CheckpointError(f"{name} is not a PyTorch or safetensors checkpoint; pass an Apollo model file")
    return extract_state_dict(raw, name)


def _looks_like_safetensors(head: bytes) -> bool:
    # 8-byte little-endian header length, then a JSON object.
    return len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 30


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path.name} is a damaged safetensors file ({exc})") from None


def _read_torch_pickle(path: Path) -> Any:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        # TorchScript archives are programs, not checkpoints: torch.load would
        # hand them to the TorchScript loader.
        if any(n.endswith("constants.pkl") for n in names):
            raise CheckpointError(f"{path.name} is a TorchScript program, not an Apollo checkpoint")
    try:
        return torch.load(path, map_location="cpu", pickle_module=_restricted_pickle, weights_only=False)
    except UnsafeCheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged files
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path.name} is corrupt or incomplete ({detail}); download it again") from None


def extract_state_dict(raw: Any, name: str = "checkpoint") -> dict[str, Tensor]:
    """Find the generator's weights in a loaded checkpoint object.

    Strips the Lightning ``audio_model.`` prefix (ignoring the discriminator and
    other training state) and DataParallel's ``module.`` prefix; drops entries
    that are not tensors.
    """
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{name} holds no state dict; pass an Apollo model file")
    tensors = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, Tensor)}
    for prefix in ("audio_model.", "module."):
        if any(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not tensors:
        raise CheckpointError(f"{name} holds no weights; pass an Apollo model file")
    return {k: v.detach().float() if v.is_floating_point() else v for k, v in tensors.items()}


def check_keys(expected: Mapping[str, Tensor], found: Mapping[str, Tensor], name: str) -> None:
    """Raise :class:`CheckpointError` naming a few missing, unexpected or misshapen keys."""

    def few(keys: list[str]) -> str:
        shown = ", ".join(keys[:3])
        return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {few(missing)}")
        if unexpected:
            parts.append(f"unexpected {few(unexpected)}")
        raise CheckpointError(f"{name} does not match the Apollo generator: {'; '.join(parts)}")
    wrong = [
        f"{k} {tuple(found[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if tuple(found[k].shape) != tuple(v.shape)
    ]
    if wrong:
        raise CheckpointError(f"{name} has weights of the wrong shape: {few(wrong)}")
