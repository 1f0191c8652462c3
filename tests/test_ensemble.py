"""Tests for mtbert.ensemble: the combination rules and reading / aligning members' prediction files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mtbert.combine import majority_vote
from mtbert.ensemble import Predictions, align, combine, ensemble_task, read_predictions, select_greedy
from mtbert.errors import DataError

# --- read_predictions -----------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "sst-dev.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path, integer: bool = True) -> DataError:
    with pytest.raises(DataError) as info:
        read_predictions(path, integer)
    assert "\n" not in str(info.value)
    return info.value


def test_reads_ids_and_values_in_file_order(tmp_path):
    path = write(tmp_path, "id,prediction\nb,3\na,1.0\nc,0\n")
    ids, values, probabilities = read_predictions(path, integer=True)
    assert ids == ["b", "a", "c"]
    assert values.tolist() == [3.0, 1.0, 0.0]
    assert probabilities is None
    ids, values, _ = read_predictions(write(tmp_path, "\ufeffid,prediction\nx,2.75\n", "sts.csv"), integer=False)
    assert (ids, values.tolist()) == (["x"], [2.75])


def test_reads_class_probabilities(tmp_path):
    path = write(tmp_path, "id,prediction,p_0,p_1\na,1,0.250000,0.750000\nb,0,1,0\n", "para-dev.csv")
    read = read_predictions(path, integer=True, classes=2)
    assert read.probabilities.tolist() == [[0.25, 0.75], [1.0, 0.0]]


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("id,prediction\na,1\n", ":1: ", "expected header 'id,prediction,p_0,p_1'"),  # a file without them
        ("id,prediction,p_0,p_1\na,1,0.5\n", ":2: ", "expected 4 fields, found 3"),
        ("id,prediction,p_0,p_1\na,1,0.5,x\n", ":2: p_1: ", "not a number: 'x'"),
        ("id,prediction,p_0,p_1\na,1,-0.5,1.5\n", ":2: p_0: ", "expected a probability in [0, 1], found '-0.5'"),
        ("id,prediction,p_0,p_1\na,1,nan,0.5\n", ":2: p_0: ", "expected a probability"),
        ("id,prediction,p_0,p_1\na,1,0.5,0.6\n", ":2: ", "class probabilities sum to 1.100000, expected 1"),
    ],
)
def test_bad_class_probabilities_name_file_line_and_column(tmp_path, text, where, problem):
    path = write(tmp_path, text, "para-dev.csv")
    with pytest.raises(DataError) as info:
        read_predictions(path, integer=True, classes=2)
    assert str(info.value).startswith(f"{path}{where}")
    assert problem in str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "members" / "finetune-1" / "sst-dev.csv"
    err = error_of(path)
    assert str(err).startswith(f"{path}: ")
    assert "not found" in str(err)


def test_wrong_header(tmp_path):
    path = write(tmp_path, "id,pred\na,1\n")
    err = error_of(path)
    assert str(err).startswith(f"{path}:1: ")
    assert "id,prediction" in str(err) and "id,pred" in str(err)
    assert (err.path, err.line) == (str(path), 1)


def test_not_a_number(tmp_path):
    path = write(tmp_path, "id,prediction\na,1\nb,abc\n")
    err = error_of(path, integer=False)
    assert str(err).startswith(f"{path}:3: prediction: ")
    assert "'abc'" in str(err)
    assert (err.path, err.line, err.field) == (str(path), 3, "prediction")


def test_not_an_integer_where_an_integer_is_expected(tmp_path):
    path = write(tmp_path, "id,prediction\na,1\nb,2\nc,2.5\n")
    err = error_of(path, integer=True)
    assert str(err).startswith(f"{path}:4: prediction: ")
    assert "integer" in str(err) and "'2.5'" in str(err)
    assert read_predictions(path, integer=False)[1].tolist() == [1.0, 2.0, 2.5]


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
def test_not_finite(tmp_path, raw):
    path = write(tmp_path, f"id,prediction\na,{raw}\n")
    assert str(error_of(path, integer=False)).startswith(f"{path}:2: prediction: ")


def test_duplicate_id(tmp_path):
    path = write(tmp_path, "id,prediction\na,1\nb,2\na,3\n")
    err = error_of(path)
    assert str(err).startswith(f"{path}:4: id: ")
    assert "'a'" in str(err) and "line 2" in str(err)


def test_wrong_number_of_fields(tmp_path):
    path = write(tmp_path, "id,prediction\na,1\nb,2,3\n")
    assert str(error_of(path)).startswith(f"{path}:3: ")


def test_header_only(tmp_path):
    path = write(tmp_path, "id,prediction\n")
    err = error_of(path)
    assert str(err).startswith(f"{path}: ")
    assert "no predictions" in str(err)


# --- align ----------------------------------------------------------------------------------------------

FILES = {
    "multitask": Path("predictions/members/multitask/sst-dev.csv"),
    "finetune-1": Path("predictions/members/finetune-1/sst-dev.csv"),
    "finetune-2": Path("predictions/members/finetune-2/sst-dev.csv"),
}


def members(**ids: list[str]) -> dict[str, Predictions]:
    return {
        name.replace("_", "-"): Predictions(rows, np.arange(len(rows), dtype=float) + k, None)
        for k, (name, rows) in enumerate(ids.items())
    }


def test_align_stacks_members_in_order():
    ids, values, probabilities = align(
        members(multitask=["a", "b", "c"], finetune_1=["a", "b", "c"], finetune_2=["a", "b", "c"]), FILES
    )
    assert ids == ["a", "b", "c"]
    assert values.tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert probabilities is None


def test_align_stacks_probabilities():
    p = {
        m: Predictions(["a"], np.array([k % 2], dtype=float), np.array([[1 - k / 4, k / 4]]))
        for k, m in enumerate(FILES)
    }
    assert align(p, FILES).probabilities.tolist() == [[[1.0, 0.0]], [[0.75, 0.25]], [[0.5, 0.5]]]


@pytest.mark.parametrize(
    ("other", "line", "found"),
    [
        (["a", "x", "c"], 3, "'x'"),  # another id
        (["a", "c", "b"], 3, "'c'"),  # same ids, another order
        (["a", "b"], 4, "'end of file'"),  # fewer rows
        (["a", "b", "c", "d"], 5, "'d'"),  # more rows
    ],
)
def test_align_names_the_member_file_and_line_where_ids_differ(other, line, found):
    with pytest.raises(DataError) as info:
        align(members(multitask=["a", "b", "c"], finetune_1=["a", "b", "c"], finetune_2=other), FILES)
    err = info.value
    path = FILES["finetune-2"]
    assert str(err).startswith(f"{path}:{line}: id: ")
    assert (err.path, err.line, err.field) == (str(path), line, "id")
    assert found in str(err)
    assert str(FILES["multitask"]) in str(err)  # the reference member it was compared with


# --- prediction files are written only when every value is there ---------------------------------------------


def test_prediction_files_refuse_missing_or_non_finite_values(tmp_path):
    from _tasks import TASKS

    from mtbert.predictions import write_predictions

    path = tmp_path / "sts-dev.csv"
    with pytest.raises(DataError, match="refusing to write 1 predictions for 2 ids"):
        write_predictions(path, ["a", "b"], np.array([1.0]), TASKS["sts"])
    with pytest.raises(DataError, match="refusing to write non-finite predictions \\(id 'b'\\)"):
        write_predictions(path, ["a", "b"], np.array([1.0, np.nan]), TASKS["sts"])
    assert not path.exists()
    write_predictions(path, ["a", "b"], np.array([1.0, 2.5]), TASKS["sts"])
    assert path.read_text().splitlines() == ["id,prediction", "a,1.000000", "b,2.500000"]


# --- member selection --------------------------------------------------------------------------------------------


def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float((pred == gold).mean())


def votes(*rows: list[int]) -> Predictions:
    return Predictions([str(i) for i in range(len(rows[0]))], np.array(rows, dtype=float), None)


def test_greedy_starts_from_the_best_member_and_keeps_the_best_prefix():
    gold = np.array([1, 1, 1, 0, 0, 0])
    dev = votes(
        [1, 1, 0, 0, 0, 1],  # 4/6
        [1, 0, 1, 0, 1, 0],  # 4/6
        [0, 1, 1, 1, 0, 0],  # 4/6; the three together vote 6/6
        [0, 0, 0, 1, 1, 1],  # 0/6
    )
    assert majority_vote(dev.values[[0, 1, 2]]).tolist() == gold.tolist()
    # step 1: the first of the tied best members; step 2: every pair votes as member 0 (ties go to it), so the
    # member listed first; step 3: member 2 (6/6); step 4: member 3 lowers the score, so the best prefix ends at 2
    assert select_greedy("majority_vote", dev, gold, accuracy) == [0, 1, 2]


def test_greedy_keeps_a_single_member_when_nothing_beats_it():
    gold = np.array([1, 0, 1, 0])
    dev = votes([1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0])
    assert select_greedy("majority_vote", dev, gold, accuracy) == [0]


def test_greedy_is_deterministic_and_ties_go_to_the_member_listed_first():
    gold = np.array([1, 0])
    dev = votes([1, 1], [1, 1], [1, 1])
    assert select_greedy("majority_vote", dev, gold, accuracy) == [0]


def test_ensemble_task_combines_the_selected_members_on_dev_and_test():
    gold = np.array([1, 0, 1, 0])
    dev = votes([1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0])
    test = votes([1, 1], [0, 0], [0, 0])
    greedy = ensemble_task("majority_vote", "greedy", dev, test, gold, accuracy)
    assert (greedy.members, greedy.dev.tolist(), greedy.test.tolist()) == ([0], [1, 0, 1, 0], [1, 1])
    every = ensemble_task("majority_vote", "all", dev, test, gold, accuracy)
    assert (every.members, every.test.tolist()) == ([0, 1, 2], [0, 0])


def test_combine_keeps_the_given_order_for_ties():
    dev = votes([1, 0], [0, 1])
    assert combine("majority_vote", dev, [1, 0]).tolist() == [0, 1]
    assert combine("majority_vote", dev, [0, 1]).tolist() == [1, 0]


# --- every refusal, word for word (the one line a user reads) ------------------------------------------------


@pytest.mark.parametrize(
    ("data", "integer", "classes", "message"),
    [
        (b"id,prediction\na,1\n\xff,2\n", True, 0, "not UTF-8 (invalid start byte at byte 18)"),
        (b"", True, 0, "1: expected header 'id,prediction', found 'nothing'"),
        (b"id,pred\n", True, 0, "1: expected header 'id,prediction', found 'id,pred'"),
        (b"id,prediction\n,1\n", True, 0, "2: id: empty id"),
        (b"id,prediction\na,2.5\n", True, 0, "2: prediction: expected an integer, found '2.5'"),
        (b"id,prediction\na,inf\n", False, 0, "2: prediction: expected a finite number, found 'inf'"),
        (b"id,prediction\n", True, 0, "no predictions (header only)"),
        (b"id,prediction,p_0,p_1\na,1,0.25,1.5\n", True, 2, "2: p_1: expected a probability in [0, 1], found '1.5'"),
    ],
)
def test_each_refusal_is_one_line_naming_file_line_field_and_problem(data, integer, classes, message):
    from mtbert.ensemble import parse_predictions

    path = Path("predictions/members/finetune-1/sst-dev.csv")
    with pytest.raises(DataError) as info:
        parse_predictions(data, path, integer, classes)
    separator = ":" if message[0].isdigit() else ": "
    assert str(info.value) == f"{path}{separator}{message}"
    assert info.value.path == str(path)


def test_a_missing_member_file_says_which_stage_makes_it(tmp_path):
    path = tmp_path / "sst-dev.csv"
    assert str(error_of(path)) == f"{path}: prediction file not found (did the predict stage run for this member?)"


def test_a_file_without_probability_columns_is_read_by_default():
    from mtbert.ensemble import parse_predictions

    read = parse_predictions(b"id,prediction\na,1\n", Path("x.csv"), integer=True)
    assert (read.ids, read.values.tolist(), read.probabilities) == (["a"], [1.0], None)


@pytest.mark.parametrize(
    ("ids", "file", "line", "message"),
    [
        # the first member is compared with the second: the second is named, with the first as the reference
        (
            {"multitask": ["a", "b"], "finetune_1": ["a", "b", "c"], "finetune_2": ["a", "b", "c"]},
            "finetune-1",
            4,
            "ids differ from member 'multitask' (predictions/members/multitask/sst-dev.csv): 'c' vs 'end of file'",
        ),
        (
            {"multitask": ["a", "b", "c"], "finetune_1": ["a", "x", "c"], "finetune_2": ["a", "b", "c"]},
            "finetune-1",
            3,
            "ids differ from member 'multitask' (predictions/members/multitask/sst-dev.csv): 'x' vs 'b'",
        ),
    ],
)
def test_align_compares_every_member_with_the_first(ids, file, line, message):
    with pytest.raises(DataError) as info:
        align(members(**ids), FILES)
    assert str(info.value) == f"{FILES[file]}:{line}: id: {message}"


def test_align_takes_a_single_member():
    only = {"multitask": Predictions(["a", "b"], np.array([1.0, 0.0]), np.array([[0.2, 0.8], [0.9, 0.1]]))}
    ids, values, probabilities = align(only, FILES)
    assert (ids, values.tolist(), probabilities.tolist()) == (["a", "b"], [[1.0, 0.0]], [[[0.2, 0.8], [0.9, 0.1]]])


def test_combine_and_ensemble_task_pass_the_chosen_members_probabilities():
    # votes say 0 (two of three), the probabilities of members 0 and 2 say 1: mean_probability must read them
    dev = Predictions(["a"], np.array([[0.0], [0.0], [1.0]]), np.array([[[0.45, 0.55]], [[0.9, 0.1]], [[0.1, 0.9]]]))
    assert combine("mean_probability", dev, [0, 2]).tolist() == [1.0]
    assert combine("mean_probability", dev, [0, 1]).tolist() == [0.0]
    chosen = ensemble_task("mean_probability", "all", dev, dev, np.array([1.0]), accuracy)
    assert (chosen.dev.tolist(), chosen.test.tolist()) == ([1.0], [1.0])  # class 1: (0.55 + 0.1 + 0.9) / 3 > 0.5


def test_greedy_ensemble_task_scores_against_the_labels():
    # member 1 alone is right on every example; without the labels every choice would tie and member 0 would win
    gold = np.array([0, 1, 0, 1])
    dev = votes([1, 1, 1, 1], [0, 1, 0, 1], [1, 0, 1, 0])
    test = votes([0], [1], [0])
    chosen = ensemble_task("majority_vote", "greedy", dev, test, gold, accuracy)
    assert (chosen.members, chosen.test.tolist()) == ([1], [1.0])
