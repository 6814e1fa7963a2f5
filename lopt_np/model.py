"""The trained model in use: recommend, similar items and users, score, save and load.

A model folder (``Model.save``; every ``lopt train`` run folder is one) holds

- ``model.npz``: ``user_embeddings`` P (|U|×K), ``item_embeddings`` Q (|I|×K), ``lambda_P``,
  ``lambda_Q`` (Λ in the granularity's shape, SPEC §3), ``user_ids`` and ``item_ids`` (the
  original id of each dense index: integers when every id was an integer, else strings), and
  ``seen_indptr``/``seen_items``: each user's interacted items (every interaction of the data,
  as compressed rows), which ``recommend`` filters out;
- ``model.json``: the format and its version, the lopt_np version that wrote it, the training
  configuration, the kept epoch and the per-epoch history.

Scores are the model's ``p_u · q_i`` in float64 (SPEC §7), top-n lists exact (no approximate
search); see ``math.recommend`` for the order and the padding.
"""

import json
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from .errors import NPZ_READ_ERRORS, ConfigError, DataError, shown
from .data.split import Split, plain_ids, selection_target
from .evaluation import evaluate, evaluation_device
from .io import write_json, write_npz
from .math.recommend import unit_rows

FORMAT = "lopt_np.model"
FORMAT_VERSION = 1
ARRAYS = (
    "user_embeddings",
    "item_embeddings",
    "lambda_P",
    "lambda_Q",
    "user_ids",
    "item_ids",
    "seen_indptr",
    "seen_items",
)


