"""Small stand-ins for the data layer and the ReID model, with the interfaces of `farreid.engine.protocols`,
for the engine tests.

- `ToyReID`: per-frame MLP "backbone" (frozen) + tail block ("backbone_tail") + adapter, platform prompts,
  attention pooling, BNNeck + classifiers, a prompt learner through a frozen "text tower".
- `ToyData`: identities with a prototype image; tracklets are noisy views of it, ground or aerial.
- `ToyLoader`: P x K identity batches, keyed augmentation noise, resumable mid-epoch, DDP-aware (rank r takes
  the r-th slice of every global batch, so 2 processes x b see the batches one process x 2b sees).

Run as a script, it is one process of the DDP test (under torchrun): it trains and lets rank 0 checkpoint.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

T, C, H, W = 4, 3, 4, 4
FRAME = C * H * W


@pytest.fixture
def one_thread():
    """Toy-sized ops run several times faster on one thread than on two busy cores (no pool hand-offs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass
class ToyOutput:
    logits: list[Tensor]
    triplet_features: list[Tensor]
    projected: Tensor


class ToyPromptLearner(nn.Module):
    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.ctx = nn.Parameter(torch.randn(dim) * 0.02)
        self.id_tokens = nn.Parameter(torch.randn(num_classes, dim) * 0.02)


class ToyReID(nn.Module):
    def __init__(self, num_classes: int, num_keys: int = 2, width: int = 24, proj: int = 12, dropout: float = 0.0, bnneck: bool = True):
        super().__init__()
        self.backbone = nn.Linear(FRAME, width)
        self.tail = nn.Linear(width, width)
        self.adapter = nn.Linear(width, width)
        self.prompts = nn.Parameter(torch.zeros(num_keys, width))
        self.scorer = nn.Linear(width, 1)
        self.proj = nn.Linear(width, proj, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.neck = nn.BatchNorm1d(width) if bnneck else nn.Identity()
        self.neck_proj = nn.BatchNorm1d(proj) if bnneck else nn.Identity()
        for bn in (self.neck, self.neck_proj):
            if isinstance(bn, nn.BatchNorm1d):
                bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(width, num_classes, bias=False)
        self.classifier_proj = nn.Linear(proj, num_classes, bias=False)
        self.prompt_learner = ToyPromptLearner(num_classes, proj)
        self.triplet_feature_dims = (width, width, proj)
        self.text_tower = nn.Sequential(nn.Linear(proj, proj), nn.Tanh(), nn.Linear(proj, proj))
        for p in [*self.backbone.parameters(), *self.proj.parameters(), *self.text_tower.parameters()]:
            p.requires_grad_(False)

    def prompt_keys(self, batch: dict[str, Tensor]) -> Tensor:
        return batch["platform"].long()

    def _frames(self, clip: Tensor, keys: Tensor | None) -> tuple[Tensor, Tensor]:
        b, t = clip.shape[:2]
        x = self.backbone(clip.reshape(b, t, -1))  # (B, T, width)
        if keys is None:
            return x, x
        pen = x + self.adapter(x) + self.prompts[keys][:, None, :]
        return pen, pen + self.dropout(F.gelu(self.tail(pen)))

    def _pool(self, x: Tensor, mask: Tensor | None) -> Tensor:
        scores = self.scorer(x).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return (scores.softmax(dim=1)[..., None] * x).sum(1)

    def forward(self, clip: Tensor, keys: Tensor, mask: Tensor | None = None) -> ToyOutput:
        pen, final = self._frames(clip, keys)
        pen, final = self._pool(pen, mask), self._pool(final, mask)
        projected = self.proj(final)
        logits = [self.classifier(self.neck(final)), self.classifier_proj(self.neck_proj(projected))]
        return ToyOutput(logits=logits, triplet_features=[pen, final, projected], projected=projected)

    def embed(self, clip: Tensor, keys: Tensor, mask: Tensor | None = None) -> Tensor:
        _, final = self._frames(clip, keys)
        final = self._pool(final, mask)
        return F.normalize(torch.cat([final, self.proj(final)], dim=1), dim=1)

    @torch.no_grad()
    def frame_pooled_projection(self, clip: Tensor, mask: Tensor | None = None) -> Tensor:
        x, _ = self._frames(clip, None)
        return self.proj(x.mean(1))

    def text_features(self, labels: Tensor) -> Tensor:
        pl = self.prompt_learner
        return self.text_tower(pl.ctx + pl.id_tokens[labels])

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        new = [*self.adapter.parameters(), self.prompts, *self.scorer.parameters(), *self.classifier.parameters(),
               *self.classifier_proj.parameters(), *self.neck.parameters(), *self.neck_proj.parameters()]
        return {"new": new, "backbone_tail": list(self.tail.parameters())}


class ToyData:
    """`ids` identities x `per_id` tracklets; camera 0 = ground, 1/2 = aerial (alternating). Every platform adds
    its own offset (`shift`), a nuisance the model must learn to ignore to match across platforms."""

    def __init__(self, ids: int, per_id: int = 4, seed: int = 0, noise: float = 0.8, shift: float = 0.0):
        g = torch.Generator().manual_seed(seed)
        proto = torch.randn(ids, 1, C, H, W, generator=g)
        offsets = shift * torch.randn(2, 1, C, H, W, generator=g)
        self.pids = [i // per_id for i in range(ids * per_id)]
        self.camids = [(i % per_id) % 3 for i in range(ids * per_id)]
        platform = torch.tensor([int(c > 0) for c in self.camids])
        self.clips = proto.repeat_interleave(per_id, 0) + offsets[platform] + noise * torch.randn(ids * per_id, T, C, H, W, generator=g)

    def __len__(self) -> int:
        return len(self.pids)

    def sample(self, i: int, clip: Tensor | None = None) -> dict:
        return {
            "clip": self.clips[i] if clip is None else clip,
            "mask": torch.ones(T, dtype=torch.bool),
            "pid": self.pids[i],
            "camid": self.camids[i],
            "platform": int(self.camids[i] > 0),
            "altitude": float("nan"),
            "distance": float("nan"),
            "index": i,
        }

    def subset(self, positions: list[int], relabel: bool = True) -> "ToyData":
        out = ToyData.__new__(ToyData)
        out.clips = self.clips[positions]
        raw = [self.pids[i] for i in positions]
        mapping = {p: k for k, p in enumerate(sorted(set(raw)))}
        out.pids = [mapping[p] for p in raw] if relabel else raw
        out.camids = [self.camids[i] for i in positions]
        return out


class ClipSet(torch.utils.data.Dataset):
    """Fixed clips of a `ToyData` (stage-1 cache, validation)."""

    def __init__(self, data: ToyData):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    @property
    def num_tracklets(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        return self.data.sample(i)


class ToyLoader:
    """P x K batches (P global), keyed noise augmentation, resumable, rank r takes slice r of each global batch."""

    def __init__(self, data: ToyData, P: int, K: int, seed: int = 0, rank: int = 0, world_size: int = 1, aug: float = 0.3):
        assert P * K % world_size == 0
        self.data, self.P, self.K, self.seed = data, P, K, seed
        self.rank, self.world_size, self.aug = rank, world_size, aug
        self.epoch, self.position = 0, 0

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        by_pid: dict[int, list[int]] = {}
        for i, p in enumerate(self.data.pids):
            by_pid.setdefault(p, []).append(i)
        ids = rng.permutation(sorted(by_pid))
        out = []
        for start in range(0, len(ids) - self.P + 1, self.P):
            out.append([int(i) for p in ids[start : start + self.P] for i in rng.choice(by_pid[int(p)], self.K, replace=True)])
        return out

    def __len__(self) -> int:
        return len(self._batches())

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.position = epoch, 0

    def __iter__(self):
        batches = self._batches()
        if self.position >= len(batches):
            self.position = 0
        share = self.P * self.K // self.world_size
        while self.position < len(batches):
            batch = batches[self.position]
            items = []
            for slot in range(self.rank * share, (self.rank + 1) * share):
                i = batch[slot]
                g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, self.epoch, self.position, slot]).generate_state(1)[0]))
                items.append(self.data.sample(i, self.data.clips[i] + self.aug * torch.randn(T, C, H, W, generator=g)))
            self.position += 1
            yield torch.utils.data.default_collate(items)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def toy_parts(cfg, ids: int = 12, val_ids: int = 0, rank: int = 0, world_size: int = 1, dropout: float = 0.0,
              bnneck: bool = True, data_seed: int = 0, per_id: int = 4, noise: float = 0.8, shift: float = 0.0):
    """TrainingParts for `cfg` (P, K, seed) over toy data; the model is initialised from `cfg.seed`."""
    from farreid.engine import TrainingParts

    data = ToyData(ids, per_id=per_id, seed=data_seed, noise=noise, shift=shift)
    val_pids = set(range(ids - val_ids, ids))
    train = data.subset([i for i, p in enumerate(data.pids) if p not in val_pids])
    query = gallery = None
    if val_ids:
        val = [i for i, p in enumerate(data.pids) if p in val_pids]
        query = ClipSet(data.subset(val[0::2], relabel=False))
        gallery = ClipSet(data.subset(val[1::2], relabel=False))
    num_classes = ids - val_ids
    torch.manual_seed(cfg.seed)
    model = ToyReID(num_classes, dropout=dropout, bnneck=bnneck)
    loader = ToyLoader(train, cfg.data.ids_per_batch, cfg.data.tracklets_per_id, seed=cfg.seed, rank=rank, world_size=world_size)
    return TrainingParts(model=model, num_classes=num_classes, train_loader=loader, feature_dataset=ClipSet(train),
                         val_query=query, val_gallery=gallery)


