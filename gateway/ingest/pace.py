"""How many files a channel hands to intake at once: a batch bounded in time as well as in files.

The SFTP hand-off and the zone watcher take files the accounts in turn (gateway.engine.turns), in batches (intake_all:
one transaction for their flows, one for their acknowledgements): another account's file waits for the batch in
progress, then for its own, which a burst's next files fill. So a batch takes as many files as the last batch's pace
lets it finish in about a set time, up to a set number. What a file costs varies several-fold with what shares the
process (the SFTP sessions' threads, the workers, their write transactions): the first batches of 16 of a burst took
1.2-2 s where the later ones took 0.3 s.
"""

from __future__ import annotations


class Pace:
    """The size of a channel's next batch: as many files as last about seconds at the last batch's pace, one at
    least, most at most (most before any batch). One thread's: the channel's own."""

    def __init__(self, seconds: float = 0.2, most: int = 16) -> None:
        self.seconds = seconds
        self.most = most
        self._per_file = 0.0  # seconds a file took in the last batch, its share of the batch's transactions included

    def size(self) -> int:
        """The files the next batch may take."""
        if self._per_file <= 0:
            return self.most
        return max(1, min(self.most, int(self.seconds / self._per_file)))

    def took(self, count: int, seconds: float) -> None:
        """Note the last batch: count files handed over in seconds (an empty batch tells nothing)."""
        if count > 0:
            self._per_file = seconds / count
