"""The LSTM layer's hand-written backward against autograd through the same written-out cell,
and the acting tape's reuse by the training forward."""

from __future__ import annotations

import pytest
import torch

from mesalab.archs.recurrence import (
    GRULayer,
    LSTMLayer,
    Tape,
    gru_cell,
    gru_layer,
    lstm_cell,
    lstm_layer,
    project,
)
from tests.conftest import DEVICES

P, B, T, D, H = 2, 3, 5, 4, 3


def _tensors(shapes, grad, seed, dtype, device):
    """Random tensors of ``shapes`` ((scale, shape) pairs) on ``device``, requiring grad if
    ``grad``."""
    g = torch.Generator().manual_seed(seed)
    return [
        (scale * torch.randn(*shape, generator=g, dtype=dtype)).to(device).requires_grad_(grad)
        for scale, shape in shapes
    ]


def _inputs(grad=True, seed=0, dtype=torch.float64, p=P, b=B, t=T, d=D, h=H, device="cpu"):
    """x, w_ih, bias, w_hh, h0, c0 of an LSTM layer."""
    shapes = [(1.0, (p, b, t, d)), (0.5, (p, d, 4 * h)), (0.5, (p, 4 * h))]
    shapes += [(0.5, (p, h, 4 * h)), (1.0, (p, b, h)), (1.0, (p, b, h))]
    return _tensors(shapes, grad, seed, dtype, device)


def _autograd_reference(x, w_ih, bias, w_hh, h, c):
    outs = []
    for x_t in project(x, w_ih, bias).unbind(dim=2):
        h, c, _, _ = lstm_cell(torch.baddbmm(x_t, h, w_hh), c)
        outs.append(h)
    return torch.stack(outs, dim=2), c


def test_the_lstm_backward_passes_gradcheck():
    args = _inputs()
    assert torch.autograd.gradcheck(lambda *a: LSTMLayer.apply(*a, None), args)


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("which", ["hidden states", "last cell state", "both"])
def test_the_lstm_gradients_equal_autograds_through_the_same_cell(which, device):
    args = _inputs(device=device)
    ref = [a.detach().clone().requires_grad_() for a in args]
    g = torch.Generator().manual_seed(1)
    w_out = torch.randn(P, B, T, H, generator=g, dtype=torch.float64).to(device)
    w_c = torch.randn(P, B, H, generator=g, dtype=torch.float64).to(device)

    def loss(out, c):
        terms = {"hidden states": (out * w_out).sum(), "last cell state": (c * w_c).sum()}
        return terms[which] if which in terms else sum(terms.values())

    out, c = LSTMLayer.apply(*args, None)
    loss(out, c).backward()
    ref_out, ref_c = _autograd_reference(*ref)
    loss(ref_out, ref_c).backward()
    assert torch.equal(out, ref_out) and torch.equal(c, ref_c)  # the same forward kernels
    for a, r in zip(args, ref, strict=True):
        torch.testing.assert_close(a.grad, r.grad, rtol=1e-10, atol=1e-12)


def _weights(args):
    x, w_ih, bias, w_hh, h0, c0 = args
    return x, {"w_ih": w_ih, "b": bias, "w_hh": w_hh}, (h0, c0)


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
def test_acting_step_by_step_fills_a_tape_the_training_forward_reuses_bit_for_bit(device):
    shape = {"p": 3, "b": 32, "t": 7, "d": 5, "h": 48}
    x, w, memory = _weights(_inputs(grad=False, dtype=torch.float32, device=device, **shape))
    tape = Tape()
    acted, m = [], memory
    with torch.no_grad():  # acting: one step per call, as a rollout
        for k in range(x.shape[2]):
            o, m = lstm_layer(x[:, :, k : k + 1], w, m, tape)
            acted.append(o)
    assert len(tape) == x.shape[2] and tape.fits(x)
    w["w_hh"].requires_grad_()
    recomputed, (_, c_re) = lstm_layer(x, w, memory)  # training forward without the tape
    replayed, (_, c_tape) = lstm_layer(x, w, memory, tape)
    assert recomputed.grad_fn is not None and replayed.grad_fn is not None
    assert torch.equal(recomputed.detach(), torch.cat(acted, dim=2))  # on-policy, bit for bit
    assert torch.equal(replayed.detach(), recomputed.detach())
    assert torch.equal(c_tape.detach(), c_re.detach()) and torch.equal(c_re.detach(), m[1])
    (grad_re,) = torch.autograd.grad(recomputed.sum(), w["w_hh"])
    (grad_tape,) = torch.autograd.grad(replayed.sum(), w["w_hh"])
    assert torch.equal(grad_re, grad_tape)


