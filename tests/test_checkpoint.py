"""Checkpoints: round trip, atomic writes, torn saves, and refusal of anything that could run code."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from neuralsight import io as nsio
from neuralsight.engine import checkpoint as ckpt
from neuralsight.errors import CheckpointError

SPEC = {"name": "toy", "kwargs": {"hidden": 4}}


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def _save(tmp_path, step=5):
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(2, 3)).sum().backward()
    opt.step()
    ckpt.save(tmp_path, "last", model, SPEC, {"step": step, "best_metric": 0.5}, opt)
    return model, opt


def test_round_trip_restores_weights_optimizer_and_rng(tmp_path):
    import random

    model, opt = _save(tmp_path)
    expected_draw = (torch.rand(3), random.random())
    ckpt.set_rng_state(*_state_rng(tmp_path))  # RNG as saved (before the draws above)
    assert torch.equal(torch.rand(3), expected_draw[0]) and random.random() == expected_draw[1]

    fresh = _model()
    torch.nn.init.zeros_(fresh[0].weight)
    ckpt.load_weights(fresh, tmp_path, "last")
    for a, b in zip(fresh.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    blob = ckpt.load_training_state(tmp_path, "last")
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    opt2.load_state_dict(blob["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    state = ckpt.read_state(tmp_path, "last")
    assert state["model"] == SPEC and state["step"] == 5 and state["best_metric"] == 0.5
    ckpt.check_consistent(tmp_path, "last", state, blob)


def _state_rng(tmp_path):
    return ckpt.read_state(tmp_path, "last")["rng"], ckpt.load_training_state(tmp_path, "last")["rng"]


class _Payload:
    """Unpickling this runs os.system: the classic malicious checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_state_is_refused_and_never_runs(tmp_path):
    _save(tmp_path)
    marker = tmp_path / "PWNED"
    # Both forms an attacker could drop in: torch's zip format and a bare pickle.
    for write in (lambda p: torch.save({"optimizer": _Payload(marker)}, p),
                  lambda p: p.write_bytes(pickle.dumps({"optimizer": _Payload(marker)}))):
        write(tmp_path / "last.state.pt")
        with pytest.raises(CheckpointError, match="refusing to load") as info:
            ckpt.load_training_state(tmp_path, "last")
        assert "\n" not in str(info.value)
        assert not marker.exists(), "the payload ran"
    # Sanity check of the test itself: a plain unpickle would have run it.
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


def test_safetensors_weights_are_never_unpickled(tmp_path):
    model, _ = _save(tmp_path)
    marker = tmp_path / "PWNED"
    (tmp_path / "last.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError, match="could not be read"):
        ckpt.load_weights(model, tmp_path, "last")
    assert not marker.exists()


def test_weights_of_another_model_are_refused(tmp_path):
    _save(tmp_path)
    other = torch.nn.Linear(3, 2)
    with pytest.raises(CheckpointError, match="do not fit the model"):
        ckpt.load_weights(other, tmp_path, "last")


def test_missing_and_corrupt_state(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint 'last'"):
        ckpt.read_state(tmp_path, "last")
    _save(tmp_path)
    (tmp_path / "last.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        ckpt.read_state(tmp_path, "last")
    (tmp_path / "last.state.pt").unlink()
    with pytest.raises(CheckpointError, match="cannot resume exactly"):
        ckpt.load_training_state(tmp_path, "last")


def test_torn_checkpoint_is_detected(tmp_path):
    _save(tmp_path, step=5)
    state = ckpt.read_state(tmp_path, "last")
    model = _model()
    ckpt.save(tmp_path, "last", model, SPEC, {"step": 6})  # crash after new weights, before the JSON
    (tmp_path / "last.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="torn"):
        ckpt.check_consistent(tmp_path, "last", state, ckpt.load_training_state(tmp_path, "last"))


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.json"
    nsio.atomic_write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        nsio.atomic_write_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]  # no temporary left behind

    with pytest.raises(RuntimeError), nsio.atomic_path(tmp_path / "g.png") as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_tied_and_storage_sharing_weights_round_trip(tmp_path):
    """cuDNN RNNs keep weights as views of one flat buffer and CharRNN ties embedding and decoder:
    safetensors refuses shared storage, so save copies every entry out and load restores both."""
    import torch
    from torch import nn

    from neuralsight.engine import checkpoint as ckpt

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            flat = torch.randn(30)
            self.a = nn.Parameter(flat[:12].view(3, 4))  # views into one storage, like cuDNN's flat buffer
            self.b = nn.Parameter(flat[12:].view(3, 6))
            self.embed = nn.Embedding(5, 4)
            self.head = nn.Linear(4, 5, bias=False)
            self.head.weight = self.embed.weight  # tied

    src, dst = Shared(), Shared()
    ckpt.save(tmp_path, "best", src, {"name": "shared", "kwargs": {}}, {"step": 3})
    ckpt.load_weights(dst, tmp_path, "best")
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k
    assert dst.head.weight is dst.embed.weight
