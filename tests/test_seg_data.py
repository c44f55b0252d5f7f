"""Image/mask data: pairing, mask formats and their errors, pets layouts, leakage-free splits, augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_data
from PIL import Image

from neuralsight.data import images as I
from neuralsight.data.augment import AugmentConfig, augment
from neuralsight.errors import DataError
from neuralsight.io import cache_dir


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "cache"))


def _save(path: Path, arr: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path, format=fmt)
    return path


def _folder(root: Path, n: int = 4, size=(20, 30)) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        _save(root / "images" / f"case{i}_a.jpg", rng.integers(0, 255, (*size, 3), dtype=np.uint8), "JPEG")
        m = np.zeros(size, np.uint8)
        m[5:10, 5:20] = 255
        _save(root / "masks" / f"case{i}_a.png", m)
    return root


def test_folder_pairing_and_binary_masks(tmp_path):
    root = _folder(tmp_path)
    pairs = I.folder_pairs(root)
    assert [p.stem for p in pairs] == [f"case{i}_a" for i in range(4)]
    arrays = I.decode_pairs(pairs, 16, I.MaskSpec("auto"))
    assert arrays.images.shape == (4, 16, 16, 3) and arrays.masks.shape == (4, 16, 16)
    # 20x30 -> 11x16 keeps the aspect ratio; the padded rows are IGNORE
    assert arrays.sizes[0] == (20, 30)
    assert set(np.unique(arrays.masks[0, :11])) == {0, 1} and (arrays.masks[0, 11:] == I.IGNORE).all()
    cached = I.decode_pairs(pairs, 16, I.MaskSpec("auto"))       # second call reads the cache
    assert np.array_equal(cached.masks, arrays.masks)
    assert len(list(cache_dir("seg-cache").glob("16px-*.npz"))) == 1


def test_missing_partner_errors_name_the_file(tmp_path):
    root = _folder(tmp_path)
    (root / "masks" / "case2_a.png").unlink()
    with pytest.raises(DataError, match=r"case2_a\.jpg has no mask"):
        I.folder_pairs(root)
    root2 = _folder(tmp_path / "b")
    (root2 / "images" / "case1_a.jpg").unlink()
    with pytest.raises(DataError, match=r"mask .*case1_a\.png has no image"):
        I.folder_pairs(root2)
    with pytest.raises(DataError, match="does not exist"):
        I.folder_pairs(tmp_path / "nowhere")


def test_size_mismatch_error_names_both_files(tmp_path):
    root = _folder(tmp_path)
    _save(root / "masks" / "case1_a.png", np.zeros((21, 30), np.uint8))
    with pytest.raises(DataError, match=r"mask .*case1_a\.png is 30x21 but image .*case1_a\.jpg is 30x20"):
        I.decode_pairs(I.folder_pairs(root), 16, I.MaskSpec("auto"), cache=False)


def test_palette_masks_and_unknown_colour(tmp_path):
    spec = I.MaskSpec("palette", ["background", "kidney", "tumour"], [[0, 0, 0], [0, 0, 255], [255, 0, 0]])
    m = np.zeros((4, 5, 3), np.uint8)
    m[0, 0] = (0, 0, 255)
    m[1, 1] = (255, 0, 0)
    path = _save(tmp_path / "m.png", m)
    out = I.read_mask(path, spec)
    assert out[0, 0] == 1 and out[1, 1] == 2 and out.sum() == 3
    m[3, 4] = (0, 255, 0)
    _save(path, m)
    with pytest.raises(DataError, match=r"m\.png has colour \(0, 255, 0\) at \(row 3, col 4\)"):
        I.read_mask(path, spec)
    with pytest.raises(DataError, match="no colour table"):
        I.read_mask(path, I.MaskSpec("palette"))


def test_index_and_palette_mode_png_and_bad_binary(tmp_path):
    idx = np.array([[0, 1], [2, 3]], np.uint8)
    p = Image.fromarray(idx, mode="P")
    p.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    p.save(tmp_path / "p.png")
    assert np.array_equal(I.read_mask(tmp_path / "p.png", I.MaskSpec("auto")), idx)
    _save(tmp_path / "i.png", idx)
    assert np.array_equal(I.read_mask(tmp_path / "i.png", I.MaskSpec("auto")), idx)
    with pytest.raises(DataError, match="data.class_names lists 3 classes"):
        I.read_mask(tmp_path / "i.png", I.MaskSpec("index", ["a", "b", "c"]))
    _save(tmp_path / "b.png", np.array([[0, 128]], np.uint8))
    with pytest.raises(DataError, match=r"binary mask .*b\.png has values \[128\]"):
        I.read_mask(tmp_path / "b.png", I.MaskSpec("binary"))


def test_trimap_modes(tmp_path):
    tri = np.array([[1, 2], [3, 2]], np.uint8)
    _save(tmp_path / "t.png", tri)
    assert I.read_mask(tmp_path / "t.png", I.MaskSpec("trimap")).tolist() == [[1, 0], [2, 0]]
    assert I.read_mask(tmp_path / "t.png", I.MaskSpec("trimap_binary")).tolist() == [[1, 0], [1, 0]]


def test_secret_gif_and_png_named_jpg_load(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (12, 9, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("P").save(tmp_path / "cat.jpg", format="GIF")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "dog.jpg", format="PNG")
    assert I.open_image(tmp_path / "cat.jpg").shape == (12, 9, 3)
    assert np.array_equal(I.open_image(tmp_path / "dog.jpg"), rgb)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"cannot decode image .*bad\.jpg"):
        I.open_image(tmp_path / "bad.jpg")


def _pets(root: Path, official: bool) -> Path:
    ann = root / "annotations" if official else root
    rng = np.random.default_rng(2)
    lines = {"trainval": [], "test": []}
    for i, split in enumerate(["trainval", "trainval", "test"]):
        stem = f"Bengal_{i}"
        _save(root / "images" / f"{stem}.jpg", rng.integers(0, 255, (10, 14, 3), dtype=np.uint8), "JPEG")
        _save(ann / "trimaps" / f"{stem}.png", rng.integers(1, 4, (10, 14), dtype=np.uint8))
        lines[split].append(f"{stem} 6 1 3")
    for split, ls in lines.items():
        (ann / f"{split}.txt").write_text("\n".join(ls) + "\n")
    return root


@pytest.mark.parametrize("official", [True, False])
def test_pets_layouts(tmp_path, official):
    root = _pets(tmp_path, official)
    assert I.is_pets_layout(root)
    splits = I.pets_pairs(root)
    assert [p.stem for p in splits["trainval"]] == ["Bengal_0", "Bengal_1"]
    assert [p.stem for p in splits["test"]] == ["Bengal_2"]
    arr = I.decode_pairs(splits["trainval"], 8, I.MaskSpec("trimap"))
    assert set(np.unique(arr.masks)) <= {0, 1, 2, I.IGNORE}


def test_pets_list_naming_a_missing_image(tmp_path):
    root = _pets(tmp_path, True)
    (root / "images" / "Bengal_2.jpg").unlink()
    with pytest.raises(DataError, match="lists 'Bengal_2' but .*Bengal_2.jpg does not exist"):
        I.pets_pairs(root)


def test_shared_pets_subset_official_split():
    root = shared_data("oxford-pets")
    splits = I.pets_pairs(root)
    assert len(splits["trainval"]) == 584 and len(splits["test"]) == 335
    assert not {p.stem for p in splits["trainval"]} & {p.stem for p in splits["test"]}


@pytest.mark.parametrize("name,groups", [("liver-ct-2d", 122), ("dental-teeth-2d", 584)])
def test_no_leakage_in_group_splits(name, groups):
    root = shared_data(name)
    pairs = I.folder_pairs(root, I.DATASET_DEFAULTS[name]["group_pattern"])
    assert len({p.group for p in pairs}) == groups
    train, val = I.split_by_group(pairs, 0.15, seed=0)
    assert len(train) + len(val) == len(pairs) and val
    assert not {p.group for p in train} & {p.group for p in val}
    if name == "liver-ct-2d":
        # the flipped and mirrored copies of one slice share the volume and so the side
        stems = {p.stem for p in val}
        twins = [s for s in stems if s.startswith("flipped_") and s.replace("flipped_", "mirrored_", 1) in
                 {p.stem for p in pairs}]
        assert all(t.replace("flipped_", "mirrored_", 1) in stems for t in twins)
    else:
        ids = [p.stem.split(".rf.")[0] for p in pairs]
        assert all(ids.count(i) == 3 for i in set(ids))


def test_kits_palette_folder():
    root = shared_data("kits19-kidney-2d-mini")
    d = I.DATASET_DEFAULTS["kits19-kidney-2d-mini"]
    pairs = I.folder_pairs(root, d["group_pattern"])[:4]
    arr = I.decode_pairs(pairs, 32, I.MaskSpec("palette", d["class_names"], d["palette"]))
    assert set(np.unique(arr.masks)) <= {0, 1, 2, I.IGNORE} and (arr.masks == 1).any()


def test_augment_keeps_labels_and_identity_when_off():
    torch.manual_seed(0)
    img = torch.rand(3, 3, 24, 24)
    mask = torch.randint(0, 3, (3, 24, 24))
    off = AugmentConfig(hflip=0, vflip=0, scale=0, rotate=0, translate=0, brightness=0, contrast=0)
    a, m = augment(img, mask, off)
    assert torch.allclose(a, img, atol=1e-5) and torch.equal(m, mask)
    flip = AugmentConfig(hflip=1.0, vflip=0, scale=0, rotate=0, translate=0, brightness=0, contrast=0)
    a, m = augment(img, mask, flip)
    assert torch.allclose(a, img.flip(-1), atol=1e-5) and torch.equal(m, mask.flip(-1))
    a, m = augment(img, mask, AugmentConfig(rotate=30, scale=0.3))
    assert a.shape == img.shape and m.shape == mask.shape and a.min() >= 0 and a.max() <= 1
    assert set(m.unique().tolist()) <= {0, 1, 2, I.IGNORE}
