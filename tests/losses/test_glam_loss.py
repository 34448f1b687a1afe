from __future__ import annotations

import math

import pytest
import torch

from monai_glam.losses import GLAMLoss, GLAMLossTerms
from monai_glam.utils.enums import LossTermKeys


def _pred(prob_global, prob_local, saliency_value=0.25, patch_value=0.5):
    return {
        "prob_global": torch.tensor(prob_global),
        "prob_local": torch.tensor(prob_local),
        "saliency_global": torch.full((2, 2, 4, 3), saliency_value),
        "patch_saliency": torch.full((2, 1, 2, 2, 2), patch_value),
        "saliency_global_flipped": torch.full((2, 2, 4, 3), saliency_value),
        "patch_saliency_flipped": torch.full((2, 1, 2, 2, 2), patch_value),
        "prob_global_erased": torch.tensor(prob_global) / 2,
        "prob_local_erased": torch.tensor(prob_local) / 2,
    }


def _bce(p, y):
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_terms_match_hand_computation():
    pred = _pred([[0.9, 0.2], [0.4, 0.7]], [[0.6, 0.5], [0.3, 0.8]])
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    terms = GLAMLoss().terms(pred, target)
    expected_global = ((_bce(0.9, 1) + _bce(0.2, 0)) + (_bce(0.4, 0) + _bce(0.7, 1))) / 2
    expected_local = ((_bce(0.6, 1) + _bce(0.5, 0)) + (_bce(0.3, 0) + _bce(0.8, 1))) / 2
    assert terms[LossTermKeys.BCE_GLOBAL].item() == pytest.approx(expected_global, rel=1e-5)
    assert terms[LossTermKeys.BCE_LOCAL].item() == pytest.approx(expected_local, rel=1e-5)
    assert terms[LossTermKeys.SPARSITY_GLOBAL].item() == pytest.approx(2 * 0.25)  # Σ over 2 classes
    assert terms[LossTermKeys.SPARSITY_LOCAL].item() == pytest.approx(2 * 0.5)


