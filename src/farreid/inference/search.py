"""`farreid search`: rank a saved gallery for query embeddings, with scores, names, pictures and a CSV.

The gallery is a feature-set folder (single file or shards, from `farreid extract`) streamed block by block
into `topk_search`, so a gallery of a million 1024-d embeddings is searched without being loaded; only the
metadata rows of the hits are parsed. Re-ranking (k-reciprocal, `farreid.eval`) needs the whole gallery and
the gallery-gallery neighbourhoods, so it is offered for galleries up to `rerank_max_gallery` rows.

A query that is itself in the gallery (a tracklet of the gallery's own footage, or the gallery's features
searched against themselves) would be its own first hit: its own tracklet, recognised by its frame folder, is
left out of its ranking unless `keep_self=True`.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from farreid.errors import FarreidError
from farreid.config.schema import RerankConfig
from farreid.eval import FeatureSet, load_feature_set, rerank_feature_chunks
from farreid.eval.features import feature_shape, iter_feature_chunks, read_feature_metadata, read_meta_rows
from farreid.eval.pictures import MATCH, MISMATCH, NEUTRAL, QUERY, Item, ranked_strip, safe_file_name, save_png
from farreid.eval.report import png_bytes
from farreid.inference.model import ReIDModel
from farreid.inference.retrieval import topk_search
from farreid.utils.io import atomic_open, safe_join, spreadsheet_safe
from farreid.utils.log import progress

RERANK_MAX_GALLERY = 50_000


@dataclass(frozen=True)
class Hit:
    rank: int  # 1-based
    index: int  # row in the gallery feature set
    score: float
    name: str
    pid: int
    camid: int
    platform: str
    frames: tuple[str, ...]


@dataclass
class SearchResults:
    queries: FeatureSet
    hits: list[list[Hit]]  # per query, best first
    score_name: str  # "cosine" (higher is closer) or "rerank distance" (lower is closer)
    left_out: int = 0  # queries whose own tracklet was found in the gallery and left out of their ranking

    def table(self, max_queries: int | None = None) -> str:
        """Plain-text ranked lists: rank, score, tracklet, pid, camid, platform."""
        blocks = []
        shown = range(len(self.hits) if max_queries is None else min(max_queries, len(self.hits)))
        for qi in shown:
            q = self.queries
            who = f"pid {q.pids[qi]}, " if q.pids[qi] >= 0 else ""
            rows = [("rank", self.score_name, "tracklet", "pid", "camid", "platform")]
            rows += [(str(h.rank), f"{h.score:.4f}", h.name, str(h.pid) if h.pid >= 0 else "-", str(h.camid), h.platform)
                     for h in self.hits[qi]]
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            lines = ["  ".join(c.ljust(w) if i == 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
            blocks.append(f"query {q.names[qi]} ({who}camera {q.camids[qi]}, {q.platforms[qi]})\n" + "\n".join(lines))
        if len(shown) < len(self.hits):
            blocks.append(f"... and {len(self.hits) - len(shown)} more queries")
        return "\n\n".join(blocks)

    def write_csv(self, path: str | Path) -> Path:
        """query,rank,score,tracklet,pid,camid,platform,gallery_index; one row per hit (atomic)."""
        with atomic_open(path, "w") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["query", "rank", self.score_name.replace(" ", "_"), "tracklet", "pid", "camid", "platform",
                             "gallery_index"])
            for qi, hits in enumerate(self.hits):
                for h in hits:
                    writer.writerow([spreadsheet_safe(self.queries.names[qi]), h.rank, f"{h.score:.6f}",
                                     spreadsheet_safe(h.name), h.pid, h.camid, h.platform, h.index])
        return Path(path)

    def write_pictures(self, folder: str | Path, max_queries: int | None = None, topk: int = 10) -> list[Path]:
        """One ranked strip a query: green/red borders when both identities are known, grey otherwise."""
        paths = []
        q = self.queries
        for qi in range(len(self.hits) if max_queries is None else min(max_queries, len(self.hits))):
            gallery = []
            for h in self.hits[qi][:topk]:
                known = q.pids[qi] >= 0 and h.pid >= 0
                color = (MATCH if h.pid == q.pids[qi] else MISMATCH) if known else NEUTRAL
                gallery.append(Item(h.frames, h.name, f"{h.rank}: {h.score:.3f}", color))
            strip = ranked_strip(Item(q.frames[qi], q.names[qi], "query", QUERY), gallery)
            name = f"{qi:03d}_{safe_file_name(q.names[qi])}.png"
            paths.append(save_png(png_bytes(strip), safe_join(folder, name)))
        return paths


def _unit_chunks(folder: Path, rows: int):
    total, _ = feature_shape(folder)
    with progress(desc="search gallery", total=total, unit="row", unit_scale=True) as bar:
        for chunk in iter_feature_chunks(folder, rows):
            yield F.normalize(chunk, dim=1)
            bar.update(chunk.shape[0])


def _ranked(query: torch.Tensor, gallery: Path, k: int, backend: str, device: str | torch.device, chunk_rows: int,
            rerank: RerankConfig, rerank_max_gallery: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows, _ = feature_shape(gallery)
    if not rerank.enabled:
        return topk_search(F.normalize(query, dim=1), _unit_chunks(gallery, chunk_rows), k, backend, device)
    if rows > rerank_max_gallery:
        raise FarreidError(
            f"re-ranking needs the whole gallery and its neighbourhoods in memory; {gallery} has {rows} rows, more "
            f"than the limit of {rerank_max_gallery} (raise it with --rerank-max-gallery if memory allows)"
        )
    g = torch.cat(list(iter_feature_chunks(gallery)))
    scores, index = [], []
    for _, block in rerank_feature_chunks(query, g, rerank.k1, rerank.k2, rerank.lambda_value, normalize=True,
                                          device=device):
        top = torch.topk(block.cpu(), min(k, block.shape[1]), dim=1, largest=False)
        scores.append(top.values)
        index.append(top.indices)
    return torch.cat(scores), torch.cat(index)


def _tracklet_folder(frames: tuple[str, ...]) -> str | None:
    """Where a tracklet's frames live: what makes a query and a gallery row the same tracklet."""
    return os.path.dirname(os.path.realpath(frames[0])) if frames else None


