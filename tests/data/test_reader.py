"""Tests for mtbert.data.reader (small files built in tmp_path; one slow test reads the real data)."""

from __future__ import annotations

import errno
import logging
import time
from pathlib import Path

import pytest

from mtbert.data.reader import LabelRule, SkippedRow, Table, read_table
from mtbert.errors import ConfigError, DataError

SST = (("sentence",), LabelRule("sentiment", 0, 4, integer=True))
QUORA = (("sentence1", "sentence2"), LabelRule("is_duplicate", 0, 1, integer=True))
STS = (("sentence1", "sentence2"), LabelRule("similarity", 0, 5))

SST_HEAD = "\tid\tsentence\tsentiment\n"
QUORA_HEAD = "\tid\tsentence1\tsentence2\tis_duplicate\n"
STS_HEAD = "\tid\tsentence1\tsentence2\tsimilarity\n"


def write(tmp_path: Path, text: str | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def quora(tmp_path: Path, *rows: str, name: str = "quora-train.csv") -> Path:
    return write(tmp_path, QUORA_HEAD + "".join(row + "\n" for row in rows), name)


def error_of(path: Path, spec=QUORA, on_malformed="error") -> str:
    with pytest.raises(DataError) as info:
        read_table(path, spec[0], spec[1], on_malformed=on_malformed)
    message = str(info.value)
    assert "\n" not in message
    return message


GOOD_Q = [
    "400012\tq1\tWhat makes one angry?\tWhat is the one thing that makes you most angry?\t1.0",
    '318737\tq2\t"""Which is correct: ""the"" or ""a""?"""\tGrammar: a or the?\t0.0',
    "111373\tq3\tDo cats dream?\tHow do I bake bread?\t0.0",
]


# --- good files -----------------------------------------------------------------------------------------


def test_sst_rows(tmp_path):
    path = write(
        tmp_path,
        SST_HEAD
        + "0\ta1\t The Rock is destined to be great .\t3\n"
        + "1\ta2\t It 's a\u00a0film\\/movie .  \t0\n"
        + "7\ta3\t Bad .\t4.0\n",
    )
    table = read_table(path, *SST)
    assert isinstance(table, Table)
    assert table.path == path
    assert table.ids == ["a1", "a2", "a3"]
    assert table.texts == {"sentence": ["The Rock is destined to be great .", "It 's a\u00a0film\\/movie .", "Bad ."]}
    assert table.labels == [3.0, 0.0, 4.0]
    assert all(isinstance(x, float) for x in table.labels)
    assert table.skipped == []
    assert len(table) == 3


def test_quora_rows_with_csv_quoting(tmp_path):
    table = read_table(quora(tmp_path, *GOOD_Q), *QUORA)
    assert table.ids == ["q1", "q2", "q3"]
    assert table.texts["sentence1"][1] == '"Which is correct: "the" or "a"?"'
    assert table.texts["sentence2"] == [
        "What is the one thing that makes you most angry?",
        "Grammar: a or the?",
        "How do I bake bread?",
    ]
    assert table.labels == [1.0, 0.0, 0.0]


def test_sts_float_labels_and_quotes_inside_unquoted_field(tmp_path):
    path = write(
        tmp_path,
        STS_HEAD
        + "8615\ts1\t13 killed in attack\t6 killed in attack\t2.0\n"
        + '7087\ts2\tHe said "no" .\t"""Yes,"" she said."\t0.8\n'
        + "1\ts3\ta cat \tthe cat\t5\n"
        + "2\ts4\tx\ty\t0\n",
    )
    table = read_table(path, *STS)
    assert table.labels == [2.0, 0.8, 5.0, 0.0]
    assert table.texts["sentence1"] == ["13 killed in attack", 'He said "no" .', "a cat", "x"]
    assert table.texts["sentence2"][1] == '"Yes," she said.'


def test_ids_are_strings_kept_verbatim(tmp_path):
    path = write(tmp_path, SST_HEAD + "0\t007\tA .\t1\n1\t1e3\tB .\t2\n")
    assert read_table(path, *SST).ids == ["007", "1e3"]


def test_test_file_without_label(tmp_path):
    path = write(tmp_path, "\tid\tsentence1\tsentence2\n0\tt1\tA?\tB?\n1\tt2\tC?\tD?\n", "quora-test-student.csv")
    table = read_table(path, QUORA[0], None)
    assert table.labels is None
    assert table.ids == ["t1", "t2"]
    assert table.texts == {"sentence1": ["A?", "C?"], "sentence2": ["B?", "D?"]}


def test_header_without_index_column_and_other_order(tmp_path):
    path = write(tmp_path, "sentiment\tsentence\tid\n2\t Fine .\tz9\n")
    table = read_table(path, *SST)
    assert (table.ids, table.texts["sentence"], table.labels) == (["z9"], ["Fine ."], [2.0])


def test_crlf_and_bom(tmp_path):
    text = SST_HEAD + '0\ta1\t Good .\t3\n1\ta2\t"Quoted ""x"""\t1\n'
    plain = read_table(write(tmp_path, text, "plain.csv"), *SST)
    crlf = read_table(write(tmp_path, b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode(), "crlf.csv"), *SST)
    assert (crlf.ids, crlf.texts, crlf.labels) == (plain.ids, plain.texts, plain.labels)
    assert crlf.texts["sentence"] == ["Good .", 'Quoted "x"']


def test_crlf_error_line_numbers(tmp_path):
    text = "\ufeff" + SST_HEAD + "0\ta1\t Good .\t3\n1\ta2\t Bad .\t9\n"
    path = write(tmp_path, text.replace("\n", "\r\n"))
    assert error_of(path, SST) == f"{path}:3: sentiment: label '9' is out of range [0, 4]"


def test_no_final_newline_and_trailing_blank_lines(tmp_path):
    assert read_table(write(tmp_path, SST_HEAD + "0\ta1\t A .\t3", "a.csv"), *SST).ids == ["a1"]
    table = read_table(write(tmp_path, SST_HEAD + "0\ta1\t A .\t3\n\n\r\n\n", "b.csv"), *SST)
    assert (table.ids, table.skipped) == (["a1"], [])


# --- the broken Quora rows --------------------------------------------------------------------------------

# The shape of quora-train.csv lines 1797 and 10001 (made-up text): a field opening with a literal '"' that is
# never closed, the rest of the record empty, the label empty.
BROKEN_1 = '65479\tb1\tAny idea of dresses for a party?\t"""Where can I find a dress I saw? Any forum?"\t'
BROKEN_2 = '264614\tb2\t"""Given busy intervals of two people, how to find free time?"\t\t'


def test_broken_quora_rows_are_skipped_and_reported(tmp_path, caplog):
    path = quora(tmp_path, GOOD_Q[0], BROKEN_1, GOOD_Q[1], BROKEN_2, GOOD_Q[2])
    with caplog.at_level(logging.WARNING):
        table = read_table(path, *QUORA)
    assert table.ids == ["q1", "q2", "q3"]
    assert table.labels == [1.0, 0.0, 0.0]
    assert [row.line for row in table.skipped] == [3, 5]
    assert all(isinstance(row, SkippedRow) for row in table.skipped)
    first, second = table.skipped
    assert first.reason.startswith("is_duplicate: empty label")
    assert "broken quoting" in first.reason and "'sentence2'" in first.reason
    assert "'sentence1'" in second.reason
    assert table.skip_report() == [f"{path}:3: {first.reason}", f"{path}:5: {second.reason}"]
    assert "skipped 2 malformed row(s) (lines 3, 5)" in caplog.text


def test_broken_quora_row_error_policy(tmp_path):
    path = quora(tmp_path, GOOD_Q[0], GOOD_Q[1], BROKEN_2)
    message = error_of(path)
    assert message.startswith(f"{path}:4: is_duplicate: empty label")


def test_unclosed_quote_does_not_swallow_following_rows(tmp_path):
    path = quora(
        tmp_path,
        GOOD_Q[0],
        '5\tu1\t"Never closed\tsecond sentence\t1.0',
        GOOD_Q[1],
        GOOD_Q[2],
    )
    table = read_table(path, *QUORA)
    assert table.ids == ["q1", "q2", "q3"]
    assert [row.line for row in table.skipped] == [3]
    assert table.skipped[0].reason.startswith("sentence1: broken quoting")
    message = error_of(path)
    assert message.startswith(f"{path}:3: sentence1: broken quoting")
    assert "never closed" in message


def test_line_numbers_after_a_broken_row_stay_exact(tmp_path):
    path = quora(tmp_path, GOOD_Q[0], '5\tu1\t"Never closed\tx\t1.0', GOOD_Q[1], "9\tq1\tA?\tB?\t0.0")
    assert error_of(path, on_malformed="skip") == f"{path}:5: id: duplicate id 'q1' (first seen on line 2)"


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ('5\tm1\t"text" after\tB?\t1.0', "sentence1", "text after the closing"),
        ('5\tm1\t"quoted\ttab"\tB?\t1.0', "sentence1", "broken quoting: quoted field holds a tab"),
        ('5\tm1\tA?\t"x\ty\tz\t1.0', "sentence2", "never closed"),
        ('5\tm1\tA?\t"cr\rinside"\t1.0', "sentence2", "quoted field holds a carriage return"),
        ("5\tm1\tA?\tB?", "is_duplicate", "expected 5 tab-separated fields, found 4"),
        ("5\tm1\tA?\tB?\t1.0\textra", "record", "too many fields"),
        ("5\t\tA?\tB?\t1.0", "id", "missing id"),
        ("5\t   \tA?\tB?\t1.0", "id", "missing id"),
        ("5\tm1\tA?\tB?\t", "is_duplicate", "empty label"),
        ("5\tm1\tA?\tB?\t  ", "is_duplicate", "empty label"),
        ("5\tm1\tA?\rB?\tC?\t1.0", "sentence1", "carriage return"),
        ("", "record", "blank line"),
    ],
)
def test_malformed_rows_skip_or_error(tmp_path, row, field, words):
    path = quora(tmp_path, GOOD_Q[0], row, GOOD_Q[2])
    table = read_table(path, *QUORA, on_malformed="skip")
    assert table.ids == ["q1", "q3"]
    assert len(table.skipped) == 1
    assert table.skipped[0].line == 3
    assert table.skipped[0].reason.startswith(f"{field}: ")
    assert words in table.skipped[0].reason
    message = error_of(path, on_malformed="error")
    assert message.startswith(f"{path}:3: {field}: ")
    assert words in message


