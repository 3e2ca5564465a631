"""The configuration reference, generated from the schema: `python -m farreid.config.reference > docs/configuration.md`.

Each key's type, default, allowed values and the comment written beside it in `schema.py`, so the page cannot
drift from the code (a test compares the committed page with this output).
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import MISSING, fields, is_dataclass

from farreid.config import schema
from farreid.config.schema import CHOICES, POSITIVE, RANGES, Config


def _comments() -> dict[tuple[str, str], str]:
    """(class name, field name) -> the comment on the field's line in schema.py."""
    source = inspect.getsource(schema)
    lines = source.splitlines()
    out = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    line = lines[item.lineno - 1]
                    if "#" in line:
                        out[(node.name, item.target.id)] = line.split("#", 1)[1].strip()
    return out


def _rows(cls, prefix: str, comments: dict) -> list[tuple[str, str, str, str]]:
    rows, nested = [], []
    for f in fields(cls):
        default = f.default_factory() if f.default_factory is not MISSING else f.default  # type: ignore[misc]
        key = f"{prefix}{f.name}"
        if is_dataclass(default):
            nested.append((type(default), key + "."))
            continue
        notes = [comments.get((cls.__name__, f.name), "")]
        if key in CHOICES and not key.startswith("device"):
            notes.append("one of: " + ", ".join(map(str, CHOICES[key])))
        if key in POSITIVE:
            notes.append("> 0")
        if key in RANGES:
            notes.append(str(RANGES[key]).removeprefix("must be "))
        type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        rows.append((key, type_name, repr(default), "; ".join(n for n in notes if n)))
    for sub, sub_prefix in nested:
        rows.extend(_rows(sub, sub_prefix, comments))
    return rows


def reference_markdown() -> str:
    comments = _comments()
    out = [
        "# Configuration reference",
        "",
        "Generated from `src/farreid/config/schema.py` by `python -m farreid.config.reference`; do not edit by hand.",
        "Set any key in a recipe (YAML, nested) or on the command line as a dotted override, e.g.",
        "`farreid train -c detreidx_vitb16 data.root=/data/VReID-XFD model.pooling=mean`.",
        "Unknown keys, wrong types and values outside the allowed ones are rejected before any work starts, as are",
        "broken relations between keys (`schema.RULES`: e.g. `data.aug.erase_min_area` <= `erase_max_area`, the input",
        "size at least the backbone's patch, a warmup shorter than its stage).",
        "",
        "| key | type | default | notes |",
        "|---|---|---|---|",
    ]
    for key, type_name, default, notes in _rows(Config, "", comments):
        out.append(f"| `{key}` | {type_name} | `{default}` | {notes.replace('|', '/')} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
