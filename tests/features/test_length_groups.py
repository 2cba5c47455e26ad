"""`length_groups`: a batch of long and short sequences runs as two passes only when that pays."""

from __future__ import annotations

import numpy as np

from emofusion.features.batching import length_groups


def test_full_windows_and_short_tails_of_eight_recordings_split_in_two():
    lengths = [100, 19] * 8  # eight 3-s recordings: a full window and a 19-frame tail each
    long, short = length_groups(lengths, min_saved=300)
    assert long.tolist() == [0, 2, 4, 6, 8, 10, 12, 14] and short.tolist() == [1, 3, 5, 7, 9, 11, 13, 15]
    # Hand count: one pass pads 16 x 100 = 1600 steps; two pad 8 x 100 + 8 x 19 = 952 (648 fewer).
    assert length_groups(lengths, min_saved=648)[1].tolist() == short.tolist()
    assert [g.tolist() for g in length_groups(lengths, min_saved=649)] == [list(range(16))]


def test_a_split_that_saves_too_little_keeps_one_pass_in_the_original_order():
    # Two recordings: 400 - 238 = 162 steps saved, below 300: one pass, rows as given.
    assert [g.tolist() for g in length_groups([100, 19, 100, 19], min_saved=300)] == [[0, 1, 2, 3]]
    assert [g.tolist() for g in length_groups([7], min_saved=0)] == [[0]]
    assert [g.tolist() for g in length_groups([50] * 9, min_saved=1)] == [list(range(9))]  # nothing to save


def test_the_split_point_is_the_one_that_pads_least():
    # Sorted 100, 90, 30, 20, 10: after 2 rows 2*100 + 3*30 = 290 beats after 1 (100 + 4*90 = 460)
    # and after 3 (3*100 + 2*20 = 340); one pass pads 500.
    groups = length_groups(np.array([30, 100, 10, 90, 20]), min_saved=100)
    assert [g.tolist() for g in groups] == [[1, 3], [0, 2, 4]]
