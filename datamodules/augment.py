"""CIFAR's standard augmentation (He et al. 2016, sec. 4.2), applied to a whole batch at once."""

import torch
import torch.nn.functional as F
from torch import Tensor


def random_crop_flip(x: Tensor, generator: torch.Generator, padding: int = 4) -> Tensor:
    """Pad by ``padding``, crop back to size at a random offset per image, flip half of them.

    Padding is zero in normalized space (the dataset's mean colour). The random draws come from
    a CPU ``generator`` so the result is reproducible whatever device ``x`` is on.
    """
    n, _, h, w = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    padded = F.pad(x, (padding,) * 4)
    rows = (offsets[0, :, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (offsets[1, :, None] + torch.arange(w, device=x.device))[:, None, None, :]
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channels = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channels, rows, cols]
