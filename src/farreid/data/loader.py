"""From tracklets to batches: the clip dataset, the collate function and the train/test DataLoader builders.

A batch is a dict (`collate_clips`; the engine's `Batch`): `clip` float32 (B, T, 3, H, W) ImageNet-normalised,
`mask` bool (B, T), `pid`, `camid`, `platform` (0 ground, 1 aerial), `index` int64 (B,), `altitude`, `distance`
float32 (B,) (NaN unknown).

Randomness is keyed, not global: a training item is requested as (tracklet index, epoch, batch position, slot),
and its frame choice and augmentation come from generators seeded by that key and the loader seed. Results are
therefore the same with any number of workers, and a resumed run sees exactly the clips it would have seen.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from farreid.data.decode import load_clip
from farreid.data.sampler import IdentityBatchSampler
from farreid.data.sampling import SAMPLING_MODES, dense_chunks, num_chunks, sample_clip
from farreid.data.tracklet import Tracklet, nan_if_none
from farreid.data.transforms import ClipAugment, ClipEval
from farreid.errors import FarreidError

Transform = Callable[[torch.Tensor, str, torch.Generator], torch.Tensor]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch ops on one thread. A clip's tensors are small: on a busy CPU, intra-op threads spinning for cores
    made clip preparation ~20x slower in the main process (DataLoader workers already run on one thread)."""
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ClipDataset(Dataset):
    """Clips of a list of tracklets: one item per tracklet, or one per chunk of T frames when `sampling="all"`.

    Frames are read from the tracklet's files (`read_frames`; `farreid.inference.inputs.MemoryClips` serves
    decoded tensors through the same class). Test-time clips are built by `eval_clips`.
    """

    def __init__(
        self,
        tracklets: Sequence[Tracklet],
        size: tuple[int, int],
        num_frames: int,
        sampling: str = "segment_begin",
        transform: Transform | None = None,
        seed: int = 0,
        interpolation: str = "bicubic",
    ):
        if sampling not in SAMPLING_MODES:
            raise FarreidError(f"temporal sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
        self.tracklets = tracklets
        self.size = (int(size[0]), int(size[1]))
        self.num_frames = int(num_frames)
        self.sampling = sampling
        self.transform = transform or ClipEval()
        self.seed = int(seed)
        self.interpolation = interpolation
        if sampling == "all":
            self.items = [(i, c) for i, t in enumerate(tracklets) for c in range(num_chunks(len(t), self.num_frames))]
        else:
            self.items = [(i, 0) for i in range(len(tracklets))]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def num_tracklets(self) -> int:
        """Tracklets served (items are their clips: several per tracklet with `sampling="all"`)."""
        return len(self.tracklets)

    def read_frames(self, tracklet: Any, frame_idx: np.ndarray) -> torch.Tensor:
        """(T, 3, H, W) uint8 frames `frame_idx` of `tracklet`, at the dataset's size."""
        return load_clip(tracklet.frames.paths(frame_idx.tolist()), self.size, self.interpolation)

    def __getitem__(self, key: int | tuple[int, ...]) -> dict[str, Any]:
        """`key` is an item position, or (tracklet index, *extra key) from a keyed batch sampler."""
        if isinstance(key, tuple):
            index, chunk, extra = key[0], 0, key[1:]
        else:
            index, chunk = self.items[key]
            extra = (key,)
        tracklet = self.tracklets[index]
        rng = np.random.default_rng([self.seed, index, *extra])
        n = len(tracklet)
        if self.sampling == "all":
            frame_idx, mask = dense_chunks(n, self.num_frames)[chunk]
        else:
            frame_idx, mask = sample_clip(self.sampling, n, self.num_frames, rng), np.ones(self.num_frames, bool)
        with one_thread():
            frames = self.read_frames(tracklet, frame_idx)
            generator = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
            clip = self.transform(frames, tracklet.platform, generator)
        return {
            "clip": clip,
            "mask": torch.from_numpy(np.asarray(mask, dtype=bool)),
            "pid": tracklet.pid,
            "camid": tracklet.camid,
            "platform": tracklet.platform_code,
            "altitude": nan_if_none(tracklet.altitude),
            "distance": nan_if_none(tracklet.distance),
            "index": index,
        }


def collate_clips(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {
        "clip": torch.stack([it["clip"] for it in items]),
        "mask": torch.stack([it["mask"] for it in items]),
        **{k: torch.tensor([it[k] for it in items], dtype=torch.int64) for k in ("pid", "camid", "platform", "index")},
        **{k: torch.tensor([it[k] for it in items], dtype=torch.float32) for k in ("altitude", "distance")},
    }


def seed_worker(worker_id: int) -> None:
    """Give each worker distinct, reproducible global RNG states (the loader's generator fixes the base seed)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class _KeyedBatches:
    """Turns the sampler's batches of indices into batches of (index, epoch, position, slot) keys."""

    def __init__(self, sampler: IdentityBatchSampler):
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[tuple[int, int, int, int]]]:
        for batch in self.sampler:
            position = self.sampler.position - 1
            yield [(index, self.sampler.epoch, position, slot) for slot, index in enumerate(batch)]


class TrainLoader:
    """P x K identity batches of augmented clips; `state_dict()` counts the batches the caller has consumed."""

    def __init__(self, dataset: ClipDataset, sampler: IdentityBatchSampler, workers: int = 0, seed: int = 0):
        self.dataset, self.sampler = dataset, sampler
        self.loader = DataLoader(
            dataset,
            batch_sampler=_KeyedBatches(sampler),
            num_workers=workers,
            collate_fn=collate_clips,
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(seed),
            persistent_workers=workers > 0,
        )
        self.consumed = sampler.position

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self.consumed = self.sampler.position

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        if self.sampler.position >= len(self.sampler):
            self.sampler.position = 0
        self.consumed = self.sampler.position
        for batch in self.loader:
            self.consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {**self.sampler.state_dict(), "position": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.load_state_dict(state)
        self.consumed = self.sampler.position


def build_train_loader(
    train_set: Sequence[Tracklet],
    data_cfg: Any,
    size: tuple[int, int],
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
    transform: Transform | None = None,
) -> TrainLoader:
    """Training batches from a `DataConfig`: P x K sampling, `train_sampling` frames resized to `size` (the
    model's `model.image_size`), `ClipAugment(data.aug)`."""
    if data_cfg.train_sampling == "all":
        raise FarreidError("data.train_sampling=all (dense chunks) is a test-time mode; use restricted_random")
    dataset = ClipDataset(
        train_set, size, data_cfg.train_frames, data_cfg.train_sampling,
        transform or ClipAugment(data_cfg.aug), seed, data_cfg.interpolation,
    )
    sampler = IdentityBatchSampler(
        [t.pid for t in train_set], data_cfg.ids_per_batch, data_cfg.tracklets_per_id, seed, num_replicas, rank
    )
    return TrainLoader(dataset, sampler, data_cfg.workers, seed)


def eval_clips(
    tracklets: Sequence[Tracklet], data_cfg: Any, size: tuple[int, int], *, dense: bool = False, seed: int = 0
) -> ClipDataset:
    """Deterministic test-time clips from a `DataConfig` (`test_frames`, `test_sampling`, interpolation) of frames
    resized to `size` (the model's `model.image_size`): one clip a tracklet, or every frame in chunks of
    `test_frames` when `dense` (`eval.dense`). Validation during training and test evaluation cut their clips here."""
    sampling = "all" if dense else data_cfg.test_sampling
    return ClipDataset(tracklets, size, data_cfg.test_frames, sampling, ClipEval(), seed, data_cfg.interpolation)


def build_test_loader(
    tracklets: Sequence[Tracklet],
    data_cfg: Any,
    size: tuple[int, int],
    batch_size: int = 8,
    dense: bool = False,
    seed: int = 0,
) -> DataLoader:
    """Test batches of `eval_clips` in tracklet order (chunks of a tracklet are consecutive when `dense`)."""
    dataset = eval_clips(tracklets, data_cfg, size, dense=dense, seed=seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=data_cfg.workers,
        collate_fn=collate_clips,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
    )
