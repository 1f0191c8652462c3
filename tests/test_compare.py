"""Tests for mtbert.compare: paired differences of two runs on the same dev examples."""

from __future__ import annotations

import numpy as np
import pytest
from _tasks import TASKS
from scipy.stats import binomtest

from mtbert.compare import PairedTask, bootstrap_p, compare_tasks, mcnemar_p
from mtbert.report.stats import bootstrap_indices


def paired(name: str, gold: np.ndarray, a: np.ndarray, b: np.ndarray) -> PairedTask:
    spec = TASKS[name]
    return PairedTask(name, spec.metric_name, spec.metric, spec.normalise, gold, a, b, accuracy=spec.classes > 0)


def test_mcnemar_is_the_binomial_test_on_the_discordant_examples():
    right_a = np.array([1, 1, 1, 0, 0, 1, 0, 1, 1, 0], dtype=bool)
    right_b = np.array([1, 0, 1, 1, 1, 1, 1, 1, 1, 1], dtype=bool)  # 1 only a, 4 only b
    assert mcnemar_p(right_a, right_b) == pytest.approx(binomtest(4, 5, 0.5).pvalue)
    assert mcnemar_p(right_a, right_a) == 1.0  # nothing discordant


def test_the_paired_bootstrap_by_hand():
    """Four examples, the resamples the comparison draws (seed (3, 0)): the difference of accuracies on each, its
    percentiles 2.5 and 97.5; a and b differ on two examples, b right on both."""
    gold = np.array([0.0, 1.0, 2.0, 3.0])
    a = np.array([0.0, 1.0, 0.0, 0.0])  # right on rows 0, 1
    b = np.array([0.0, 1.0, 2.0, 3.0])  # right everywhere
    (diff, overall) = compare_tasks([paired("sst", gold, a, b)], resamples=500, seed=3)
    rows = bootstrap_indices(4, 500, (3, 0))
    deltas = (b[rows] == gold[rows]).mean(axis=1) - (a[rows] == gold[rows]).mean(axis=1)
    assert (diff.a, diff.b, diff.delta) == (0.5, 1.0, 0.5)
    assert (diff.low, diff.high) == pytest.approx(tuple(np.percentile(deltas, [2.5, 97.5])))
    assert diff.test == "mcnemar" and diff.p == pytest.approx(binomtest(2, 2, 0.5).pvalue)
    assert overall.metric == "overall" and overall.delta == pytest.approx(0.5)  # one task: its normalised value


def test_the_same_predictions_give_zero_and_no_real_difference():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 5, 200).astype(float)
    a = np.where(rng.random(200) < 0.5, gold, 0.0)
    for diff in compare_tasks([paired("sst", gold, a, a.copy())], resamples=200, seed=0):
        assert (diff.delta, diff.low, diff.high) == (0.0, 0.0, 0.0) and not diff.real


def test_a_large_paired_gain_is_real_and_a_tiny_one_is_not():
    rng = np.random.default_rng(1)
    n = 1000
    gold = rng.integers(0, 2, n).astype(float)
    a = np.where(rng.random(n) < 0.75, gold, 1 - gold)
    better = a.copy()
    fixed = (a != gold) & (rng.random(n) < 0.4)  # ~40% of a's errors put right
    better[fixed] = gold[fixed]
    para, _overall = compare_tasks([paired("para", gold, a, better)], resamples=500, seed=0)
    assert para.delta > 0.05 and para.real and para.p < 1e-6
    nudged = a.copy()
    nudged[np.flatnonzero(a != gold)[:2]] = gold[np.flatnonzero(a != gold)[:2]]  # two examples of 1000
    para, _ = compare_tasks([paired("para", gold, a, nudged)], resamples=500, seed=0)
    assert para.delta == pytest.approx(0.002) and not para.real and para.p == pytest.approx(0.5)


def test_pearson_differences_use_the_bootstrap_and_overall_combines_the_tasks():
    rng = np.random.default_rng(2)
    gold = rng.uniform(0, 5, 300)
    a = gold + rng.normal(0, 1.5, 300)
    b = gold + rng.normal(0, 0.5, 300)  # much closer
    sst_gold = rng.integers(0, 5, 300).astype(float)
    sts, _sst, overall = compare_tasks(
        [paired("sts", gold, a, b), paired("sst", sst_gold, sst_gold.copy(), sst_gold.copy())], resamples=300, seed=0
    )
    assert sts.test == "bootstrap" and sts.real and sts.p <= 1 / 301 * 2
    assert overall.delta == pytest.approx((sts.delta / 2) / 2)  # (r + 1) / 2, averaged with SST's 0
    assert overall.real


def test_bootstrap_p():
    assert bootstrap_p(np.array([0.1, 0.2, -0.1, 0.3])) == 0.5  # one of four at or below 0
    assert bootstrap_p(np.array([0.1, 0.2])) == pytest.approx(1 / 3)  # never below 0: the floor 1 / (n + 1)


