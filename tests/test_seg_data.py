"""Image/mask data: pairing, mask formats and their errors, pets layouts, leakage-free splits, augmentation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_data
from PIL import Image

from neuralsight.data import images as I
from neuralsight.data.augment import AugmentConfig, FlipShiftConfig, augment, flip_and_shift
from neuralsight.data.catalog import get
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


def test_a_palette_png_written_by_predict_reads_back_as_indices_in_every_format(tmp_path):
    from neuralsight.viz.palette import class_colour, save_label_png

    idx = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    path = save_label_png(tmp_path / "m.png", idx)
    colours = [list(class_colour(i)) for i in range(3)]
    for spec in (I.MaskSpec("auto"), I.MaskSpec("index", ["bg", "pet", "border"]),
                 I.MaskSpec("palette", ["bg", "pet", "border"], colours)):
        np.testing.assert_array_equal(I.read_mask(path, spec), idx, err_msg=spec.format)
    binary = save_label_png(tmp_path / "b.png", (idx > 0).astype(np.uint8))
    np.testing.assert_array_equal(I.read_mask(binary, I.MaskSpec("binary")), idx > 0)  # not the colours' grey


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
    with pytest.raises(DataError, match=r"cannot decode image .*bad\.jpg: not an image file"):
        I.open_image(tmp_path / "bad.jpg")
    good = tmp_path / "cut.png"
    Image.fromarray(rgb).save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:60])              # truncated: fails here, not later
    with pytest.raises(DataError, match=r"cut\.png: corrupt image"):
        I.open_image(tmp_path / "cut.png")
    with pytest.raises(DataError, match=r"nowhere\.png: no such file"):
        I.open_image(tmp_path / "nowhere.png")


@pytest.mark.parametrize("mode,shape", [("RGB", (7, 5, 3)), ("L", (7, 5)), (None, None)])
@pytest.mark.parametrize("stored", ["RGB", "RGBA", "L", "LA", "P", "1"])
def test_open_image_modes(tmp_path, mode, shape, stored):
    rgb = np.random.default_rng(2).integers(0, 255, (7, 5, 3), dtype=np.uint8)
    pil = Image.fromarray(rgb).convert(stored)
    pil.save(tmp_path / "x.png")
    arr = I.open_image(tmp_path / "x.png", mode)
    assert arr.dtype == np.uint8
    if mode is None:     # as stored: alpha kept, grey and bilevel stay 2D, palette becomes RGB
        kept = {"RGB": "RGB", "RGBA": "RGBA", "L": "L", "LA": "RGBA", "P": "RGB", "1": "L"}[stored]
        shape = {"RGB": (7, 5, 3), "RGBA": (7, 5, 4), "L": (7, 5)}[kept]
        expect = np.asarray(pil.convert(kept))
    else:
        expect = np.asarray(pil.convert(mode))
    assert arr.shape == shape and np.array_equal(arr, expect)


def test_open_image_draft_shrinks_jpeg_only(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 255, (64, 48, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "big.jpg", quality=95)
    Image.fromarray(rgb).save(tmp_path / "big.png")
    # DCT scaling by the largest power of two that keeps both sides >= draft_size (PIL's draft)
    assert I.open_image(tmp_path / "big.jpg", draft_size=12).shape == (16, 12, 3)
    assert I.open_image(tmp_path / "big.jpg", draft_size=16).shape == (32, 24, 3)
    assert I.open_image(tmp_path / "big.png", draft_size=12).shape == (64, 48, 3)
    with pytest.raises(ValueError, match="mode must be one of"):
        I.open_image(tmp_path / "big.png", "CMYK")


def test_preprocess_takes_the_array_as_it_took_the_pil_image(tmp_path):
    """The one decoder's array (mode=None) gives the classifier input the PIL image gave, for every mode."""
    from neuralsight.data.imagefolder import preprocess

    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 255, (23, 17, 3), dtype=np.uint8)
    alpha = rng.integers(0, 255, (23, 17), dtype=np.uint8)
    stored = {"rgb": Image.fromarray(rgb), "rgba": Image.fromarray(np.dstack([rgb, alpha])),
              "grey": Image.fromarray(rgb[..., 0]), "la": Image.fromarray(np.dstack([rgb[..., 0], alpha]), "LA"),
              "palette": Image.fromarray(rgb).convert("P"), "bilevel": Image.fromarray(rgb[..., 0] > 128),
              "grey16": Image.fromarray(rgb[..., 0].astype(np.uint16) * 200)}
    for name, pil in stored.items():
        pil.save(tmp_path / f"{name}.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "transparent.png", transparency=3)
    for path in sorted(tmp_path.glob("*.png")):
        for channels in (1, 3):
            for invert in ("no", "auto", "yes"):
                with Image.open(path) as pil:
                    pil.load()
                    want = preprocess(pil, (28, 28), channels, invert)
                got = preprocess(I.open_image(path, mode=None), (28, 28), channels, invert)
                assert np.array_equal(got, want), (path.name, channels, invert)


def test_one_image_extension_list():
    from neuralsight.data import imagefolder

    assert imagefolder.IMAGE_EXTS is I.IMAGE_EXTS and {".pgm", ".ppm", ".webp", ".jpg"} <= set(I.IMAGE_EXTS)


def test_mask_spec_from_the_catalog_and_overrides():
    kits = I.mask_spec(get("kits19-kidney-2d-mini"))
    assert kits == I.MaskSpec("palette", ["background", "kidney", "tumour"], [[0, 0, 0], [0, 0, 255], [255, 0, 0]])
    assert I.mask_spec(get("dental-xray")) == I.MaskSpec("binary", ["background", "tooth"], [])
    assert I.mask_spec(get("oxford-pets"), "trimap_binary").class_names == ["background", "pet"]
    assert I.mask_spec(get("oxford-pets")).class_names == ["background", "pet", "border"]
    assert I.mask_spec(None) == I.MaskSpec("auto", [], [])
    assert I.mask_spec(get("liver-ct-2d"), "index", ["bg", "a", "b"]) == I.MaskSpec("index", ["bg", "a", "b"], [])


def test_dental_xray_loads_with_its_empty_masks():
    """5.png and 17.png show no teeth: their masks are all background and load like any other."""
    entry = get("dental-xray")
    root = shared_data("dental-xray")
    pairs = {p.stem: p for p in I.folder_pairs(root, entry.group_pattern)}
    assert len(pairs) == 50
    chosen = [pairs["5"], pairs["17"], pairs["1"]]
    arr = I.decode_pairs(chosen, 64, I.mask_spec(entry), cache=False)
    assert arr.images.shape == (3, 64, 64, 3)
    # grey radiographs come out as three equal channels
    assert np.array_equal(arr.images[..., 0], arr.images[..., 1])
    for i in (0, 1):
        h = I.fit_size(*arr.sizes[i], 64)[0]
        assert set(np.unique(arr.masks[i, :h])) == {0} and (arr.masks[i, h + 1:] == I.IGNORE).all()
    valid = arr.masks[2][arr.masks[2] != I.IGNORE]
    assert 0.10 < (valid == 1).mean() < 0.30                              # teeth: 11-29 % of a radiograph


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


def test_dental_photo_groups_hold_the_three_augmentations():
    pairs = I.folder_pairs(shared_data("dental-teeth-2d"), get("dental-teeth-2d").group_pattern)
    assert set(Counter(p.group for p in pairs).values()) == {3}


def test_kits_palette_folder():
    entry = get("kits19-kidney-2d-mini")
    pairs = I.folder_pairs(shared_data("kits19-kidney-2d-mini"), entry.group_pattern)[:4]
    arr = I.decode_pairs(pairs, 32, I.mask_spec(entry))
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


def test_flip_and_shift_against_a_per_image_reference():
    torch.manual_seed(0)
    x = torch.rand(6, 2, 9, 11)
    cfg = FlipShiftConfig(hflip=0.5, shift=2)
    torch.manual_seed(7)
    out = flip_and_shift(x, cfg)
    # the same draws, in the function's order: flips, then row offsets, then column offsets
    torch.manual_seed(7)
    flip = torch.rand(6) < 0.5
    dy, dx = torch.randint(0, 5, (6, 1)), torch.randint(0, 5, (6, 1))
    for i in range(6):
        img = x[i].flip(-1) if flip[i] else x[i]
        padded = torch.nn.functional.pad(img, (2, 2, 2, 2))
        want = padded[:, int(dy[i]):int(dy[i]) + 9, int(dx[i]):int(dx[i]) + 11]
        assert torch.equal(out[i], want)
    assert torch.equal(flip_and_shift(x, FlipShiftConfig(hflip=0.0, shift=0)), x)
    assert torch.equal(flip_and_shift(x, FlipShiftConfig(hflip=1.0, shift=0)), x.flip(-1))
