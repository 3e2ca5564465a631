"""ONNX export of the embedding network, checked against PyTorch with onnxruntime before the file is kept.

The graph is the image tower with its VSLA adapters and platform prompts, temporal pooling and the test
feature (concat of final and projected CLS, L2-normalised), optionally with flip test-time augmentation
inside. Inputs (batch B and frames T dynamic):

    clip   float32 (B, T, 3, H, W)  RGB in [0, 1], normalised with ImageNet mean/std (metadata "mean", "std")
    keys   int64   (B,)             prompt key per tracklet: camera id, platform (0 ground, 1 aerial) or
                                    altitude/distance bin, as "prompt_key" in the metadata says
    mask   bool    (B, T)           True = real frame (all True for sampled clips; False pads dense chunks)
    ->  embedding float32 (B, D)

`torch.onnx.export(..., dynamo=True)` traces the model (which skips its data-dependent Python checks while
tracing); the result is run by onnxruntime at several (B, T) and must match PyTorch in fp32 within `atol`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import farreid
from farreid.data import IMAGENET_MEAN, IMAGENET_STD
from farreid.errors import FarreidError
from farreid.inference.model import ReIDModel
from farreid.models import FarReID
from farreid.utils.io import check_output, output_error, temp_file_beside
from farreid.utils.log import get_logger

INPUTS = ("clip", "keys", "mask")
log = get_logger("inference")


class EmbeddingGraph(nn.Module):
    """What the ONNX file computes: `FarReID.embed`, averaged with the horizontally flipped clip when `flip`."""

    def __init__(self, model: FarReID, flip: bool = True):
        super().__init__()
        self.model = model
        self.flip = flip

    def forward(self, clip: Tensor, keys: Tensor, mask: Tensor) -> Tensor:
        if not self.flip:
            return self.model.embed(clip, keys, mask)
        b = clip.shape[0]
        both = self.model.embed(torch.cat([clip, clip.flip(-1)]), torch.cat([keys, keys]), torch.cat([mask, mask]))
        return F.normalize(both[:b] + both[b:], dim=1)


def _require(*modules: str) -> None:
    missing = []
    for name in modules:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise FarreidError(
            f"ONNX export needs {', '.join(missing)}: pip install 'farreid[export]' (onnx, onnxscript, onnxruntime)"
        )


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter prints its steps and warns about optional torchvision ops and axis names; none of that is
    the user's concern here (failures still raise)."""
    torch_logger = logging.getLogger("torch.onnx")
    level = torch_logger.level
    torch_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        torch_logger.setLevel(level)


def export_metadata(model: ReIDModel, flip: bool) -> dict[str, str]:
    """Everything a deployment needs to feed the graph, stored in the ONNX file's metadata_props."""
    net = model.model
    keys, pbp = (net.prompts.num_keys if net.prompts is not None else 0), net.cfg.pbp
    bins = pbp.altitude_bins if pbp.key == "altitude" else pbp.distance_bins if pbp.key == "distance" else ()
    return {
        **model.describe(),
        "farreid_version": farreid.__version__,
        "flip": str(flip).lower(),
        "mean": ",".join(map(str, IMAGENET_MEAN)),
        "std": ",".join(map(str, IMAGENET_STD)),
        "prompt_key": pbp.key if net.prompts is not None else "none",
        "num_keys": str(keys),
        "key_bins": ",".join(map(str, bins)),
        "inputs": "clip float32 (B,T,3,H,W) normalised; keys int64 (B,); mask bool (B,T) True = real frame",
    }


@dataclass
class ExportReport:
    path: Path
    dim: int
    max_abs_diff: float  # onnxruntime vs PyTorch, fp32, over every checked shape
    checked_shapes: list[tuple[int, int]] = field(default_factory=list)  # (B, T)
    export_seconds: float = 0.0
    size_mb: float = 0.0


