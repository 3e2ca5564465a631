"""torchreid's pure-Python `evaluate_rank` and `re_ranking`, loaded without its package `__init__`.

`import torchreid` pulls in torchvision, cv2, scipy and more; the two oracle files need only numpy, so they are
executed directly from the installed package (see the dependency study, section 5).
"""

from __future__ import annotations

import importlib.util
import os
import warnings

import pytest


def _load(name: str, base: str, *parts: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(base, *parts))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torchreid_oracles():
    """(rank module, rerank module), or skip the calling test when torchreid is not installed."""
    spec = importlib.util.find_spec("torchreid")
    if spec is None or spec.origin is None:
        pytest.skip("torchreid is not installed")
    base = os.path.join(os.path.dirname(spec.origin), "reid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rank = _load("_tr_rank", base, "metrics", "rank.py")
        rerank = _load("_tr_rerank", base, "utils", "rerank.py")
    return rank, rerank
