"""Host-side triplet sampling: every backend trains on the very same triplets (SPEC §5, §7).

Per epoch and seed: the training positives in a random order, each with a negative outside the
user's training items (batches B of the real step); an independent order for the lookahead
batches B̄; and validation triplets (negatives outside train ∪ validation) for the batches V.
"""
from typing import NamedTuple

import numpy as np

from .kernels.cpu.sampling import sample_negatives

STREAM_TRAIN, STREAM_LOOKAHEAD, STREAM_VALID = 0, 1, 2


class Triplets(NamedTuple):
    users: np.ndarray
    pos: np.ndarray
    neg: np.ndarray

    def batch(self, start, stop):
        return Triplets(self.users[start:stop], self.pos[start:stop], self.neg[start:stop])


class TripletSampler:
    def __init__(self, split, seed=0):
        self.split = split
        self.seed = int(seed)
        self.train_excluded = split.csr(("train",))
        self.valid_excluded = split.csr(("train", "valid"))

    def _stream(self, epoch, stream):
        ss = np.random.SeedSequence([self.seed, int(epoch), stream])
        return np.random.default_rng(ss), int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))

    def _triplets(self, pairs, order, excluded, neg_seed):
        users = np.ascontiguousarray(pairs[order, 0], dtype=np.int64)
        pos = np.ascontiguousarray(pairs[order, 1], dtype=np.int64)
        neg = np.empty_like(users)
        sample_negatives(users, excluded[0], excluded[1], self.split.n_items, neg_seed, neg)
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
