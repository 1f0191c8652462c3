"""Tests for mtbert.data.encoded: token-id caches and batch building (checked against the HF tokenizer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from mtbert.data.encoded import EncodedSplit, SpecialTokens, collate, encode_table, load_split, save_split
from mtbert.data.reader import Table

A = ["the movie is good", "awful", "who can tell the best story of the year", "great fun"]
B = ["what a dull plot", "why is the plot so bad and dull", "good", "the worst film"]
LABELS = [0.0, 1.0, 1.0, 0.0]
SPECIAL = SpecialTokens(cls=101, sep=102, pad=0)  # hand-made splits below use ids >= 1000


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tok.is_fast
    return tok


@pytest.fixture(scope="module")
def special(tokenizer) -> SpecialTokens:
    return SpecialTokens(tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)


def pair_table(labels: list[float] | None = LABELS) -> Table:
    ids = [f"id{i}" for i in range(len(A))]
    return Table(Path("quora-train.csv"), ids, {"sentence1": A, "sentence2": B}, labels, [])


@pytest.fixture(scope="module")
def pairs(tokenizer) -> EncodedSplit:
    return encode_table(pair_table(), ("sentence1", "sentence2"), tokenizer)


def hand_split(*columns: list[list[int]], labels: list[float] | None = None) -> EncodedSplit:
    """An EncodedSplit with the given token ids per column and row (no tokenizer involved)."""
    encoded = []
    for rows in columns:
        offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        flat = np.array([t for r in rows for t in r], dtype=np.int32)
        encoded.append((flat, offsets))
    n = len(columns[0])
    return EncodedSplit([f"r{i}" for i in range(n)], encoded, None if labels is None else np.array(labels, np.float32))


def tokens(n: int, start: int = 1000) -> list[int]:
    return list(range(start, start + n))


def real_rows(batch_ids: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
    return [ids[m.bool()].tolist() for ids, m in zip(batch_ids, mask, strict=True)]


# --- encode / save / load -------------------------------------------------------------------------------


def test_encode_table_keeps_ids_labels_and_tokens_without_special_tokens(tokenizer, pairs):
    assert pairs.ids == ["id0", "id1", "id2", "id3"]
    assert len(pairs) == 4
    assert pairs.labels.dtype == np.float32
    assert pairs.labels.tolist() == LABELS
    for column, texts in enumerate((A, B)):
        flat, offsets = pairs.columns[column]
        assert offsets[0] == 0 and offsets[-1] == len(flat)
        for row, text in enumerate(texts):
            expected = tokenizer(text, add_special_tokens=False)["input_ids"]
            assert pairs.tokens(column, row).tolist() == expected
    lengths = [len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in A]
    lengths = [n + len(tokenizer(b, add_special_tokens=False)["input_ids"]) for n, b in zip(lengths, B, strict=True)]
    assert pairs.lengths().tolist() == lengths


def test_save_and_load_round_trip(tmp_path, pairs):
    path = tmp_path / "sub" / "para-train.safetensors"
    save_split(pairs, path)
    loaded = load_split(path)
    assert loaded.ids == pairs.ids
    assert len(loaded.columns) == 2
    for (flat, offsets), (flat2, offsets2) in zip(pairs.columns, loaded.columns, strict=True):
        np.testing.assert_array_equal(flat2, flat)
        np.testing.assert_array_equal(offsets2, offsets)
    np.testing.assert_array_equal(loaded.labels, pairs.labels)
    assert loaded.tokens(1, 2).tolist() == pairs.tokens(1, 2).tolist()


def test_test_split_has_no_labels_after_round_trip(tmp_path, tokenizer):
    split = encode_table(pair_table(labels=None), ("sentence1", "sentence2"), tokenizer)
    assert split.labels is None
    save_split(split, tmp_path / "test.safetensors")
    loaded = load_split(tmp_path / "test.safetensors")
    assert loaded.labels is None
    assert loaded.ids == split.ids
    batch = collate(loaded, np.arange(2), "cross", SPECIAL, 32)
    assert batch.labels is None


def test_single_column_round_trip(tmp_path, tokenizer):
    table = Table(Path("ids-sst-train.csv"), ["a", "b"], {"sentence": A[:2]}, [3.0, 4.0], [])
    split = encode_table(table, ("sentence",), tokenizer)
    save_split(split, tmp_path / "sst.safetensors")
    loaded = load_split(tmp_path / "sst.safetensors")
    assert len(loaded.columns) == 1
    assert loaded.tokens(0, 1).tolist() == tokenizer(A[1], add_special_tokens=False)["input_ids"]
    assert loaded.labels.tolist() == [3.0, 4.0]


def test_the_same_split_always_gives_the_same_bytes(tmp_path, tokenizer):
    # DVC hashes the cache files: the same input must give the same bytes, or every fresh `prepare` would look
    # like a change to the stages after it (safetensors metadata order varies from one save to the next).
    split = encode_table(pair_table(), ("sentence1", "sentence2"), tokenizer)
    contents = set()
    for i in range(8):
        save_split(split, tmp_path / f"{i}.safetensors")
        contents.add((tmp_path / f"{i}.safetensors").read_bytes())
    assert len(contents) == 1


# --- collate against the tokenizer ----------------------------------------------------------------------


def test_single_is_cls_a_sep_as_the_tokenizer_does(tokenizer, special, pairs):
    batch = collate(pairs, np.arange(4), "single", special, 64)
    expected = tokenizer(A, padding="longest", return_tensors="pt")
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(batch.inputs[key], expected[key]), key
    assert batch.size == 4
    assert batch.labels.tolist() == LABELS


def test_cross_is_cls_a_sep_b_sep_with_token_types(tokenizer, special, pairs):
    batch = collate(pairs, np.arange(4), "cross", special, 64)
    expected = tokenizer(A, B, padding="longest", return_tensors="pt")
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(batch.inputs[key], expected[key]), key
    ids, types, mask = (batch.inputs[k] for k in ("input_ids", "token_type_ids", "attention_mask"))
    for row in range(4):
        n_a = len(pairs.tokens(0, row))
        n_b = len(pairs.tokens(1, row))
        seq = ids[row, : n_a + n_b + 3].tolist()
        assert seq[0] == special.cls and seq[n_a + 1] == special.sep and seq[-1] == special.sep
        assert types[row, : n_a + 2].tolist() == [0] * (n_a + 2)
        assert types[row, n_a + 2 : n_a + n_b + 3].tolist() == [1] * (n_b + 1)
        assert int(mask[row].sum()) == n_a + n_b + 3
    assert batch.size == 4


def test_bi_is_the_a_rows_then_the_b_rows(tokenizer, special, pairs):
    batch = collate(pairs, np.arange(4), "bi", special, 64)
    expected = tokenizer(A + B, padding="longest", return_tensors="pt")
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(batch.inputs[key], expected[key]), key
    assert batch.inputs["input_ids"].shape[0] == 8
    assert batch.size == 4  # pairs count once
    assert batch.labels.tolist() == LABELS


@pytest.mark.parametrize(
    ("a_words", "b_words"),
    [
        (14, 3),
        (3, 14),
        (9, 9),
        pytest.param(12, 5),
    ],
)
def test_cross_truncation_matches_the_tokenizer_longest_first(tokenizer, special, a_words, b_words):
    a, b = " ".join(["good"] * a_words), " ".join(["bad"] * b_words)
    split = encode_table(Table(Path("x.csv"), ["x"], {"s1": [a], "s2": [b]}, None, []), ("s1", "s2"), tokenizer)
    batch = collate(split, np.arange(1), "cross", special, 12)
    expected = tokenizer(a, b, truncation="longest_first", max_length=12, return_tensors="pt")
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(batch.inputs[key], expected[key]), key


# --- collate on hand-made token ids ---------------------------------------------------------------------


def test_pads_to_the_longest_member_of_the_batch_not_to_max_length():
    split = hand_split([tokens(2), tokens(5), tokens(3), tokens(9)])
    batch = collate(split, np.array([0, 1, 2]), "single", SPECIAL, 64)
    ids, mask, types = (batch.inputs[k] for k in ("input_ids", "attention_mask", "token_type_ids"))
    assert ids.shape == (3, 7)  # 5 tokens + [CLS] + [SEP]
    assert mask.tolist() == [[1] * 4 + [0] * 3, [1] * 7, [1] * 5 + [0] * 2]
    assert ids[0].tolist() == [101, 1000, 1001, 102, 0, 0, 0]
    assert (ids[mask == 0] == SPECIAL.pad).all()
    assert (types == 0).all()
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert batch.inputs[key].dtype == torch.long
    assert collate(split, np.array([0, 2]), "single", SPECIAL, 64).inputs["input_ids"].shape == (2, 5)


def test_rows_are_taken_in_the_given_order():
    split = hand_split([tokens(1, 1000), tokens(2, 2000), tokens(3, 3000)], labels=[0.0, 1.0, 2.0])
    batch = collate(split, np.array([2, 0]), "single", SPECIAL, 64)
    assert real_rows(batch.inputs["input_ids"], batch.inputs["attention_mask"]) == [
        [101, 3000, 3001, 3002, 102],
        [101, 1000, 102],
    ]
    assert batch.labels.tolist() == [2.0, 0.0]
    assert batch.size == 2


def test_bi_rows_in_the_given_order_a_then_b():
    split = hand_split([tokens(1, 1000), tokens(2, 2000)], [tokens(3, 5000), tokens(1, 6000)], labels=[0.5, 4.0])
    batch = collate(split, np.array([1, 0]), "bi", SPECIAL, 64)
    assert real_rows(batch.inputs["input_ids"], batch.inputs["attention_mask"]) == [
        [101, 2000, 2001, 102],
        [101, 1000, 102],
        [101, 6000, 102],
        [101, 5000, 5001, 5002, 102],
    ]
    assert batch.labels.tolist() == [4.0, 0.5]


def test_single_and_bi_truncate_each_sentence_to_max_length():
    split = hand_split([tokens(20), tokens(3)], [tokens(4, 5000), tokens(30, 6000)])
    single = collate(split, np.arange(2), "single", SPECIAL, 8)
    assert single.inputs["input_ids"][0].tolist() == [101, *tokens(6), 102]
    assert single.inputs["input_ids"].shape == (2, 8)
    bi = collate(split, np.arange(2), "bi", SPECIAL, 8)
    rows = real_rows(bi.inputs["input_ids"], bi.inputs["attention_mask"])
    assert rows == [
        [101, *tokens(6), 102],
        [101, *tokens(3), 102],
        [101, *tokens(4, 5000), 102],
        [101, *tokens(6, 6000), 102],
    ]


@pytest.mark.parametrize(
    ("len_a", "len_b", "max_length", "kept_a", "kept_b"),
    [
        (10, 3, 12, 6, 3),  # only the longer sentence is cut
        (3, 10, 12, 3, 6),
        (20, 15, 12, None, None),  # both cut, to within one token of each other
        (6, 6, 12, None, None),
        (4, 4, 12, 4, 4),  # fits: nothing cut
    ],
)
def test_cross_truncation_is_longest_first(len_a, len_b, max_length, kept_a, kept_b):
    split = hand_split([tokens(len_a, 1000)], [tokens(len_b, 5000)])
    batch = collate(split, np.arange(1), "cross", SPECIAL, max_length)
    seq = real_rows(batch.inputs["input_ids"], batch.inputs["attention_mask"])[0]
    types = batch.inputs["token_type_ids"][0, : len(seq)].tolist()
    first_sep = seq.index(102)
    a, b = seq[1:first_sep], seq[first_sep + 1 : -1]
    assert seq[0] == 101 and seq[-1] == 102
    assert a == tokens(len(a), 1000) and b == tokens(len(b), 5000)  # prefixes kept
    assert types == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    assert len(seq) == min(len_a + len_b + 3, max_length)
    if kept_a is not None:
        assert (len(a), len(b)) == (kept_a, kept_b)
    else:
        assert abs(len(a) - len(b)) <= 1
