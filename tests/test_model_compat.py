"""Checkpoints written by 0.1 rebuild, load strictly and compute what 0.1 computed.

The reference numbers in fixtures/model_outputs-v0.1.npz were written by fixtures/make_model_outputs.py with
the 0.1 models (before one ConvBlock served the CNN, U-Net and V-Net, and before CharRNN owned generation
and gate traces); each test rebuilds a fixture run's best checkpoint through ``engine.checkpoint`` and
compares with them.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

FIXTURES = Path(__file__).resolve().parent / "fixtures"
_spec = importlib.util.spec_from_file_location("make_model_outputs", FIXTURES / "make_model_outputs.py")
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)


@pytest.fixture(scope="module")
def expected():
    with np.load(reference.OUT) as data:
        return {key: data[key] for key in data.files}


def _load(key: str):
    """read_state + create_model + load_weights, as every saved-run loader does."""
    from neuralsight.engine import checkpoint as ckpt
    from neuralsight.models import create_model

    directory = FIXTURES / "runs-v0.1" / reference.CHECKPOINTS[key] / "checkpoints"
    spec = ckpt.read_state(directory, "best")["model"]
    model = create_model(spec["name"], **spec["kwargs"])
    ckpt.load_weights(model, directory, "best")      # strict: same keys, same shapes
    return model.eval(), spec, directory


@pytest.mark.parametrize("key", sorted(reference.CHECKPOINTS))
def test_fixture_checkpoint_loads_strictly_and_computes_the_same(key, expected):
    model, spec, directory = _load(key)
    with safe_open(str(directory / "best.safetensors"), framework="pt") as fh:
        assert sorted(model.state_dict()) == sorted(fh.keys())   # and new checkpoints keep the 0.1 names
    with torch.no_grad():
        out = model(reference.inputs(key, spec))
    if key == "textgen":
        logits, (h, c) = out
        for name, value in (("logits", logits), ("h", h), ("c", c)):
            np.testing.assert_allclose(value.numpy(), expected[f"textgen/{name}"], rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(out.numpy(), expected[f"{key}/output"], rtol=1e-5, atol=1e-6)


def test_generation_gives_the_0_1_text(expected):
    from neuralsight.data.text import Vocab
    from neuralsight.tasks import textgen

    model, spec, _ = _load("textgen")
    vocab = Vocab.from_json(spec["vocab"])
    texts = json.loads(str(expected["textgen/generate"]))
    for args, text in zip(reference.GENERATE, texts, strict=True):
        assert "".join(textgen.continue_text(model, vocab, *args)) == text, args
        seed, length, temperature, top_k, rng_seed = args
        ids = model.generate(vocab.encode(seed), length, temperature, top_k,
                             torch.Generator().manual_seed(rng_seed))
        assert vocab.decode(list(ids)) == text, args
    # What `neuralsight generate RUN --seed "ROMEO:" --length 60 --rng-seed 1` printed with 0.1.
    printed = (FIXTURES / "runs-v0.1" / "expected" / "generate_textgen.txt").read_text(encoding="utf-8")
    assert printed == "ROMEO:" + texts[0] + "\n"


def test_gate_traces_are_the_0_1_traces(expected):
    from neuralsight.data.text import Vocab
    from neuralsight.viz.gates import record_traces

    model, spec, _ = _load("textgen")
    traces = record_traces(model, Vocab.from_json(spec["vocab"]), reference.PASSAGE)
    names = {key.rpartition("/")[2] for key in expected if key.startswith("textgen/trace/")}
    assert traces.pop("kind") == "lstm" and set(traces) == names
    for name, value in traces.items():
        np.testing.assert_allclose(value, expected[f"textgen/trace/{name}"], rtol=1e-5, atol=1e-6)


def test_feature_maps_and_attributions_are_the_0_1_ones(expected):
    from neuralsight.viz.explain import attributions, feature_maps

    model, spec, _ = _load("classify")
    x = reference.inputs("classify", spec)
    maps = feature_maps(model, x[:1])
    assert len(maps) == 2
    for s, fm in enumerate(maps):
        np.testing.assert_allclose(fm.numpy(), expected[f"classify/features/{s}"], rtol=1e-5, atol=1e-6)
    target = model.predict_proba(x).argmax(-1)
    for method in ("saliency", "gradcam"):
        np.testing.assert_allclose(attributions(model, x, target, method).numpy(), expected[f"classify/{method}"],
                                   rtol=1e-4, atol=1e-6)
