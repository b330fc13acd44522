"""Functional probes on a hand-made tiny upscale: loss, block influence, ablations, KL."""

from __future__ import annotations

import pytest
import torch

from harness import tiny
from harness.errors import UplabError
from harness.measure.probes import (
    ablation_loss, block_influence, decoder_layers, domain_loss, kl_to_reference, reset_layers,
    skip_layers,
)
from tests.test_deltas import DUPS, ORDER, perturb, random_state, upscale_state

TOL = 1e-6  # fp32 CPU, nats/token: the same computation, up to summation order


def model_from(sd: dict, num_layers: int):
    model = tiny.build(tiny.preset("tiny8", num_layers=num_layers, tie_embeddings=False), 0)
    model.load_state_dict(sd)
    return model.eval()


@pytest.fixture(scope="module")
def upscale():
    """8 layers: source layers 0-3, zeroed copies of 2-3 (outputs 4, 5), then 4-5."""
    return model_from(upscale_state(random_state(6), ORDER, DUPS), 8)


@pytest.fixture(scope="module")
def tuned(upscale):
    return model_from(perturb(upscale.state_dict(), 0.05), 8)


@pytest.fixture(scope="module")
def batches():
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, 256, (2, 12), generator=g) for _ in range(2)]


def test_the_hand_made_upscale_is_the_base_function(upscale, batches):
    base = model_from(random_state(6), 6)
    assert domain_loss(upscale, batches) == pytest.approx(domain_loss(base, batches), abs=1e-5)


def test_skipping_a_zeroed_duplicate_changes_nothing(upscale, batches):
    loss = domain_loss(upscale, batches)
    assert ablation_loss(upscale, batches, [4], mode="skip") == pytest.approx(loss, abs=TOL)
    assert ablation_loss(upscale, batches, [4, 5], mode="skip") == pytest.approx(loss, abs=TOL)
    # and skipping a real layer does change it (the probe is not a no-op)
    assert abs(ablation_loss(upscale, batches, [2], mode="skip") - loss) > 1e-3


def test_skip_is_undone_even_on_error(upscale, batches):
    loss = domain_loss(upscale, batches)
    with pytest.raises(RuntimeError):
        with skip_layers(upscale, [0, 1, 2]):
            raise RuntimeError("boom")
    assert domain_loss(upscale, batches) == pytest.approx(loss, abs=TOL)
    assert all(not layer._forward_hooks for layer in decoder_layers(upscale))


def test_reset_loads_the_reference_and_restores(upscale, tuned, batches):
    before = {k: v.clone() for k, v in tuned.state_dict().items()}
    reset_all = ablation_loss(tuned, batches, range(8), mode="reset", reference=upscale.state_dict())
    # every layer reset: only embeddings, final norm and lm_head still differ from the upscale
    hybrid = model_from({**upscale.state_dict(), **{k: v for k, v in tuned.state_dict().items()
                                                   if not k.startswith("model.layers.")}}, 8)
    assert reset_all == pytest.approx(domain_loss(hybrid, batches), abs=TOL)
    assert all(torch.equal(before[k], v) for k, v in tuned.state_dict().items())
    one = ablation_loss(tuned, batches, [3], mode="reset", reference=upscale)
    assert one != pytest.approx(domain_loss(tuned, batches), abs=1e-4)
    with pytest.raises(RuntimeError):
        with reset_layers(tuned, [1, 5], upscale):
            assert torch.equal(decoder_layers(tuned)[5].mlp.down_proj.weight,
                               decoder_layers(upscale)[5].mlp.down_proj.weight)
            raise RuntimeError("boom")
    assert all(torch.equal(before[k], v) for k, v in tuned.state_dict().items())


def test_kl_to_itself_is_zero_and_to_another_model_positive(upscale, tuned, batches):
    assert kl_to_reference(upscale, upscale, batches) == pytest.approx(0.0, abs=1e-7)
    assert kl_to_reference(tuned, upscale, batches) > 1e-4


def test_block_influence(upscale, batches):
    bi = block_influence(upscale, batches)
    assert len(bi) == 8 and all(0.0 <= v <= 2.0 for v in bi)
    assert bi[4] == pytest.approx(0.0, abs=1e-6) and bi[5] == pytest.approx(0.0, abs=1e-6)
    assert min(bi[:4] + bi[6:]) > 1e-4
    # agrees with transformers' own hidden states where those are raw (all but the last layer)
    with torch.no_grad():
        out = upscale(input_ids=batches[0], output_hidden_states=True)
    hs = out.hidden_states
    one = block_influence(upscale, batches[:1])
    for i in range(7):
        want = float((1 - torch.cosine_similarity(hs[i], hs[i + 1], dim=-1)).mean())
        assert one[i] == pytest.approx(want, abs=1e-5), i


def test_padding_is_not_scored(upscale):
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 256, (1, 10), generator=g)
    padded = torch.cat([ids, torch.full((1, 4), tiny.PAD_ID)], dim=1)
    mask = torch.cat([torch.ones(1, 10), torch.zeros(1, 4)], dim=1).long()
    plain = domain_loss(upscale, [ids])
    assert domain_loss(upscale, [(padded, mask)]) == pytest.approx(plain, abs=1e-5)
    assert domain_loss(upscale, [{"input_ids": padded, "attention_mask": mask}]) == \
        pytest.approx(plain, abs=1e-5)
    assert domain_loss(upscale, [padded]) != pytest.approx(plain, abs=1e-3)
    assert block_influence(upscale, [(padded, mask)]) == pytest.approx(block_influence(upscale, [ids]),
                                                                        abs=1e-5)


def test_probes_restore_train_mode_and_need_no_grad(upscale, batches):
    upscale.train()
    try:
        domain_loss(upscale, batches)
        assert upscale.training
    finally:
        upscale.eval()


def test_bad_ablation_requests(upscale, batches):
    with pytest.raises(UplabError, match="layer 8 does not exist"):
        ablation_loss(upscale, batches, [8])
    with pytest.raises(UplabError, match="needs the pre-fine-tune reference"):
        ablation_loss(upscale, batches, [1], mode="reset")
    with pytest.raises(UplabError, match="no tokens"):
        domain_loss(upscale, [])
