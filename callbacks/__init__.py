"""Lightning callbacks: per-layer statistics and the divergence guard."""

from callbacks.divergence import Divergence, DivergenceGuard
from callbacks.layer_stats import LayerStats, Row
from callbacks.watched import watched_modules

__all__ = ["Divergence", "DivergenceGuard", "LayerStats", "Row", "watched_modules"]
