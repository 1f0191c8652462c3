"""The ensemble's rules: [members, rows] predictions -> [rows]. Each task's :class:`~mtbert.tasks.TaskSpec` names one.

- ``rounded_mean`` (SST classes): mean of the members' class indices, rounded half up to the nearest class
  (2.5 -> 3), so it never depends on floating-point banker's rounding.
- ``majority_vote`` (paraphrase 0/1): the label most members voted for; a tie goes to the vote of the first
  member listed in ``ensemble.members``.
- ``mean`` (STS scores): the arithmetic mean.
"""

from __future__ import annotations

import numpy as np


def rounded_mean(values: np.ndarray) -> np.ndarray:
    """[M, N] class indices -> [N] rounded half up."""
    return np.floor(values.mean(axis=0) + 0.5)


def majority_vote(values: np.ndarray) -> np.ndarray:
    """[M, N] 0/1 votes -> [N]; ties go to the first member's vote."""
    ones = values.sum(axis=0)
    zeros = values.shape[0] - ones
    return np.where(ones > zeros, 1.0, np.where(zeros > ones, 0.0, values[0]))


def mean(values: np.ndarray) -> np.ndarray:
    return values.mean(axis=0)