def test_all_rows_malformed(tmp_path):
    path = quora(tmp_path, BROKEN_1, BROKEN_2)
    message = error_of(path, on_malformed="skip")
    assert message.startswith(f"{path}: no valid records: all 2 rows are malformed (first: line 2: is_duplicate")


# --- invalid values: errors under both policies ----------------------------------------------------------


@pytest.mark.parametrize("policy", ["skip", "error"])
@pytest.mark.parametrize(
    ("spec", "row", "expected"),
    [
        (SST, "5\tm1\t Fine .\tgood", "sentiment: label 'good' is not a number"),
        (SST, "5\tm1\t Fine .\tnan", "sentiment: label 'nan' is not a number"),
        (SST, "5\tm1\t Fine .\tNaN", "sentiment: label 'NaN' is not a number"),
        (SST, "5\tm1\t Fine .\t1_0", "sentiment: label '1_0' is not a number"),
        (SST, "5\tm1\t Fine .\t5", "sentiment: label '5' is out of range [0, 4]"),
        (SST, "5\tm1\t Fine .\t-1", "sentiment: label '-1' is out of range [0, 4]"),
        (SST, "5\tm1\t Fine .\t2.5", "sentiment: label '2.5' is not an integer"),
        (SST, "5\tm1\t   \t2", "sentence: empty sentence"),
        (SST, '5\tm1\t""\t2', "sentence: empty sentence"),
        (QUORA, "5\tm1\tA?\tB?\t0.5", "is_duplicate: label '0.5' is not an integer"),
        (QUORA, "5\tm1\tA?\tB?\t2.0", "is_duplicate: label '2.0' is out of range [0, 1]"),
        (QUORA, "5\tm1\t \tB?\t1.0", "sentence1: empty sentence"),
        (QUORA, "5\tm1\tA?\t\t1.0", "sentence2: empty sentence"),
        (STS, "5\tm1\tA\tB\t5.01", "similarity: label '5.01' is out of range [0, 5]"),
        (STS, "5\tm1\tA\tB\tinf", "similarity: label 'inf' is not a number"),
        (STS, "5\tm1\tA\tB\t1e999", "similarity: label '1e999' is not a finite number"),
        (STS, "5\tq1\tA\tB\t1.0", "id: duplicate id 'q1' (first seen on line 2)"),
    ],
)
def test_invalid_values_are_errors(tmp_path, policy, spec, row, expected):
    head = {SST: SST_HEAD, QUORA: QUORA_HEAD, STS: STS_HEAD}[spec]
    first = {SST: "0\tq1\t Good .\t3", QUORA: "0\tq1\tA?\tB?\t1.0", STS: "0\tq1\tA\tB\t1.0"}[spec]
    path = write(tmp_path, head + first + "\n" + row + "\n")
    assert error_of(path, spec, on_malformed=policy) == f"{path}:3: {expected}"


