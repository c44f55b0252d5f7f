"""Train / val / test splits: deterministic, disjoint by group, stratified for pets, on synthetic and real data."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data
from PIL import Image

from neuralsight.data import images as I
from neuralsight.data.catalog import get
from neuralsight.data.splits import split_groups, split_items, stratified_holdout
from neuralsight.data.volumes import find_cases, split_cases
from neuralsight.errors import ConfigError, DataError


def _disjoint(parts, key=lambda x: x) -> None:
    sides = [{key(x) for x in parts[name]} for name in ("train", "val", "test")]
    assert not sides[0] & sides[1] and not sides[0] & sides[2] and not sides[1] & sides[2]


# ------------------------------------------------------------------------------------------ split_groups


def test_split_groups_counts_seed_and_order_independence():
    names = [f"case{i:03d}" for i in range(100)]
    parts = split_groups(names, 0.15, 0.15, seed=0)
    assert parts.sizes() == {"train": 70, "val": 15, "test": 15}
    assert sorted(parts.train + parts.val + parts.test) == names
    _disjoint(parts)
    assert split_groups(list(reversed(names)) + names[:5], 0.15, 0.15, seed=0) == parts   # order, duplicates
    assert split_groups(names, 0.15, 0.15, seed=1).test != parts.test
    # The permutation is numpy's default_rng(seed): test takes the first 15 of it, val the next 15.
    order = [names[i] for i in np.random.default_rng(0).permutation(100)]
    assert parts.test == sorted(order[:15]) and parts.val == sorted(order[15:30])
    assert "seed 0" in parts.method and "15 / 15" in parts.method


def test_split_groups_small_sets_keep_one_of_each():
    assert split_groups(["a", "b", "c"], 0.15, 0.15).sizes() == {"train": 1, "val": 1, "test": 1}
    parts = split_groups(["a", "b", "c", "d"], 0.4, 0.4)          # 2 + 2 would leave nothing to train
    assert parts.sizes()["train"] == 1 and parts.sizes()["val"] + parts.sizes()["test"] == 3
    assert split_groups(["a", "b"], 0.3, 0.0).sizes() == {"train": 1, "val": 1, "test": 0}
    with pytest.raises(DataError, match="cannot split 2 case.* need at least 3"):
        split_groups(["a", "b"], 0.15, 0.15, unit="case")
    with pytest.raises(ConfigError, match="leaves nothing to train on"):
        split_groups(["a", "b", "c"], 0.5, 0.5)
    with pytest.raises(ConfigError, match="data.test_fraction = -0.1"):
        split_groups(["a", "b", "c"], 0.1, -0.1)


def test_split_items_keeps_groups_whole_and_order():
    items = [(f"vol{i % 13}", i) for i in range(80)]
    parts = split_items(items, lambda it: it[0], 0.2, 0.2, seed=3, unit="volume")
    _disjoint(parts, key=lambda it: it[0])
    assert sorted(parts.train + parts.val + parts.test) == sorted(items)
    assert parts.val == sorted(parts.val, key=lambda it: it[1])           # input order kept
    assert parts.unit == "volume" and parts["test"] is parts.test
    with pytest.raises(KeyError, match="train, val, test"):
        parts["validation"]


def test_stratified_holdout_is_proportional_and_seeded():
    items = [("a", i) for i in range(60)] + [("b", i) for i in range(30)] + [("c", i) for i in range(10)]
    kept, held = stratified_holdout(items, lambda it: it[0], 0.2, seed=0)
    assert Counter(s for s, _ in held) == {"a": 12, "b": 6, "c": 2}
    assert sorted(kept + held) == sorted(items) and not set(kept) & set(held)
    assert stratified_holdout(items, lambda it: it[0], 0.2, seed=0) == (kept, held)
    assert stratified_holdout(items, lambda it: it[0], 0.2, seed=1)[1] != held
    # largest remainders: 0.15 * (7, 7, 6) = 1.05, 1.05, 0.9 -> floors 1, 1, 0, and the total 3 gives c one
    few = [("a", i) for i in range(7)] + [("b", i) for i in range(7)] + [("c", i) for i in range(6)]
    assert Counter(s for s, _ in stratified_holdout(few, lambda it: it[0], 0.15)[1]) == {"a": 1, "b": 1, "c": 1}


# ------------------------------------------------------------------------------------------ pets


def _pets(root: Path, official: bool, breeds: dict[str, int]) -> Path:
    """A pets folder with ``n`` trainval + 2 test images per breed, official or shared-subset layout."""
    ann = root / "annotations" if official else root
    (ann / "trimaps").mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = {"trainval": [], "test": []}
    for class_id, (breed, n) in enumerate(breeds.items(), start=1):
        for i in range(n + 2):
            stem = f"{breed}_{i}"
            Image.fromarray(np.full((6, 8, 3), i, np.uint8)).save(root / "images" / f"{stem}.jpg")
            Image.fromarray(np.full((6, 8), 1 + i % 3, np.uint8)).save(ann / "trimaps" / f"{stem}.png")
            lines["test" if i >= n else "trainval"].append(f"{stem} {class_id} 1 {class_id}")
    for split, ls in lines.items():
        (ann / f"{split}.txt").write_text("\n".join(ls) + "\n")
    return root


@pytest.mark.parametrize("official", [True, False])
def test_pets_splits_val_from_trainval_by_breed_test_official(tmp_path, official):
    root = _pets(tmp_path / "pets", official, {"Abyssinian": 40, "beagle": 20, "pug": 2})
    parts = I.pets_splits(root, val_fraction=0.25, seed=0)
    official_lists = I.pets_pairs(root)
    assert [p.stem for p in parts.test] == [p.stem for p in official_lists["test"]]
    assert {p.stem for p in parts.train} | {p.stem for p in parts.val} == {p.stem for p in official_lists["trainval"]}
    _disjoint(parts, key=lambda p: p.stem)
    assert Counter(p.stem.rsplit("_", 1)[0] for p in parts.val) == {"Abyssinian": 10, "beagle": 5, "pug": 1}
    assert I.pets_splits(root, 0.25, seed=0) == parts and I.pets_splits(root, 0.25, seed=1).val != parts.val
    assert parts.unit == "image" and "stratified by breed" in parts.method
    assert I.split_segmentation(root, get("oxford-pets"), val_fraction=0.25).val == parts.val


def test_shared_pets_subset_three_splits():
    root = shared_data("oxford-pets")
    parts = I.pets_splits(root)
    assert parts.sizes() == {"train": 496, "val": 88, "test": 335}     # 584 trainval: 15 % (88) to val
    _disjoint(parts, key=lambda p: p.stem)
    test_stems = [line.split()[0] for line in (root / "test.txt").read_text().splitlines() if line.strip()]
    assert [p.stem for p in parts.test] == test_stems
    # every breed with enough trainval images gives its share: within one image of 15 %
    trainval = Counter(p.stratum for p in parts.train + parts.val)
    val = Counter(p.stratum for p in parts.val)
    assert all(abs(val[b] - 0.15 * n) < 1 for b, n in trainval.items())


# ------------------------------------------------------------------------------------------ 2D medical, by group


@pytest.mark.parametrize("name,groups", [("liver-ct-2d", 122), ("dental-teeth-2d", 584),
                                         ("kits19-kidney-2d-mini", 5), ("dental-xray", 50)])
def test_catalog_folders_split_by_their_unit(name, groups):
    entry = get(name)
    root = shared_data(name)
    parts = I.split_segmentation(root, entry)
    all_pairs = I.folder_pairs(root, entry.group_pattern)
    assert len({p.group for p in all_pairs}) == groups
    assert sorted(p.stem for p in parts.train + parts.val + parts.test) == sorted(p.stem for p in all_pairs)
    _disjoint(parts, key=lambda p: p.group)
    assert all(parts.sizes().values()) and parts.unit == entry.split_unit
    assert I.split_segmentation(root, entry) == parts                      # deterministic
    regex = re.compile(entry.group_pattern)
    for split in ("train", "val", "test"):                                 # the group really is the unit
        assert {regex.search(p.stem).group(1) for p in parts[split]} == {p.group for p in parts[split]}
    if name == "liver-ct-2d":
        # flipped_N_k and mirrored_N_k are two copies of one slice of volume N: always on one side
        side = {p.stem: s for s in ("train", "val", "test") for p in parts[s]}
        twins = [(s, "mirrored_" + s[len("flipped_"):]) for s in side if s.startswith("flipped_")]
        assert twins and all(side[a] == side[b] for a, b in twins if b in side)


def test_user_folder_split_by_group_pattern(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for patient in range(6):
        for k in range(3):
            stem = f"p{patient}_slice{k}"
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images" / f"{stem}.png")
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "masks" / f"{stem}.png")
    parts = I.split_segmentation(tmp_path, None, group_pattern=r"^(p\d+)_", val_fraction=0.2, test_fraction=0.2)
    _disjoint(parts, key=lambda p: p.group)
    assert parts.sizes() == {"train": 12, "val": 3, "test": 3} and parts.unit == "group"
    by_file = I.split_segmentation(tmp_path, None, val_fraction=0.2, test_fraction=0.2)
    assert by_file.unit == "file" and sum(by_file.sizes().values()) == 18


def test_the_0_1_split_of_old_runs_has_no_test_part(tmp_path):
    """Runs of 0.1 keep their two-way split: folders by group with no test part; pets validate on the test list."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(30):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images" / f"g{i % 7}_s{i}.png")
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "masks" / f"g{i % 7}_s{i}.png")
    old = I.legacy_split(tmp_path, None, r"^(g\d+)_", 0.2, seed=4)
    parts = I.split_pairs(I.folder_pairs(tmp_path, r"^(g\d+)_"), 0.2, 0.0, seed=4)
    assert (old.train, old.val, old.test) == (parts.train, parts.val, []) and len(old.val) > 0


# ------------------------------------------------------------------------------------------ 3D, by case


def test_hippocampus_split_by_case():
    cases = [name for name, _, _ in find_cases(shared_data("msd-hippocampus"))]
    parts = split_cases(cases)
    assert parts.sizes() == {"train": 182, "val": 39, "test": 39}
    _disjoint(parts)
    assert sorted(parts.train + parts.val + parts.test) == sorted(cases)
    assert split_cases(reversed(cases)) == parts and split_cases(cases, seed=1) != parts
    assert parts.unit == "case"
