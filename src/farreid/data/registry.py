"""Datasets by name: `build_dataset("detreidx", root, protocol="A2G")`; users add theirs with `register_dataset`.

    @register_dataset("my_drone_set")
    def build_my_set(root, **kwargs) -> ReIDDataset: ...
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, Sequence

from farreid.data.tracklet import ReIDDataset
from farreid.errors import FarreidError

DatasetBuilder = Callable[..., ReIDDataset]
_REGISTRY: dict[str, DatasetBuilder] = {}


def register_dataset(name: str, *, replace: bool = False) -> Callable[[DatasetBuilder], DatasetBuilder]:
    """Decorator registering `builder(root, **kwargs) -> ReIDDataset` under `name` (lower-case)."""
    key = name.lower()

    def decorate(builder: DatasetBuilder) -> DatasetBuilder:
        if key in _REGISTRY and not replace and _REGISTRY[key] is not builder:
            raise FarreidError(f"dataset name {name!r} is already registered; pass replace=True to override it")
        _REGISTRY[key] = builder
        return builder

    return decorate


def available_datasets() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def build_dataset(name: str, root: str | Path, **kwargs: Any) -> ReIDDataset:
    """Index the dataset `name` under `root` (file lists only, no decoding); errors name the offending path or key."""
    _load_builtin()
    key = name.lower()
    if key not in _REGISTRY:
        raise FarreidError(f"unknown dataset {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    if not str(root):
        raise FarreidError(f"dataset {name!r} needs a root folder (data.root / --root is empty)")
    builder = _REGISTRY[key]
    params = inspect.signature(builder).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in kwargs if k not in params and not takes_any]
    if unknown:
        accepted = [p for p in params if p != "root"]
        raise FarreidError(f"dataset {name!r} takes no option {unknown[0]!r}; it accepts {accepted}")
    return builder(Path(root), **kwargs)


def dataset_options(name: str) -> list[str]:
    """Keyword options the builder of `name` accepts."""
    _load_builtin()
    builder = _REGISTRY.get(name.lower())
    return [] if builder is None else [p for p in inspect.signature(builder).parameters if p != "root"]


def build_dataset_from_config(data_cfg: Any, **overrides: Any) -> ReIDDataset:
    """`build_dataset` from a `DataConfig`: `protocol` is passed to datasets that have protocols, plus `options`."""
    kwargs: dict[str, Any] = dict(data_cfg.options)
    if "protocol" in dataset_options(data_cfg.dataset):
        kwargs.setdefault("protocol", data_cfg.protocol)
    kwargs.update(overrides)
    return build_dataset(data_cfg.dataset, data_cfg.root, **kwargs)


def select_protocols(requested: str, available: Sequence[str], dataset: str) -> list[str]:
    """The protocols named by `data.protocol`: `all`, one name, or several separated by commas (`A2G,G2A`),
    returned in the dataset's own order; an unknown name is an error that lists the dataset's protocols."""
    names = [n.strip() for n in str(requested).split(",") if n.strip()]
    if not names or names == ["all"]:
        return list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise FarreidError(f"unknown {dataset} protocol {unknown[0]!r}; choose all, {', '.join(available)} "
                           "(or several, comma-separated)")
    return [n for n in available if n in names]


def _load_builtin() -> None:
    """Import the built-in loaders (each registers itself)."""
    from farreid.data import agvpreid, detreidx, dukevideo, folder, g2avreid, lsvid, mars, twocam  # noqa: F401