def test_sst_label_written_as_float_is_accepted(tmp_path):
    path = write(tmp_path, SST_HEAD + '0\ta\t A .\t3.0\n1\tb\t B .\t"2"\n2\tc\t C .\t 1 \n')
    assert read_table(path, *SST).labels == [3.0, 2.0, 1.0]


# --- file-level errors ------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "raw" / "nope.csv"
    assert error_of(path) == f"{path}: file not found"


def test_directory(tmp_path):
    assert error_of(tmp_path) == f"{tmp_path}: is a directory, not a data file"


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "cannot read file: permission denied"),
        (OSError(errno.EIO, "Input/output error"), "cannot read file: Input/output error"),
    ],
)
def test_unreadable_file(tmp_path, monkeypatch, error, problem):
    # The read itself fails (chmod cannot provoke that as root, which is how CI runs): only for this file.
    path = quora(tmp_path, GOOD_Q[0])
    read_bytes = Path.read_bytes

    def failing_read_bytes(self: Path) -> bytes:
        if self == path:
            raise error
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", failing_read_bytes)
    assert error_of(path) == f"{path}: {problem}"


def test_empty_file(tmp_path):
    assert error_of(write(tmp_path, "")) == f"{tmp_path / 'data.csv'}: file is empty (0 bytes)"
    assert error_of(write(tmp_path, "\ufeff\n", "bom.csv")).endswith("bom.csv: file is empty (no header line)")


