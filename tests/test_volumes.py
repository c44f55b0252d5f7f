"""Volume I/O, checks, preprocessing, patch sampling and augmentation (data/volumes.py)."""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pytest
import torch

from neuralsight.data import volumes as V
from neuralsight.data.augment import VolumeAugmentConfig, augment_volumes
from neuralsight.errors import DataError


def save_nii(path, data, affine=None):
    affine = np.diag([1.0, 1.0, 1.0, 1.0]) if affine is None else affine
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return path


AFFINE = np.array([[0.0, 0.0, 2.5, -10.0], [1.5, 0.0, 0.0, 4.0], [0.0, -1.0, 0.0, 7.0], [0, 0, 0, 1.0]])


def test_nifti_round_trip_keeps_affine_and_header(tmp_path):
    image = save_nii(tmp_path / "img.nii.gz", np.random.rand(7, 9, 5).astype(np.float32), AFFINE)
    vol = V.read_volume(image)
    assert vol.spacing == pytest.approx((1.5, 1.0, 2.5))
    label = np.random.randint(0, 3, (7, 9, 5))
    out = V.write_label_nifti(tmp_path / "pred.nii.gz", label, vol.affine, vol.header)
    back = nib.load(str(out))
    np.testing.assert_allclose(back.affine, AFFINE)
    np.testing.assert_array_equal(np.asarray(back.dataobj), label)
    assert back.get_data_dtype() == np.uint8
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_msd_layout_with_dataset_json_and_npz(tmp_path):
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    for i in range(2):
        save_nii(tmp_path / "imagesTr" / f"case_{i}.nii.gz", np.random.rand(6, 7, 8).astype(np.float32) * 100)
        save_nii(tmp_path / "labelsTr" / f"case_{i}.nii.gz", np.random.randint(0, 3, (6, 7, 8)).astype(np.uint8))
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"0": "background", "1": "Anterior",
                                                                   "2": "Posterior"}}))
    cases = V.load_cases(tmp_path)
    assert [c.name for c in cases] == ["case_0", "case_1"]
    assert cases[0].image.shape == (1, 6, 7, 8) and cases[0].label.shape == (6, 7, 8)
    assert float(cases[0].image.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(cases[0].image.std()) == pytest.approx(1.0, abs=1e-3)
    assert V.label_names(tmp_path, 3) == ["background", "Anterior", "Posterior"]

    npz = tmp_path / "vol.npz"
    np.savez(npz, image=np.ones((4, 5, 6), np.float32), affine=AFFINE)
    vol = V.read_volume(npz)
    np.testing.assert_allclose(vol.affine, AFFINE)
    assert vol.spacing == pytest.approx((1.5, 1.0, 2.5))
    np.save(tmp_path / "vol.npy", np.zeros((4, 5, 6)))
    assert V.read_volume(tmp_path / "vol.npy").spacing == (1.0, 1.0, 1.0)


def test_folder_pairs_layout(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    np.save(tmp_path / "images" / "a.npy", np.random.rand(5, 5, 5).astype(np.float32))
    np.save(tmp_path / "masks" / "a.npy", np.ones((5, 5, 5), np.uint8))
    (name, img, lab), = V.find_cases(tmp_path)
    assert name == "a" and lab == tmp_path / "masks" / "a.npy"


def test_bad_inputs_name_the_file(tmp_path):
    img = save_nii(tmp_path / "img.nii.gz", np.random.rand(6, 7, 8).astype(np.float32))
    wrong = save_nii(tmp_path / "lab_shape.nii.gz", np.zeros((6, 7, 9), np.uint8))
    with pytest.raises(DataError, match=r"lab_shape\.nii\.gz has shape \(6, 7, 9\).*\(6, 7, 8\)"):
        V.load_case(img, wrong)
    frac = save_nii(tmp_path / "lab_float.nii.gz", np.full((6, 7, 8), 0.5, np.float32))
    with pytest.raises(DataError, match=r"lab_float\.nii\.gz holds non-integer values \(e\.g\. 0\.5\)"):
        V.load_case(img, frac)
    flat = save_nii(tmp_path / "flat.nii.gz", np.zeros((6, 7), np.float32))
    with pytest.raises(DataError, match=r"image .*flat\.nii\.gz has 2 dimensions"):
        V.load_case(flat, None)
    # A truncated .nii.gz: cut the compressed stream in half.
    data = gzip.compress(nib.Nifti1Image(np.random.rand(20, 20, 20).astype(np.float32), np.eye(4)).to_bytes())
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cannot read image .*broken\.nii\.gz.*corrupt or truncated"):
        V.load_case(broken, None)
    garbage = tmp_path / "garbage.nii"
    garbage.write_bytes(b"not a nifti file at all" * 3)
    with pytest.raises(DataError, match=r"garbage\.nii"):
        V.read_volume(garbage)
    with pytest.raises(DataError, match=r"missing\.nii\.gz does not exist"):
        V.read_volume(tmp_path / "missing.nii.gz")
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    save_nii(tmp_path / "imagesTr" / "x.nii.gz", np.zeros((4, 4, 4), np.float32))
    with pytest.raises(DataError, match=r"have no label, e\.g\. .*x\.nii\.gz"):
        V.load_cases(tmp_path)


def test_resample_and_window_and_padding():
    image = torch.arange(2 * 4 * 6, dtype=torch.float32).view(1, 2, 4, 6)
    out, affine = V.resample(image, (2.0, 1.0, 1.0), (1.0, 1.0, 2.0), np.diag([2.0, 1.0, 1.0, 1.0]))
    assert out.shape == (1, 4, 4, 3)
    np.testing.assert_allclose(np.diag(affine)[:3], [1.0, 1.0, 2.0])
    lab, _ = V.resample(torch.randint(0, 3, (1, 2, 4, 6)), (2.0, 1.0, 1.0), (1.0, 1.0, 1.0), label=True)
    assert lab.dtype == torch.int64 and set(lab.unique().tolist()) <= {0, 1, 2}
    ct = torch.tensor([[[[-2000.0, -100.0, 0.0, 300.0, 3000.0]]]])
    np.testing.assert_allclose(V.normalize(ct, "window", [-100, 300])[0, 0, 0], [0, 0, 0.25, 1, 1])
    padded, size = V.pad_to_multiple(torch.ones(1, 5, 9, 16), 8)
    assert padded.shape == (1, 8, 16, 16) and size == (5, 9, 16)
    assert V.crop_to(padded, size).shape == (1, 5, 9, 16) and V.crop_to(padded, size).min() == 1


def _cases(n=3, shape=(10, 12, 9)):
    cases = []
    for i in range(n):
        label = torch.zeros(shape, dtype=torch.uint8)
        label[2 + i:5 + i, 3:6, 2:4] = 1 + i % 2
        cases.append(V.Case(name=f"c{i}", image=torch.randn(1, *shape), label=label, affine=np.eye(4),
                            spacing=(1.0, 1.0, 1.0)))
    return cases


def test_patch_sampler_foreground_ratio_and_padding():
    torch.manual_seed(0)
    sampler = V.PatchSampler.from_cases(_cases(), (8, 8, 16), "cpu", foreground_ratio=1.0)
    x, y = sampler.sample(torch.tensor([0, 1, 2, 0]))
    assert x.shape == (4, 1, 8, 8, 16) and y.shape == (4, 8, 8, 16) and y.dtype == torch.int64
    assert all(int((y[i] > 0).sum()) > 0 for i in range(4))  # every patch holds foreground
    sampler.foreground_ratio = 0.0
    xs, _ = sampler.sample(torch.zeros(50, dtype=torch.long))
    assert xs.shape == (50, 1, 8, 8, 16)


def test_augment_keeps_shapes_and_labels():
    torch.manual_seed(0)
    x = torch.randn(3, 1, 8, 10, 12)
    y = torch.randint(0, 3, (3, 8, 10, 12))
    flip = VolumeAugmentConfig(flip_prob=1.0, flip_axes=(1,), spatial_prob=0.0, intensity_prob=0.0)
    x2, y2 = augment_volumes(x, y, flip)
    assert torch.equal(x2, x.flip(3)) and torch.equal(y2, y.flip(2))
    x3, y3 = augment_volumes(x, y, VolumeAugmentConfig(spatial_prob=1.0, rotate=10, scale=0.1))
    assert x3.shape == x.shape and y3.shape == y.shape and y3.dtype == torch.int64
    assert set(y3.unique().tolist()) <= {0, 1, 2}
    # A rotation of 0 and a scale of exactly 1 (scale=0) leave the volume as it is.
    x5, y5 = augment_volumes(x, y, VolumeAugmentConfig(flip_prob=0, spatial_prob=1.0, rotate=0.0, scale=1e-12,
                                                       intensity_prob=0))
    assert torch.allclose(x5, x, atol=1e-5) and torch.equal(y5, y)
    # Identity when everything is off.
    x4, y4 = augment_volumes(x, y, VolumeAugmentConfig(flip_prob=0, spatial_prob=0, intensity_prob=0))
    assert torch.equal(x4, x) and torch.equal(y4, y)


def test_transitional_augment_class_draws_as_augment_volumes():
    x = torch.randn(2, 1, 6, 7, 8)
    y = torch.randint(0, 3, (2, 6, 7, 8))
    for kwargs in ({}, {"spatial_prob": 1.0}, {"flip_prob": 1.0, "flip_axes": (0, 2)}):
        torch.manual_seed(3)
        old = V.Augment(**kwargs)(x, y)
        torch.manual_seed(3)
        new = augment_volumes(x, y, VolumeAugmentConfig(**kwargs))
        assert all(torch.equal(a, b) for a, b in zip(old, new, strict=True))


def test_label_names_fallback_from_the_catalog(tmp_path):
    from neuralsight.data.catalog import get

    names = get("msd-hippocampus").class_names
    assert V.label_names(tmp_path, 3, names) == ["background", "anterior", "posterior"]
    assert V.label_names(tmp_path, 4, names) == ["background", "class 1", "class 2", "class 3"]
