import math

import pytest
import torch
import torch.nn.functional as F

from engine_toys import ToyOutput
from farreid.config.schema import LossConfig
from farreid.engine.losses import (
    ReIDCriterion,
    batch_hard_triplet,
    image_to_text_ce,
    label_smoothed_ce,
    pairwise_distance,
    prompt_loss,
    supcon,
)


def test_label_smoothed_ce_matches_hand_computation():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    target = torch.tensor([0])
    logp = F.log_softmax(logits, dim=1)[0]
    eps = 0.1
    expected = -((1 - eps) * logp[0] + eps / 3 * logp.sum())
    assert torch.allclose(label_smoothed_ce(logits, target, eps), expected)
    assert torch.allclose(label_smoothed_ce(logits, target, 0.0), -logp[0])


def test_pairwise_distances():
    x = torch.tensor([[3.0, 0.0], [0.0, 4.0], [3.0, 0.0]])
    eu = pairwise_distance(x, "euclidean")
    assert torch.allclose(eu, torch.tensor([[0.0, 5.0, 0.0], [5.0, 0.0, 5.0], [0.0, 5.0, 0.0]]), atol=1e-5)
    cos = pairwise_distance(x, "cosine")
    assert torch.allclose(cos, torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), atol=1e-6)
    with pytest.raises(ValueError, match="cosine"):
        pairwise_distance(x, "manhattan")


def test_batch_hard_triplet_hand_case():
    # 1-D points: id 0 at 0 and 1, id 1 at 3 and 7 (Euclidean)
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    pids = torch.tensor([0, 0, 1, 1])
    # hardest positive / nearest negative: a0 1/3, a1 1/2, a2 4/2, a3 4/6
    margin = 0.5
    expected = (max(0, 1 - 3 + margin) + max(0, 1 - 2 + margin) + max(0, 4 - 2 + margin) + max(0, 4 - 6 + margin)) / 4
    assert math.isclose(float(batch_hard_triplet(x, pids, margin, "euclidean")), expected, rel_tol=1e-5)


def test_batch_hard_triplet_matches_brute_force_and_edge_cases():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(8, 5, generator=g)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 2, 3])
    for metric in ("cosine", "euclidean"):
        d = pairwise_distance(x, metric)
        terms = []
        for a in range(8):
            pos = max(d[a, j] for j in range(8) if pids[j] == pids[a])
            neg = min(d[a, j] for j in range(8) if pids[j] != pids[a])
            terms.append(F.relu(pos - neg + 0.3))
        assert torch.allclose(batch_hard_triplet(x, pids, 0.3, metric), torch.stack(terms).mean(), atol=1e-6)
    one_id = x.clone().requires_grad_(True)
    loss = batch_hard_triplet(one_id, torch.zeros(8, dtype=torch.long))
    assert float(loss.detach()) == 0.0
    loss.backward()  # still in the graph: DDP sees every parameter used
    assert one_id.grad is not None


def test_supcon_matches_definition():
    g = torch.Generator().manual_seed(0)
    a, c = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    la = torch.tensor([0, 0, 1, 1, 2, 2])
    lc = torch.tensor([0, 1, 1, 2, 2, 0])
    logits = a @ c.t()
    expected = []
    for i in range(6):
        logp = logits[i] - torch.logsumexp(logits[i], 0)
        pos = [j for j in range(6) if lc[j] == la[i]]
        expected.append(-sum(logp[j] for j in pos) / len(pos))
    assert torch.allclose(supcon(a, c, la, lc), torch.stack(expected).mean(), atol=1e-6)
    # temperature scales the logits
    assert torch.allclose(supcon(a, c, la, lc, temperature=0.5), supcon(2 * a, c, la, lc), atol=1e-6)


def test_supcon_two_by_two_hand_value():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    # each anchor: logits [1, 0] -> -log(e / (e + 1))
    assert math.isclose(float(supcon(a, a, labels, labels)), math.log(1 + math.exp(-1)), rel_tol=1e-6)


def test_image_to_text_ce_uses_text_table_as_classifier():
    image = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    pids = torch.tensor([0, 1])
    assert torch.allclose(image_to_text_ce(image, text, pids, 0.0), F.cross_entropy(image @ text.t(), pids))


def _output(b=8, classes=4, requires_grad=True):
    g = torch.Generator().manual_seed(1)
    make = lambda *s: torch.randn(*s, generator=g).requires_grad_(requires_grad)  # noqa: E731
    return ToyOutput(logits=[make(b, classes), make(b, classes)], triplet_features=[make(b, 6), make(b, 6), make(b, 3)],
                     projected=make(b, 3))


def test_reid_loss_combines_weighted_terms():
    out, pids = _output(), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    text = torch.randn(4, 3)
    loss = ReIDCriterion(LossConfig(id_weight=0.25, triplet_weight=1.0, i2t_weight=0.5, supcon_i2t_weight=1.0, supcon_t2i_weight=2.0))
    terms = loss(out, pids, text)
    assert set(terms) == {"id", "triplet", "i2t", "supcon_i2t", "supcon_t2i", "loss"}
    expected_id = 0.25 * sum(label_smoothed_ce(z, pids, 0.1) for z in out.logits)
    assert torch.allclose(terms["id"], expected_id)
    assert torch.allclose(terms["supcon_t2i"], 2.0 * supcon(text[pids], out.projected, pids, pids))
    assert torch.allclose(terms["loss"], sum(v for k, v in terms.items() if k != "loss"))


def test_reid_loss_zero_weights_keep_every_output_in_the_graph():
    out, pids = _output(), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    terms = ReIDCriterion(LossConfig(id_weight=0.0, i2t_weight=0.0, supcon_i2t_weight=0.0, supcon_t2i_weight=0.0))(out, pids)
    assert "i2t" not in terms and float(terms["id"].detach()) == 0.0
    terms["loss"].backward()
    assert all(z.grad is not None for z in out.logits)


def test_reid_loss_text_terms_need_text_features():
    with pytest.raises(ValueError, match="stage 1"):
        ReIDCriterion(LossConfig())(_output(), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), None)


def test_prompt_loss_is_symmetric_supcon():
    img, txt, labels = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    terms = prompt_loss(img, txt, labels)
    assert torch.allclose(terms["loss"], supcon(img, txt, labels, labels) + supcon(txt, img, labels, labels))