@pytest.mark.parametrize(
    ("weights", "expected_terms"),
    [
        ({}, set(LossTermKeys) - {"flip_consistency", "flip_consistency_local", "erasure_global", "erasure_local"}),
        (
            {
                "flip_consistency_weight": 0.5,
                "local_flip_consistency_weight": 0.5,
                "erasure_weight": 2.0,
                "local_erasure_weight": 0.5,
            },
            set(LossTermKeys),
        ),
        ({"local_bce_weight": 0.0, "local_sparsity_weight": 0.0}, {"bce_global", "sparsity_global"}),
        ({"global_bce_weight": 0.0, "global_sparsity_weight": 0.0}, {"bce_local", "sparsity_local"}),
    ],
)
def test_weighted_sum_and_zero_weight_terms(weights, expected_terms):
    loss = GLAMLoss(**{"global_sparsity_weight": 0.1, "local_sparsity_weight": 0.2, **weights})
    pred = _pred([[0.9, 0.2], [0.4, 0.7]], [[0.6, 0.5], [0.3, 0.8]])
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    terms = loss.terms(pred, target)
    assert set(terms) == expected_terms
    expected = sum(loss.weights[name] * value for name, value in terms.items())
    assert loss(pred, target).item() == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize(
    "target",
    [
        torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        {"label": torch.tensor([[1.0, 0.0], [0.0, 1.0]])},
        {
            "label": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
            "mask": torch.ones(2, 2, 8, 8),  # masks never enter the loss
            "mask_available": torch.tensor([[1.0, 0.0], [0.0, 0.0]]),
        },
    ],
    ids=["tensor", "label dict", "label dict with masks"],
)
def test_label_dict_target_equals_the_label_tensor(target):
    loss = GLAMLoss()
    pred = _pred([[0.9, 0.2], [0.4, 0.7]], [[0.6, 0.5], [0.3, 0.8]])
    reference = loss.terms(pred, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    terms = loss.terms(pred, target)
    assert list(terms) == [key for key in LossTermKeys if not key.startswith(("flip_consistency", "erasure"))]
    for name, value in reference.items():
        assert terms[name].item() == value.item()
    assert loss(pred, target).item() == pytest.approx(loss.combine(reference).item())


def test_label_dict_without_labels_is_an_error_unless_no_bce_term_needs_it():
    pred = _pred([[0.9, 0.2], [0.4, 0.7]], [[0.6, 0.5], [0.3, 0.8]])
    with pytest.raises(ValueError, match="no 'label' entry"):
        GLAMLoss()(pred, {"mask": torch.zeros(2, 2, 4, 4)})
    sparsity_only = GLAMLoss(global_bce_weight=0, local_bce_weight=0)
    assert sparsity_only(pred, {"mask": torch.zeros(2, 2, 4, 4)}).item() == pytest.approx(0.05 * 0.5 + 0.05 * 1.0)


def test_glam_loss_terms_alias_matches_loss_term_keys():
    assert tuple(LossTermKeys) == GLAMLossTerms.ALL
    assert GLAMLossTerms.BCE_GLOBAL is LossTermKeys.BCE_GLOBAL
    assert GLAMLossTerms.SPARSITY_LOCAL == "sparsity_local"


def test_global_only_prediction_is_enough_without_local_terms():
    loss = GLAMLoss(local_bce_weight=0, local_sparsity_weight=0)
    pred = {"prob_global": torch.tensor([[0.5, 0.5]]), "saliency_global": torch.zeros(1, 2, 3, 3)}
    assert loss(pred, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(2 * math.log(2), rel=1e-5)
    with pytest.raises(ValueError, match="no 'prob_local' entry"):
        GLAMLoss()(pred, torch.tensor([[1.0, 0.0]]))


def test_pos_weight_scales_positive_examples():
    pred = _pred([[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]])
    target = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    plain = GLAMLoss(local_bce_weight=0, global_sparsity_weight=0, local_sparsity_weight=0)
    weighted = GLAMLoss(local_bce_weight=0, global_sparsity_weight=0, local_sparsity_weight=0, pos_weight=(3.0, 1.0))
    # positives of class 0 count 3x: per-item sums (3+1)·ln2 and 2·ln2, mean 3·ln2.
    assert plain(pred, target).item() == pytest.approx(2 * math.log(2), rel=1e-5)
    assert weighted(pred, target).item() == pytest.approx(3 * math.log(2), rel=1e-5)


def test_loss_is_finite_at_saturated_probabilities_and_differentiable():
    prob = torch.tensor([[1.0, 0.0]], requires_grad=True)
    pred = {"prob_global": prob, "saliency_global": torch.zeros(1, 2, 2, 2)}
    loss = GLAMLoss(local_bce_weight=0, local_sparsity_weight=0)(pred, torch.tensor([[0.0, 1.0]]))
    assert torch.isfinite(loss)
    loss.backward()
    assert prob.grad is not None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"global_bce_weight": -1.0}, "bce_global"),
        ({"local_sparsity_weight": float("nan")}, "sparsity_local"),
        ({"pos_weight": (1.0, 0.0)}, "pos_weight"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GLAMLoss(**kwargs)


@pytest.mark.parametrize(
    ("pred", "target", "match"),
    [
        ({"prob_global": torch.rand(2, 2)}, torch.ones(2, 3), r"\(N, C\)"),
        ({"prob_global": torch.rand(2)}, torch.ones(2), r"\(N, C\)"),
        (torch.rand(2, 2), torch.ones(2, 2), "output dict"),
    ],
)
def test_rejects_bad_shapes(pred, target, match):
    loss = GLAMLoss(local_bce_weight=0, global_sparsity_weight=0, local_sparsity_weight=0)
    with pytest.raises(ValueError, match=match):
        loss(pred, target)


def test_all_zero_weights_is_an_error():
    loss = GLAMLoss(0, 0, 0, 0)
    with pytest.raises(ValueError, match="every GLAMLoss weight is zero"):
        loss(_pred([[0.5, 0.5]], [[0.5, 0.5]]), torch.ones(1, 2))


def test_flip_consistency_is_the_mean_absolute_difference_summed_over_classes():
    saliency = torch.zeros(2, 2, 4, 3)
    saliency[:, 0, 1, 1] = 0.6  # benign peak one cell away from where the flipped pass put it
    flipped = torch.zeros(2, 2, 4, 3)
    flipped[:, 0, 2, 1] = 0.6
    pred = {"saliency_global": saliency, "saliency_global_flipped": flipped}
    loss = GLAMLoss(
        global_bce_weight=0,
        local_bce_weight=0,
        global_sparsity_weight=0,
        local_sparsity_weight=0,
        flip_consistency_weight=2.0,
    )
    assert loss.uses_flipped_global_map and not GLAMLoss().uses_flipped_global_map
    terms = loss.terms(pred, torch.zeros(2, 2))
    assert list(terms) == [LossTermKeys.FLIP_CONSISTENCY]
    assert terms[LossTermKeys.FLIP_CONSISTENCY].item() == pytest.approx(2 * 0.6 / 12)  # two cells of 12, class 0
    assert loss(pred, torch.zeros(2, 2)).item() == pytest.approx(2.0 * 2 * 0.6 / 12)
    pred["saliency_global_flipped"] = saliency.clone()
    assert loss(pred, torch.zeros(2, 2)).item() == 0.0
    with pytest.raises(ValueError, match="no 'saliency_global_flipped' entry"):
        loss({"saliency_global": saliency}, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="flip_consistency must be >= 0"):
        GLAMLoss(flip_consistency_weight=-1.0)


def test_local_flip_consistency_compares_each_patch_map_with_its_flipped_pass():
    maps = torch.zeros(1, 2, 2, 4, 4)  # (N, K, C, s, s)
    maps[0, 1, 1, 0, 0] = 0.8
    pred = {"patch_saliency": maps, "patch_saliency_flipped": torch.zeros_like(maps)}
    loss = GLAMLoss(
        global_bce_weight=0,
        local_bce_weight=0,
        global_sparsity_weight=0,
        local_sparsity_weight=0,
        local_flip_consistency_weight=1.0,
    )
    assert loss.uses_flipped_patch_maps and not loss.uses_flipped_global_map
    terms = loss.terms(pred, torch.zeros(1, 2))
    assert list(terms) == [LossTermKeys.FLIP_CONSISTENCY_LOCAL]
    assert terms[LossTermKeys.FLIP_CONSISTENCY_LOCAL].item() == pytest.approx(0.8 / 32)  # class 1: one cell of 2 x 16


@pytest.mark.parametrize(
    ("weights", "key", "term"),
    [
        ({"erasure_weight": 1.0}, "prob_global_erased", LossTermKeys.ERASURE_GLOBAL),
        ({"local_erasure_weight": 1.0}, "prob_local_erased", LossTermKeys.ERASURE_LOCAL),
    ],
)
def test_erasure_terms_penalise_positive_labels_only(weights, key, term):
    loss = GLAMLoss(**weights)
    assert loss.uses_erased_global_score == (term == LossTermKeys.ERASURE_GLOBAL)
    assert loss.uses_erased_local_score == (term == LossTermKeys.ERASURE_LOCAL)
    pred = _pred([[0.9, 0.2], [0.4, 0.7]], [[0.6, 0.5], [0.3, 0.8]])
    pred[key] = torch.tensor([[0.3, 0.9], [0.8, 0.1]])
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # image 0 is benign: −log(1 − 0.3); image 1 malignant: −log(1 − 0.1); the high negative-class scores count not
    expected = (-math.log(0.7) - math.log(0.9)) / 2
    assert loss.terms(pred, target)[term].item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match=f"no '{key}' entry"):
        loss({k: v for k, v in pred.items() if k != key}, target)
    with pytest.raises(ValueError, match="must both be"):
        loss({**pred, key: torch.zeros(2, 3)}, target)
    with pytest.raises(ValueError, match="must be >= 0"):
        GLAMLoss(**{name: -1.0 for name in weights})