def test_a_tape_of_other_inputs_is_not_used():
    x, w, memory = _weights(_inputs(grad=False))
    tape = Tape()
    with torch.no_grad():
        lstm_layer(x[:, :, :2], w, memory, tape)  # two steps only
    assert not tape.fits(x)
    w["w_hh"].requires_grad_()
    out, _ = lstm_layer(x, w, memory, tape)
    assert out.shape[2] == x.shape[2]
    torch.testing.assert_close(out, _autograd_reference(x, *w.values(), *memory)[0])


def _gru_inputs(grad=True, seed=0, dtype=torch.float64, p=P, b=B, t=T, d=D, h=H, device="cpu"):
    """x, w_ih, b_ih, w_hh, b_hh, h0 of a GRU layer."""
    shapes = [(1.0, (p, b, t, d)), (0.5, (p, d, 3 * h)), (0.5, (p, 3 * h))]
    shapes += [(0.5, (p, h, 3 * h)), (0.5, (p, 3 * h)), (1.0, (p, b, h))]
    return _tensors(shapes, grad, seed, dtype, device)


def _gru_reference(x, w_ih, b_ih, w_hh, b_hh, h):
    outs = []
    for x_t in project(x, w_ih, b_ih).unbind(dim=2):
        h = gru_cell(x_t, torch.baddbmm(b_hh[:, None, :], h, w_hh), h)[0]
        outs.append(h)
    return torch.stack(outs, dim=2)


def test_the_gru_backward_passes_gradcheck():
    assert torch.autograd.gradcheck(lambda *a: GRULayer.apply(*a, None), _gru_inputs())


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
def test_the_gru_gradients_equal_autograds_through_the_same_cell(device):
    args = _gru_inputs(device=device)
    ref = [a.detach().clone().requires_grad_() for a in args]
    g = torch.Generator().manual_seed(1)
    w_out = torch.randn(P, B, T, H, generator=g, dtype=torch.float64).to(device)
    out = GRULayer.apply(*args, None)
    (out * w_out).sum().backward()
    ref_out = _gru_reference(*ref)
    (ref_out * w_out).sum().backward()
    assert torch.equal(out, ref_out)
    for a, r in zip(args, ref, strict=True):
        torch.testing.assert_close(a.grad, r.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
def test_the_gru_tape_is_reused_bit_for_bit(device):
    shape = {"p": 3, "b": 32, "t": 7, "d": 5, "h": 56}
    x, w_ih, b_ih, w_hh, b_hh, h0 = _gru_inputs(
        grad=False, dtype=torch.float32, device=device, **shape
    )
    w = {"w_ih": w_ih, "b_ih": b_ih, "w_hh": w_hh, "b_hh": b_hh}
    tape, acted, h = Tape(), [], h0
    with torch.no_grad():
        for k in range(x.shape[2]):
            o, h = gru_layer(x[:, :, k : k + 1], w, h, tape)
            acted.append(o)
    w_hh.requires_grad_()
    recomputed, _ = gru_layer(x, w, h0)
    replayed, h_last = gru_layer(x, w, h0, tape)
    assert torch.equal(recomputed.detach(), torch.cat(acted, dim=2))
    assert torch.equal(replayed.detach(), recomputed.detach()) and torch.equal(h_last, h)
    (grad_re,) = torch.autograd.grad(recomputed.sum(), w_hh)
    (grad_tape,) = torch.autograd.grad(replayed.sum(), w_hh)
    assert torch.equal(grad_re, grad_tape)


@pytest.mark.parametrize("layer", ["lstm", "gru"])
def test_a_trained_tape_is_freed_with_its_graph(layer):
    """No reference cycle through the Function's node keeps an update's tensors alive until
    Python's cycle collector happens to run (one did: the LSTM returned its last cell state,
    which its node also held; a population of 10 x 128 rows grew by 30 MB an update)."""
    import weakref

    if layer == "lstm":
        x, w, memory = _weights(_inputs(grad=False, dtype=torch.float32, p=2, b=4, t=5))
        run = lstm_layer
    else:
        x, w_ih, b_ih, w_hh, b_hh, memory = _gru_inputs(grad=False, dtype=torch.float32, p=2, b=4)
        w = {"w_ih": w_ih, "b_ih": b_ih, "w_hh": w_hh, "b_hh": b_hh}
        run = gru_layer
    tape, m = Tape(), memory
    with torch.no_grad():
        for k in range(x.shape[2]):
            _, m = run(x[:, :, k : k + 1], w, m, tape)
    w["w_hh"].requires_grad_()
    out, last = run(x, w, memory, tape)
    kept = [weakref.ref(v) for steps in tape.steps for v in steps]
    (out.sum() + sum(v.sum() for v in (last if isinstance(last, tuple) else (last,)))).backward()
    del out, last, m, tape  # freed by reference counting alone: no gc.collect()
    assert all(ref() is None for ref in kept)
