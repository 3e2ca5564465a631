"""`ReIDModel`: tracklets in, L2-normalised float32 embeddings out.

    from farreid import ReIDModel
    model = ReIDModel.from_checkpoint("runs/demo_tiny/checkpoints/best.pt")
    emb = model.embed("crops/person_17/")                     # (1, D)
    emb = model.embed([frames_a, frames_b], platform=["aerial", "ground"], camid=[1, 0])   # (2, D)

Frames are sampled with the model's test sampling (`data.test_sampling`, `data.test_frames` frames; every frame
in chunks with `dense=True`) and prepared by the data layer's `ClipEval`, so tracklets of any length batch
together. Embedding goes through `farreid.eval.extract_features`, the evaluation's own path: flip test-time
augmentation, dense-chunk averaging and autocast (bf16 on CPUs that run it fast, `precision="auto"`) included.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from farreid.config import Config
from farreid.data import ClipDataset, ClipEval, Tracklet, collate_clips
from farreid.errors import FarreidError
from farreid.eval import FeatureSet, extract_features
from farreid.inference.inputs import MemoryClips, MemoryTracklet, as_tracklets
from farreid.inference.loading import StoredCheckpoint, load_trained_model
from farreid.models import FarReID
from farreid.utils.device import Precision
from farreid.utils.log import get_logger

log = get_logger("inference")


def _precision(device: str | torch.device, precision: str) -> Precision:
    try:
        return Precision.create(device, precision)
    except (RuntimeError, ValueError) as exc:
        raise FarreidError(str(exc)) from None


class ReIDModel:
    """A trained `FarReID` ready for inference (eval mode, no gradients) with its input settings.

    Settings default to the model's configuration (`data.*` input size and sampling, `eval.flip`, `eval.dense`,
    `eval.batch_size`, `data.workers`); keyword arguments override them. `cfg=None` takes the schema defaults
    with the model's own input size.
    """

    def __init__(
        self,
        model: FarReID,
        cfg: Config | None = None,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        flip: bool | None = None,
        dense: bool | None = None,
        num_frames: int | None = None,
        sampling: str | None = None,
        batch_size: int | None = None,
        workers: int | None = None,
        source: str | Path | None = None,
    ):
        if cfg is None:
            cfg = Config()
            cfg.model.image_size = list(model.backbone.visual.image_size)
        self.cfg = cfg
        self.precision = _precision(device, precision)
        self.model = model.eval().requires_grad_(False).to(self.precision.device)
        self.size = tuple(model.backbone.visual.image_size)  # the model's input contract
        self.interpolation = cfg.data.interpolation
        self.flip = cfg.eval.flip if flip is None else bool(flip)
        self.dense = cfg.eval.dense if dense is None else bool(dense)
        self.num_frames = cfg.data.test_frames if num_frames is None else int(num_frames)
        self.sampling = cfg.data.test_sampling if sampling is None else sampling
        self.batch_size = cfg.eval.batch_size if batch_size is None else int(batch_size)
        self.workers = cfg.data.workers if workers is None else int(workers)
        self.source = str(source) if source is not None else None
        if self.num_frames < 1 or self.batch_size < 1 or self.workers < 0:
            raise FarreidError("num_frames and batch_size must be >= 1 and workers >= 0")

    @classmethod
    def from_checkpoint(
        cls, path: str | Path | StoredCheckpoint, device: str | torch.device = "auto", precision: str = "auto",
        **settings: Any,
    ) -> "ReIDModel":
        """Load a stage-2 farreid checkpoint (a file, a run directory: its best.pt or newest stage-2 file, or a
        `StoredCheckpoint` already read).

        The checkpoint records its configuration; the CLIP weight file it was trained from is not needed.
        `settings` are the keyword overrides of `ReIDModel(...)` (flip, dense, num_frames, batch_size, ...).
        """
        loaded = load_trained_model(path)
        model = loaded.model
        model.backbone.text = None  # the text tower only serves training (identity prompts); free its memory
        out = cls(model, loaded.cfg, device=device, precision=precision, source=loaded.path.absolute(), **settings)
        state = "finished" if loaded.complete else "not finished"
        log.info(
            f"loaded {loaded.path} ({loaded.stage} step {loaded.step}, training {state}): {loaded.cfg.model.backbone} "
            f"at {out.size[0]}x{out.size[1]}, {out.dim}-d embeddings, {out.precision.device} {out.precision.name}"
        )
        return out

    def with_settings(self, **settings: Any) -> "ReIDModel":
        """A copy sharing the network, with other input settings (flip, dense, num_frames, sampling,
        batch_size, workers)."""
        allowed = {"flip", "dense", "num_frames", "sampling", "batch_size", "workers"}
        unknown = sorted(set(settings) - allowed)
        if unknown:
            raise FarreidError(f"unknown ReIDModel setting(s) {unknown}; choose from {sorted(allowed)}")
        out = copy.copy(self)
        for key, value in settings.items():
            if value is not None:
                setattr(out, key, value)
        if out.num_frames < 1 or out.batch_size < 1 or out.workers < 0:
            raise FarreidError("num_frames and batch_size must be >= 1 and workers >= 0")
        return out

    # ------------------------------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        visual = self.model.backbone.visual
        return visual.width + visual.output_dim

    @property
    def clip_sampling(self) -> str:
        """The temporal sampling used: `all` (every frame, in chunks) when dense, else the test sampling."""
        return "all" if self.dense else self.sampling

    def describe(self) -> dict[str, str]:
        """Settings recorded beside extracted features (strings, for a safetensors header)."""
        return {
            "producer": "farreid",
            "checkpoint": self.source or "",
            "backbone": self.cfg.model.backbone,
            "dim": str(self.dim),
            "input_size": f"{self.size[0]}x{self.size[1]}",
            "frames": str(self.num_frames),
            "sampling": self.clip_sampling,
            "flip": str(self.flip).lower(),
            "precision": self.precision.name,
        }

    # ------------------------------------------------------------------------------------------ embedding
    def _embed_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.embed(batch["clip"], self.model.prompt_keys(batch), batch["mask"])

    def check_prompt_keys(self, tracklets: Sequence[Tracklet | MemoryTracklet]) -> None:
        """Camera-keyed prompts exist only for the camera ids seen in training: say so before any work."""
        prompts = self.model.prompts
        if prompts is None or self.model.cfg.pbp.key != "camera":
            return
        bad = sorted({t.camid for t in tracklets if not 0 <= t.camid < prompts.num_keys})
        if bad:
            raise FarreidError(
                f"camera id(s) {bad[:5]} have no platform prompt: this model was trained with camera-keyed prompts "
                f"for camera ids 0..{prompts.num_keys - 1}; pass the id of the most similar training camera"
            )

    def _clips(self, tracklets: Sequence[Tracklet] | Sequence[MemoryTracklet], sampling: str) -> ClipDataset:
        """The model's clips of records on disk (`ClipDataset`) or in memory (`MemoryClips`)."""
        kind = MemoryClips if tracklets and isinstance(tracklets[0], MemoryTracklet) else ClipDataset
        return kind(tracklets, self.size, self.num_frames, sampling, ClipEval(), 0, self.interpolation)

    def _run(self, dataset: Dataset, count: int, workers: int, flip: bool | None, batch_size: int | None) -> np.ndarray:
        if count == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        loader = DataLoader(dataset, batch_size=batch_size or self.batch_size, shuffle=False, num_workers=workers,
                            collate_fn=collate_clips)
        flip = self.flip if flip is None else bool(flip)
        features = extract_features(self._embed_batch, loader, self.precision, flip=flip, num_items=count)
        return features.numpy().astype(np.float32, copy=False)

    def embed_tracklets(
        self, tracklets: Sequence[Tracklet], *, flip: bool | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        """(N, D) embeddings of tracklet records (frames read from disk with the configured workers)."""
        tracklets = list(tracklets)
        self.check_prompt_keys(tracklets)
        return self._run(self._clips(tracklets, self.clip_sampling), len(tracklets), self.workers, flip, batch_size)

    @torch.no_grad()
    def frame_weights(self, tracklets: Sequence[Tracklet]) -> np.ndarray:
        """(N, T) temporal pooling weights of the final-CLS pooling for each tracklet's sampled frames (test
        sampling, no flip): which frames the model trusts. Rows sum to 1; mean pooling gives uniform rows."""
        tracklets = list(tracklets)
        self.check_prompt_keys(tracklets)
        loader = DataLoader(self._clips(tracklets, self.sampling), batch_size=self.batch_size, shuffle=False,
                            collate_fn=collate_clips)
        out = []
        for batch in loader:
            clip, mask = batch["clip"].to(self.precision.device), batch["mask"].to(self.precision.device)
            with self.precision.autocast():
                frames = self.model.frame_features(clip, self.model.prompt_keys(batch), mask)
                out.append(self.model.pool.weights(frames.final, mask).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.num_frames), np.float32)

    def embed(
        self,
        inputs: Any,
        *,
        camid: int | Sequence[int] = 0,
        platform: str | Sequence[str] = "ground",
        altitude: float | None | Sequence[float | None] = None,
        distance: float | None | Sequence[float | None] = None,
        flip: bool | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """(N, D) float32 L2-normalised embeddings, one row per tracklet of `inputs`.

        `inputs`: a tracklet folder, a list of frame paths, a list of PIL images or (H, W, 3) uint8 arrays, a
        (T, 3, H, W) or (B, T, 3, H, W) tensor (uint8, or float in [0, 1]), a `Tracklet`, or a list of any of
        these (one tracklet each). Metadata (used by the platform prompts) are one value for all tracklets or
        one per tracklet; `Tracklet` records carry their own. `flip` / `batch_size` override the model's settings
        for this call.
        """
        records = as_tracklets(inputs, self.size, self.interpolation, camid=camid, platform=platform,
                               altitude=altitude, distance=distance)
        self.check_prompt_keys(records)
        out = np.zeros((len(records), self.dim), dtype=np.float32)
        on_disk = [i for i, r in enumerate(records) if isinstance(r, Tracklet)]
        in_memory = [i for i, r in enumerate(records) if isinstance(r, MemoryTracklet)]
        if on_disk:
            out[on_disk] = self.embed_tracklets([records[i] for i in on_disk], flip=flip, batch_size=batch_size)
        if in_memory:
            memory = [records[i] for i in in_memory]
            out[in_memory] = self._run(self._clips(memory, self.clip_sampling), len(memory), 0, flip, batch_size)
        return out

    def feature_set(self, tracklets: Sequence[Tracklet]) -> FeatureSet:
        """Embeddings of a split (e.g. a protocol's query `TrackletSet`) with its labels, for evaluation and search."""
        return FeatureSet.from_tracklets(torch.from_numpy(self.embed_tracklets(tracklets)), list(tracklets))
