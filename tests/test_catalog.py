"""The dataset catalog: lookup order, the missing-data message, verification, `data list` / `data verify`."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import re
from pathlib import Path

import pytest
from conftest import shared_data
from typer.testing import CliRunner

from neuralsight.data import catalog
from neuralsight.data.catalog import Dataset, Download, Layout, Tree, verify
from neuralsight.data.catalog.entries import COVID_HU_SHA256, FASHION_FILES, FASHION_URL
from neuralsight.data.catalog.prepare import COVID_RAW, PREPARE, derive_hungary
from neuralsight.errors import DataError

HEX = set("0123456789abcdef")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALSIGHT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "250")


def _invoke(*args):
    from neuralsight.cli import app

    return CliRunner().invoke(app, list(args))


def _flat(text: str) -> str:
    return " ".join(text.split())


def make_copy(folder: Path, files=("a.txt",)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / f).write_text(f"{f} in {folder.name}")
    return folder


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """A catalog entry 'toy' whose system copy lives under tmp_path/system/toy."""
    entry = Dataset(name="toy", description="toy", used_for="tests", licence="CC0",
                    layouts=(Layout("one file", ("a.txt",)),),
                    downloads=(Download("http://example.invalid/toy.txt", "a.txt"),),
                    obtain="sudo apt-get install toy-data", system_paths=(str(tmp_path / "system" / "toy"),))
    monkeypatch.setitem(catalog.CATALOG, "toy", entry)
    return entry


# ------------------------------------------------------------------------------------------ the entries


def test_every_entry_is_complete():
    names = {"fashion-mnist", "romeo-juliet", "tinyshakespeare", "oxford-pets", "liver-ct-2d",
             "dental-teeth-2d", "kits19-kidney-2d-mini", "dental-xray", "msd-hippocampus", "covid-hu"}
    assert set(catalog.CATALOG) == names
    for entry in catalog.CATALOG.values():
        assert entry.licence and entry.obtain and entry.homepage.startswith("http") and entry.used_for
        for layout in entry.layouts:
            for accepted in layout.checksums.values():
                assert all(len(h) == 64 and set(h) <= HEX for h in accepted)
            if layout.tree is not None:
                assert len(layout.tree.patterns) == len(layout.tree.counts)
        for dl in entry.downloads:
            assert dl.url.startswith(("http://", "https://"))
            assert dl.sha256 or dl.md5, f"{entry.name}: every download carries a checksum"
            assert dl.sha256 is None or (len(dl.sha256) == 64 and set(dl.sha256) <= HEX)
            assert dl.md5 is None or (len(dl.md5) == 32 and set(dl.md5) <= HEX)
        if entry.prepare:
            assert entry.prepare in PREPARE


def test_loader_facts_live_in_the_entries():
    tasks = {"classify", "textgen", "segment", "segment3d", "forecast"}
    for name, entry in catalog.CATALOG.items():
        assert entry.task in tasks, name
        if entry.task == "segment":
            assert entry.mask_format and entry.class_names[0] == "background" and entry.headline_metric
            assert entry.split_unit, f"{name}: say what a split keeps together"
            if entry.group_pattern:
                assert re.compile(entry.group_pattern).groups >= 1
        if entry.mask_format == "palette":
            assert len(entry.palette) == len(entry.class_names)
        if entry.task in ("textgen", "forecast"):
            assert entry.main_file in entry.layouts[0].required
    assert catalog.get("fashion-mnist").class_names[9] == "Ankle boot"
    assert len(catalog.get("fashion-mnist").class_names) == 10
    assert catalog.get("msd-hippocampus").class_names == ("background", "anterior", "posterior")
    assert catalog.get("covid-hu").main_file == "hungary_daily_cases.csv"
    pets = catalog.get("oxford-pets")
    assert pets.merge_foreground and pets.headline_metric == "fg_iou"
    assert not any(e.merge_foreground for n, e in catalog.CATALOG.items() if n != "oxford-pets")
    assert catalog.names_for("textgen") == ["romeo-juliet", "tinyshakespeare"]
    assert catalog.get("fashion-mnist").apt_command == "sudo apt-get install -y dataset-fashion-mnist"
    assert catalog.get("liver-ct-2d").apt_command == ""


def test_locate_file_gives_the_main_file(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "shakespeare").mkdir(parents=True)
    (root / "shakespeare" / "tinyshakespeare.txt").write_text("First Citizen:")
    monkeypatch.setenv("NEURALSIGHT_DATA", str(root))
    assert catalog.locate_file("tinyshakespeare") == root / "shakespeare" / "tinyshakespeare.txt"
    with pytest.raises(DataError, match="'liver-ct-2d' is a folder, not one file"):
        catalog.locate_file("liver-ct-2d")


def test_text_corpus_path_reads_the_catalog(tmp_path, monkeypatch):
    from neuralsight.data.text import corpus_path

    monkeypatch.setenv("NEURALSIGHT_DATA", str(tmp_path))
    (tmp_path / "shakespeare").mkdir()
    (tmp_path / "shakespeare" / "romeo_and_juliet.txt").write_text("ROMEO.")
    assert corpus_path("romeo-juliet") == tmp_path / "shakespeare" / "romeo_and_juliet.txt"
    assert corpus_path("anything", text_file=tmp_path / "mine.txt") == tmp_path / "mine.txt"
    with pytest.raises(DataError, match="unknown text corpus 'covid-hu'.*romeo-juliet, tinyshakespeare"):
        corpus_path("covid-hu")


# ------------------------------------------------------------------------------------------ lookup order


def test_lookup_order(toy, tmp_path, monkeypatch):
    explicit = make_copy(tmp_path / "explicit")
    env_root = tmp_path / "env"
    make_copy(env_root / "toy")
    system = make_copy(tmp_path / "system" / "toy")
    cache = make_copy(tmp_path / "cache" / "toy")
    monkeypatch.setenv("NEURALSIGHT_DATA", str(env_root))
    assert catalog.candidates("toy", explicit)[:2] == [explicit, explicit / "toy"]
    assert catalog.find("toy", explicit) == explicit                      # 1. --data DIR
    assert catalog.find("toy") == env_root / "toy"                        # 2. $NEURALSIGHT_DATA/<name>
    monkeypatch.delenv("NEURALSIGHT_DATA")
    assert catalog.find("toy") == system                                  # 3. system copy
    (system / "a.txt").unlink()
    assert catalog.find("toy") == cache                                   # 4. the cache
    (cache / "a.txt").unlink()
    assert catalog.find("toy") is None
    monkeypatch.setenv("NEURALSIGHT_OFFLINE", "1")
    with pytest.raises(DataError):                                        # 5. download: offline, so none
        catalog.locate("toy")


def test_data_dir_may_hold_the_dataset_folder(toy, tmp_path):
    root = tmp_path / "root"
    make_copy(root / "toy")
    assert catalog.locate("toy", root) == root / "toy"


def test_incomplete_copy_is_skipped(toy, tmp_path, monkeypatch):
    env_root = tmp_path / "env"
    (env_root / "toy").mkdir(parents=True)                  # folder exists, file missing
    system = make_copy(tmp_path / "system" / "toy")
    monkeypatch.setenv("NEURALSIGHT_DATA", str(env_root))
    assert catalog.find("toy") == system


def test_shared_folder_alias(monkeypatch, tmp_path):
    root = tmp_path / "data"
    (root / "shakespeare").mkdir(parents=True)
    (root / "shakespeare" / "romeo_and_juliet.txt").write_text("ROMEO.")
    monkeypatch.setenv("NEURALSIGHT_DATA", str(root))
    assert catalog.find("romeo-juliet") == root / "shakespeare"


# ------------------------------------------------------------------------------------------ missing message


def test_missing_message_names_files_places_url_and_package(tmp_path, monkeypatch):
    fm = catalog.get("fashion-mnist")
    monkeypatch.setitem(catalog.CATALOG, "fashion-mnist",
                        dataclasses.replace(fm, system_paths=(str(tmp_path / "nosys"),)))
    monkeypatch.setenv("NEURALSIGHT_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("NEURALSIGHT_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        catalog.locate("fashion-mnist", tmp_path / "given")
    msg = str(err.value)
    assert "\n" not in msg
    for f in FASHION_FILES:
        assert f in msg
    for place in (tmp_path / "given", tmp_path / "env" / "fashion-mnist", tmp_path / "nosys",
                  tmp_path / "cache" / "fashion-mnist"):
        assert str(place) in msg
    assert FASHION_URL + "train-images-idx3-ubyte.gz" in msg
    assert "sudo apt-get install -y dataset-fashion-mnist" in msg
    assert "neuralsight data fetch fashion-mnist" in msg


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'nope'.*known datasets: fashion-mnist"):
        catalog.get("nope")


# ------------------------------------------------------------------------------------------ verification


def test_fixed_checksums(tmp_path, monkeypatch):
    data = b"hello"
    entry = Dataset(name="fixed", description="", used_for="", licence="", homepage="http://x",
                    layouts=(Layout("f", ("a.bin",), checksums={"a.bin": ("0" * 64, hashlib.sha256(data).hexdigest()),
                                                               "opt.bin": ("1" * 64,)}),))
    monkeypatch.setitem(catalog.CATALOG, "fixed", entry)
    (tmp_path / "a.bin").write_bytes(data)
    assert verify.check(entry, tmp_path).verified == "yes"       # the entry itself, not its name
    ok = catalog.check("fixed", tmp_path)
    assert ok.ok and ok.verified == "yes" and ok.size == 5       # second accepted value; optional file absent
    # a quick check trusts the stamp only while size and mtime are unchanged
    (tmp_path / "a.bin").write_bytes(b"HELLO")
    os.utime(tmp_path / "a.bin", ns=(1, 1))
    assert catalog.check("fixed", tmp_path, full=False).verified == "no"
    (tmp_path / "a.bin").write_bytes(data)
    (tmp_path / "opt.bin").write_bytes(b"x")                      # optional file present: checked
    bad = catalog.check("fixed", tmp_path)
    assert bad.verified == "no" and bad.problems[0].startswith("opt.bin: sha256")
    (tmp_path / "opt.bin").unlink()
    (tmp_path / "a.bin").write_bytes(b"hellO")
    assert catalog.check("fixed", tmp_path).problems[0].startswith("a.bin: sha256")


def test_gzip_content_checksum_accepts_recompressed_copy(tmp_path, monkeypatch):
    raw = b"idx data " * 100
    original = gzip.compress(raw, mtime=0)
    entry = Dataset(name="gz", description="", used_for="", licence="", homepage="http://x",
                    layouts=(Layout("gz", ("d.gz",), checksums={"d.gz": (hashlib.sha256(original).hexdigest(),)},
                                    content_sha256={"d.gz": hashlib.sha256(raw).hexdigest()}),))
    monkeypatch.setitem(catalog.CATALOG, "gz", entry)
    (tmp_path / "d.gz").write_bytes(gzip.compress(raw, compresslevel=1, mtime=12345))
    res = catalog.check("gz", tmp_path)
    assert res.ok and any("identical content" in n for n in res.notes)
    (tmp_path / "d.gz").write_bytes(gzip.compress(raw + b"!", mtime=0))
    assert catalog.check("gz", tmp_path).verified == "no"
    (tmp_path / "d.gz").write_bytes(b"not gzip at all")
    assert "not a readable gzip" in catalog.check("gz", tmp_path).problems[0]


def _tree_entry(folder: Path, monkeypatch, digest: str | None = "compute") -> Dataset:
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(3):
        (folder / "images" / f"{i}.png").write_bytes(b"img%d" % i)
        (folder / "masks" / f"{i}.png").write_bytes(b"mask%d" % i)
    (folder / "images" / "._0.png").write_bytes(b"macOS junk")          # never counted
    if digest == "compute":
        files = [r for g in verify.tree_files(folder, ("images/*.png", "masks/*.png")) for r in g]
        digest = verify.tree_digest(verify.tree_lines(folder, files))
    entry = Dataset(name="tree", description="", used_for="", licence="", homepage="http://x",
                    layouts=(Layout("folders", ("images", "masks"),
                                    tree=Tree(("images/*.png", "masks/*.png"), (3, 3), digest)),))
    monkeypatch.setitem(catalog.CATALOG, "tree", entry)
    return entry


def test_tree_digest_matches_sha256sum_format(tmp_path, monkeypatch):
    _tree_entry(tmp_path / "d", monkeypatch)
    lines = "".join(f"{hashlib.sha256((tmp_path / 'd' / r).read_bytes()).hexdigest()}  {r}\n"
                    for r in sorted(["images/0.png", "images/1.png", "images/2.png",
                                     "masks/0.png", "masks/1.png", "masks/2.png"]))
    assert catalog.CATALOG["tree"].layouts[0].tree.sha256 == hashlib.sha256(lines.encode()).hexdigest()


def test_tree_verification_counts_digest_stamp_and_sums(tmp_path, monkeypatch):
    folder = tmp_path / "d"
    _tree_entry(folder, monkeypatch)
    first = catalog.check("tree", folder, full=False)
    assert first.ok and first.verified == "yes" and first.size == 6 * 4 + 3
    second = catalog.check("tree", folder, full=False)
    assert any("matched earlier" in n for n in second.notes)        # the stamp skips re-hashing
    # same size, new content, new mtime: the stamp no longer applies and the digest catches it
    (folder / "masks" / "1.png").write_bytes(b"MASK1")
    os.utime(folder / "masks" / "1.png", ns=(1, 1))
    bad = catalog.check("tree", folder, full=False)
    assert bad.verified == "no" and "tree digest mismatch" in bad.problems[0]
    # with a SHA256SUMS beside it, the problem names the file
    sums = "".join(f"{hashlib.sha256(b'mask%d' % i).hexdigest()}  ./d/masks/{i}.png\n" for i in range(3))
    (tmp_path / "SHA256SUMS").write_text(sums)
    assert "masks/1.png" in catalog.check("tree", folder).problems[0]
    (folder / "masks" / "2.png").unlink()
    assert catalog.check("tree", folder).problems == ["masks/*.png: 2 files, expected 3"]


def test_tree_without_digest_is_count_only(tmp_path, monkeypatch):
    _tree_entry(tmp_path / "d", monkeypatch, digest=None)
    res = catalog.check("tree", tmp_path / "d")
    assert res.ok and res.verified == "count"


def test_layout_choice_and_missing_layout(tmp_path):
    pets = tmp_path / "pets"
    (pets / "images").mkdir(parents=True)
    res = catalog.check("oxford-pets", pets)
    assert not res.ok and res.problems[0].startswith("missing annotations/trimaps, annotations/trainval.txt")
    (pets / "annotations" / "trimaps").mkdir(parents=True)
    (pets / "annotations" / "trainval.txt").write_text("")
    (pets / "annotations" / "test.txt").write_text("")
    (pets / "images" / "x.jpg").write_bytes(b"")
    res = catalog.check("oxford-pets", pets)
    assert res.layout == "official release" and res.problems == ["images/*.jpg: 1 files, expected 7390"]


def test_derive_hungary_reproduces_shared_file(tmp_path):
    folder = shared_data("covid-hu")
    out = derive_hungary(folder / COVID_RAW, tmp_path / "hu.csv")
    assert verify.file_digest(out) == COVID_HU_SHA256
    # The JHU original header (m/d/yy dates, other column names) gives the same series.
    text = (folder / COVID_RAW).read_text().splitlines()
    header = text[0].split(",")
    header[:4] = ["Province/State", "Country/Region", "Lat", "Long"]
    header[4:] = [f"{d.split('/')[0]}/{d.split('/')[1]}/{d.split('/')[2][2:]}" for d in header[4:]]
    (tmp_path / "jhu.csv").write_text("\n".join([",".join(header)] + text[1:]) + "\n")
    derive_hungary(tmp_path / "jhu.csv", tmp_path / "hu2.csv")
    assert (tmp_path / "hu2.csv").read_bytes() == out.read_bytes()


def test_derive_hungary_without_hungary(tmp_path):
    (tmp_path / "raw.csv").write_text("Province,Country,Lat,Lon,1/22/2020\n,Austria,0,0,1\n")
    with pytest.raises(DataError, match="has no Hungary row"):
        derive_hungary(tmp_path / "raw.csv", tmp_path / "out.csv")


def test_system_fashion_mnist_verifies():
    folder = Path("/usr/share/datasets/fashion-mnist")
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    res = catalog.check("fashion-mnist", folder)
    assert res.ok and res.verified == "yes", res.problems


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in catalog.CATALOG if n != "fashion-mnist"])
def test_shared_copies_verify(name):
    folder = shared_data(name)
    res = catalog.check(name, folder)
    assert res.ok and res.verified == "yes", res.problems


# ------------------------------------------------------------------------------------------ CLI


def test_cli_list_with_nothing_says_where_to_get_each(monkeypatch, tmp_path):
    monkeypatch.delenv("NEURALSIGHT_DATA", raising=False)
    fm = catalog.get("fashion-mnist")
    monkeypatch.setitem(catalog.CATALOG, "fashion-mnist", dataclasses.replace(fm, system_paths=()))
    result = _invoke("data", "list")
    assert result.exit_code == 0, result.output
    out = _flat(result.output)
    assert out.count("missing") >= 2 * len(catalog.CATALOG)      # the table cell and the hint line
    for entry in catalog.CATALOG.values():
        assert _flat(entry.obtain) in out
        for dl in entry.downloads:
            assert dl.url in out
    assert "sudo apt-get install -y dataset-fashion-mnist" in out


def test_cli_list_found_and_verified(toy, tmp_path):
    make_copy(tmp_path / "system" / "toy")
    result = _invoke("data", "list")
    assert result.exit_code == 0
    row = next(line for line in result.output.splitlines() if "toy" in line and "tests" in line)
    assert str(tmp_path / "system" / "toy") in row and "count only" in row


@pytest.mark.slow
def test_cli_list_shared_all_verified(monkeypatch):
    shared_data("oxford-pets")
    monkeypatch.setenv("COLUMNS", "80")  # piped, or a narrow terminal: nothing may be cut (issue 10 item 8)
    result = _invoke("data", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["name", "where", "verified", "size", "used for"]
    rows = {re.split(r"\s{2,}", line)[0]: re.split(r"\s{2,}", line) for line in lines[1:len(catalog.CATALOG) + 1]}
    assert set(rows) == set(catalog.CATALOG)  # every name whole, kits19-kidney-2d-mini included
    for name, row in rows.items():
        if name == "fashion-mnist" and not catalog.find(name):
            continue
        assert row[1] == str(catalog.find(name)) and row[2] == "yes", row


def test_cli_verify_ok_and_failures(tmp_path, monkeypatch):
    folder = tmp_path / "d"
    _tree_entry(folder, monkeypatch)
    ok = _invoke("data", "verify", "tree", "--data", str(folder))
    assert ok.exit_code == 0 and "ok tree" in _flat(ok.output) and "checksums match" in ok.output
    (folder / "images" / "2.png").write_bytes(b"changed")
    bad = _invoke("data", "verify", "tree", "--data", str(folder))
    assert bad.exit_code == 2
    assert "tree digest mismatch" in bad.output and "failed verification" in _flat(bad.output)
    assert "Traceback" not in bad.output


def test_cli_verify_missing_and_unknown(monkeypatch, tmp_path):
    monkeypatch.delenv("NEURALSIGHT_DATA", raising=False)
    missing = _invoke("data", "verify", "covid-hu", "--data", str(tmp_path))
    assert missing.exit_code == 2
    out = _flat(missing.output)
    assert "dataset 'covid-hu' not found: need hungary_daily_cases.csv" in out and str(tmp_path) in out
    unknown = _invoke("data", "verify", "nope")
    assert unknown.exit_code == 2 and "unknown dataset 'nope'" in unknown.output


def test_cli_list_shows_problems(tmp_path, monkeypatch):
    folder = tmp_path / "tree"
    _tree_entry(folder, monkeypatch)
    (folder / "masks" / "0.png").unlink()
    monkeypatch.setenv("NEURALSIGHT_DATA", str(tmp_path))
    result = _invoke("data", "list")
    assert result.exit_code == 0
    row = next(re.split(r"\s{2,}", line) for line in result.stdout.splitlines() if line.startswith("tree "))
    assert row[2] == "no"
    assert "masks/*.png: 2 files, expected 3" in _flat(result.output)
