"""Host-side triplet sampling: every backend trains on the very same triplets (SPEC §5, §7).

Per epoch and seed: the training positives in a random order, each with a negative outside the
user's training items (batches B of the real step); an independent order for the lookahead
batches B̄; and validation triplets (negatives outside train ∪ validation) for the batches V.
Everything but the permutations (NumPy's generator) runs in compiled parallel kernels.
"""

from typing import NamedTuple

import numpy as np

from .kernels.cpu.sampling import excluded_bitmap, gather_pairs, sample_negatives

STREAM_TRAIN, STREAM_LOOKAHEAD, STREAM_VALID = 0, 1, 2
# the excluded sets are also kept as a bitmap (a faster membership test, the same samples) while
# it takes at most this much memory: 2.8 MB at MovieLens-1M shape, 93 MB at ML-10M shape, where
# it samples 10 M triplets in 0.73 s against 1.64 s by binary search (docs/performance.rst)
BITMAP_MAX_BYTES = 256 << 20


class ExcludedItems(NamedTuple):
    """Each user's excluded items: sorted CSR lists, and a bitmap (no columns when too big)."""

    indptr: np.ndarray
    indices: np.ndarray
    bits: np.ndarray

    @classmethod
    def build(cls, indptr, indices, n_items, bitmap_max_bytes):
        n_users = len(indptr) - 1
        words = -(-n_items // 64)
        if n_users * words * 8 > bitmap_max_bytes:
            words = 0
        bits = np.zeros((n_users, words), np.uint64)
        if words:
            excluded_bitmap(indptr, indices, bits)
        return cls(indptr, indices, bits)


class Triplets(NamedTuple):
    users: np.ndarray
    pos: np.ndarray
    neg: np.ndarray

    def batch(self, start, stop):
        return Triplets(self.users[start:stop], self.pos[start:stop], self.neg[start:stop])


class TripletSampler:
    def __init__(self, split, seed=0, bitmap_max_bytes=BITMAP_MAX_BYTES):
        self.split = split
        self.seed = int(seed)
        self.train_excluded = ExcludedItems.build(
            *split.csr(("train",)), split.n_items, bitmap_max_bytes
        )
        self.valid_excluded = ExcludedItems.build(
            *split.csr(("train", "valid", "selection")), split.n_items, bitmap_max_bytes
        )

    def _stream(self, epoch, stream):
        ss = np.random.SeedSequence([self.seed, int(epoch), stream])
        return np.random.default_rng(ss), int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))

    def _triplets(self, pairs, order, excluded, neg_seed):
        users = np.empty(len(order), np.int64)
        pos = np.empty_like(users)
        neg = np.empty_like(users)
        gather_pairs(np.ascontiguousarray(pairs, dtype=np.int64), order, users, pos)
        sample_negatives(users, *excluded, self.split.n_items, neg_seed, neg)
        return Triplets(users, pos, neg)

    def train_triplets(self, epoch, stream=STREAM_TRAIN):
        """Every training positive once, in a random order, with a sampled negative."""
        rng, neg_seed = self._stream(epoch, stream)
        order = rng.permutation(len(self.split.train))
        return self._triplets(self.split.train, order, self.train_excluded, neg_seed)

    def valid_triplets(self, epoch, n):
        """``n`` validation triplets: validation positives in random orders, cycled as needed."""
        rng, neg_seed = self._stream(epoch, STREAM_VALID)
        m = len(self.split.valid)
        order = np.concatenate([rng.permutation(m) for _ in range(-(-n // m))])[:n]
        return self._triplets(self.split.valid, order, self.valid_excluded, neg_seed)


class BatchStream:
    """Consecutive batches of one stream of training triplets (SPEC §8, ``lookahead_batches =
    "stream"``: the lookahead batch B̄ and the real batch B are drawn one after the other, as the
    authors' shared iterator does). When a pass is used up the next one is drawn (its own
    permutation and negatives); the last batch of a pass is short."""

    def __init__(self, sampler, stream=STREAM_TRAIN):
        self.sampler, self.stream = sampler, stream
        self.passes, self.pos, self.triplets = 0, 0, None

    def restore(self, passes, pos):
        """Continue where a checkpointed stream was: pass ``passes``, position ``pos``."""
        self.passes, self.pos = int(passes), int(pos)
        self.triplets = (
            self.sampler.train_triplets(self.passes, self.stream) if self.passes else None
        )

    def next(self, size):
        if self.triplets is None or self.pos >= len(self.triplets.users):
            self.passes += 1
            self.triplets = self.sampler.train_triplets(self.passes, self.stream)
            self.pos = 0
        batch = self.triplets.batch(self.pos, self.pos + size)
        self.pos += size
        return batch