@dataclass
class Model:
    """A trained MF model: embeddings P, Q, the learned (or fixed) Λ, the original ids, each
    user's interacted items, the configuration, the history and the Λ trajectory."""

    P: np.ndarray
    Q: np.ndarray
    lambda_P: np.ndarray
    lambda_Q: np.ndarray
    config: dict
    history: list
    trajectory: dict
    best_epoch: int
    user_ids: np.ndarray = None
    item_ids: np.ndarray = None
    seen_indptr: np.ndarray = None
    seen_items: np.ndarray = None
    stop_reason: str = ""
    split: object = field(default=None, repr=False, compare=False)  # in memory, not saved
    _lookup: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if self.user_ids is not None:  # the type a saved model reads back
            self.user_ids, self.item_ids = plain_ids(self.user_ids), plain_ids(self.item_ids)

    @property
    def n_users(self):
        return self.P.shape[0]

    @property
    def n_items(self):
        return self.Q.shape[0]

    # --- ids ----------------------------------------------------------------------------------
    def user_index(self, users):
        """Dense indices of original user ids (any value whose ``str`` equals a stored id:
        ``196`` and ``"196"`` are the same user); an unknown id is a :class:`DataError`."""
        return self._index("user", self.user_ids, users)

    def item_index(self, items):
        """Dense indices of original item ids (as :meth:`user_index`)."""
        return self._index("item", self.item_ids, items)

    def _index(self, kind, ids, values):
        if ids is None:
            raise DataError(
                "this model carries no original ids (it was not trained from a Split); retrain it"
            )
        if kind not in self._lookup:
            self._lookup[kind] = {str(x): i for i, x in enumerate(ids.tolist())}
        lookup = self._lookup[kind]
        values = np.atleast_1d(np.asarray(values, dtype=object))
        if values.ndim != 1:
            raise ConfigError(f"{kind} ids must be one id or a 1-D list of ids")
        out = np.empty(len(values), np.int64)
        for k, v in enumerate(values.tolist()):
            i = lookup.get(str(v))
            if i is None:
                raise DataError(
                    f"unknown {kind} id {shown(v)}: the model has {len(ids):,} "
                    f"{kind}s (ids such as {shown(str(ids[0]))})"
                )
            out[k] = i
        return out

    # --- inference ----------------------------------------------------------------------------
    def recommend(
        self,
        users: Any,
        n: int = 10,
        filter_seen: bool = True,
        items: Optional[Sequence] = None,
        device: str = "cpu",
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The top ``n`` items of each user by score p_u·q_i (float64), best first.

        Parameters
        ----------
        users : id or sequence of ids
            Original user ids (``196`` and ``"196"`` name the same user).
        n : int
            Items per user (capped by the number of candidates).
        filter_seen : bool
            Leave out the items the user interacted with in the data the model was trained
            from (all of its splits).
        items : sequence of ids, optional
            Restrict the candidates to these item ids.
        device : {"cpu", "cuda"}
            Numba on the CPU (parallel over users) or Numba CUDA.

        Returns
        -------
        item_ids, scores : ndarray
            1-D for one user, 2-D (users × n) for a sequence. Where fewer than n candidates
            remain, a list is padded with score -inf and id -1 (integer ids) or "" (strings).
        """
        one = np.ndim(users) == 0
        rows = self.user_index(users)
        candidates = (
            np.arange(self.n_items, dtype=np.int64)
            if items is None
            else np.unique(self.item_index(items))
        )
        if filter_seen:
            if self.seen_indptr is None:
                raise DataError(
                    "this model carries no interactions to filter; pass filter_seen=False"
                )
            excluded = (self.seen_indptr, self.seen_items)
        else:
            excluded = (np.zeros(self.n_users + 1, np.int64), np.zeros(0, np.int64))
        top, scores = self._top_n(self.P, self.Q, rows, n, excluded, candidates, device)
        return self._result(self.item_ids, top, scores, one)

    def similar_items(
        self, items: Any, n: int = 10, device: str = "cpu"
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The ``n`` items most similar to each of ``items`` by cosine similarity of their
        embeddings q (the item itself left out), most similar first.

        Parameters
        ----------
        items : id or sequence of ids
            Original item ids.
        n : int
            Neighbours per item.
        device : {"cpu", "cuda"}
            As :meth:`recommend`'s.

        Returns
        -------
        item_ids, similarities : ndarray
            Shaped as :meth:`recommend`'s.
        """
        return self._similar(
            self.Q, self.item_index(items), self.item_ids, n, device, np.ndim(items) == 0
        )

    def similar_users(
        self, users: Any, n: int = 10, device: str = "cpu"
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The ``n`` users most similar to each of ``users`` by cosine similarity of their
        embeddings p (the user itself left out).

        Parameters
        ----------
        users : id or sequence of ids
            Original user ids.
        n : int
            Neighbours per user.
        device : {"cpu", "cuda"}
            As :meth:`recommend`'s.

        Returns
        -------
        user_ids, similarities : ndarray
            Shaped as :meth:`recommend`'s.
        """
        return self._similar(
            self.P, self.user_index(users), self.user_ids, n, device, np.ndim(users) == 0
        )

    def score(self, users: Sequence, items: Sequence) -> np.ndarray:
        """Scores p_u·q_i (float64) of the pairs (users[k], items[k]).

        Parameters
        ----------
        users, items : sequence of ids
            Original ids, as many users as items.

        Returns
        -------
        ndarray
            One score per pair.
        """
        u = self.user_index(users)
        i = self.item_index(items)
        if len(u) != len(i):
            raise ConfigError(f"score needs as many users as items, got {len(u)} and {len(i)}")
        return np.einsum(
            "ij,ij->i", np.asarray(self.P[u], np.float64), np.asarray(self.Q[i], np.float64)
        )

    def _similar(self, X, rows, ids, n, device, one):
        unit = unit_rows(X)
        own = (np.arange(len(X) + 1, dtype=np.int64), np.arange(len(X), dtype=np.int64))
        top, scores = self._top_n(
            unit, unit, rows, n, own, np.arange(len(X), dtype=np.int64), device
        )
        return self._result(ids, top, scores, one)

    @staticmethod
    def _top_n(left, right, rows, n, excluded, candidates, device):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(f"n must be a positive integer, got {shown(n)}")
        n = min(int(n), len(candidates))
        top_n_rows = _top_n_rows(device)
        top = np.empty((len(rows), n), np.int64)
        scores = np.empty((len(rows), n), np.float64)
        top_n_rows(left, right, rows, excluded[0], excluded[1], candidates, top, scores)
        return top, scores

    @staticmethod
    def _result(ids, top, scores, one):
        pad = -1 if ids.dtype.kind == "i" else ""
        out = np.where(top >= 0, ids[np.maximum(top, 0)], np.asarray(pad, ids.dtype))
        return (out[0], scores[0]) if one else (out, scores)

    def evaluate(
        self,
        split: Optional[Split] = None,
        target: str = "test",
        ks: Optional[Sequence[int]] = None,
        device: Optional[str] = None,
    ) -> dict:
        """SPEC §7 metrics of this model (:func:`lopt_np.evaluate`).

        Parameters
        ----------
        split : Split, optional
            Default: the split ``fit`` made (a loaded model needs it given).
        target : {"test", "valid", "train", "selection"}
            The part ranked. ``valid`` means the validation interactions selection uses: the
            slice held out from Λ when the model was trained with ``selection_frac`` > 0.
        ks : sequence of int, optional
            Cut-offs of HR@K and NDCG@K (default: the training run's).
        device : {"cpu", "cuda"}, optional
            Default: the one the model trained on (``cuda``, or else ``cpu``).

        Returns
        -------
        dict
            As :func:`lopt_np.evaluate`: ``metrics``, ``n_users``, ``n_pairs``, ``groups``.
        """
        split = self.split if split is None else split
        if split is None:
            raise ConfigError(
                "evaluate needs the split: this model was loaded from a folder, "
                "pass Split.load(folder/split.npz)"
            )
        if target not in ("train", "valid", "test", "selection"):
            raise ConfigError(f"target must be train, valid or test, got {shown(target)}")
        device = device or evaluation_device(self.config.get("device"))
        split, target = selection_target(split, target, self.config.get("selection_frac", 0))
        return evaluate(self.P, self.Q, split, target, ks or self.config["ks"], device=device)

    # --- files --------------------------------------------------------------------------------
    def save(self, folder: str) -> None:
        """Write ``model.npz`` and ``model.json`` into ``folder`` (created if needed), each
        file whole (``io.write_whole``)."""
        from ._version import __version__

        os.makedirs(folder, exist_ok=True)
        arrays = dict(
            user_embeddings=self.P,
            item_embeddings=self.Q,
            lambda_P=self.lambda_P,
            lambda_Q=self.lambda_Q,
        )
        if self.user_ids is not None:
            arrays.update(
                user_ids=plain_ids(self.user_ids),
                item_ids=plain_ids(self.item_ids),
                seen_indptr=self.seen_indptr,
                seen_items=self.seen_items,
            )
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "lopt_np_version": __version__,
            "config": self.config,
            "best_epoch": self.best_epoch,
            "stop_reason": self.stop_reason,
            "history": self.history,
        }
        write_npz(os.path.join(folder, "model.npz"), arrays)
        write_json(os.path.join(folder, "model.json"), meta)

    @classmethod
    def load(cls, folder: str) -> "Model":
        """The model a folder written by :meth:`save` (or by ``lopt train``) holds, checked
        (format version, shapes, index ranges, finite values); any problem is one
        :class:`DataError`."""
        meta = _read_meta(folder)
        arrays = _read_arrays(folder)
        trajectory = {}
        traj_path = os.path.join(folder, "lambda_trajectory.npz")
        if os.path.isfile(traj_path):
            try:
                with np.load(traj_path, allow_pickle=False) as z:
                    trajectory = {k: z[k] for k in z.files}
            except NPZ_READ_ERRORS as exc:
                raise DataError(f"cannot read {traj_path}: {exc}") from None
        model = cls(
            arrays["user_embeddings"],
            arrays["item_embeddings"],
            arrays["lambda_P"],
            arrays["lambda_Q"],
            meta.get("config", {}),
            meta.get("history", []),
            trajectory,
            int(meta.get("best_epoch", 0)),
            arrays["user_ids"],
            arrays["item_ids"],
            arrays["seen_indptr"],
            arrays["seen_items"],
            str(meta.get("stop_reason", "")),
        )
        _check(model, folder)
        return model


def _top_n_rows(device):
    if device == "cuda":
        from .backends.cuda_support import cuda_module

        cuda_module()  # a one-line error where CUDA cannot run
        from .kernels.cuda.recommend import top_n_rows

        return top_n_rows
    if device != "cpu":
        raise ConfigError(f"device must be cpu or cuda, got {shown(device)}")
    from .kernels.cpu.recommend import top_n_rows

    return top_n_rows


def _read_meta(folder):
    if not os.path.isdir(folder):
        raise DataError(f"{folder} is not a model folder (no such directory)")
    path = os.path.join(folder, "model.json")
    if not os.path.isfile(path):
        old = os.path.isfile(os.path.join(folder, "model.npz"))
        raise DataError(
            f"{folder} is not a model folder: model.json is missing"
            + (" (written by lopt_np before 0.2; retrain to use it here)" if old else "")
        )
    try:
        with open(path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{path} is not a lopt_np model description")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise DataError(
            f"{folder} holds model format version {version} (written by lopt_np "
            f"{meta.get('lopt_np_version', '?')}); this lopt_np reads version "
            f"{FORMAT_VERSION}"
        )
    return meta


def _read_arrays(folder):
    path = os.path.join(folder, "model.npz")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ARRAYS if k not in z.files]
            if missing:
                raise DataError(f"{path} lacks {', '.join(missing)}")
            return {k: z[k] for k in ARRAYS}
    except FileNotFoundError:
        raise DataError(f"{folder} is not a model folder: model.npz is missing") from None
    except NPZ_READ_ERRORS as exc:
        raise DataError(f"cannot read {path} (damaged or not a model file): {exc}") from None


def _check(m, folder):
    """Shapes, dtypes, index ranges and finiteness of a loaded model."""

    def bad(what):
        raise DataError(f"{folder}/model.npz is inconsistent: {what}")

    for name, X in (("user_embeddings", m.P), ("item_embeddings", m.Q)):
        if X.ndim != 2 or X.dtype.kind != "f":
            bad(f"{name} must be a 2-D float array, got {X.dtype} of shape {X.shape}")
        if not np.isfinite(X).all():
            bad(f"{name} holds NaN or inf")
    if m.P.shape[1] != m.Q.shape[1]:
        bad(f"user and item embeddings have different widths ({m.P.shape[1]}, {m.Q.shape[1]})")
    if len(m.user_ids) != m.n_users or len(m.item_ids) != m.n_items:
        bad(
            f"{len(m.user_ids)} user ids for {m.n_users} users, {len(m.item_ids)} item ids for "
            f"{m.n_items} items"
        )
    indptr, items = m.seen_indptr, m.seen_items
    if indptr.dtype.kind != "i" or items.dtype.kind != "i" or indptr.shape != (m.n_users + 1,):
        bad("seen_indptr/seen_items are not the users' compressed rows")
    if indptr[0] != 0 or indptr[-1] != len(items) or np.any(np.diff(indptr) < 0):
        bad("seen_indptr is not non-decreasing from 0 to len(seen_items)")
    if len(items) and (items.min() < 0 or items.max() >= m.n_items):
        bad("seen_items holds item indices out of range")
    rising = np.diff(items) > 0
    row_start = np.zeros(len(items), bool)
    row_start[indptr[1:-1][indptr[1:-1] < len(items)]] = True
    if len(items) > 1 and not np.all(rising | row_start[1:]):
        bad("seen_items is not sorted within each user")
    m.seen_indptr = indptr.astype(np.int64)
    m.seen_items = items.astype(np.int64)


def load(folder: str) -> Model:
    """The :class:`Model` in ``folder``.

    Parameters
    ----------
    folder : str
        A ``Model.save`` folder or a ``lopt train`` run (``model.npz`` and ``model.json``).

    Returns
    -------
    Model
        Ready for ``recommend``, ``similar_items``, ``score``; ``evaluate`` needs the split
        (``Split.load(folder/split.npz)``).
    """
    return Model.load(folder)


def load_run(folder):
    """``(model, split)`` of a run directory, for re-evaluation (``lopt evaluate``)."""
    model = Model.load(folder)
    if not os.path.isfile(os.path.join(folder, "split.npz")):
        raise DataError(f"{folder} is not a run directory: split.npz is missing")
    split = Split.load(os.path.join(folder, "split.npz"))
    if model.n_users != split.n_users or model.n_items != split.n_items:
        raise DataError(
            f"{folder}: model.npz ({model.n_users} users, {model.n_items} items) "
            f"does not match split.npz ({split.n_users} users, {split.n_items} "
            f"items)"
        )
    return model, split