def search_gallery(
    query: FeatureSet,
    gallery: str | Path,
    k: int = 20,
    *,
    backend: str = "auto",
    device: str | torch.device = "cpu",
    chunk_rows: int = 65536,
    rerank: RerankConfig | None = None,
    rerank_max_gallery: int = RERANK_MAX_GALLERY,
    keep_self: bool = False,
) -> SearchResults:
    """Top-`k` gallery tracklets for every query (cosine similarity, or re-ranked distance when `rerank` is
    enabled; default `RerankConfig()`, off); a query's own tracklet is left out of its ranking unless `keep_self`."""
    rerank = rerank or RerankConfig()
    gallery = Path(gallery)
    if k < 1:
        raise FarreidError(f"k must be >= 1, got {k}")
    _, dim = feature_shape(gallery)
    if query.dim != dim:
        raise FarreidError(f"query embeddings have dimension {query.dim} but the gallery {gallery} has {dim}: "
                           "were they made by the same model?")
    extra = 0 if keep_self else 1  # room for the query's own tracklet, dropped below
    scores, index = _ranked(query.features.float(), gallery, k + extra, backend, device, chunk_rows, rerank,
                            rerank_max_gallery)
    rows = read_meta_rows(gallery, np.unique(index.numpy()).tolist())
    hits, left_out = [], 0
    for qi, (srow, irow) in enumerate(zip(scores.tolist(), index.tolist())):
        own = None if keep_self else _tracklet_folder(query.frames[qi])
        ranked = [(s, int(gi)) for s, gi in zip(srow, irow)
                  if own is None or _tracklet_folder(rows[int(gi)]["frames"]) != own]
        left_out += len(ranked) < len(srow)
        hits.append([Hit(r + 1, gi, float(s), rows[gi]["name"], rows[gi]["pid"], rows[gi]["camid"],
                         rows[gi]["platform"], rows[gi]["frames"]) for r, (s, gi) in enumerate(ranked[:k])])
    return SearchResults(query, hits, "rerank distance" if rerank.enabled else "cosine", left_out)


def like_gallery(model: ReIDModel, gallery: str | Path) -> ReIDModel:
    """`model` with the input settings the gallery was extracted with (frames, sampling, flip), so a query tracklet
    is embedded the same way; a gallery from another model's dimension is an error."""
    meta = read_feature_metadata(gallery)
    if meta.get("dim") and int(meta["dim"]) != model.dim:
        raise FarreidError(f"the gallery {gallery} holds {meta['dim']}-d features but the model makes {model.dim}-d ones")
    settings = {}
    if meta.get("frames"):
        settings["num_frames"] = int(meta["frames"])
    if meta.get("sampling"):
        settings["dense"] = meta["sampling"] == "all"
        if meta["sampling"] != "all":
            settings["sampling"] = meta["sampling"]
    if meta.get("flip") in ("true", "false"):
        settings["flip"] = meta["flip"] == "true"
    return model.with_settings(**settings)


def query_features(
    query: str | Path,
    gallery: str | Path,
    checkpoint: str | Path | None = None,
    *,
    camid: int = 0,
    platform: str = "ground",
    device: str = "auto",
    precision: str = "auto",
) -> FeatureSet:
    """Query embeddings: a saved feature set as it is, or tracklet folder(s) embedded by `checkpoint` (default:
    the checkpoint recorded in the gallery's metadata) with the gallery's extraction settings."""
    from farreid.eval.features import check_text_names, has_features
    from farreid.inference.layouts import input_splits

    query = Path(query)
    if has_features(query):
        return load_feature_set(query)
    splits = input_splits(query, camid=camid, platform=platform)  # checked before the model is loaded
    for split in splits:
        check_text_names(split.tracklets, str(query))
    if checkpoint is None:
        checkpoint = read_feature_metadata(gallery).get("checkpoint") or None
        if checkpoint is None:
            raise FarreidError(f"{query} holds tracklets, not features: give --checkpoint to embed them")
        if not Path(checkpoint).exists():
            raise FarreidError(f"the gallery was extracted with {checkpoint}, which no longer exists; give --checkpoint")
    model = like_gallery(ReIDModel.from_checkpoint(checkpoint, device=device, precision=precision), gallery)
    return model.feature_set([t for split in splits for t in split.tracklets])
