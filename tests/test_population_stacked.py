"""The stacked model of a population computes, for each member, what the member computes alone:
outputs, gradients and BatchNorm statistics, in train and eval mode, and a NaN in one member
stays in that member."""

import copy
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inits import Fixup, ReZero, SkipInit, VarianceScaling, apply_init
from models import CNN, MLP, GRUClassifier, LSTMClassifier, ResNet, RNNClassifier
from population.stacked import NotStackable, stack, unstackable
from population.stacked_layers import Stacked, StackedConv2d

K, B, SHAPE = 3, 4, (1, 28, 28)
TOL = {"rtol": 1e-5, "atol": 1e-5}  # float32: ~100 ulps of O(1) logits after BatchNorms


def kaiming() -> VarianceScaling:
    return VarianceScaling(mode="fan_in")


def xavier() -> VarianceScaling:
    return VarianceScaling(mode="fan_avg", gain=1.0)


def mlp(**kw: str) -> Callable[[], nn.Module]:
    return lambda: MLP(SHAPE, 10, depth=2, width=16, **kw)


def cnn(norm: str) -> Callable[[], nn.Module]:
    return lambda: CNN(SHAPE, 10, channels=(4, 8), hidden=16, norm=norm)


def resnet(norm: str) -> Callable[[], nn.Module]:
    return lambda: ResNet(SHAPE, 10, depth=8, width=4, norm=norm)


ACTIVATIONS = ("relu", "tanh", "gelu", "selu", "leaky_relu")
NORMS = ("none", "layernorm", "batchnorm")
# (model, the K members' inits, add noise to every parameter after the init): the residual
# scalars start equal in every member (0 and 1), so without noise a stacked copy applying member
# 0's to all would pass.
CASES = {
    **{
        f"mlp-{a}-{n}": (mlp(activation=a, norm=n), [kaiming, xavier, None], False)
        for a in ACTIVATIONS
        for n in NORMS
    },
    **{f"cnn-{n}": (cnn(n), [kaiming, xavier, None], False) for n in NORMS},
    **{f"resnet-{n}": (resnet(n), [kaiming, xavier, None], False) for n in NORMS},
    "resnet-fixup": (resnet("none"), [Fixup] * K, True),
    "resnet-rezero-batchnorm": (resnet("batchnorm"), [ReZero] * K, True),
    "resnet-skipinit": (resnet("none"), [SkipInit] * K, True),
}


def members(case: str) -> list[nn.Module]:
    """K members of ``case``, each with its own seed and init."""
    make, inits, noise = CASES[case]
    nets = []
    for seed, init in enumerate(inits):
        torch.manual_seed(seed)
        net = make()
        if init is not None:
            apply_init(init(), net, torch.randn(B, *SHAPE))
        if noise:
            with torch.no_grad():
                for p in net.parameters():
                    p.add_(0.1 * torch.randn_like(p))
        nets.append(net)
    return nets


def batches() -> tuple[Tensor, Tensor]:
    """Each member's own batch [K, B, ...], each from another distribution, so that statistics
    pooled over members would differ from each member's own."""
    torch.manual_seed(100)
    scale = torch.tensor([1.0, 3.0, 0.5]).view(K, 1, 1, 1, 1)
    x = torch.randn(K, B, *SHAPE) * scale + scale
    return x, torch.randint(0, 10, (K, B))


def losses(out: Tensor, y: Tensor) -> Tensor:
    """Each member's mean cross-entropy, [K]; their sum is what a population backpropagates."""
    return F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(K, B).mean(1)


def run_alone(twins: list[nn.Module], x: Tensor, y: Tensor) -> Tensor:
    """Each member's own forward and backward, outputs [K, B, classes]."""
    out = torch.stack([twin(x_k) for twin, x_k in zip(twins, x)])
    losses(out, y).sum().backward()
    return out


