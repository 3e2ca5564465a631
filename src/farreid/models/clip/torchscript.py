"""Read the tensors of a TorchScript archive (OpenAI's released CLIP files) as data, without running its code.

A TorchScript zip holds `<name>/data.pkl` (the module tree, pickled), `<name>/data/<key>` (raw storages)
and `<name>/code/` (the model's TorchScript source). `torch.load(weights_only=True)` refuses these archives
and `torch.jit.load` compiles and runs the archived code, so this module unpickles `data.pkl` with an
allow-list: tensor rebuilds, storage types and `OrderedDict`; every `__torch__.*` class becomes an inert
attribute bag. Nothing from the file is imported or called.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class _ScriptObject:
    """Stand-in for a TorchScript class instance: keeps the pickled attributes, has no behaviour (constructor
    arguments an archive passes are dropped)."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        self.attributes: dict = {}

    def __setstate__(self, state: Any) -> None:
        self.attributes = state if isinstance(state, dict) else {}


def _rebuild_tensor(storage: Tensor, offset: int, size: tuple, stride: tuple, *_ignored: Any) -> Tensor:
    return storage.as_strided(size, stride, offset)


class _ArchiveUnpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, prefix: str, data: bytes):
        super().__init__(io.BytesIO(data))
        self.archive = archive
        self.prefix = prefix
        self.storages: dict[str, Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptObject
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a TorchScript archive")

    def persistent_load(self, pid: Any) -> Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        _, dtype, key, _location, numel = pid
        if not isinstance(dtype, torch.dtype):
            raise pickle.UnpicklingError(f"unknown storage type {dtype!r}")
        if key not in self.storages:
            raw = bytearray(self.archive.read(f"{self.prefix}data/{key}"))
            flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            if flat.numel() != numel:
                raise pickle.UnpicklingError(f"storage {key} holds {flat.numel()} elements, expected {numel}")
            self.storages[key] = flat
        return self.storages[key]


def is_torchscript_archive(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def read_torchscript_tensors(path: Path) -> dict[str, Tensor]:
    """Every tensor attribute of the archived module tree, by dotted name (parameters and buffers)."""
    with zipfile.ZipFile(path) as archive:
        data_pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(data_pkl) != 1:
            raise pickle.UnpicklingError("no top-level data.pkl in the archive")
        prefix = data_pkl[0][: -len("data.pkl")]
        byteorder = f"{prefix}byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise pickle.UnpicklingError("big-endian archives are not supported")
        root = _ArchiveUnpickler(archive, prefix, archive.read(data_pkl[0])).load()
    tensors: dict[str, Tensor] = {}
    _collect(root, "", tensors)
    return tensors


def _collect(obj: Any, prefix: str, out: dict[str, Tensor]) -> None:
    if isinstance(obj, _ScriptObject):
        for name, value in getattr(obj, "attributes", {}).items():
            _collect(value, f"{prefix}{name}.", out)
    elif isinstance(obj, Tensor):
        out[prefix[:-1]] = obj
