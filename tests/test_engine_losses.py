import math
from dataclasses import fields

import pytest
import torch
import torch.nn.functional as F

from engine_toys import ToyOutput
from farreid.config.schema import LossConfig
from farreid.engine.losses import (
    TERMS,
    ReIDCriterion,
    batch_hard_triplet,
    centre_loss,
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


def test_centre_loss_matches_the_direct_formula():
    g = torch.Generator().manual_seed(5)
    features, centres = torch.randn(6, 4, generator=g), torch.randn(3, 4, generator=g)
    pids = torch.tensor([0, 2, 2, 1, 0, 1])
    per_sample = [0.5 * sum((features[i, d] - centres[pids[i], d]) ** 2 for d in range(4)) for i in range(6)]
    assert torch.allclose(centre_loss(features, centres, pids), torch.stack(per_sample).mean(), atol=1e-6)
    assert float(centre_loss(centres[pids], centres, pids)) == 0.0  # features on their centres


def test_the_default_criterion_has_no_centre_term_and_no_learned_state():
    criterion = ReIDCriterion(LossConfig(), num_classes=4, feature_dims=(6, 6, 3))
    assert list(criterion.terms) == ["id", "triplet", "i2t", "supcon_i2t", "supcon_t2i"]
    assert criterion.state_dict() == {} and not list(criterion.parameters()) and criterion.param_groups(0.1) == []


def test_a_zero_weight_term_is_not_built_unless_it_keeps_the_graph():
    criterion = ReIDCriterion(LossConfig(id_weight=0.0, triplet_weight=0.0, supcon_t2i_weight=0.0))
    assert list(criterion.terms) == ["id", "triplet", "i2t", "supcon_i2t"]
    terms = criterion(_output(), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), torch.randn(4, 3))
    assert list(terms) == ["id", "triplet", "i2t", "supcon_i2t", "loss"] and float(terms["triplet"].detach()) == 0.0
    assert not ReIDCriterion(LossConfig(i2t_weight=0.0, supcon_i2t_weight=0.0, supcon_t2i_weight=0.0)).uses_text


def test_the_centre_term_is_weighted_and_its_centres_get_gradients():
    out, pids = _output(), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    config = LossConfig(i2t_weight=0.0, supcon_i2t_weight=0.0, supcon_t2i_weight=0.0, centre_weight=0.05, centre_lr_mult=3.0)
    criterion = ReIDCriterion(config, num_classes=4, feature_dims=(6, 6, 3))
    with torch.no_grad():
        for c in criterion.terms["centre"].centres:
            c.normal_()
    centres = list(criterion.terms["centre"].centres)
    assert [tuple(c.shape) for c in centres] == [(4, 6), (4, 6), (4, 3)]
    terms = criterion(out, pids)
    assert list(terms) == ["id", "triplet", "centre", "loss"]
    expected = 0.05 * sum(centre_loss(f, c, pids) for f, c in zip(out.triplet_features, centres))
    assert torch.allclose(terms["centre"], expected)
    assert torch.allclose(terms["loss"], terms["id"] + terms["triplet"] + terms["centre"])
    terms["loss"].backward()
    for f, c in zip(out.triplet_features, centres):  # d/dc_k = -weight * sum over k's samples of (x - c_k) / B
        for k in range(4):
            mine = pids == k
            torch.testing.assert_close(c.grad[k], -0.05 * (f[mine] - c[k]).sum(0).detach() / len(pids))
    (group,) = criterion.param_groups(0.01)
    assert group["name"] == "loss.centre" and group["params"] == centres
    assert math.isclose(group["lr"], 0.03) and group["weight_decay"] == 0.0
    assert list(criterion.state_dict()) == ["terms.centre.centres.0", "terms.centre.centres.1", "terms.centre.centres.2"]


def test_the_centre_term_needs_the_feature_shapes():
    with pytest.raises(ValueError, match="number of identities"):
        ReIDCriterion(LossConfig(centre_weight=1.0))
    with pytest.raises(ValueError):  # one table of centres a triplet feature
        ReIDCriterion(LossConfig(centre_weight=1.0), num_classes=4, feature_dims=(6, 6))(_output(), torch.zeros(8, dtype=torch.long))


def test_every_loss_weight_of_the_config_is_one_term():
    weights = [f.name for f in fields(LossConfig) if f.name.endswith("_weight")]
    assert sorted(term.weight_key for term in TERMS) == sorted(weights)
    assert len({term.name for term in TERMS}) == len(TERMS)


def test_prompt_loss_is_symmetric_supcon():
    img, txt, labels = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    terms = prompt_loss(img, txt, labels)
    assert torch.allclose(terms["loss"], supcon(img, txt, labels, labels) + supcon(txt, img, labels, labels))