def run_stacked(net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    out = net(x.flatten(0, 1)).unflatten(0, (K, B))
    losses(out, y).sum().backward()
    return out


def assert_same_buffers(nets: list[nn.Module], twins: list[nn.Module], which: list[int]) -> None:
    """Members ``which``: equal buffers (running statistics, batch counts)."""
    for k in which:
        for (name, buf), twin_buf in zip(nets[k].named_buffers(), twins[k].buffers()):
            torch.testing.assert_close(buf, twin_buf, **TOL, msg=f"member {k} {name}")


def assert_same_state(nets: list[nn.Module], twins: list[nn.Module], which: list[int]) -> None:
    """Members ``which``: equal gradients and buffers."""
    assert_same_buffers(nets, twins, which)
    for k in which:
        grads = {n: p.grad for n, p in nets[k].named_parameters()}
        twin_grads = {n: p.grad for n, p in twins[k].named_parameters()}
        assert set(grads) == set(twin_grads)
        for name, grad in twin_grads.items():
            # float32 rounding of a sum grows with its terms: atol relative to the largest
            atol = max(TOL["atol"], 1e-5 * grad.abs().max().item())
            torch.testing.assert_close(
                grads[name], grad, rtol=TOL["rtol"], atol=atol, msg=f"member {k} {name}.grad"
            )


@pytest.mark.parametrize("case", CASES)
def test_stacked_model_computes_each_members_own_outputs_grads_and_statistics(case: str) -> None:
    assert_stacked_is_each_member(case)


@pytest.mark.parametrize("case", ["cnn-batchnorm", "cnn-layernorm", "resnet-fixup"])
def test_the_grouped_convolution_too(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path a GPU takes: one grouped convolution for all members."""
    monkeypatch.setattr(StackedConv2d, "grouped_on_cpu", True)
    assert_stacked_is_each_member(case)
    assert_nan_stays_in_its_member(case)


def assert_stacked_is_each_member(case: str) -> None:
    nets = members(case)
    twins = copy.deepcopy(nets)
    net = stack(nets)
    assert not list(net.parameters()) and not list(net.buffers())
    x, y = batches()
    torch.testing.assert_close(run_stacked(net, x, y), run_alone(twins, x, y), **TOL)
    assert_same_state(nets, twins, list(range(K)))
    # eval mode: BatchNorm's running statistics, now each member's own, replace batch ones
    net.eval()
    for twin in twins:
        twin.eval()
    with torch.no_grad():
        alone = torch.stack([twin(x_k) for twin, x_k in zip(twins, x)])
        torch.testing.assert_close(net(x.flatten(0, 1)).unflatten(0, (K, B)), alone, **TOL)


@pytest.mark.parametrize("case", ["mlp-relu-batchnorm", "cnn-batchnorm", "resnet-batchnorm"])
def test_batchnorm_momentum_none_keeps_each_members_cumulative_average(case: str) -> None:
    nets = members(case)
    for net in nets:
        for bn in (m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
            bn.momentum = None
    bns = [m for m in nets[1].modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    bns[0].num_batches_tracked.fill_(4)  # its average weighs the next batch 1/5, the others 1/1
    twins = copy.deepcopy(nets)
    net = stack(nets)
    x, y = batches()
    for _ in range(2):
        net(x.flatten(0, 1))
        for twin, x_k in zip(twins, x):
            twin(x_k)
    assert_same_buffers(nets, twins, list(range(K)))


@pytest.mark.parametrize("case", ["mlp-tanh-batchnorm", "cnn-layernorm", "resnet-rezero-batchnorm"])
def test_hooks_on_stacked_modules_see_every_members_rows(case: str) -> None:
    nets = members(case)
    twins = copy.deepcopy(nets)
    net = stack(nets)
    seen: dict[str, Tensor] = {}
    alone: dict[str, list[Tensor]] = {}
    stacked = {name: m for name, m in net.named_modules() if isinstance(m, Stacked)}
    for name, module in stacked.items():
        module.register_forward_hook(lambda m, i, o, name=name: seen.update({name: o.clone()}))
        for twin in twins:
            twin.get_submodule(name).register_forward_hook(
                lambda m, i, o, name=name: alone.setdefault(name, []).append(o.clone())
            )
    x, _ = batches()
    net(x.flatten(0, 1))
    for twin, x_k in zip(twins, x):
        twin(x_k)
    assert stacked and set(seen) == set(stacked)
    for name, out in seen.items():
        assert out.shape[0] == K * B
        torch.testing.assert_close(out.unflatten(0, (K, B)), torch.stack(alone[name]), **TOL)


@pytest.mark.parametrize(
    "case", ["mlp-relu-batchnorm", "mlp-gelu-layernorm", "cnn-batchnorm", "resnet-batchnorm"]
)
def test_a_nan_in_one_member_leaves_the_others_unchanged(case: str) -> None:
    assert_nan_stays_in_its_member(case)


def assert_nan_stays_in_its_member(case: str) -> None:
    nets = members(case)
    with torch.no_grad():
        next(nets[1].parameters()).fill_(float("nan"))
    twins = copy.deepcopy(nets)
    x, y = batches()
    out, alone = run_stacked(stack(nets), x, y), run_alone(twins, x, y)
    assert out[1].isnan().all()
    assert out[[0, 2]].isfinite().all()
    torch.testing.assert_close(out[[0, 2]], alone[[0, 2]], **TOL)
    assert_same_state(nets, twins, [0, 2])
    assert all(p.grad.isfinite().all() for k in (0, 2) for p in nets[k].parameters())


class Scaler(nn.Module):
    """A made-up layer with a parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gain


RECURRENT = {
    "lstm": (lambda: LSTMClassifier(SHAPE, 10, hidden_size=8), "net.lstm: LSTM"),
    "lstm-layernorm": (
        lambda: LSTMClassifier(SHAPE, 10, hidden_size=8, norm="layernorm"),
        "net.cells.0: LayerNormLSTMCell",
    ),
    "rnn": (lambda: RNNClassifier(SHAPE, 10, hidden_size=8), "net.rnn: RNN"),
    "gru": (lambda: GRUClassifier(SHAPE, 10, hidden_size=8), "net.rnn: GRU"),
}


@pytest.mark.parametrize("model", RECURRENT)
def test_recurrent_models_are_not_stackable(model: str) -> None:
    make, where = RECURRENT[model]
    net = make()
    assert unstackable(net) == [
        f"{where} has no stacked counterpart (recurrent models train one run at a time)"
    ]
    with pytest.raises(NotStackable, match=f"^{where} has no stacked counterpart .*Linear"):
        stack([net, make()])


def test_a_module_without_counterpart_is_named_with_the_supported_ones() -> None:
    def make() -> nn.Module:
        return nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), Scaler()))

    assert unstackable(mlp()()) == []
    assert unstackable(make()) == [
        "net.1.1: Scaler has no stacked counterpart (a module type with tensors that "
        "population/stacked_layers.py does not know)"
    ]
    message = (
        r"^net\.1\.1: Scaler has no stacked counterpart .*; the stackable modules with tensors: "
        r"BatchNorm1d, BatchNorm2d, BranchScale, Conv2d, FixupScalars, GroupNorm, LayerNorm, "
        r"Linear$"
    )
    with pytest.raises(NotStackable, match=message):
        stack([make(), make()])


