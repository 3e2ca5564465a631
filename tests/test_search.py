import pytest
import torch

from farreid.errors import FarreidError
from farreid.inference.retrieval import topk_search


def _unit(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x / x.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("backend", ["torch", "faiss", "auto"])
@pytest.mark.parametrize("chunk", [7, 100, 1000])
def test_streamed_topk_equals_dense(backend, chunk):
    q, g = _unit(5, 32, 0), _unit(300, 32, 1)
    ref = torch.topk(q @ g.T, 10, dim=1)
    scores, index = topk_search(q, g.split(chunk), k=10, backend=backend)
    assert torch.equal(index, ref.indices)
    assert torch.allclose(scores, ref.values, atol=1e-5)


def test_k_larger_than_gallery():
    scores, index = topk_search(_unit(2, 8, 0), [_unit(3, 8, 1)], k=10, backend="torch")
    assert index.shape == (2, 3) and sorted(index[0].tolist()) == [0, 1, 2]


def test_bad_shapes():
    with pytest.raises(FarreidError, match="does not match query dimension 8"):
        topk_search(_unit(2, 8, 0), [_unit(3, 9, 1)])
    with pytest.raises(FarreidError, match="gallery is empty"):
        topk_search(_unit(2, 8, 0), [])
    with pytest.raises(FarreidError, match="backend must be"):
        topk_search(_unit(2, 8, 0), [_unit(3, 8, 1)], backend="annoy")
