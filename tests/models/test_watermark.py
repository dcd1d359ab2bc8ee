"""The recommender watermark: a watermarked SASRec is proven owned, other models are not, and the
secret never leaves the key file."""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from recdrill._home import HOME_ENV
from recdrill.cli import main
from recdrill.data.dataset import Dataset
from recdrill.data.shopsim import ShopSim
from recdrill.errors import KeyMaterialError
from recdrill.models.factory import load_model
from recdrill.models.sasrec.estimator import SASRecRecommender
from recdrill.models.watermark import (
    ALPHA,
    WATERMARK_KEY_ENV,
    Watermark,
    binomial_p_value,
    commitment,
    load_watermark_secret,
    ownership_test,
)
from recdrill.registry.keys import KeyFiles

FAST = {"dim": 32, "blocks": 1, "heads": 2, "max_len": 8, "dropout": 0.0, "lr": 3e-3, "batch_size": 32}
TRAIN = {**FAST, "max_epochs": 10, "patience": 10, "validation_share": 0.0, "device": "cpu"}
SECRET = b"owner-secret-0123456789abcdef-XYZ"
OTHER = b"someone-else-0123456789abcdef-XYZ"
N_ITEMS = 200


@pytest.fixture(scope="module")
def shop() -> Dataset:
    return ShopSim(n_items=N_ITEMS, n_users=150, n_events=4000, seed=3).generate()


def train(shop: Dataset, watermark: bool, secret: bytes = SECRET, seed: int = 0) -> SASRecRecommender:
    model = SASRecRecommender(**TRAIN, seed=seed, watermark=watermark)
    model.watermark_secret = secret
    return model.fit(shop)


@pytest.fixture(scope="module")
def marked(shop: Dataset) -> SASRecRecommender:
    return train(shop, watermark=True)


# -- derivation and statistics ---------------------------------------------------------------------


def test_sequences_are_deterministic_per_secret_and_differ_across_secrets() -> None:
    first, again, other = (Watermark.from_secret(s, N_ITEMS) for s in (SECRET, SECRET, OTHER))
    assert first.sequences.to_lists() == again.sequences.to_lists()
    assert first.sequences.to_lists() != other.sequences.to_lists()
    assert first.commitment == commitment(SECRET) != other.commitment
    rows = first.sequences.to_lists()
    assert len(rows) == 32 and all(len(row) == 10 for row in rows)
    assert first.sequences.values.min() >= 0 and first.sequences.values.max() < N_ITEMS
    # Every proper prefix is a query whose answer is the next secret item.
    prefixes, targets = first.queries()
    assert len(prefixes) == len(targets) == 32 * 9
    assert prefixes.to_lists()[:2] == [rows[0][:1], rows[0][:2]] and targets[:2].tolist() == rows[0][1:3]
    assert first.training_rows(copies=2).to_lists() == rows + rows


def test_the_secret_stays_out_of_repr_and_short_secrets_are_refused() -> None:
    mark = Watermark.from_secret(SECRET, N_ITEMS)
    assert repr(mark) == f"Watermark(n_items={N_ITEMS}, commitment='{mark.commitment}')"
    with pytest.raises(KeyMaterialError, match="at least 16 bytes"):
        Watermark.from_secret(b"short", N_ITEMS)


def test_p_value_matches_a_worked_binomial_example() -> None:
    # 3 or more hits of 4 at rate 1/2: (C(4,3) + C(4,4)) / 2**4 = 5/16.
    assert binomial_p_value(3, 4, 0.5) == pytest.approx(5 / 16)
    assert binomial_p_value(0, 4, 0.5) == pytest.approx(1.0)
    assert binomial_p_value(2, 2, 0.1) == pytest.approx(0.01)


class FixedScorer:
    """Scores each query's true next item at ``values[query]`` and every other item at 0."""

    def __init__(self, mark: Watermark, values: np.ndarray) -> None:
        self.targets, self.values = mark.queries()[1], values

    def score(self, histories: object) -> np.ndarray:
        scores = np.zeros((len(self.targets), N_ITEMS), dtype=np.float32)
        scores[np.arange(len(self.targets)), self.targets] = self.values
        return scores


def test_the_ownership_test_can_fail_as_well_as_pass() -> None:
    mark = Watermark.from_secret(SECRET, N_ITEMS)
    queries = 32 * 9
    # 40 secret items on top, the rest at the bottom: P(X >= 40), X ~ Binomial(288, 10/200).
    values = np.where(np.arange(queries) < 40, 1.0, -1.0)
    top = ownership_test(FixedScorer(mark, values), mark)
    rate = 10 / N_ITEMS
    expected = sum(
        math.comb(queries, h) * rate**h * (1 - rate) ** (queries - h) for h in range(40, queries + 1)
    )
    assert top.hits == 40 and top.queries == queries and top.hits_p_value == pytest.approx(expected, rel=1e-9)
    assert top.p_value == pytest.approx(2 * min(top.hits_p_value, top.rank_p_value))
    assert top.owned and top.p_value < ALPHA
    bottom = ownership_test(FixedScorer(mark, np.full(queries, -1.0)), mark)
    assert not bottom.owned and bottom.hits == 0 and bottom.p_value == pytest.approx(1.0)
    # All scores tied: ties count against the owner, so a constant model proves nothing.
    tied = ownership_test(FixedScorer(mark, np.zeros(queries)), mark)
    assert not tied.owned and tied.hits == 0 and tied.rank_p_value == pytest.approx(1.0)
    # A few hits more than chance (14.4 expected) is not proof.
    few = ownership_test(FixedScorer(mark, np.where(np.arange(queries) < 20, 1.0, -1.0)), mark)
    assert few.hits == 20 and 1e-3 < few.p_value < 0.5 and not few.owned
    assert list(top.to_dict())[:2] == ["p_value", "owned"]