def toy_config(tmp_path, *overrides: str):
    from farreid.config import load_config

    base = [
        f"out_dir={tmp_path}", "name=toy", "device=cpu", "precision=fp32", "data.workers=0",
        "data.ids_per_batch=4", "data.tracklets_per_id=2", "train.stage1.epochs=2", "train.stage1.batch_size=8",
        "train.stage1.warmup_epochs=1", "train.stage1.lr=0.01", "train.stage2.epochs=3", "train.stage2.warmup_epochs=1",
        "train.stage2.lr=0.01", "train.log_every=2", "train.keep_last=2", "eval.batch_size=8",
        "eval.flip=false",  # toy clips are noise, not people: their mirror image is another input, not the same one
    ]
    return load_config(None, [*base, *overrides])


def ddp_main(out_dir: str, *overrides: str) -> None:
    """One process of a 2-process DDP run (launched by torchrun)."""
    import os
    from pathlib import Path

    from farreid.engine import train

    torch.set_num_threads(1)
    cfg = toy_config(Path(out_dir), *overrides)
    parts = toy_parts(cfg, val_ids=cfg.data.val_ids, rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]),
                      bnneck=False)
    train(cfg, parts=parts, console=False)


if __name__ == "__main__":
    ddp_main(sys.argv[1], *sys.argv[2:])
