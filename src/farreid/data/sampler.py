"""Identity-balanced batches (P identities x K tracklets), DDP-aware and resumable.

An epoch is a pure function of (seed, epoch): every identity's tracklets are shuffled and cut into groups of K
(an identity with fewer than K tracklets, or a last group short of K, is filled by drawing that identity's
tracklets again); then batches are formed by repeatedly picking P distinct identities that still have groups.
All ranks build the same epoch and rank r takes batches r, r + R, r + 2R, ... of the first R * floor(B / R),
so shards are disjoint, together cover the epoch, and have the same length on every rank.
`state_dict()` holds the epoch and how many of this rank's batches were already handed out, so a resumed
sampler continues with exactly the batches that were still to come.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from farreid.errors import FarreidError


class IdentityBatchSampler:
    def __init__(self, pids: Sequence[int], P: int, K: int, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        if P < 1 or K < 1:
            raise FarreidError(f"identities per batch (P={P}) and tracklets per identity (K={K}) must be >= 1")
        if not 0 <= rank < num_replicas:
            raise FarreidError(f"rank {rank} must be in [0, {num_replicas})")
        pids = np.asarray(pids, dtype=np.int64)
        if (pids < 0).any():
            raise FarreidError("identity sampling needs labelled tracklets; found pid -1 (unknown identity)")
        self.by_pid = [np.flatnonzero(pids == p) for p in np.unique(pids)]
        if len(self.by_pid) < P:
            raise FarreidError(f"a batch needs P={P} identities but the training set has only {len(self.by_pid)}")
        self.P, self.K, self.seed = P, K, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0
        self.position = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def _epoch_batches(self) -> list[list[int]]:
        """All batches of the current epoch (identical on every rank)."""
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        groups: list[list[np.ndarray]] = []
        for members in self.by_pid:
            members = rng.permutation(members)
            if len(members) < self.K:
                members = np.concatenate([members, rng.choice(members, self.K - len(members), replace=True)])
            short = (-len(members)) % self.K
            if short:
                members = np.concatenate([members, rng.choice(members[: len(members) - (self.K - short)], short,
                                                              replace=False)])
            groups.append(list(members.reshape(-1, self.K)))
        batches = []
        while True:
            alive = np.array([i for i, g in enumerate(groups) if g])
            if len(alive) < self.P:
                break
            chosen = rng.choice(alive, self.P, replace=False)
            batches.append([int(i) for p in chosen for i in groups[p].pop()])
        self._cache = (self.epoch, batches)
        return batches

    def _shard(self) -> list[list[int]]:
        batches = self._epoch_batches()
        per_rank = len(batches) // self.num_replicas
        return batches[self.rank : per_rank * self.num_replicas : self.num_replicas]

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its beginning (a no-op for the epoch already under way, so resuming keeps its place)."""
        if epoch != self.epoch:
            self.epoch = int(epoch)
            self.position = 0

    def __len__(self) -> int:
        return len(self._shard())

    def __iter__(self) -> Iterator[list[int]]:
        shard = self._shard()
        if self.position >= len(shard):
            self.position = 0
        while self.position < len(shard):
            batch = shard[self.position]
            self.position += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if int(state.get("seed", self.seed)) != self.seed:
            raise FarreidError(f"sampler state was saved with seed {state['seed']}, this sampler uses {self.seed}")
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
