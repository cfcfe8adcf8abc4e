"""The size of a channel's batches (gateway.ingest.pace): as many files as the last batch's pace lets finish in about
the set time, one at least, the maximum at most."""

from __future__ import annotations

from gateway.ingest.pace import Pace


def test_the_first_batch_takes_the_maximum():
    assert Pace(seconds=0.2, most=16).size() == 16
    assert Pace(seconds=0.2, most=5).size() == 5


def test_slow_batches_shrink_the_next_down_to_one_never_below():
    pace = Pace(seconds=0.2, most=16)
    pace.took(16, 0.8)  # 50 ms a file: 4 fit in 0.2 s
    assert pace.size() == 4
    pace.took(4, 0.5)  # 125 ms a file: 1
    assert pace.size() == 1
    pace.took(1, 5.0)  # a file far slower than the bound: still one, never none
    assert pace.size() == 1


def test_the_size_follows_the_last_batchs_pace_not_an_average():
    pace = Pace(seconds=1.0, most=100)
    pace.took(2, 0.5)  # 250 ms a file
    assert pace.size() == 4
    pace.took(10, 0.1)  # 10 ms a file
    assert pace.size() == 100
    pace.took(10, 0.3)  # 30 ms a file: 33 in 1 s, rounded down
    assert pace.size() == 33


def test_fast_batches_grow_the_next_back_to_the_maximum_and_no_further():
    pace = Pace(seconds=0.2, most=16)
    pace.took(16, 3.2)
    assert pace.size() == 1
    pace.took(1, 0.02)  # 20 ms a file: 10
    assert pace.size() == 10
    pace.took(10, 0.01)  # 1 ms a file: 200 would fit, the maximum is 16
    assert pace.size() == 16
    pace.took(16, 0.0)  # too fast for the clock to tell
    assert pace.size() == 16


def test_an_empty_batch_tells_nothing():
    pace = Pace(seconds=0.2, most=16)
    pace.took(4, 0.4)
    pace.took(0, 0.0)
    assert pace.size() == 2