def _run_files(
    tmp_path, tasks: dict[str, list[float]], predictions: dict[str, list[float]], ids=None, members=()
) -> dict:
    """The files a revision holds: prepared dev labels, the ensemble's dev predictions and ``members``' (written by
    the stages' own writer, class probabilities included for a member of a classification task), by path."""
    from mtbert.data.encoded import EncodedSplit, save_split
    from mtbert.predictions import write_predictions

    files = {}
    for task, labels in tasks.items():
        spec = TASKS[task]
        rows = ids or [f"r{i}" for i in range(len(labels))]
        split = EncodedSplit(
            rows,
            [(np.zeros(0, dtype=np.int32), np.zeros(len(rows) + 1, dtype=np.int64))],
            np.array(labels, dtype=np.float32),
        )
        path = tmp_path / f"{task}-{len(files)}.safetensors"
        save_split(split, path)
        files[f"data/prepared/{task}-dev.safetensors"] = path.read_bytes()
        values = np.asarray(predictions[task], dtype=float)
        out = tmp_path / f"{task}-{len(files)}.csv"
        write_predictions(out, rows, values, spec)
        files[f"predictions/ensemble/{task}-dev.csv"] = out.read_bytes()
        for member in members:
            probabilities = np.eye(spec.classes)[values.astype(int)] if spec.classes else None
            write_predictions(out, rows, values, spec, probabilities)
            files[f"predictions/members/{member}/{task}-dev.csv"] = out.read_bytes()
    return files


def _reader(files: dict):  # type: ignore[no-untyped-def]
    def read(path: str) -> bytes:
        if path not in files:
            raise FileNotFoundError(path)
        return files[path]

    return read


def test_two_revisions_are_paired_and_refused_when_they_do_not_match(tmp_path):
    from mtbert.errors import DataError
    from mtbert.revisions import pair_runs, read_dev_run

    specs = {"sst": TASKS["sst"]}
    a = read_dev_run(
        "main", _reader(_run_files(tmp_path, {"sst": [0, 1, 2, 3]}, {"sst": [0, 1, 0, 0]})), specs, "data/prepared", ()
    )
    b = read_dev_run(
        "exp", _reader(_run_files(tmp_path, {"sst": [0, 1, 2, 3]}, {"sst": [0, 1, 2, 0]})), specs, "data/prepared", ()
    )
    (task,) = pair_runs(a, b)
    assert task.a.tolist() == [0, 1, 0, 0] and task.b.tolist() == [0, 1, 2, 0]
    with pytest.raises(DataError, match=r"^missing: predictions/ensemble/sst-dev.csv: not found \(the ensemble's dev"):
        files = _run_files(tmp_path, {"sst": [0, 1]}, {"sst": [0, 1]})
        del files["predictions/ensemble/sst-dev.csv"]
        read_dev_run("missing", _reader(files), specs, "data/prepared", ())
    other_ids = read_dev_run(
        "other",
        _reader(_run_files(tmp_path, {"sst": [0, 1, 2, 3]}, {"sst": [0, 1, 2, 3]}, ids=list("abcd"))),
        specs,
        "data/prepared",
        (),
    )
    with pytest.raises(DataError, match=r"^other: the dev set of sst is not main's \(other ids or labels\)$"):
        pair_runs(a, other_ids)
    both = {"sst": TASKS["sst"], "sts": TASKS["sts"]}
    wider = read_dev_run(
        "wider",
        _reader(
            _run_files(tmp_path, {"sst": [0, 1, 2, 3], "sts": [1.0, 2.0]}, {"sst": [0, 1, 2, 3], "sts": [1.5, 2.5]})
        ),
        both,
        "data/prepared",
        (),
    )
    with pytest.raises(DataError, match=r"^wider: tasks sst, sts; main has sst: not comparable$"):
        pair_runs(a, wider)
    with pytest.raises(DataError, match=r"^main: no member 'finetune-1'"):
        pair_runs(a, b, "finetune-1")


def test_members_are_read_with_their_class_probabilities(tmp_path):
    from mtbert.revisions import pair_runs, read_dev_run

    specs = {"sst": TASKS["sst"], "sts": TASKS["sts"]}
    labels = {"sst": [0, 1, 2, 3], "sts": [1.0, 2.0, 3.0]}
    runs = [
        read_dev_run(
            name,
            _reader(_run_files(tmp_path, labels, {"sst": sst, "sts": [1.5, 2.5, 3.5]}, members=("multitask",))),
            specs,
            "data/prepared",
            ("multitask",),
        )
        for name, sst in (("main", [0, 1, 0, 0]), ("exp", [0, 1, 2, 3]))
    ]
    sst, sts = pair_runs(*runs, "multitask")
    assert sst.a.tolist() == [0, 1, 0, 0] and sst.b.tolist() == [0, 1, 2, 3] and sts.b.tolist() == [1.5, 2.5, 3.5]