@pytest.mark.parametrize("text", [QUORA_HEAD, QUORA_HEAD.rstrip("\n"), QUORA_HEAD + "\n\n"])
def test_header_only(tmp_path, text):
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}: no records after the header line"


def test_not_utf8_names_the_line_and_field(tmp_path):
    body = QUORA_HEAD + GOOD_Q[0] + "\n" + GOOD_Q[2] + "\n"
    raw = body.encode() + b"7\tx7\tCaf\xe9?\tB?\t1.0\n"
    path = write(tmp_path, raw)
    assert error_of(path) == f"{path}:4: sentence1: not valid UTF-8 (byte 0xe9 at byte 9 of the line)"
    path = write(tmp_path, b"\tid\tsentence\xff\tsentiment\n", "h.csv")
    assert error_of(path, SST).startswith(f"{path}:1: not valid UTF-8 (byte 0xff")


def test_latin1_file_is_rejected(tmp_path):
    path = write(tmp_path, (SST_HEAD + "0\ta\t Déjà vu .\t2\n").encode("latin-1"))
    assert error_of(path, SST).startswith(f"{path}:2: sentence: not valid UTF-8")


def test_missing_column_names_it_and_shows_the_header(tmp_path):
    path = write(tmp_path, "\tid\tsentence1\tsentence2\n0\tt1\tA?\tB?\n")
    message = error_of(path)
    assert message.startswith(f"{path}:1: header: missing column 'is_duplicate'")
    assert "found '', 'id', 'sentence1', 'sentence2'" in message
    assert "expected '', 'id', 'sentence1', 'sentence2', 'is_duplicate'" in message


def test_several_missing_columns(tmp_path):
    path = write(tmp_path, "\tidx\tsentence\tsentiment\n0\tt1\tA\t1\n")
    assert error_of(path, QUORA).startswith(
        f"{path}:1: header: missing columns 'id', 'sentence1', 'sentence2', 'is_duplicate'"
    )


def test_extra_column_is_an_error(tmp_path):
    path = quora(tmp_path, GOOD_Q[0])
    message = error_of(path, (QUORA[0], None))  # a train file read as a test file
    assert message.startswith(f"{path}:1: header: unexpected column 'is_duplicate'")
    path = write(tmp_path, "\tid\tsentence\tsentiment\tnote\n0\ta\t A .\t1\tx\n", "extra.csv")
    assert error_of(path, SST).startswith(f"{path}:1: header: unexpected column 'note'")


def test_repeated_column_is_an_error(tmp_path):
    path = write(tmp_path, "\tid\tsentence\tsentiment\tsentiment\n0\ta\t A .\t1\t1\n")
    assert error_of(path, SST).startswith(f"{path}:1: header: repeated column 'sentiment'")


