from dataclasses import dataclass, field

import pytest

from neuralsight import config as C
from neuralsight.errors import ConfigError


@dataclass
class Data:
    dataset: str = C.choice("a", ("a", "b"))
    size: int = C.bounded(28, min=8, max=512)
    sizes: list[int] = field(default_factory=lambda: [1, 2])


@dataclass
class Cfg:
    data: Data = field(default_factory=Data)
    train: C.TrainConfig = field(default_factory=C.TrainConfig)


def test_defaults_and_overrides():
    cfg = C.build(Cfg, overrides=["train.lr=0.5", "data.size=64", "data.sizes=[3, 4]", "data.dataset=b"])
    assert cfg.train.lr == 0.5 and cfg.data.size == 64 and cfg.data.sizes == [3, 4] and cfg.data.dataset == "b"


def test_int_to_float_is_accepted():
    assert C.build(Cfg, overrides=["train.lr=1"]).train.lr == 1.0


@pytest.mark.parametrize("item, words", [
    ("train.lrr=0.1", ["unknown config key 'train.lrr'", "lr"]),
    ("train.lr=abc", ["'train.lr'", "'abc'", "number"]),
    ("train.epochs=1.5", ["'train.epochs'", "integer"]),
    ("data.size=4", ["'data.size'", "4", ">= 8"]),
    ("data.size=4096", ["'data.size'", "<= 512"]),
    ("data.dataset=c", ["'data.dataset'", "'c'", "['a', 'b']"]),
    ("train.precision=fp8", ["'train.precision'", "fp8", "bf16"]),
    ("nolayer", ["section.key=value"]),
    ("train.deterministic=maybe", ["'train.deterministic'", "true or false"]),
])
def test_errors_name_key_value_and_allowed(item, words):
    with pytest.raises(ConfigError) as info:
        C.build(Cfg, overrides=[item])
    msg = str(info.value)
    for w in words:
        assert w in msg, msg
    assert "\n" not in msg


def test_toml_file_and_quick(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[train]\nepochs = 7\n\n[quick]\n"train.epochs" = 1\n[quick.data]\nsize = 16\n')
    assert C.build(Cfg, file=f).train.epochs == 7
    q = C.build(Cfg, file=f, quick=True)
    assert q.train.epochs == 1 and q.data.size == 16
    assert C.build(Cfg, file=f, quick=True, overrides=["train.epochs=3"]).train.epochs == 3


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        C.build(Cfg, file=bad)
    with pytest.raises(ConfigError, match="does not exist"):
        C.build(Cfg, file=tmp_path / "nope.toml")


def test_dump_roundtrip(tmp_path):
    cfg = C.build(Cfg, overrides=["train.lr=0.25", "data.sizes=[5]"])
    f = tmp_path / "out.toml"
    f.write_text(C.dump_toml(C.to_dict(cfg)))
    assert C.build(Cfg, file=f) == cfg
