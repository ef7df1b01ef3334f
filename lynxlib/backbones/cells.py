"""Scene grid cells: which of the tower's patch tokens lie in a cell, their mean, and the cell's pixels."""
from __future__ import annotations

import numpy as np
import torch


def cell_rows(grid_side: int, row: int, col: int, grid: int) -> list[int]:
    """Indices (row-major, class token excluded) of the patch tokens whose centres lie in scene cell (row, col)."""
    centres = (np.arange(grid_side) + 0.5) / grid_side
    rows = np.nonzero((centres >= row / grid) & (centres < (row + 1) / grid))[0]
    cols = np.nonzero((centres >= col / grid) & (centres < (col + 1) / grid))[0]
    return [int(r * grid_side + c) for r in rows for c in cols]


def cell_mean(patches: torch.Tensor, b: int, row: int, col: int, grid: int) -> torch.Tensor:
    """Mean of image ``b``'s patch tokens (B, g*g, D) (class token excluded) in scene cell (row, col): (D,)"""
    side = int(round(patches.shape[1] ** 0.5))
    return patches[b, cell_rows(side, row, col, grid)].mean(0)


def cell_pixels(image: np.ndarray, row: int, col: int, grid: int) -> np.ndarray:
    """Scene cell (row, col) cut out of one (S, S, 3) image: (S // grid, S // grid, 3)."""
    side = image.shape[0] // grid
    return image[row * side:(row + 1) * side, col * side:(col + 1) * side]
