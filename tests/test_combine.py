"""Tests for mtbert.combine: the ensemble's rules, on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest

from mtbert.combine import majority_vote, mean, mean_probability, rounded_mean


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


def test_mean_probability_is_the_class_of_the_highest_mean_probability():
    probabilities = np.array(
        [
            [[0.6, 0.4, 0.0], [0.1, 0.2, 0.7]],
            [[0.0, 0.5, 0.5], [0.3, 0.3, 0.4]],
        ]
    )
    # means: [0.3, 0.45, 0.25] -> 1; [0.2, 0.25, 0.55] -> 2. The rounded mean of the argmaxes (0, 1 -> 1; 2, 2 -> 2)
    # agrees here; below it does not
    assert mean_probability(np.zeros((2, 2)), probabilities).tolist() == [1.0, 2.0]
    confident_and_unsure = np.array([[[0.9, 0.05, 0.05]], [[0.3, 0.35, 0.35]], [[0.3, 0.35, 0.35]]])
    assert mean_probability(np.array([[0.0], [1.0], [1.0]]), confident_and_unsure).tolist() == [0.0]
    assert rounded_mean(np.array([[0.0], [1.0], [1.0]])).tolist() == [1.0]


def test_mean_probability_ties_go_to_the_lower_class_and_it_needs_probabilities():
    assert mean_probability(np.zeros((2, 1)), np.array([[[0.5, 0.5]], [[0.5, 0.5]]])).tolist() == [0.0]
    with pytest.raises(ValueError, match="needs the members' class probabilities"):
        mean_probability(np.zeros((2, 1)), None)


def test_mean_probability_without_probabilities_says_what_it_needs():
    with pytest.raises(ValueError) as info:
        mean_probability(np.zeros((2, 3)), None)
    assert str(info.value) == "mean_probability needs the members' class probabilities"