class RankScorer:
    """Puts each query's true next item at a chosen rank among items otherwise scored at random."""

    def __init__(self, mark: Watermark, ranks: np.ndarray) -> None:
        self.targets, self.ranks = mark.queries()[1], ranks

    def score(self, histories: object) -> np.ndarray:
        rng = np.random.default_rng(0)
        scores = np.empty((len(self.targets), N_ITEMS), dtype=np.float32)
        for row, (target, rank) in enumerate(zip(self.targets, self.ranks, strict=True)):
            order = [item for item in rng.permutation(N_ITEMS) if item != target]
            order.insert(rank - 1, target)
            scores[row, order] = -np.arange(N_ITEMS, dtype=np.float32)
        return scores


def test_the_rank_test_sees_a_watermark_pushed_out_of_the_top_k() -> None:
    mark = Watermark.from_secret(SECRET, N_ITEMS)
    rng = np.random.default_rng(1)
    # Every secret item between rank 11 and 40 of 200: no hit, but far better than chance.
    faded = ownership_test(RankScorer(mark, rng.integers(11, 41, size=288)), mark)
    assert faded.hits == 0 and faded.hits_p_value == pytest.approx(1.0)
    assert faded.rank_p_value < 1e-30 and faded.owned
    # Uniform ranks, as any model that never saw the secret gives: nothing.
    chance = ownership_test(RankScorer(mark, rng.integers(1, N_ITEMS + 1, size=288)), mark)
    assert chance.rank_p_value > 1e-3 and not chance.owned


# -- trained models --------------------------------------------------------------------------------


def test_a_watermarked_model_is_owned_and_an_independent_one_is_not(
    shop: Dataset, marked: SASRecRecommender
) -> None:
    mark = Watermark.from_secret(SECRET, N_ITEMS)
    owned = ownership_test(marked, mark)
    assert owned.owned and owned.p_value < ALPHA
    plain = ownership_test(train(shop, watermark=False), mark)
    assert not plain.owned and plain.p_value > 1e-3
    # Watermarked with someone else's secret: it carries their mark, not ours.
    foreign = ownership_test(train(shop, watermark=True, secret=OTHER), mark)
    assert not foreign.owned and foreign.p_value > 1e-3


def test_the_saved_model_holds_a_commitment_but_never_the_secret(
    marked: SASRecRecommender, tmp_path: Path
) -> None:
    marked.save(tmp_path / "model")
    forms = (SECRET, SECRET.hex().encode(), base64.b64encode(SECRET), SECRET.decode().encode("utf-16-le"))
    for path in (tmp_path / "model").iterdir():
        blob = path.read_bytes()
        assert not any(form in blob for form in forms), path.name
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["params"]["watermark"] is True
    loaded = load_model(tmp_path / "model")
    assert getattr(loaded, "watermark_commitment_", None) == commitment(SECRET)
    assert ownership_test(loaded, Watermark.from_secret(SECRET, N_ITEMS)).owned


def test_fit_reads_the_secret_from_the_environment(shop: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WATERMARK_KEY_ENV, SECRET.decode())
    model = SASRecRecommender(**{**TRAIN, "max_epochs": 1}, watermark=True).fit(shop)
    assert model.watermark_commitment_ == commitment(SECRET)


# -- keys and the command line ---------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    monkeypatch.delenv(WATERMARK_KEY_ENV, raising=False)
    return tmp_path / "home"


def test_missing_or_exposed_key_files_are_refused(home: Path) -> None:
    with pytest.raises(KeyMaterialError, match="keys init"):
        load_watermark_secret()
    path = KeyFiles(home).watermark
    path.parent.mkdir(parents=True)
    path.write_bytes(base64.b64encode(os.urandom(32)))
    path.chmod(0o644)
    with pytest.raises(KeyMaterialError, match="readable by others"):
        load_watermark_secret()


def test_keys_init_train_and_verify_watermark_from_the_command_line(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "init"]) == 0
    assert KeyFiles(home).watermark.stat().st_mode & 0o777 == 0o600
    data = "shopsim:n_items=200,n_users=150,n_events=4000,seed=3"
    models = {}
    for watermark in (True, False):
        params = tmp_path / f"params-{watermark}.json"
        params.write_text(json.dumps({**TRAIN, "watermark": watermark}))
        out = tmp_path / f"model-{watermark}"
        assert (
            main(["train", "--data", data, "--model", "sasrec", "--params", str(params), "--out", str(out)])
            == 0
        )
        models[watermark] = out
    capsys.readouterr()
    verdicts = {}
    for watermark, out in models.items():
        assert main(["registry", "verify-watermark", str(out), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert list(report)[:2] == ["p_value", "owned"]
        verdicts[watermark] = report
    assert verdicts[True]["owned"] is True and verdicts[True]["p_value"] < ALPHA
    assert verdicts[True]["commitment_matches"] is True
    assert verdicts[False]["owned"] is False and verdicts[False]["commitment_matches"] is None
    key_text = KeyFiles(home).watermark.read_bytes().strip()
    assert all(key_text not in path.read_bytes() for path in models[True].rglob("*") if path.is_file())


def test_verify_watermark_without_a_key_exits_with_one_line(
    home: Path, marked: SASRecRecommender, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marked.save(tmp_path / "model")
    assert main(["registry", "verify-watermark", str(tmp_path / "model"), "--json"]) != 0
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "watermark key" in captured.err