def _check_cases(model: ReIDModel, shapes: list[tuple[int, int]], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h, w = model.size
    keys_range = model.model.prompts.num_keys if model.model.prompts is not None else 1
    for b, t in shapes:
        clip = (torch.rand(b, t, 3, h, w, generator=g) - 0.45) / 0.226
        keys = torch.randint(0, keys_range, (b,), generator=g)
        mask = torch.ones(b, t, dtype=torch.bool)
        if t > 1:
            mask[0, t // 2 + 1 :] = False  # a padded dense chunk
        yield clip, keys, mask


def check_onnx(path: str | Path, graph: nn.Module, cases) -> float:
    """Largest |onnxruntime - PyTorch| over `cases` of (clip, keys, mask)."""
    _require("onnxruntime")
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.inference_mode():
        for clip, keys, mask in cases:
            expected = graph(clip, keys, mask).numpy()
            got = session.run(None, {"clip": clip.numpy(), "keys": keys.numpy(), "mask": mask.numpy()})[0]
            worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def export_onnx(
    model: ReIDModel | str | Path,
    out: str | Path,
    *,
    flip: bool | None = None,
    atol: float = 1e-4,
    opset: int | None = None,
    check_shapes: tuple[tuple[int, int], ...] | None = None,
) -> ExportReport:
    """Export `model` (a ReIDModel or a checkpoint path) to `out`; the file is kept only if onnxruntime matches
    PyTorch (fp32) within `atol` at every (B, T) of `check_shapes` (default: a few, padded and not)."""
    _require("onnx", "onnxscript", "onnxruntime")
    import onnx

    if opset is not None and not 18 <= opset <= onnx.defs.onnx_opset_version():
        raise FarreidError(f"--opset {opset}: this exporter writes opsets 18 to {onnx.defs.onnx_opset_version()} "
                           f"(onnx {onnx.__version__})")
    if not isinstance(model, ReIDModel):
        model = ReIDModel.from_checkpoint(model, device="cpu", precision="fp32")
    flip = model.flip if flip is None else flip
    net = model.model.to("cpu").float().eval()
    graph = EmbeddingGraph(net, flip).eval()
    t = model.num_frames
    shapes = list(check_shapes or [(2, t), (1, 1), (3, max(2, t // 2 + 1)), (5, t + 3)])
    example = next(_check_cases(model, [(2, max(t, 2))], seed=1))
    batch, frames = torch.export.Dim("batch", min=1, max=65536), torch.export.Dim("frames", min=1, max=4096)
    dynamic = {"clip": {0: batch, 1: frames}, "keys": {0: batch}, "mask": {0: batch, 1: frames}}
    out = check_output(out, "file")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(out, exc) from None
    start = time.perf_counter()
    fd, tmp = temp_file_beside(out)
    os.close(fd)
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(graph, example, input_names=list(INPUTS), output_names=["embedding"],
                                        dynamic_shapes=dynamic, opset_version=opset, dynamo=True, verbose=False)
        proto = program.model_proto
        written = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
        if opset is not None and written != opset:
            raise FarreidError(f"--opset {opset}: the exporter wrote opset {written} instead; nothing written to {out}")
        onnx.helper.set_model_props(proto, export_metadata(model, flip))
        onnx.save_model(proto, tmp)
        seconds = time.perf_counter() - start
        worst = check_onnx(tmp, graph, _check_cases(model, shapes))
        if not worst <= atol:
            raise FarreidError(
                f"the exported graph differs from PyTorch by {worst:.3g} (> {atol:g}) on random clips; not written to {out}"
            )
        os.replace(tmp, out)
    except OSError as exc:
        raise output_error(out, exc) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    report = ExportReport(out, model.dim, worst, shapes, seconds, out.stat().st_size / 2**20)
    log.info(f"exported {out} ({report.size_mb:.1f} MB, {model.dim}-d, flip {flip}); onnxruntime vs PyTorch max abs "
             f"diff {worst:.2e} over (B, T) in {shapes}")
    return report
