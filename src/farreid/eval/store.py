"""Protocols on disk: `<root>/<protocol>/query/` and `<root>/<protocol>/gallery/`, each a feature-store folder.

For DetReIDX the protocol folders are A2G, G2A and A2A; any other name works the same way (a single-protocol
dataset such as MARS can use one folder, e.g. `test`). A root that itself holds query/ and gallery/ (what
`farreid extract` writes for the `folder` layout, e.g. from-mot output) is the one protocol `test`, the name the
`folder` dataset gives its protocol.
"""

from __future__ import annotations

from pathlib import Path

from farreid.errors import FarreidError
from farreid.eval.features import FEATURES_FILE, feature_shape, has_features, load_feature_set, save_feature_set
from farreid.eval.protocols import ProtocolData, protocol_order
from farreid.utils.io import safe_join


def save_protocol(data: ProtocolData, root: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write a protocol's query and gallery feature sets under `root/<name>/`."""
    folder = safe_join(root, data.name)
    save_feature_set(data.query, folder / "query", metadata)
    save_feature_set(data.gallery, folder / "gallery", metadata)
    return folder


def load_protocols(root: str | Path, names: list[str] | None = None) -> list[ProtocolData]:
    """Every `<root>/<name>/` holding query/ and gallery/ feature sets (or only `names`), in case order; or
    `<root>/query/` with `<root>/gallery/` as the protocol `test`.

    A protocol folder with only one side, or a side whose extraction did not finish, is an error naming it: the
    evaluation never reports the other protocols as if they were all."""
    root = Path(root)
    if not root.is_dir():
        raise FarreidError(f"features folder not found: {root}")
    if (root / "query").is_dir() and (root / "gallery").is_dir():
        for side in ("query", "gallery"):
            if not has_features(root / side):
                feature_shape(root / side)  # raises, saying what is missing (e.g. an unfinished extraction)
        if names and names != ["test"]:
            raise FarreidError(f"{root} holds one query/ and gallery/ pair, the protocol 'test'; not {', '.join(names)}")
        return [ProtocolData("test", load_feature_set(root / "query"), load_feature_set(root / "gallery"))]
    started = [d for d in sorted(root.iterdir()) if d.is_dir() and ((d / "query").is_dir() or (d / "gallery").is_dir())]
    for folder in started:
        if names and folder.name not in names:
            continue
        for side in ("query", "gallery"):
            if not (folder / side).is_dir():
                raise FarreidError(f"{folder} has no {side}/ feature set beside the other side; extract it, or "
                                   f"leave protocol {folder.name} out with --protocol")
            if not has_features(folder / side):
                feature_shape(folder / side)  # raises, saying what is missing (e.g. an unfinished extraction)
    found = [d.name for d in started]
    if names:
        missing = [n for n in names if n not in found]
        if missing:
            raise FarreidError(
                f"{root}: no query/ and gallery/ features for protocol(s) {', '.join(missing)} "
                f"(found: {', '.join(found) or 'none'})"
            )
        found = list(names)
    if not found and has_features(root / "gallery"):
        raise FarreidError(
            f"{root} holds gallery/ features but no query/ ones. To rank the gallery against itself (e.g. one "
            f"camera's footage: every tracklet queries all the others), pass --query-features {root / 'gallery'} "
            f"--gallery-features {root / 'gallery'} eval.junk=tracklet"
        )
    if not found:
        raise FarreidError(f"{root}: no <protocol>/query/{FEATURES_FILE} and <protocol>/gallery/{FEATURES_FILE} found")
    return [
        ProtocolData(name, load_feature_set(root / name / "query"), load_feature_set(root / name / "gallery"))
        for name in protocol_order(found)
    ]
