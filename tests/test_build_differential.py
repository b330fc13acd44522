"""Differential: the native builder and mergekit's run_merge write the same tensors."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import tiny
from harness.build import native, reference
from harness.checkpoint import Checkpoint
from harness.strategies import contiguous
from tests.build_helpers import ARCHS, any_plans

DEPTH = 4


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """One small saved checkpoint per architecture, with untied and tied embeddings."""
    root = tmp_path_factory.mktemp("sources")
    out = {}
    for arch in ARCHS:
        for tied in (True, False):
            spec = tiny.TinySpec(arch=arch, num_layers=DEPTH, hidden=16, intermediate=32,
                                 heads=2, kv_heads=1, tie_embeddings=tied)
            out[arch, tied] = tiny.save(spec, 0, root / f"{arch}-{tied}")
    return out


def assert_same_tensors(a, b):
    ra, rb = Checkpoint(a), Checkpoint(b)
    assert sorted(ra.names()) == sorted(rb.names())
    for name in ra.names():
        x, y = ra.read(name), rb.read(name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert torch.equal(x, y), f"{name}: max |diff| {(x - y).abs().max().item():.3g}"
    ca = json.loads((a / "config.json").read_text())
    cb = json.loads((b / "config.json").read_text())
    assert ca["num_hidden_layers"] == cb["num_hidden_layers"]
    assert ca.get("layer_types") == cb.get("layer_types")


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_native_equals_mergekit(sources, tmp_path_factory, data):
    arch = data.draw(st.sampled_from(ARCHS))
    tied = data.draw(st.booleans())
    plan = data.draw(any_plans(DEPTH))
    out = tmp_path_factory.mktemp("diff")
    native.upscale_checkpoint(sources[arch, tied], plan, out / "native", progress=False)
    reference.upscale_checkpoint(sources[arch, tied], plan, out / "mergekit", progress=False)
    assert_same_tensors(out / "native", out / "mergekit")


@pytest.mark.parametrize("arch", ARCHS)
def test_seed_layout_loads_with_new_depth_and_tied_embeddings(sources, tmp_path, arch):
    plan = contiguous(1, 3, num_layers=DEPTH, copies=2)
    for engine, build in (("native", native), ("mergekit", reference)):
        build.upscale_checkpoint(sources[arch, True], plan, tmp_path / engine, progress=False)
        model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / engine)
        assert model.config.num_hidden_layers == DEPTH + 4
        if arch == "qwen2":  # mergekit alone leaves layer_types at the old length
            assert len(model.config.layer_types) == DEPTH + 4
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert_same_tensors(tmp_path / "native", tmp_path / "mergekit")


def test_sharded_output_loads_and_matches(sources, tmp_path):
    plan = contiguous(0, DEPTH, num_layers=DEPTH, copies=1)
    src = sources["mistral", False]
    native.upscale_checkpoint(src, plan, tmp_path / "sharded", max_shard_bytes=20_000, progress=False)
    native.upscale_checkpoint(src, plan, tmp_path / "single", progress=False)
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    assert len(list((tmp_path / "sharded").glob("model-*-of-*.safetensors"))) > 1
    assert_same_tensors(tmp_path / "sharded", tmp_path / "single")
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "sharded")
    assert model.config.num_hidden_layers == 2 * DEPTH


def test_a_differing_tensor_is_caught(sources, tmp_path):
    """Guard: the comparison fails when one builder scales differently."""
    plan = contiguous(1, 3, num_layers=DEPTH, copies=1)
    from harness.plan import parse_plan

    other = parse_plan(plan.text.replace("filter: down_proj, value: 0.0", "filter: down_proj, value: 0.5"))
    native.upscale_checkpoint(sources["llama", True], plan, tmp_path / "a", progress=False)
    reference.upscale_checkpoint(sources["llama", True], other, tmp_path / "b", progress=False)
    with pytest.raises(AssertionError, match="down_proj"):
        assert_same_tensors(tmp_path / "a", tmp_path / "b")