def test_a_spectral_norm_parametrization_is_not_stackable() -> None:
    net = nn.Sequential(nn.utils.parametrizations.spectral_norm(nn.Linear(4, 4)), nn.ReLU())
    assert unstackable(net) == [
        "net.0: ParametrizedLinear has no stacked counterpart (a parametrization (spectral_norm) "
        "computes its weight)"
    ]


def test_members_of_different_architectures_are_refused_naming_the_first_difference() -> None:
    plain, fixup = members("resnet-none")[0], members("resnet-fixup")[0]
    with pytest.raises(ValueError, match=r"at net\.blocks\.0\.fixup member 0 has no module, "):
        stack([plain, fixup])
    wide = MLP(SHAPE, 10, depth=2, width=32)
    with pytest.raises(ValueError, match=r"at net\.layers\.0\.0 member 0 has Linear\(in_feat"):
        stack([mlp()(), mlp()(), wide])


def test_a_single_member_model_with_parameters_at_the_root_is_stacked() -> None:
    torch.manual_seed(0)
    layers = [nn.Linear(5, 3) for _ in range(K)]
    x = torch.randn(K, B, 5)
    out = stack(layers)(x.flatten(0, 1)).unflatten(0, (K, B))
    torch.testing.assert_close(out, torch.stack([f(x_k) for f, x_k in zip(layers, x)]), **TOL)
