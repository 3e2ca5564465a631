"""Is the synthetic data set learnable, and is aerial->aerial the hardest protocol, as on the real benchmark?

    python benchmarks/bench_data_synth.py [--ids 60] [--steps 300]

Generates the set (timed), then reports mAP / rank-1 per protocol for (a) an untrained colour descriptor (mean of
the frames at 16x8 pixels) and (b) a small CNN trained for `--steps` P x K steps through the farreid data
pipeline (restricted-random T=4 at 128x64, ClipAugment, cross-entropy + batch-hard triplet). Distances are cosine;
gallery items with the query's pid and camera are junk. Writes benchmarks/results/bench_data_synth.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from farreid.config import load_config  # noqa: E402
from farreid.data import build_dataset, build_test_loader, build_train_loader  # noqa: E402
from farreid.data.synthetic import generate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def ranking_metrics(q: torch.Tensor, g: torch.Tensor, q_pid, g_pid, q_cam, g_cam) -> dict:
    """mAP and rank-1 with cosine distance; same pid and camera = junk; queries without a positive skipped."""
    sim = F.normalize(q, dim=1) @ F.normalize(g, dim=1).T
    aps, r1 = [], []
    for i in range(len(q)):
        keep = ~((g_pid == q_pid[i]) & (g_cam == q_cam[i]))
        order = torch.argsort(sim[i][keep], descending=True)
        hits = (g_pid[keep][order] == q_pid[i]).float()
        if hits.sum() == 0:
            continue
        precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1)
        aps.append(float((precision * hits).sum() / hits.sum()))
        r1.append(float(hits[0]))
    return {"mAP": round(100 * float(np.mean(aps)), 2), "R1": round(100 * float(np.mean(r1)), 2), "queries": len(aps)}


def features(embed, tracklets, cfg, size) -> torch.Tensor:
    loader = build_test_loader(tracklets, cfg, size, batch_size=16)
    with torch.no_grad():
        return torch.cat([embed(b["clip"]) for b in loader])


def evaluate(embed, ds, cfg, size) -> dict:
    out = {}
    for name, proto in ds.protocols.items():
        q, g = features(embed, proto.query, cfg, size), features(embed, proto.gallery, cfg, size)
        t = lambda s, k: torch.tensor([getattr(x, k) for x in s])  # noqa: E731
        out[name] = ranking_metrics(q, g, t(proto.query, "pid"), t(proto.gallery, "pid"),
                                    t(proto.query, "camid"), t(proto.gallery, "camid"))
    return out


def colour_descriptor(clip: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) -> the frames' mean at 16x8 pixels, flattened."""
    b, t = clip.shape[:2]
    small = F.adaptive_avg_pool2d(clip.flatten(0, 1), (16, 8)).view(b, t, -1).mean(1)
    return small - small.mean(1, keepdim=True)


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int, dim: int = 128):
        super().__init__()
        chans = [3, 32, 64, 128, dim]
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        self.body = nn.Sequential(*layers)
        self.neck = nn.BatchNorm1d(dim)
        self.head = nn.Linear(dim, num_classes, bias=False)

    def embed(self, clip: torch.Tensor) -> torch.Tensor:
        b, t = clip.shape[:2]
        f = self.body(clip.flatten(0, 1)).mean((2, 3))
        return f.view(b, t, -1).mean(1)

    def forward(self, clip):
        f = self.embed(clip)
        return f, self.head(self.neck(f))


def batch_hard_triplet(f: torch.Tensor, pid: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    d = 1 - F.normalize(f, dim=1) @ F.normalize(f, dim=1).T
    same = pid[:, None] == pid[None, :]
    return F.relu(d.masked_fill(~same, -1).max(1).values - d.masked_fill(same, 9).min(1).values + margin).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=60)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="farreid-synth-") as tmp:
        root = Path(tmp) / "data"
        start = time.perf_counter()
        summary = generate(root, num_ids=args.ids, seed=args.seed)
        print(f"generated in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        gen_s = time.perf_counter() - start
        ds = build_dataset("detreidx", root)
        recipe = load_config("demo_tiny", ["data.workers=0", "data.test_frames=8"])
        cfg, size = recipe.data, tuple(recipe.model.image_size)
        untrained = evaluate(colour_descriptor, ds, cfg, size)
        model = SmallCNN(ds.num_train_pids)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
        loader = build_train_loader(ds.train, cfg, size, seed=args.seed)
        step, epoch, start = 0, 0, time.perf_counter()
        while step < args.steps:
            loader.set_epoch(epoch)
            for batch in loader:
                f, logits = model(batch["clip"])
                loss = F.cross_entropy(logits, batch["pid"], label_smoothing=0.1) + batch_hard_triplet(f, batch["pid"])
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                if step % 50 == 0:
                    print(f"step {step} loss {loss.item():.3f} {time.perf_counter() - start:.0f} s", file=sys.stderr)
                if step >= args.steps:
                    break
            epoch += 1
        train_s = time.perf_counter() - start
        model.eval()
        trained = evaluate(model.embed, ds, cfg, size)
    result = {
        "generate": {"ids": args.ids, "seconds": round(gen_s, 2), "frames": summary["frames_rendered"],
                     "tracklets": summary["tracklets"]},
        "untrained_colour_descriptor": untrained,
        "small_cnn": {"steps": args.steps, "epochs": epoch, "train_seconds": round(train_s, 1), **trained},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_data_synth.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