def test_header_with_broken_quoting(tmp_path):
    path = write(tmp_path, '\tid\t"sentence\tsentiment\n0\ta\t A .\t1\n')
    assert error_of(path, SST).startswith(f"{path}:1: header: broken quoting")


def test_bad_arguments_are_value_errors(tmp_path):
    path = quora(tmp_path, GOOD_Q[0])
    with pytest.raises(ValueError, match="on_malformed"):
        read_table(path, *QUORA, on_malformed="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="text_columns"):
        read_table(path, (), QUORA[1])
    with pytest.raises(ValueError, match="distinct"):
        read_table(path, ("sentence1", "is_duplicate"), QUORA[1])


# --- errors module ----------------------------------------------------------------------------------------


def test_data_error_format():
    err = DataError.at(Path("data/raw/x.csv"), 12, "sentence1", problem="empty sentence")
    assert str(err) == "data/raw/x.csv:12: sentence1: empty sentence"
    assert (err.path, err.line, err.field, err.problem) == (
        "data/raw/x.csv",
        12,
        "sentence1",
        "empty sentence",
    )
    assert str(DataError.at("data/raw/x.csv", problem="file not found")) == "data/raw/x.csv: file not found"
    assert str(DataError.at("x.csv", 3, problem="blank")) == "x.csv:3: blank"
    assert str(DataError.at(None, field="seed", problem="must be >= 0")) == "seed: must be >= 0"
    assert str(DataError("two\nlines")) == "two lines"
    assert isinstance(ConfigError("tasks: bad"), DataError)
    assert isinstance(ConfigError.at("params.yaml", field="k", problem="p"), ConfigError)


# --- speed and the real data ------------------------------------------------------------------------------


def test_reading_a_quora_sized_file_is_fast(tmp_path):
    rows = [f'{i}\tid{i}\tWhat is "x" number {i}?\t"""Quoted"" {i}"\t{i % 2}.0' for i in range(15_000)]
    path = quora(tmp_path, *rows)
    start = time.perf_counter()
    table = read_table(path, *QUORA)
    elapsed = time.perf_counter() - start
    assert len(table) == 15_000
    assert table.texts["sentence2"][7] == '"Quoted" 7'
    assert elapsed < 1.0, elapsed


REAL = Path(__file__).resolve().parents[3] / "shared" / "data"
REAL_COUNTS = {  # file: (rows read, rows skipped); the README's row counts are the sums
    "ids-sst-train.csv": (7690, 0),
    "ids-sst-dev.csv": (854, 0),
    "ids-sst-test-student.csv": (1101, 0),
    "quora-train.csv": (14212, 2),
    "quora-dev.csv": (2000, 0),
    "quora-test-student.csv": (4000, 0),
    "sts-train.csv": (5436, 0),
    "sts-dev.csv": (604, 0),
    "sts-test-student.csv": (863, 0),
}


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_dir(), reason=f"no real data at {REAL}")
@pytest.mark.parametrize("name", sorted(REAL_COUNTS))
def test_real_files(name):
    spec = next(s for prefix, s in (("ids-sst", SST), ("quora", QUORA), ("sts", STS)) if name.startswith(prefix))
    label = None if "test-student" in name else spec[1]
    table = read_table(REAL / name, spec[0], label, on_malformed="skip")
    assert (len(table), len(table.skipped)) == REAL_COUNTS[name]
    if name == "quora-train.csv":
        assert [row.line for row in table.skipped] == [1797, 10001]
        assert all(row.reason.startswith("is_duplicate: empty label") for row in table.skipped)
        with pytest.raises(DataError, match=r"quora-train\.csv:1797: is_duplicate: empty label"):
            read_table(REAL / name, spec[0], label, on_malformed="error")
    assert all(text == text.strip() and text for col in table.texts.values() for text in col)


def test_header_columns_lists_the_stripped_names_and_names_an_empty_file(tmp_path):
    from mtbert.data.reader import header_columns

    path = tmp_path / "sts-test.csv"
    path.write_text("\tid\tsentence1 \tsentence2\n0\ta\tb\tc\n", encoding="utf-8")
    assert header_columns(path) == ["", "id", "sentence1", "sentence2"]
    (tmp_path / "empty.csv").write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty.csv: file is empty \(no header line\)"):
        header_columns(tmp_path / "empty.csv")
