"""The dataset catalog: every dataset's files, checksums, upstream URLs, licence, and where to look.

Lookup order for ``locate(name)``:

1. an explicit ``--data DIR`` (the dataset folder itself, or a folder holding ``<name>/``);
2. ``$NEURALSIGHT_DATA/<name>``;
3. system copies (Debian's ``dataset-fashion-mnist`` installs ``/usr/share/datasets/fashion-mnist``);
4. the user cache ``~/.cache/neuralsight/<name>`` (``$NEURALSIGHT_CACHE`` overrides);
5. download into the cache, when the entry has downloads and ``download=True``.

When all fail, :class:`DataError` names the missing files, every place looked, the URL, and the package or
command that provides them.

How a copy is verified (:func:`check`): a dataset has one or more accepted :class:`Layout` s (the official
release, the staged copy in ``shared/datasets``...). The first layout whose required paths all exist is the
one checked. Small fixed files carry their sha256 (several accepted values where known re-packagings exist,
e.g. Debian's re-compressed Fashion-MNIST); large image/volume folders carry a file count per pattern and
one *tree digest*: the sha256 of the sorted lines ``"<sha256 of file>  <relative path>\\n"`` over the files
the patterns match (the same line format as ``sha256sum``). That keeps the package small (one 64-hex string
per folder instead of thousands) and still checks every byte; when a ``SHA256SUMS`` file sits in the dataset
folder or its parent (as in ``shared/datasets``), a failing tree is narrowed down to the files that differ.

Where a checksum comes from is said next to it. Nothing here was made up: values were either computed on
the copies in ``shared/datasets`` / Debian's package, or read from public sources (torchvision, TFDS,
MONAI and others that pin the same upstream archives), as noted.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.errors import DataError
from neuralsight.io import cache_dir, cache_root

# --------------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Download:
    """One file to fetch.

    Args:
        url: primary URL.
        filename: where it lands, relative to the dataset folder (may contain ``/``); for archives the
            name of the downloaded archive, which is removed after unpacking.
        sha256: expected sha256 (hex) of the downloaded bytes, or None.
        unpack: tar/zip/gz archive to extract into the dataset folder.
        md5: expected md5 (hex), checked too when given (many upstreams publish only md5).
        size: expected size in bytes, when a source states it.
        mirrors: further URLs serving the same bytes, tried in order after ``url``.
        strip: a leading folder inside the archive to drop (``Task04_Hippocampus`` -> its contents).
    """

    url: str
    filename: str
    sha256: str | None = None
    unpack: bool = False
    md5: str | None = None
    size: int | None = None
    mirrors: tuple[str, ...] = ()
    strip: str | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.url, *self.mirrors)


@dataclass(frozen=True)
class Tree:
    """A folder tree checked by file counts and one digest over all matched files (see module doc)."""

    patterns: tuple[str, ...]           # relative globs, e.g. "images/*.jpg"; dot-files never match
    counts: tuple[int, ...]             # expected number of files per pattern
    sha256: str | None = None           # tree digest; None: counts only (no public checksum known)


@dataclass(frozen=True)
class Layout:
    """One accepted shape of a dataset folder."""

    label: str
    required: tuple[str, ...]                                   # relative paths that must exist
    checksums: dict[str, tuple[str, ...]] = field(default_factory=dict)  # file -> accepted sha256 values
    content_sha256: dict[str, str] = field(default_factory=dict)  # .gz file -> sha256 of its decompressed bytes
    tree: Tree | None = None


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    used_for: str
    licence: str
    layouts: tuple[Layout, ...]
    downloads: tuple[Download, ...] = ()
    obtain: str = ""                          # how to get it by other means
    system_paths: tuple[str, ...] = ()
    homepage: str = ""
    prepare: str | None = None                # name in PREPARE: derive files after download

    @property
    def required(self) -> tuple[str, ...]:
        return self.layouts[0].required

    @property
    def alternatives(self) -> tuple[tuple[str, ...], ...]:
        return tuple(layout.required for layout in self.layouts[1:])

    @property
    def checksums(self) -> dict[str, tuple[str, ...]]:
        return dict(self.layouts[0].checksums)


def _sha(*values: str) -> tuple[str, ...]:
    return tuple(values)


# --------------------------------------------------------------------------------------------- entries

FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MIRROR = "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"
# Zalando's .gz files: md5 as pinned by torchvision's FashionMNIST.resources; sha256 as pinned by several
# independent public projects for the same files (one also records 26,421,880 bytes for train-images).
FASHION_ZALANDO = {
    "train-images-idx3-ubyte.gz": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                   "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
    "train-labels-idx1-ubyte.gz": ("25c81989df183df01b3e8a0aad5dffbe",
                                   "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
    "t10k-images-idx3-ubyte.gz": ("bef4ecab320f06d8554ea6380940ec79",
                                  "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
    "t10k-labels-idx1-ubyte.gz": ("bb300cfdad3c16e7a12a480ee83cd310",
                                  "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
}
# Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1 ships the same data re-compressed (gzip header
# without the file name, so each file is 23-24 bytes shorter): sha256 computed here on that package.
FASHION_DEBIAN = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
# sha256 of the decompressed idx files. Computed here from Debian's copy; their md5s (f4a8712d..., 9018921c...,
# 8181f547..., 15d48437...) equal the md5s public projects publish for Zalando's decompressed files, which
# proves the two packagings hold identical data. Any re-compression of the same data verifies by content.
FASHION_RAW = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

ROMEO_SHA256 = "edfcb9943348efafa2e90aaed046d48b3279fae28690bc6ab79d85049194654d"   # shared copy = PG repo blob
TINY_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"    # also pinned publicly
COVID_RAW_SHA256 = "485cf877a8ac4bc8f320969d076a69b537f65a7645ca0c7deb1f41b45d73af01"
COVID_HU_SHA256 = "86109513cec67728e3f5694526c97996f520c70a3ec2f50ca90cc7a0b09b3b6c"
COVID_RAW = "raw/time_series_covid19_confirmed_global.csv"

CATALOG: dict[str, Dataset] = {d.name: d for d in [
    Dataset(
        name="fashion-mnist",
        description="Zalando Fashion-MNIST: 60,000 train + 10,000 test 28x28 grey images, 10 clothing classes",
        used_for="train classify",
        licence="MIT (Zalando Research, https://github.com/zalandoresearch/fashion-mnist)",
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        layouts=(
            Layout("idx .gz files (Zalando or Debian)", FASHION_FILES,
                   checksums={f: (FASHION_ZALANDO[f][1], FASHION_DEBIAN[f]) for f in FASHION_FILES},
                   content_sha256={f: FASHION_RAW[f[:-3]] for f in FASHION_FILES}),
            Layout("decompressed idx files", tuple(FASHION_RAW),
                   checksums={f: (h,) for f, h in FASHION_RAW.items()}),
        ),
        downloads=tuple(Download(FASHION_URL + f, f, FASHION_ZALANDO[f][1], md5=FASHION_ZALANDO[f][0],
                                 size=26421880 if f.startswith("train-images") else None,
                                 mirrors=(FASHION_MIRROR + f,))
                        for f in FASHION_FILES),
        obtain="Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist (installs "
               "/usr/share/datasets/fashion-mnist); or `neuralsight data fetch fashion-mnist`; or download the "
               "four .gz files from https://github.com/zalandoresearch/fashion-mnist (data/fashion/)",
        system_paths=("/usr/share/datasets/fashion-mnist",),
    ),
    Dataset(
        name="romeo-juliet",
        description="Shakespeare, The Tragedy of Romeo and Juliet (Project Gutenberg eBook #1513), 144,399 bytes",
        used_for="train textgen",
        licence="Public domain in the USA (Project Gutenberg: gutenbergbooks/1513 LICENSE.txt)",
        homepage="https://www.gutenberg.org/ebooks/1513",
        layouts=(Layout("text file", ("romeo_and_juliet.txt",),
                        checksums={"romeo_and_juliet.txt": _sha(ROMEO_SHA256)}),),
        # Project Gutenberg's own GitHub repository, pinned to the commit the shared copy was taken from
        # (its PROVENANCE.md: byte-identical, md5 c151ea07...). gutenberg.org's pg1513.txt adds a licence
        # header/footer and is a different file.
        downloads=(Download("https://raw.githubusercontent.com/gutenbergbooks/1513/"
                            "cb8f77294d76d8be9bc7953df137dd6762058f4b/1513-0.txt",
                            "romeo_and_juliet.txt", ROMEO_SHA256, md5="c151ea076f652e978d59a892df82d765",
                            size=144399),),
        obtain="`neuralsight data fetch romeo-juliet`; or save 1513-0.txt of https://github.com/gutenbergbooks/1513 "
               "as romeo_and_juliet.txt; any plain-text copy from https://www.gutenberg.org/ebooks/1513 also "
               "trains (it will not verify)",
    ),
    Dataset(
        name="tinyshakespeare",
        description="tiny shakespeare (karpathy/char-rnn), 1,115,394 characters; nanoGPT's benchmark corpus",
        used_for="train textgen, benchmarks",
        licence="Shakespeare's text is public domain; karpathy/char-rnn states MIT for the repository",
        homepage="https://github.com/karpathy/char-rnn",
        layouts=(Layout("text file", ("tinyshakespeare.txt",),
                        checksums={"tinyshakespeare.txt": _sha(TINY_SHA256)}),),
        downloads=(Download("https://raw.githubusercontent.com/karpathy/char-rnn/"
                            "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt",
                            "tinyshakespeare.txt", TINY_SHA256, md5="6fb458f1232090904fb40fe944165e91",
                            size=1115394,
                            mirrors=("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                                     "tinyshakespeare/input.txt",)),),
        obtain="`neuralsight data fetch tinyshakespeare`; or save data/tinyshakespeare/input.txt of "
               "https://github.com/karpathy/char-rnn as tinyshakespeare.txt",
    ),
    Dataset(
        name="oxford-pets",
        description="Oxford-IIIT Pet: cat and dog photos with trimaps (1 pet / 2 background / 3 border)",
        used_for="train segment",
        licence="research use per the dataset README; described as CC BY-SA 4.0, image copyright with owners "
                "(Parkhi, Vedaldi, Zisserman, Jawahar, CVPR 2012)",
        homepage="https://www.robots.ox.ac.uk/~vgg/data/pets/",
        layouts=(
            # The official archives unpacked. 7390 images: counted by public extract checks of the archive.
            Layout("official release", ("images", "annotations/trimaps", "annotations/trainval.txt",
                                        "annotations/test.txt"),
                   tree=Tree(("images/*.jpg",), (7390,))),
            # shared/datasets/oxford-pets: the 921-pair subset (PROVENANCE.md); digest computed here.
            Layout("921-pair subset (shared/datasets)", ("images", "trimaps", "trainval.txt", "test.txt"),
                   tree=Tree(("images/*.jpg", "trimaps/*.png", "trainval.txt", "test.txt"), (921, 921, 1, 1),
                             "92c1d0a3dfd50b1bac048e6c232da0cbcafa91402093ed04934224c0ea11f410")),
        ),
        # sha256 + size from TFDS's checksums.tsv; md5 from torchvision's OxfordIIITPet._RESOURCES; a third
        # public record ties md5 5c4f3ee8... to sha256 67195c5e... and 791,918,971 bytes.
        downloads=(
            Download("https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz", "images.tar.gz",
                     "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d", unpack=True,
                     md5="5c4f3ee8e5d25df40f4fd59a7f44e54c", size=791918971,
                     mirrors=("https://thor.robots.ox.ac.uk/datasets/pets/images.tar.gz",)),
            Download("https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz", "annotations.tar.gz",
                     "52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91", unpack=True,
                     md5="95a8c909bbe2e81eed6a22bccdf3f68f", size=19173078,
                     mirrors=("https://thor.robots.ox.ac.uk/datasets/pets/annotations.tar.gz",)),
        ),
        obtain="`neuralsight data fetch oxford-pets` (about 810 MB); or download images.tar.gz and "
               "annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/ and extract both into one folder",
    ),
    Dataset(
        name="liver-ct-2d",
        description="643 liver CT slices (256x256 JPEG) with binary liver masks (PNG), MSD Task03/LiTS-derived",
        used_for="train segment --dataset liver-ct-2d",
        licence="as stated by the source: Open Data Commons DbCL 1.0 (Kaggle '3D Liver segmentation'); "
                "MSD data CC BY-SA 4.0",
        homepage="https://github.com/sarah-antillia/Image-Segmentation-Liver-Tumor",
        layouts=(Layout("image/mask folders", ("images", "masks"),
                        tree=Tree(("images/*.jpg", "masks/*.png"), (643, 643),
                                  "6ef627baf715e5db4d58d857a5fa7e5d649ab496973f68b49ba7b013fb5052b5")),),
        obtain="no direct download: copy projects/Liver-Tumor/Liver-Tumor/test/{images,masks} of "
               "https://github.com/sarah-antillia/Image-Segmentation-Liver-Tumor (commit de32e744) and convert the "
               "JPEG masks to binary PNG (value > 127 -> 255), see shared/datasets/liver-ct-2d/PROVENANCE.md",
    ),
    Dataset(
        name="dental-teeth-2d",
        description="1752 intraoral photos (584 photos x 3 augmentations, 448x448) with binary tooth masks",
        used_for="train segment --dataset dental-teeth-2d",
        licence="no data licence stated by the source (Roboflow Universe 'Tooth Detection' export; "
                "repository code GPL-3.0); research/teaching use",
        homepage="https://github.com/zhangfaen/unet-for-tooth-segmentation",
        layouts=(Layout("image/mask folders", ("images", "masks"),
                        tree=Tree(("images/*.jpg", "masks/*.png"), (1752, 1752),
                                  "6c5bdef1500060483aa201fd56fb8d444bf647286fd5b52ed5807fde48478636")),),
        obtain="no direct download: copy data/imgs and data/masks of "
               "https://github.com/zhangfaen/unet-for-tooth-segmentation (commit 836be4ed) to images/ and masks/ "
               "and drop the masks' `_mask` suffix; source: universe.roboflow.com/minkyu/tooth-detection-myvcg",
    ),
    Dataset(
        name="kits19-kidney-2d-mini",
        description="24 KiTS19 kidney CT slices (512x512) with colour masks (blue kidney, red tumour)",
        used_for="train segment --dataset kits19-kidney-2d-mini",
        licence="no data licence found in the sources; kits19 repository code MIT (excluding data/); "
                "check the KiTS19 data terms before redistribution",
        homepage="https://kits19.grand-challenge.org",
        layouts=(Layout("image/mask folders", ("images", "masks"),
                        tree=Tree(("images/*.png", "masks/*.png"), (24, 24),
                                  "6a833c6cdaa14b20a2963a104edd08992365ddfcf137c7948a83864dc6f67ef9")),),
        obtain="no direct download: copy projects/TensorFlowFlexUNet/Kidney-Tumor/mini_test/{images,masks} of "
               "https://github.com/sarah-antillia/TensorFlow-FlexUNet-Image-Segmentation-KiTS19-Kidney-Tumor "
               "(commit 07dfb454)",
    ),
    Dataset(
        name="msd-hippocampus",
        description="Medical Segmentation Decathlon Task04_Hippocampus: 260 cropped MRI volumes, "
                    "labels 1/2 anterior/posterior",
        used_for="train segment3d",
        licence="CC BY-SA 4.0 (Medical Segmentation Decathlon; cite Simpson et al. 2019, arXiv:1902.09063)",
        homepage="http://medicaldecathlon.com/",
        layouts=(
            # The official archive unpacked: 260 training pairs (+130 unlabelled imagesTs, dataset.json).
            Layout("official Task04 archive", ("imagesTr", "labelsTr", "dataset.json"),
                   tree=Tree(("imagesTr/*.nii.gz", "labelsTr/*.nii.gz"), (260, 260))),
            # shared/datasets/msd-hippocampus: 260 pairs from a Udacity copy (not the same 260; PROVENANCE.md).
            Layout("260-pair copy (shared/datasets)", ("imagesTr", "labelsTr"),
                   tree=Tree(("imagesTr/*.nii.gz", "labelsTr/*.nii.gz"), (260, 260),
                             "4e9455ae15680a302806ff3db4470450a45a6fb897bc0052a19835224b153a24")),
        ),
        # MONAI's DecathlonDataset URL and md5; sha256 and 28,425,216 bytes as recorded by several public
        # projects that pin the same archive (and cited in shared/datasets/msd-hippocampus/PROVENANCE.md).
        downloads=(Download("https://msd-for-monai.s3-us-west-2.amazonaws.com/Task04_Hippocampus.tar",
                            "Task04_Hippocampus.tar",
                            "282d808a3e84e5a52f090d9dd4c0b0057b94a6bd51ad41569aef5ff303287771", unpack=True,
                            md5="9d24dba78a72977dbd1d2e110310f31b", size=28425216, strip="Task04_Hippocampus"),),
        obtain="`neuralsight data fetch msd-hippocampus` (28 MB); or download Task04_Hippocampus.tar via "
               "http://medicaldecathlon.com/ and extract it (imagesTr/, labelsTr/)",
    ),
    Dataset(
        name="covid-hu",
        description="daily confirmed COVID-19 cases in Hungary, 2020-01-22..2023-03-09 (JHU CSSE), 1143 days",
        used_for="train forecast",
        licence="CC BY 4.0 (COVID-19 Data Repository by CSSE at Johns Hopkins University)",
        homepage="https://github.com/CSSEGISandData/COVID-19",
        layouts=(Layout("derived CSV", ("hungary_daily_cases.csv",),
                        checksums={"hungary_daily_cases.csv": _sha(COVID_HU_SHA256),
                                   COVID_RAW: _sha(COVID_RAW_SHA256)}),),
        # The shared raw table is byte-identical to this pinned blob (PROVENANCE.md); the Hungary CSV is
        # derived from it by `derive_hungary` (a test checks the result equals the shared file byte for byte).
        downloads=(Download("https://raw.githubusercontent.com/Al-AminLAB/Health_Datasets/"
                            "471948d242ebe57db570dc328494fea734460f19/time_series_covid19_confirmed_global.csv",
                            COVID_RAW, COVID_RAW_SHA256, size=1822442),),
        prepare="covid-hu",
        obtain="`neuralsight data fetch covid-hu`; or take the Hungary row of "
               "csse_covid_19_data/csse_covid_19_time_series/time_series_covid19_confirmed_global.csv from "
               "https://github.com/CSSEGISandData/COVID-19 and difference it (date,new_cases,cumulative)",
    ),
]}

# Catalog names whose shared copy sits inside another folder of $NEURALSIGHT_DATA.
SHARED_FOLDER = {"romeo-juliet": "shakespeare", "tinyshakespeare": "shakespeare"}


# --------------------------------------------------------------------------------------------- lookup


def get(name: str) -> Dataset:
    if name not in CATALOG:
        raise DataError(f"unknown dataset '{name}'", f"known datasets: {', '.join(CATALOG)}")
    return CATALOG[name]




def candidates(name: str, data_dir: Path | str | None = None) -> list[Path]:
    """Every place looked for ``name``, in lookup order."""
    entry = get(name)
    folders = [name] + ([SHARED_FOLDER[name]] if name in SHARED_FOLDER else [])
    out: list[Path] = []
    if data_dir:
        d = Path(data_dir).expanduser()
        out.append(d)
        out.extend(d / f for f in folders)
    env = os.environ.get("NEURALSIGHT_DATA")
    if env:
        out.extend(Path(env).expanduser() / f for f in folders)
    out.extend(Path(p) for p in entry.system_paths)
    out.append(cache_dir(name))
    return out


def matching_layout(entry: Dataset, folder: Path) -> Layout | None:
    """The first layout whose required paths all exist in ``folder``."""
    for layout in entry.layouts:
        if all((folder / rel).exists() for rel in layout.required):
            return layout
    return None


def layout_ok(entry: Dataset, folder: Path) -> bool:
    return matching_layout(entry, folder) is not None


def find(name: str, data_dir: Path | str | None = None) -> Path | None:
    entry = get(name)
    for folder in candidates(name, data_dir):
        if folder.is_dir() and layout_ok(entry, folder):
            return folder
    return None


def fetch_command(name: str) -> str:
    return f"neuralsight data fetch {name}"


def missing_message(name: str, data_dir: Path | str | None = None, download_error: str | None = None) -> str:
    entry = get(name)
    looked = "; ".join(str(p) for p in candidates(name, data_dir))
    urls = ", ".join(d.url for d in entry.downloads) or "none (no public direct download)"
    need = " + ".join(", ".join(layout.required) for layout in entry.layouts[:1])
    msg = f"dataset '{name}' not found: need {need}; looked in: {looked}; download: {urls}"
    if download_error:
        msg += f" (download failed: {download_error})"
    msg += f". To get it: {entry.obtain}; then pass --data DIR or set NEURALSIGHT_DATA"
    return msg


def locate(name: str, data_dir: Path | str | None = None, download: bool | None = None) -> Path:
    """The folder holding dataset ``name``; downloads into the cache if allowed and possible.

    ``download=None`` means: try when the entry has URLs and ``NEURALSIGHT_OFFLINE`` is not set.
    """
    found = find(name, data_dir)
    if found is not None:
        return found
    entry = get(name)
    if download is None:
        download = bool(entry.downloads) and not os.environ.get("NEURALSIGHT_OFFLINE")
    error = None
    if download and entry.downloads:
        try:
            from neuralsight.data.download import fetch_dataset

            return fetch_dataset(entry, cache_dir(name))
        except (OSError, DataError, ImportError) as err:
            text = err.message if isinstance(err, DataError) else str(err)
            error = text.splitlines()[0] if text else type(err).__name__
    raise DataError(missing_message(name, data_dir, error))


# --------------------------------------------------------------------------------------------- hashing


def file_digest(path: Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def gunzip_sha256(path: Path, chunk: int = 1 << 20) -> str:
    import gzip

    h = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def tree_files(folder: Path, patterns: Iterable[str]) -> list[list[str]]:
    """Per pattern, the sorted relative paths (``/``-separated) it matches; dot-files (``._x``) never match."""
    out = []
    for pattern in patterns:
        parent, _, leaf = pattern.rpartition("/")
        base = folder / parent if parent else folder
        names: list[str] = []
        if base.is_dir():
            with os.scandir(base) as it:
                names = sorted(e.name for e in it if not e.name.startswith(".") and e.is_file()
                               and fnmatch.fnmatchcase(e.name, leaf))
        out.append([f"{parent}/{n}" if parent else n for n in names])
    return out


def tree_lines(folder: Path, relpaths: Iterable[str]) -> dict[str, str]:
    """relative path -> sha256 for each file."""
    return {rel: file_digest(folder / rel) for rel in relpaths}


def tree_digest(hashes: dict[str, str]) -> str:
    text = "".join(f"{hashes[rel]}  {rel}\n" for rel in sorted(hashes))
    return hashlib.sha256(text.encode()).hexdigest()


def _stat_fingerprint(folder: Path, relpaths: Iterable[str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(relpaths):
        st = (folder / rel).stat()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _read_sums(folder: Path) -> dict[str, str]:
    """relative path -> sha256 from a SHA256SUMS in ``folder`` or its parent (paths made relative to folder)."""
    for sums, prefix in ((folder / "SHA256SUMS", ""), (folder.parent / "SHA256SUMS", folder.name + "/")):
        if not sums.is_file():
            continue
        out = {}
        for line in sums.read_text(errors="replace").splitlines():
            digest, _, rel = line.strip().partition("  ")
            rel = rel.lstrip("*").removeprefix("./")
            if rel.startswith(prefix):
                out[rel[len(prefix):]] = digest
        return out
    return {}


# --------------------------------------------------------------------------------------------- verification

STAMPS = "verified.json"   # in the cache root: folder -> fingerprint of a copy whose tree digest matched


def _load_stamps() -> dict:
    try:
        return json.loads((cache_root() / STAMPS).read_text())
    except (OSError, ValueError):
        return {}


def _save_stamp(key: str, fingerprint: str) -> None:
    stamps = _load_stamps()
    stamps[key] = fingerprint
    try:
        from neuralsight.io import atomic_write_text

        cache_root().mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache_root() / STAMPS, json.dumps(stamps, indent=1, sort_keys=True))
    except OSError:
        pass   # a read-only home only costs a re-hash next time


@dataclass
class CheckResult:
    """What :func:`check` found for one dataset folder."""

    name: str
    folder: Path | None
    layout: str = ""
    verified: str = "no"              # "yes" (checksums match), "count" (counts only: no checksum known), "no"
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    size: int = 0

    @property
    def ok(self) -> bool:
        return self.folder is not None and not self.problems


def _size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def check(name: str | Dataset, folder: Path | str, full: bool = True,
          on_file: Callable[[str], None] | None = None) -> CheckResult:
    """Verify a dataset folder: required layout, fixed-file checksums, file counts and the tree digest.

    Args:
        name: catalog name (or the :class:`Dataset` itself).
        folder: the dataset folder.
        full: hash trees even when a stamp from an earlier successful check matches the files' sizes and
            modification times (``data verify`` passes True; ``data list`` passes False).
        on_file: called with each relative path before it is hashed (progress).
    """
    entry = name if isinstance(name, Dataset) else get(name)
    name = entry.name
    folder = Path(folder)
    result = CheckResult(name, folder)
    layout = matching_layout(entry, folder)
    if layout is None:
        first = entry.layouts[0]
        missing = [rel for rel in first.required if not (folder / rel).exists()]
        result.problems.append(f"missing {', '.join(missing)} in {folder}")
        return result
    result.layout = layout.label
    has_checksum = False
    for rel, accepted in layout.checksums.items():
        path = folder / rel
        if not path.is_file():
            if rel in layout.required:
                result.problems.append(f"{rel} is not a file")
            continue
        has_checksum = True
        result.size += path.stat().st_size
        key, fingerprint = f"{name}:{path.resolve()}", _stat_fingerprint(folder, [rel])
        if not full and _load_stamps().get(key) == fingerprint:
            continue    # verified earlier and unchanged since
        if on_file:
            on_file(rel)
        digest = file_digest(path)
        if digest in accepted:
            _save_stamp(key, fingerprint)
            continue
        if rel in layout.content_sha256:
            try:
                same = gunzip_sha256(path) == layout.content_sha256[rel]
            except (OSError, EOFError) as err:
                result.problems.append(f"{rel}: not a readable gzip file ({err})")
                continue
            if same:
                result.notes.append(f"{rel}: other compression, identical content")
                _save_stamp(key, fingerprint)
                continue
        result.problems.append(f"{rel}: sha256 {digest[:12]}... is not the expected {accepted[0][:12]}...")
    if layout.tree is not None:
        tree = layout.tree
        matched = tree_files(folder, tree.patterns)
        for pattern, files, want in zip(tree.patterns, matched, tree.counts, strict=True):
            if len(files) != want:
                result.problems.append(f"{pattern}: {len(files)} files, expected {want}")
        files = [rel for group in matched for rel in group]
        result.size += sum((folder / rel).stat().st_size for rel in files)
        if tree.sha256 is None:
            result.notes.append(f"{len(files)} files counted (no public per-file checksums for this layout)")
        elif not result.problems:
            has_checksum = True
            key = f"{name}:{folder.resolve()}"
            fingerprint = _stat_fingerprint(folder, files)
            if full or _load_stamps().get(key) != fingerprint:
                hashes = {}
                for rel in files:
                    if on_file:
                        on_file(rel)
                    hashes[rel] = file_digest(folder / rel)
                if tree_digest(hashes) == tree.sha256:
                    _save_stamp(key, fingerprint)
                else:
                    result.problems.append(_tree_problem(folder, hashes))
            else:
                result.notes.append("tree digest matched earlier (files unchanged since)")
    else:
        result.size += sum(_size_of(folder / rel) for rel in layout.required if rel not in layout.checksums)
    if result.problems:
        result.verified = "no"
    else:
        result.verified = "yes" if has_checksum else "count"
    return result


def _tree_problem(folder: Path, hashes: dict[str, str]) -> str:
    sums = _read_sums(folder)
    if sums:
        bad = [rel for rel, digest in hashes.items() if sums.get(rel) not in (None, digest)]
        unknown = [rel for rel in hashes if rel not in sums]
        if bad or unknown:
            parts = []
            if bad:
                parts.append(f"{len(bad)} files differ from SHA256SUMS (e.g. {', '.join(sorted(bad)[:3])})")
            if unknown:
                parts.append(f"{len(unknown)} files not in SHA256SUMS (e.g. {', '.join(sorted(unknown)[:3])})")
            return "tree digest mismatch: " + "; ".join(parts)
    return "tree digest mismatch: some file differs from the catalogued copy (no SHA256SUMS here to say which)"


# --------------------------------------------------------------------------------------------- prepare


def derive_hungary(raw_csv: Path, out_csv: Path) -> Path:
    """Write ``date,new_cases,cumulative`` for Hungary from a JHU-style confirmed-cases table.

    Accepts the JHU header (``Province/State,Country/Region,Lat,Long``, dates ``m/d/yy``) and the re-headed
    copy (``Province,Country,Lat,Lon``, dates ``m/d/YYYY``). ``new_cases`` is the day-on-day difference of the
    cumulative count (the first day: the cumulative value itself).
    """
    import csv
    import io

    with open(raw_csv, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        row = next((r for r in reader if len(r) > 1 and r[1] == "Hungary" and not r[0]), None)
    if row is None:
        raise DataError(f"{raw_csv} has no Hungary row", "expected a JHU CSSE time_series_covid19_confirmed_global.csv")
    if len(row) != len(header):
        raise DataError(f"{raw_csv}: the Hungary row has {len(row)} fields, the header {len(header)}",
                        "the file is damaged; fetch it again")
    out = io.StringIO()
    out.write("date,new_cases,cumulative\n")
    previous = 0
    for label, value in zip(header[4:], row[4:], strict=True):
        month, day, year = (int(x) for x in label.split("/"))
        year += 2000 if year < 100 else 0
        cumulative = int(float(value))
        out.write(f"{year:04d}-{month:02d}-{day:02d},{cumulative - previous},{cumulative}\n")
        previous = cumulative
    from neuralsight.io import atomic_write_text

    atomic_write_text(out_csv, out.getvalue())
    return out_csv


PREPARE: dict[str, Callable[[Path], None]] = {
    "covid-hu": lambda folder: derive_hungary(folder / COVID_RAW, folder / "hungary_daily_cases.csv") and None,
}
