"""The dataset catalog: every dataset's files, checksums, upstream URLs, licence, and where to look.

Lookup order for ``locate(name)``:

1. an explicit ``--data DIR`` (the dataset folder itself, or a folder holding ``<name>/``);
2. ``$NEURALSIGHT_DATA/<name>``;
3. system copies (Debian's ``dataset-fashion-mnist`` installs ``/usr/share/datasets/fashion-mnist``);
4. the user cache ``~/.cache/neuralsight/<name>`` (``$NEURALSIGHT_CACHE`` overrides);
5. download into the cache, when the entry has downloads and ``download=True``.

When all fail, :class:`DataError` names the missing files, every place looked, the URL, and the package or
command that provides them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.errors import DataError


@dataclass(frozen=True)
class Download:
    url: str
    filename: str
    sha256: str | None = None
    unpack: bool = False          # tar/zip/gz archive to extract into the dataset folder


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    used_for: str
    licence: str
    required: tuple[str, ...]                 # paths (relative) that must exist for the copy to count
    checksums: dict[str, str] = field(default_factory=dict)   # fixed-layout files -> sha256
    downloads: tuple[Download, ...] = ()
    obtain: str = ""                          # how to get it by other means
    system_paths: tuple[str, ...] = ()
    alternatives: tuple[tuple[str, ...], ...] = ()  # other accepted layouts (each a `required` tuple)


FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

CATALOG: dict[str, Dataset] = {d.name: d for d in [
    Dataset(
        name="fashion-mnist",
        description="Zalando Fashion-MNIST: 60,000 train + 10,000 test 28x28 grey images, 10 clothing classes",
        used_for="train classify",
        licence="MIT (Zalando Research)",
        required=("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                  "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
        downloads=tuple(Download(FASHION_URL + f, f) for f in (
            "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")),
        obtain="Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
               "(installs /usr/share/datasets/fashion-mnist); or download the four .gz files from "
               "https://github.com/zalandoresearch/fashion-mnist",
        system_paths=("/usr/share/datasets/fashion-mnist",),
    ),
    Dataset(
        name="romeo-juliet",
        description="Shakespeare, The Tragedy of Romeo and Juliet (Project Gutenberg eBook #1513)",
        used_for="train textgen",
        licence="Public domain in the USA (Project Gutenberg licence)",
        required=("romeo_and_juliet.txt",),
        checksums={"romeo_and_juliet.txt": "edfcb9943348efafa2e90aaed046d48b3279fae28690bc6ab79d85049194654d"},
        downloads=(Download("https://www.gutenberg.org/cache/epub/1513/pg1513.txt", "romeo_and_juliet.txt"),),
        obtain="save https://www.gutenberg.org/ebooks/1513 as plain text named romeo_and_juliet.txt "
               "(a Gutenberg header/footer is stripped automatically); the shared copy lives in shakespeare/",
    ),
    Dataset(
        name="tinyshakespeare",
        description="tiny shakespeare (karpathy/char-rnn), 1,115,394 characters; nanoGPT's benchmark corpus",
        used_for="train textgen, benchmarks/textgen.py",
        licence="Public domain text (Shakespeare)",
        required=("tinyshakespeare.txt",),
        checksums={"tinyshakespeare.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"},
        downloads=(Download("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                            "tinyshakespeare.txt",
                            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),),
        obtain="download karpathy/char-rnn data/tinyshakespeare/input.txt as tinyshakespeare.txt",
    ),
    Dataset(
        name="oxford-pets",
        description="Oxford-IIIT Pet: cat and dog photos with trimaps (pet / background / border)",
        used_for="train segment",
        licence="CC BY-SA 4.0 (Parkhi, Vedaldi, Zisserman, Jawahar 2012)",
        required=("images", "annotations/trimaps", "annotations/trainval.txt", "annotations/test.txt"),
        alternatives=(("images", "trimaps", "trainval.txt", "test.txt"),),
        downloads=(
            Download("https://thor.robots.ox.ac.uk/datasets/pets/images.tar.gz", "images.tar.gz",
                     "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d", unpack=True),
            Download("https://thor.robots.ox.ac.uk/datasets/pets/annotations.tar.gz", "annotations.tar.gz",
                     "52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91", unpack=True),
        ),
        obtain="download images.tar.gz and annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/ "
               "and extract both into one folder",
    ),
    Dataset(
        name="liver-ct-2d",
        description="643 liver CT slices (256x256) with binary liver masks, MSD Task03/LiTS-derived",
        used_for="train segment --dataset liver-ct-2d",
        licence="Open Data Commons DbCL 1.0 as stated for the Kaggle source",
        required=("images", "masks"),
        obtain="the sarah-antillia/Image-Segmentation-Liver-Tumor repository (projects/Liver-Tumor/...), "
               "see shared/datasets/liver-ct-2d/PROVENANCE.md",
    ),
    Dataset(
        name="dental-teeth-2d",
        description="1752 intraoral photos (584 photos x 3 augmentations) with binary tooth masks",
        used_for="train segment --dataset dental-teeth-2d",
        licence="no data licence stated by the source (Roboflow Universe export)",
        required=("images", "masks"),
        obtain="Roboflow Universe project minkyu/tooth-detection-myvcg, see its PROVENANCE.md",
    ),
    Dataset(
        name="kits19-kidney-2d-mini",
        description="24 KiTS19 kidney CT slices (512x512) with colour masks (blue kidney, red tumour)",
        used_for="train segment --dataset kits19-kidney-2d-mini",
        licence="MIT as reproduced by the source README (kits19); data licence per KiTS19",
        required=("images", "masks"),
        obtain="sarah-antillia/TensorFlow-FlexUNet-Image-Segmentation-KiTS19-Kidney-Tumor, see its PROVENANCE.md",
    ),
    Dataset(
        name="msd-hippocampus",
        description="Medical Segmentation Decathlon Task04_Hippocampus: 260 MRI volumes, anterior/posterior labels",
        used_for="train segment3d",
        licence="CC BY-SA 4.0 (Medical Segmentation Decathlon)",
        required=("imagesTr", "labelsTr"),
        downloads=(Download("https://msd-for-monai.s3-us-west-2.amazonaws.com/Task04_Hippocampus.tar",
                            "Task04_Hippocampus.tar", None, unpack=True),),
        obtain="download Task04_Hippocampus.tar from http://medicaldecathlon.com/ and extract it",
    ),
    Dataset(
        name="covid-hu",
        description="daily confirmed COVID-19 cases in Hungary, 2020-01-22..2023-03-09 (JHU CSSE)",
        used_for="train forecast",
        licence="CC BY 4.0 (JHU CSSE COVID-19 Data Repository)",
        required=("hungary_daily_cases.csv",),
        checksums={"hungary_daily_cases.csv": "86109513cec67728e3f5694526c97996f520c70a3ec2f50ca90cc7a0b09b3b6c"},
        obtain="derive from time_series_covid19_confirmed_global.csv of "
               "https://github.com/CSSEGISandData/COVID-19 (the Hungary row, differenced)",
    ),
]}

# Catalog names whose shared copy sits inside another folder of $NEURALSIGHT_DATA.
SHARED_FOLDER = {"romeo-juliet": "shakespeare", "tinyshakespeare": "shakespeare"}


def get(name: str) -> Dataset:
    if name not in CATALOG:
        raise DataError(f"unknown dataset '{name}'", f"known datasets: {', '.join(CATALOG)}")
    return CATALOG[name]


def cache_dir(name: str) -> Path:
    root = os.environ.get("NEURALSIGHT_CACHE") or Path.home() / ".cache" / "neuralsight"
    return Path(root) / name


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


def layout_ok(entry: Dataset, folder: Path) -> bool:
    for layout in (entry.required, *entry.alternatives):
        if all((folder / rel).exists() for rel in layout):
            return True
    return False


def find(name: str, data_dir: Path | str | None = None) -> Path | None:
    entry = get(name)
    for folder in candidates(name, data_dir):
        if folder.is_dir() and layout_ok(entry, folder):
            return folder
    return None


def missing_message(name: str, data_dir: Path | str | None = None, download_error: str | None = None) -> str:
    entry = get(name)
    looked = "; ".join(str(p) for p in candidates(name, data_dir))
    urls = ", ".join(d.url for d in entry.downloads) or "none (no public direct download)"
    msg = (f"dataset '{name}' not found: need {', '.join(entry.required)}; looked in: {looked}; "
           f"download: {urls}")
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
            error = str(err).splitlines()[0] if str(err) else type(err).__name__
    raise DataError(missing_message(name, data_dir, error))
