"""Sum (or max) the statistics' moments across DDP ranks: two collectives per logging step."""

import torch
import torch.distributed as dist
from torch import Tensor

from callbacks.statistics import MAX_MOMENTS

Moments = dict[tuple[str, str], dict[str, Tensor]]


def all_reduce_moments(moments: Moments) -> None:
    """In place: every moment summed over ranks, those in ``MAX_MOMENTS`` maxed. Every rank
    holds the same keys in the same order (same model, same hooks, same step)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for op, wanted in ((dist.ReduceOp.SUM, False), (dist.ReduceOp.MAX, True)):
        parts = [(d, k) for d in moments.values() for k in d if (k in MAX_MOMENTS) == wanted]
        if not parts:
            continue
        flat = torch.cat([d[k].reshape(-1).to(torch.float64) for d, k in parts])
        dist.all_reduce(flat, op=op)
        offset = 0
        for d, k in parts:
            size = d[k].numel()
            d[k] = flat[offset : offset + size].view_as(d[k])
            offset += size
