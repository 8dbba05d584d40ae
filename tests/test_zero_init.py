"""ZerO initialization (Zhao et al. 2022): Algorithm 1's matrices, the conv rule, the rank
property the Hadamard step exists for, and a run end to end."""

import math

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from benchmarks.studies import zero_vs_kaiming
from inits import NotApplicable, Orthogonal, ZerO, weight_targets, zero_
from inits.zero import hadamard, hadamard_scale
from models import CNN, MLP, LSTMClassifier, ResNet
from train import train


def test_square_is_the_identity_and_narrowing_a_partial_identity() -> None:
    torch.testing.assert_close(zero_(torch.randn(7, 7)), torch.eye(7))
    narrow = zero_(torch.randn(5, 12))
    torch.testing.assert_close(narrow[:, :5], torch.eye(5))
    assert torch.all(narrow[:, 5:] == 0)


@pytest.mark.parametrize(("out", "fan"), [(32, 8), (20, 8), (3, 2), (100, 37)])
def test_widening_is_the_scaled_hadamard(out: int, fan: int) -> None:
    w = zero_(torch.empty(out, fan, dtype=torch.float64))
    m = math.ceil(math.log2(out))
    c = 2 ** (-(m - 1) / 2)
    assert hadamard_scale(out) == c
    assert set(w.abs().unique().tolist()) == {c}  # only +-c: no zero row, no zero unit
    torch.testing.assert_close(w, c * hadamard(m, torch.float64)[:out, :fan])
    assert torch.linalg.matrix_rank(w).item() == fan


def test_hadamard_columns_are_orthogonal_with_the_papers_scale() -> None:
    h = hadamard(5)
    torch.testing.assert_close(h @ h.T, 32 * torch.eye(32))
    w = zero_(torch.empty(32, 8))  # out a power of 2: every row kept, c^2 2^m = 2
    torch.testing.assert_close(w.T @ w, 2 * torch.eye(8))


def test_conv_gets_the_matrix_at_the_kernel_centre() -> None:
    for shape in [(16, 16, 3, 3), (8, 16, 5, 5), (32, 16, 3, 3), (6, 4, 3)]:
        w = zero_(torch.randn(shape))
        centre = (slice(None), slice(None), *(k // 2 for k in shape[2:]))
        torch.testing.assert_close(w[centre], zero_(torch.empty(shape[:2])))
        w[centre] = 0
        assert torch.all(w == 0), shape


@pytest.mark.parametrize(
    "model",
    [MLP((1, 28, 28), 10), CNN((3, 32, 32), 10), ResNet((1, 28, 28), 10, depth=8)],
    ids=lambda m: type(m).__name__,
)
def test_every_weight_is_zeros_and_ones_or_hadamard_and_seed_free(model: nn.Module) -> None:
    ZerO()(model)
    first = {n: p.clone() for n, p in model.named_parameters()}
    torch.manual_seed(123)
    ZerO()(model)
    for target in weight_targets(model):
        w, out = target.tensor, target.tensor.shape[0]
        allowed = (
            {0.0, torch.tensor(hadamard_scale(out)).item()} if out > w.shape[1] else {0.0, 1.0}
        )
        assert set(w.abs().unique().tolist()) <= allowed, target.name
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, first[name])  # deterministic: the seed does not matter
        if name.endswith("bias"):
            assert torch.all(p == 0), name


def _hidden_ranks(model: MLP, x: torch.Tensor) -> list[int]:
    ranks = []
    for layer in model.layers:
        x = layer(x)
        ranks.append(torch.linalg.matrix_rank(x).item())
    return ranks


def _partial_identity(model: nn.Module) -> None:
    """The naive rule the paper improves on: (I, 0) or (I; 0) for every shape."""
    for target in weight_targets(model):
        nn.init.eye_(target.tensor)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)


def test_hadamard_avoids_the_rank_collapse_of_a_partial_identity() -> None:
    """The paper's sec. 3 claim, on a ReLU MLP 20 -> 32 -> 32 -> 32 -> 4: when a layer widens, a
    partial identity gives the new 12 units a zero pre-activation, so every hidden layer has the
    input's rank (20), and under ReLU those units get no gradient, ever: the first hidden
    layer is still rank 20 after 30 SGD steps. ZerO's Hadamard rows make it full rank, 32, at
    init and after. (When out > 2^ceil(log2(in)), e.g. 8 -> 32, Sylvester rows repeat over the
    first ``in`` columns: groups of twin units, rank 8 at init, see ``zero_``.)"""
    x, y = torch.randn(256, 20), torch.randint(0, 4, (256,))
    ranks = {}
    for name, init in [("partial identity", _partial_identity), ("ZerO", ZerO())]:
        model = MLP((20,), 4, depth=3, width=32)
        init(model)
        at_init = _hidden_ranks(model, x)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(30):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        with torch.no_grad():
            ranks[name] = at_init, _hidden_ranks(model, x)[0]
    assert ranks["partial identity"] == ([20, 20, 20], 20)
    assert ranks["ZerO"] == ([32, 32, 32], 32)


def test_partial_identity_is_eye_where_zero_uses_the_hadamard() -> None:
    model = MLP((784,), 10, depth=2, width=1024)
    zero_vs_kaiming.PartialIdentity()(model)
    widening, square, head = (t.tensor for t in weight_targets(model))
    assert torch.equal(widening, torch.eye(1024, 784))  # ZerO: a Hadamard here
    assert not torch.equal(zero_(torch.empty(1024, 784)), widening)
    assert torch.equal(square, torch.eye(1024)) and torch.equal(head, torch.eye(10, 1024))


def test_training_starts_every_weight_gets_a_gradient() -> None:
    """The classifier is a partial identity too, not zero; with identity hidden layers every
    weight still gets a gradient at step 0."""
    model = MLP((1, 28, 28), 10)
    ZerO()(model)
    loss = nn.functional.cross_entropy(model(torch.randn(64, 1, 28, 28)), torch.arange(64) % 10)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad.abs().sum() > 0, name


def test_recurrent_layers_are_refused_by_name_or_use_the_fallback() -> None:
    model = LSTMClassifier((1, 28, 28), 10)
    with pytest.raises(NotApplicable, match=r"does not apply to 'lstm.weight_ih_l0\[input\]'"):
        ZerO()(model)
    ZerO(fallback=Orthogonal(gain=1.0))(model)
    torch.testing.assert_close(model.head.weight, torch.eye(10, model.head.weight.shape[1]))


def test_zero_needs_a_matrix() -> None:
    with pytest.raises(ValueError, match=r"zero_ needs a matrix or conv kernel.*\(5,\)"):
        zero_(torch.empty(5))


@pytest.mark.parametrize(
    "overrides",
    [["init=zerO"], pytest.param(["init=zerO", "model=cnn"], marks=pytest.mark.slow)],
    ids=str,
)
def test_zero_trains_end_to_end(make_cfg, overrides: list[str]) -> None:
    cfg = make_cfg(*overrides)
    assert isinstance(instantiate(cfg.init), ZerO)
    record = train(cfg)
    assert record.status == "finished" and math.isfinite(record.metrics["train/loss_epoch"])
