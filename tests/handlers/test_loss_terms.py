from __future__ import annotations

import math

import pytest
import torch

from monai_glam.handlers import LossTermsHandler, training_scalars
from monai_glam.losses import GLAMLoss
from monai_glam.utils.enums import LossTermKeys
from tests.handlers.engine_utils import replay_engine

LABELS = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
PRED = {
    "prob_global": torch.tensor([[0.9, 0.2], [0.4, 0.7]]),
    "prob_local": torch.tensor([[0.6, 0.5], [0.3, 0.8]]),
    "saliency_global": torch.full((2, 2, 4, 3), 0.25),
    "patch_saliency": torch.full((2, 1, 2, 2, 2), 0.5),
    "saliency": torch.full((2, 2, 8, 8), 0.1),
}
LABEL_DICT = {"label": LABELS, "mask": torch.zeros(2, 2, 8, 8), "mask_available": torch.zeros(2, 2)}


def _bce(p: float, y: float) -> float:
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


HAND = {
    "loss_bce_global": ((_bce(0.9, 1) + _bce(0.2, 0)) + (_bce(0.4, 0) + _bce(0.7, 1))) / 2,
    "loss_bce_local": ((_bce(0.6, 1) + _bce(0.5, 0)) + (_bce(0.3, 0) + _bce(0.8, 1))) / 2,
    "loss_sparsity_global": 2 * 0.25,
    "loss_sparsity_local": 2 * 0.5,
}


def _run(handler: LossTermsHandler, label, iterations: int = 2) -> list[dict]:
    outputs = [{"image": torch.zeros(2, 1, 8, 8), "pred": PRED, "label": label, "loss": torch.tensor(1.5)}]
    outputs = [dict(outputs[0]) for _ in range(iterations)]
    engine = replay_engine(outputs, fire_loss_completed=True)
    handler.attach(engine)
    engine.run(range(iterations), max_epochs=1)
    return outputs


@pytest.mark.parametrize(
    ("case", "loss_kwargs", "label", "expected_terms"),
    [
        ("label dict", {}, LABEL_DICT, set(HAND)),
        ("plain label tensor", {}, LABELS, set(HAND)),
        (
            "global stage",
            {"local_bce_weight": 0.0, "local_sparsity_weight": 0.0},
            LABEL_DICT,
            {"loss_bce_global", "loss_sparsity_global"},
        ),
        (
            "sparsity only: labels unused",
            {"global_bce_weight": 0.0, "local_bce_weight": 0.0},
            {},
            {"loss_sparsity_global", "loss_sparsity_local"},
        ),
    ],
)
def test_terms_and_lr_are_added_to_every_iteration_output(case, loss_kwargs, label, expected_terms):
    loss = GLAMLoss(**loss_kwargs)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.125)
    outputs = _run(LossTermsHandler(loss, optimizer), label)
    reference = loss.terms(PRED, LABELS)
    for output in outputs:
        added = {key for key in output if key.startswith("loss_")}
        assert added == expected_terms, case
        for key in added:
            assert output[key].item() == pytest.approx(HAND[key], rel=1e-5), (case, key)
            assert output[key].item() == pytest.approx(reference[LossTermKeys(key[len("loss_") :])].item())
            assert not output[key].requires_grad
        assert output["lr"].item() == 0.125


def test_without_optimizer_no_lr_is_logged():
    outputs = _run(LossTermsHandler(GLAMLoss()), LABEL_DICT, iterations=1)
    assert "lr" not in outputs[0]
    assert outputs[0]["loss_bce_global"].item() == pytest.approx(HAND["loss_bce_global"], rel=1e-5)


def test_training_scalars_returns_floats_for_batched_and_decollated_outputs():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.125)
    output = _run(LossTermsHandler(GLAMLoss(), optimizer), LABEL_DICT, iterations=1)[0]
    expected = {"loss": 1.5, "lr": 0.125, **HAND}
    scalars = training_scalars(output)
    assert set(scalars) == set(expected)
    for key, value in expected.items():
        assert scalars[key] == pytest.approx(value, rel=1e-5), key
    assert training_scalars([output, output]) == scalars


def test_decollated_output_is_rejected_with_a_clear_error():
    engine = replay_engine([[{"pred": PRED, "label": LABELS}]], fire_loss_completed=True)
    LossTermsHandler(GLAMLoss()).attach(engine)
    with pytest.raises(ValueError, match="batched output dict, got list"):
        engine.run(range(1), max_epochs=1)
