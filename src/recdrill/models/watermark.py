"""A secret watermark for sequential recommenders, and the statistical test that proves ownership.

The idea is that of AOW, Autoregressive Out-of-distribution Watermarking (Zhang, Long, Yuan, Chen
and Yin, "Watermarking Recommender Systems", CIKM 2024, arXiv:2407.21034): while training, the owner
mixes in a few *out-of-distribution* item sequences that no real shopper produces, followed by secret
continuation items. The model memorises them at little cost to ordinary recommendations; a copy of
the model (stolen, quantised, fine-tuned) still ranks the secret continuations near the top when
shown the secret sequences, while a model that never saw them cannot. This module is written from
that idea, not from the paper's code, and differs on purpose: AOW grows each sequence by asking an
oracle model for low-scoring items, whereas here every item comes from a keyed PRNG, so the owner
needs no oracle to re-derive the watermark and the null distribution of the test below is exact.

Derivation. Everything comes from the secret (``RECDRILL_WATERMARK_KEY``, else the key file
``RECDRILL_HOME/keys/watermark.key`` that ``recdrill keys init`` creates) and the catalogue size,
through an HMAC-SHA256 seed for NumPy's PRNG, so verification needs only the secret and the model:
``K = 32`` secret sequences of ``L = 10`` items, each item drawn uniformly (with replacement) from
the whole catalogue. A random walk over the catalogue is out of distribution for shop data (real
sessions follow categories and co-purchases, and most random items are long-tail ones), so the
sequences do not collide with real histories. Training adds a few copies of them to every epoch;
next-item training then teaches the model to continue every prefix of each sequence with its next
secret item, as AOW memorises its sequences.

Ownership test (as in AOW, every truncation of each sequence is a query). For each of the
``m = K * (L - 1)`` prefixes, the model's rank of the true next item among all ``n`` items
(pessimistic on ties: every item scoring at least as high counts as above it). Under the null
hypothesis that the model never saw this secret, each next item is uniform on the catalogue and
independent of the model and of everything before it in its sequence, so given all earlier queries
``rank / n`` is (at least) uniform, whatever the model is. Two exact tests follow:

* hits: the chance of a top-``k`` rank (``k = 10``) is at most ``k / n`` per query, so the number of
  hits is stochastically at most Binomial(m, k/n); ``hits_p_value`` is its upper tail
  ``P(X >= hits)``. It is what "the model continues the secret sequences" means.
* ranks (Fisher's method): ``-2 * sum(log(rank / n))`` is at most chi-squared with ``2m`` degrees
  of freedom; ``rank_p_value`` is its upper tail. It uses every rank, so it still sees a watermark
  that fine-tuning has pushed out of the top 10 but not back to random (median rank n/5, say).

``p_value`` is the Bonferroni combination ``min(1, 2 * min(hits_p_value, rank_p_value))``, so the
family-wise false-positive rate stays at most ``p_value`` for both tests together. The nulls need no
assumption about the model.

``owned = p_value < ALPHA`` with ``ALPHA = 1e-6``: an ownership claim accuses someone, so a false
positive must be far rarer than the usual 5%, and a deployment that checks many suspect models
keeps a small family-wise error (a million checks for one expected false claim). The tests keep
their power at that level: on a 2,000-item catalogue (1.4 of 288 hits expected by chance) 11 hits
already give ``hits_p_value = 3e-7``, and ``p_value = 6e-7`` after the Bonferroni factor.

Secrecy. Neither the secret nor the sequences are stored with the model: a saved model records only
``params["watermark"] = true`` and a public commitment, ``HMAC(secret, "recdrill-watermark-
commitment")``, which lets the owner show which secret the model was trained with without
revealing it (HMAC is a PRF: the commitment says nothing about the key).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from recdrill._home import WATERMARK_KEY_FILE, exposed_mode, key_path, recdrill_home
from recdrill.data.ragged import Ragged
from recdrill.errors import ConfigError, KeyMaterialError

WATERMARK_KEY_ENV = "RECDRILL_WATERMARK_KEY"
MIN_SECRET_BYTES = 16
N_SEQUENCES = 32
SEQUENCE_LENGTH = 10
TOP_K = 10
ALPHA = 1e-6
COPIES_PER_EPOCH = 4  # each secret sequence appears this many times in every training epoch


class Scorer(Protocol):
    def score(self, histories: Any) -> np.ndarray: ...


def _keyed_rng(secret: bytes, label: bytes, n_items: int) -> np.random.Generator:
    digest = hmac.new(secret, label + b"\0" + str(n_items).encode(), hashlib.sha256).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


def commitment(secret: bytes) -> str:
    """The public commitment to a secret, safe to store with the model and print."""
    return hmac.new(secret, b"recdrill-watermark-commitment", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Watermark:
    """The secret item sequences for one catalogue size.

    Build it with :meth:`from_secret`; ``repr`` shows only the public commitment.
    """

    sequences: Ragged = field(repr=False)
    n_items: int
    commitment: str

    @classmethod
    def from_secret(
        cls, secret: bytes, n_items: int, n_sequences: int = N_SEQUENCES, length: int = SEQUENCE_LENGTH
    ) -> Watermark:
        """Derive the watermark deterministically from ``secret`` for a catalogue of ``n_items``."""
        if len(secret) < MIN_SECRET_BYTES:
            raise KeyMaterialError(f"the watermark secret must be at least {MIN_SECRET_BYTES} bytes")
        if n_items < 2 or n_sequences < 1 or length < 2:
            raise ConfigError("a watermark needs at least 2 items, 1 sequence and a sequence length of 2")
        rng = _keyed_rng(secret, b"recdrill-watermark-sequences", n_items)
        items = rng.integers(0, n_items, size=(n_sequences, length), dtype=np.int64)
        return cls(Ragged.from_lists(list(items)), n_items, commitment(secret))

    def queries(self) -> tuple[Ragged, np.ndarray]:
        """Every proper prefix of every sequence (the histories shown) and the item that follows it."""
        prefixes, targets = [], []
        for row in self.sequences:
            for end in range(1, len(row)):
                prefixes.append(row[:end])
                targets.append(row[end])
        return Ragged.from_lists(prefixes), np.asarray(targets, dtype=np.int64)

    def training_rows(self, copies: int = COPIES_PER_EPOCH) -> Ragged:
        """``copies`` copies of every secret sequence, to add to a training epoch."""
        return Ragged.from_lists(list(self.sequences) * copies)


@dataclass(frozen=True)
class OwnershipTest:
    """The outcome of :func:`ownership_test`; ``p_value`` and ``owned`` are what callers print."""

    p_value: float
    owned: bool
    hits_p_value: float
    rank_p_value: float
    hits: int
    queries: int
    top_k: int
    n_items: int
    alpha: float
    ranks: list[int] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """``p_value`` and ``owned`` first (the stable output), then the evidence."""
        return {
            "p_value": self.p_value,
            "owned": self.owned,
            "hits_p_value": self.hits_p_value,
            "rank_p_value": self.rank_p_value,
            "hits": self.hits,
            "queries": self.queries,
            "top_k": self.top_k,
            "null_hit_rate": self.top_k / self.n_items,
            "median_rank": float(np.median(self.ranks)),
            "n_items": self.n_items,
            "alpha": self.alpha,
        }


def binomial_p_value(hits: int, trials: int, rate: float) -> float:
    """``P(X >= hits)`` for ``X ~ Binomial(trials, rate)``: the chance of this many hits by luck.

    Example:
        >>> round(binomial_p_value(3, 4, 0.5), 4)  # (4 + 1) / 16
        0.3125
    """
    from scipy.stats import binom  # SciPy loads only when a test runs

    return float(binom.sf(hits - 1, trials, rate))


def fisher_p_value(ranks: np.ndarray, n_items: int) -> float:
    """Fisher's combination of the (super-)uniform ``rank / n_items``: chi-squared upper tail.

    Example:
        >>> round(fisher_p_value(np.array([1, 10]), 10), 4)  # -2 log(0.1) = 4.61 on 4 d.o.f.
        0.3303
    """
    from scipy.stats import combine_pvalues

    p_values = np.asarray(ranks, dtype=np.float64) / n_items
    return float(combine_pvalues(p_values, method="fisher").pvalue)


def ownership_test(
    model: Scorer, watermark: Watermark, top_k: int = TOP_K, alpha: float = ALPHA
) -> OwnershipTest:
    """Rank each secret next item after its prefix; test hits (binomial) and ranks (Fisher)."""
    if not 1 <= top_k <= watermark.n_items:
        raise ConfigError(f"top_k must lie in [1, {watermark.n_items}], got {top_k}")
    prefixes, targets = watermark.queries()
    scores = np.asarray(model.score(prefixes), dtype=np.float64)
    if scores.shape != (len(targets), watermark.n_items):
        raise ConfigError(
            f"the model scores {scores.shape[-1]} items but the watermark was derived for "
            f"{watermark.n_items}: verify against a model of the same catalogue"
        )
    target = scores[np.arange(len(scores)), targets]
    # Ties count against the owner, so under the null P(rank <= r) <= r/n for every r.
    ranks = np.count_nonzero(scores >= target[:, None], axis=1)
    hits = int(np.count_nonzero(ranks <= top_k))
    hits_p = binomial_p_value(hits, len(ranks), top_k / watermark.n_items)
    rank_p = fisher_p_value(ranks, watermark.n_items)
    p_value = min(1.0, 2.0 * min(hits_p, rank_p))
    return OwnershipTest(
        p_value,
        p_value < alpha,
        hits_p,
        rank_p,
        hits,
        len(ranks),
        top_k,
        watermark.n_items,
        alpha,
        ranks.tolist(),
    )


def watermark_key_path(home: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """``HOME/keys/watermark.key``; ``home`` defaults to ``RECDRILL_HOME``, else ``~/.recdrill``."""
    return key_path(recdrill_home(environ) if home is None else home, WATERMARK_KEY_FILE)


def load_watermark_secret(home: Path | None = None, environ: Mapping[str, str] | None = None) -> bytes:
    """The watermark secret: ``RECDRILL_WATERMARK_KEY`` when set, else the key file (mode 0600)."""
    env = os.environ if environ is None else environ
    if env.get(WATERMARK_KEY_ENV):
        secret, where = env[WATERMARK_KEY_ENV].strip().encode(), WATERMARK_KEY_ENV
    else:
        path = watermark_key_path(home, env)
        try:
            mode = exposed_mode(path)
        except FileNotFoundError:
            raise KeyMaterialError(
                f"{path}: no watermark key; run 'recdrill keys init' or set {WATERMARK_KEY_ENV}"
            ) from None
        if mode is not None:
            raise KeyMaterialError(f"{path}: key file is readable by others (mode {mode:o}); chmod 600 it")
        secret, where = path.read_bytes().strip(), str(path)
    if len(secret) < MIN_SECRET_BYTES:
        raise KeyMaterialError(f"{where}: the watermark secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret
