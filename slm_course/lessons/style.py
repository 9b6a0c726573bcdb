"""The course's one look for heatmaps, defined once so that every lesson and widget agrees.

Attention weights are probabilities in [0, 1] and most of them are near 0; a perceptually uniform
map (equal steps in value look like equal steps in colour, also in greyscale and for the common
colour-vision deficiencies) shows the few large weights without inventing structure in the rest.
"""

from __future__ import annotations

HEATMAP_CMAP = "viridis"  # every heatmap of weights in [0, 1]: lesson 03's grids, the attention explorer
