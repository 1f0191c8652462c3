"""The ensemble's rules: [members, rows] predictions (and [members, rows, classes] probabilities) -> [rows].

Each task's :class:`~mtbert.tasks.TaskSpec` lists the rules it allows; the first is the design card's and the
default, ``ensemble.rules`` picks another.

- ``rounded_mean`` (SST classes): mean of the members' class indices, rounded half up to the nearest class
  (2.5 -> 3), so it never depends on floating-point banker's rounding.
- ``majority_vote`` (paraphrase 0/1): the label most members voted for; a tie goes to the vote of the first
  member listed in ``ensemble.members``.
- ``mean`` (STS scores): the arithmetic mean.
- ``mean_probability`` (classification): the class with the highest mean probability over the members ("soft
  voting"); a tie goes to the lower class.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Rule = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


def rounded_mean(values: np.ndarray, probabilities: np.ndarray | None = None) -> np.ndarray:
    """[M, N] class indices -> [N] rounded half up."""
    return np.floor(values.mean(axis=0) + 0.5)


def majority_vote(values: np.ndarray, probabilities: np.ndarray | None = None) -> np.ndarray:
    """[M, N] 0/1 votes -> [N]; ties go to the first member's vote."""
    ones = values.sum(axis=0)
    zeros = values.shape[0] - ones
    return np.where(ones > zeros, 1.0, np.where(zeros > ones, 0.0, values[0]))


def mean(values: np.ndarray, probabilities: np.ndarray | None = None) -> np.ndarray:
    return values.mean(axis=0)


def mean_probability(values: np.ndarray, probabilities: np.ndarray | None) -> np.ndarray:
    """[M, N, C] class probabilities -> [N] the class of the highest mean probability (ties: the lower class)."""
    if probabilities is None:
        raise ValueError("mean_probability needs the members' class probabilities")
    return probabilities.mean(axis=0).argmax(axis=-1).astype(float)


RULES: dict[str, Rule] = {
    "rounded_mean": rounded_mean,
    "majority_vote": majority_vote,
    "mean": mean,
    "mean_probability": mean_probability,
}
