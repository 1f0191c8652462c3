"""Progress bars: drawn only when asked, the items passed through unchanged either way."""

from __future__ import annotations

import io

from mtbert.progress import Progress, progress


def test_without_a_bar_the_items_are_returned_as_they_are_and_nothing_is_drawn(capsys):
    items = [3, 1, 2]
    assert progress(items, enabled=False, desc="x") is items
    bar = Progress(items, enabled=False, desc="x")
    assert list(bar) == [3, 1, 2]
    assert bar.note("loss=1.0") is False  # the caller logs a plain line instead
    bar.close()
    assert capsys.readouterr() == ("", "")


def test_with_a_bar_the_items_pass_through_and_the_bar_counts_them():
    out = io.StringIO()
    assert list(progress(iter("abc"), enabled=True, total=3, desc="tokenize", file=out)) == ["a", "b", "c"]
    drawn = out.getvalue()
    assert "tokenize" in drawn and "0/3" in drawn  # drawn at the start; erased at the end (leave=False)
    bar = Progress(iter("abc"), enabled=True, total=3, desc="x", file=io.StringIO())
    assert list(bar) == ["a", "b", "c"]
    assert bar.bar is not None and bar.bar.n == 3  # it counted every item (a bar that never advances stays at 0)


def test_a_note_is_shown_beside_the_bar():
    out = io.StringIO()
    bar = Progress(range(2), enabled=True, desc="epoch 0", file=out)
    for _ in bar:
        assert bar.note("loss_sst=1.2345") is True
    assert "loss_sst=1.2345" in out.getvalue()


def test_the_default_bar_is_drawn_on_stderr(capsys):
    assert list(progress(range(4), enabled=True, desc="predict")) == [0, 1, 2, 3]
    captured = capsys.readouterr()
    assert captured.out == "" and "0/4" in captured.err
