"""Tampered plain model folders are refused on load, naming the file (issue #17, item 7).

Both cases the review found accepted before: the last byte of ``state.npz`` flipped (the zip CRC
missed it), and a ``state.npz`` rewritten by ``np.savez`` with other arrays (valid CRCs; it served
scores around 1e-8). Real models, trained on the chain shop and saved as ``save`` writes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.digests import DIGESTS_FILE, write_digests
from recdrill.errors import ModelFileError
from recdrill.models.factory import MODEL_KINDS, load_model, model_class
from recdrill.models.popularity import PopularityRecommender

# Every kind, the Transformer small and one epoch: what is tested is the folder, not the fit.
PARAMS: dict[str, dict[str, Any]] = {
    "sasrec": {"dim": 16, "blocks": 1, "heads": 1, "max_len": 8, "max_epochs": 1, "transition_mix": 0.0}
}


def saved(kind: str, dataset: Dataset, folder: Path) -> Path:
    model_class(kind)(**PARAMS.get(kind, {})).fit(dataset).save(folder)
    return folder


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_an_untouched_folder_loads_and_a_flipped_last_byte_of_its_state_is_refused(
    kind: str, chain_shop: Dataset, tmp_path: Path
) -> None:
    folder = saved(kind, chain_shop, tmp_path / kind)
    assert sorted(p.name for p in folder.iterdir()) == [DIGESTS_FILE, "model.json", "state.npz"]
    assert load_model(folder, chain_shop).kind == kind
    flip_last_byte(folder / "state.npz")
    with pytest.raises(ModelFileError) as refused:
        load_model(folder)
    assert refused.value.path == folder / "state.npz"
    assert "SHA-256 differs from the one in digests.json" in str(refused.value)


def test_a_state_rewritten_with_valid_crcs_is_refused(chain_shop: Dataset, tmp_path: Path) -> None:
    folder = saved("pop", chain_shop, tmp_path / "pop")
    np.savez(folder / "state.npz", share=np.full(chain_shop.n_items, 1e-8, dtype=np.float32))
    with np.load(folder / "state.npz") as rewritten:  # a well-formed archive: only the digest catches it
        assert rewritten["share"].shape == (chain_shop.n_items,)
    with pytest.raises(ModelFileError, match=r"state\.npz: SHA-256 differs") as refused:
        load_model(folder)
    assert refused.value.path == folder / "state.npz"
    # The limit: whoever rewrites the manifest too gets the model loaded; that is what signed registry
    # versions (and ``serve --require-signed``) are for.
    write_digests(folder)
    forged = load_model(folder)
    assert isinstance(forged, PopularityRecommender)
    assert np.allclose(forged.score([[0]]), 1e-8)


def test_edited_metadata_and_an_added_file_are_refused_naming_them(
    chain_shop: Dataset, tmp_path: Path
) -> None:
    folder = saved("itemknn", chain_shop, tmp_path / "knn")
    (folder / "model.json").write_text(
        (folder / "model.json").read_text().replace('"neighbours"', '"neighbours" ')
    )
    with pytest.raises(ModelFileError, match=r"model\.json: SHA-256 differs"):
        load_model(folder)
    folder = saved("itemknn", chain_shop, tmp_path / "knn-2")
    (folder / "training-checkpoint.pt").write_bytes(b"left over")
    with pytest.raises(ModelFileError, match=r"training-checkpoint\.pt: not listed in digests.json"):
        load_model(folder)


def test_a_folder_without_digests_is_refused_saying_how_to_fix_it(
    chain_shop: Dataset, tmp_path: Path
) -> None:
    folder = saved("pop", chain_shop, tmp_path / "old")
    (folder / DIGESTS_FILE).unlink()  # as folders saved before recdrill wrote digests
    with pytest.raises(ModelFileError, match=f"no digests.json.*'recdrill seal {folder}'"):
        load_model(folder)
