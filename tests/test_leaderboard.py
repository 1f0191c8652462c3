"""The CS224N leaderboard files: the course's exact bytes, for every task."""

from __future__ import annotations

import numpy as np
import pytest
from _tasks import TASKS

from mtbert.errors import DataError
from mtbert.leaderboard import leaderboard_text, write_leaderboard


@pytest.mark.parametrize(
    ("task", "values", "expected"),
    [
        ("sst", [3.0, 0.0], "id \t Predicted_Sentiment \nab12 , 3 \ncd34 , 0 \n"),
        ("para", [1.0, 0.0], "id \t Predicted_Is_Paraphrase \nab12 , 1 \ncd34 , 0 \n"),
        ("sts", [3.25, 0.1234567], "id \t Predicted_Similiary \nab12 , 3.250000 \ncd34 , 0.123457 \n"),
    ],
)
def test_each_task_writes_the_courses_header_and_rows_byte_for_byte(tmp_path, task, values, expected):
    path = tmp_path / f"{task}-dev-output.csv"
    write_leaderboard(path, ["ab12", "cd34"], np.array(values), TASKS[task])
    assert path.read_bytes() == expected.encode("utf-8")
    assert leaderboard_text(["ab12", "cd34"], np.array(values), TASKS[task]) == expected


def test_a_non_finite_value_or_a_missing_row_is_refused(tmp_path):
    path = tmp_path / "sts-test-output.csv"
    with pytest.raises(DataError, match=r"sts-test-output.csv: refusing to write non-finite predictions \(id 'b'\)"):
        write_leaderboard(path, ["a", "b"], np.array([1.0, np.nan]), TASKS["sts"])
    with pytest.raises(DataError, match="refusing to write 1 predictions for 2 ids"):
        write_leaderboard(path, ["a", "b"], np.array([1.0]), TASKS["sts"])
    assert not path.exists()
