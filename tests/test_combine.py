"""Tests for mtbert.combine: the ensemble's rules, on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest

from mtbert.combine import majority_vote, mean, rounded_mean


def test_rounded_mean_rounds_half_up():
    values = np.array([[2.0, 1.0, 0.0, 3.0], [3.0, 2.0, 1.0, 4.0], [2.0, 1.0, 1.0, 4.0], [3.0, 1.0, 0.0, 4.0]])
    # means: 2.5 -> 3, 1.25 -> 1, 0.5 -> 1, 3.75 -> 4 (np.round would give 2 and 0 for the ties)
    assert rounded_mean(values).tolist() == [3.0, 1.0, 1.0, 4.0]


def test_rounded_mean_examples():
    assert rounded_mean(np.array([[1.0], [2.0]])).tolist() == [2.0]  # 1.5 -> 2
    assert rounded_mean(np.array([[1.0], [1.0], [2.0]])).tolist() == [1.0]  # 1.33 -> 1
    assert rounded_mean(np.array([[1.0], [2.0], [2.0]])).tolist() == [2.0]  # 1.67 -> 2
    assert rounded_mean(np.array([[1.0, 0.0], [1.0, 0.0], [2.0, 4.0], [2.0, 4.0], [1.0, 4.0]])).tolist() == [1.0, 2.0]
    assert rounded_mean(np.array([[4.0, 0.0]])).tolist() == [4.0, 0.0]  # one member: its predictions


def test_majority_vote_clear_majority():
    votes = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert majority_vote(votes).tolist() == [1.0, 0.0, 1.0]


def test_majority_vote_tie_goes_to_the_first_member_both_ways():
    assert majority_vote(np.array([[1.0, 0.0], [0.0, 1.0]])).tolist() == [1.0, 0.0]
    assert majority_vote(np.array([[0.0, 1.0], [1.0, 0.0]])).tolist() == [0.0, 1.0]
    four = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    assert majority_vote(four).tolist() == [1.0, 0.0]


def test_mean():
    assert mean(np.array([[1.0, 4.0], [2.0, 5.0], [4.5, 0.0]])).tolist() == pytest.approx([2.5, 3.0])
