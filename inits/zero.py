"""ZerO: deterministic weights made of zeros and ones (and a scaled Hadamard where width grows)."""

import math

import torch
from torch import Tensor

from inits.strategy import InitStrategy
from inits.targets import RECURRENT, NotApplicable, WeightTarget


def hadamard(
    order: int, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> Tensor:
    """The Sylvester Hadamard matrix of size 2^order: entry (i, j) is (-1)^popcount(i & j)."""
    h = torch.ones(1, 1, dtype=dtype, device=device)
    for _ in range(order):
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def hadamard_scale(out: int) -> float:
    """The paper's c = 2^(-(m-1)/2), m = ceil(log2(out)): the value of every nonzero entry of a
    ZerO matrix with more outputs than inputs."""
    m = math.ceil(math.log2(out))
    return 2.0 ** (-(m - 1) / 2)


@torch.no_grad()
def zero_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` by ZerO's Algorithm 1 (Zhao, Kornblith, Liu & Li 2022, "ZerO
    Initialization: Initializing Neural Networks with only Zeros and Ones", TMLR); the name
    means ZerO, not ``Tensor.zero_``.

    For a matrix of shape (out, in), as the paper's algorithm:

    - out == in: the identity I;
    - out < in: the partial identity (I_out, 0): the first ``out`` inputs pass through;
    - out > in: c I* H_m I*, the first ``out`` rows and ``in`` columns of the Sylvester Hadamard
      matrix H_m of size 2^m >= out, m = ceil(log2(out)), times c = 2^(-(m-1)/2). A partial
      identity here would give out - in units a zero input, all alike (the paper's "training
      degeneracy"); the Hadamard columns are orthogonal and +-c everywhere, so every unit gets a
      different mix and the matrix keeps rank ``in``. Over the first ``in`` columns, Sylvester
      rows repeat with period 2^ceil(log2(in)): a layer widening beyond that (8 -> 32) has
      groups of identical units, told apart only by what the layers after them do.

    c is the paper's (Algorithm 1); the authors' code (``ZerO_Init_on_matrix``) divides H_m by
    2^(m/2) instead, orthonormal columns, sqrt(2) smaller. A conv kernel (out, in, *k) gets the
    matrix at its spatial centre and zeros elsewhere (the paper's conv rule, like
    ``delta_orthogonal_``), so it starts as a 1x1 map of the channels; for a grouped conv ``in``
    is the channels per group.
    """
    if tensor.dim() < 2:
        raise ValueError(
            f"zero_ needs a matrix or conv kernel (>= 2 dims), got {tuple(tensor.shape)}"
        )
    out, fan = tensor.shape[:2]
    if out > fan:
        order = math.ceil(math.log2(out))
        h = hadamard(order, tensor.dtype, tensor.device)
        matrix = h[:out, :fan] * hadamard_scale(out)
    else:
        matrix = torch.eye(out, fan, dtype=tensor.dtype, device=tensor.device)
    centre = tuple(k // 2 for k in tensor.shape[2:])
    tensor.zero_()
    tensor[(slice(None), slice(None), *centre)] = matrix
    return tensor


class ZerO(InitStrategy):
    """ZerO initialization (Zhao et al. 2022): every Linear and Conv weight by ``zero_``,
    biases 0, norms scale 1 / shift 0. No randomness: two runs start from the same weights
    whatever the seed.

    Every layer follows Algorithm 1, the classifier too (the algorithm has no special last
    layer): a partial identity when it has fewer outputs than inputs, so its logits start as
    the first ``num_classes`` features. That is no dead end: at step 0 the classifier's gradient
    is ``dL/dlogits h^T``, nonzero whenever a feature is, and every hidden layer's follows
    through the identities (tested). Residual branches keep the rule; ``zero_init_residual``
    (on request) zeroes their last layer so each block starts as its shortcut.

    Recurrent weights are refused by name: the paper defines ZerO for feed-forward and
    convolutional layers only, and an identity per gate would say nothing about an LSTM's
    forget gate; ``init@init.fallback=orthogonal`` (or any strategy) initializes them instead.
    """

    fixed_gain_reason = "not used: the weights are 0, 1 and the Hadamard scale"

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        if isinstance(target.module, RECURRENT):
            raise NotApplicable(
                f"ZerO (Zhao et al. 2022) is defined for Linear and Conv layers, not for a "
                f"{type(target.module).__name__}'s gates"
            )
        zero_(target.tensor)
