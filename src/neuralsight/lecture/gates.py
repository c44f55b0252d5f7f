"""The LSTM's gates on a short sequence, recorded with the explicit cells of ``layers/recurrent.py``.

The lecture's example is a memory task small enough to train in a few seconds: *sample and hold*. The input
is zero but for a few pulses of random height; the target at every step is the height of the most recent
pulse. A 4-unit LSTM solves it the way the gates are meant to work: at a pulse the input gate opens and the
forget gate closes (write the new value, erase the old one), between pulses the forget gate stays open and
the input gate shut (keep). Training runs the fused ``nn.LSTM``; the trace copies its weights into
:class:`~neuralsight.layers.recurrent.UnrolledRecurrent` and records every gate step by step.
"""

from __future__ import annotations

GATES = ("forget", "input", "candidate", "output", "cell", "hidden")


def sample_and_hold(batch_size: int, length: int = 16, pulse_rate: float = 0.2, generator=None):
    """Inputs ``(B, T, 1)``: pulses of height in [0.2, 1] at random steps, zero elsewhere; targets ``(B, T)``:
    the height of the latest pulse so far (0 before the first)."""
    import torch

    hit = torch.rand(batch_size, length, generator=generator) < pulse_rate
    heights = 0.2 + 0.8 * torch.rand(batch_size, length, generator=generator)
    x = torch.where(hit, heights, torch.zeros(())).unsqueeze(-1)       # (B, T, 1)
    targets, last = [], torch.zeros(batch_size)
    for t in range(length):
        last = torch.where(hit[:, t], heights[:, t], last)
        targets.append(last)
    return x, torch.stack(targets, dim=1)                               # (B, T)


def train_sample_and_hold(hidden_size: int = 4, steps: int = 300, lr: float = 0.05, seed: int = 0,
                          length: int = 16) -> dict:
    """Train ``nn.LSTM(1, hidden_size)`` + a linear read-out on :func:`sample_and_hold` (full batch, Adam).

    Returns:
        ``{"lstm", "head", "losses": [float per step], "baseline": the loss of always predicting the mean}``.
    """
    import torch
    from torch import nn

    threads = torch.get_num_threads()
    torch.set_num_threads(1)                    # a tiny model: threads only fight each other
    try:
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        x, y = sample_and_hold(256, length, generator=generator)
        lstm, head = nn.LSTM(1, hidden_size, batch_first=True), nn.Linear(hidden_size, 1)
        opt = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=lr)
        losses = []
        for _ in range(steps):
            out, _ = lstm(x)                                               # (B, T, H)
            loss = ((head(out)[..., 0] - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    return {"lstm": lstm.eval(), "head": head.eval(), "losses": losses, "baseline": float(((y - y.mean()) ** 2).mean())}


def lstm_gate_trace(lstm, head, x) -> dict:
    """Every gate of a one-layer fused ``lstm`` over one sequence ``x`` ``(T, 1)``, via the explicit cells.

    Returns:
        NumPy arrays: ``"input_sequence"`` ``(T,)``, ``"prediction"`` ``(T,)`` (the read-out of h_t) and each
        name in :data:`GATES` as ``(T, H)``.
    """
    import torch

    from neuralsight.layers.recurrent import UnrolledRecurrent

    unrolled = UnrolledRecurrent.from_fused(lstm)
    with torch.no_grad():
        out, _, record = unrolled(x[None].float(), trace=True)            # out (1, T, H)
        prediction = head(out)[0, :, 0]                                    # (T,)
    trace = {name: record[(0, name)][0].numpy() for name in GATES}        # (T, H) each
    trace["input_sequence"] = x[:, 0].numpy()
    trace["prediction"] = prediction.numpy()
    return trace


def lecture_example(seed: int = 0, steps: int = 300) -> dict:
    """The figure's data: the trained sample-and-hold LSTM's gates on one fixed test sequence, and its losses."""
    import torch

    model = train_sample_and_hold(steps=steps, seed=seed)
    x = torch.zeros(16, 1)
    for t, height in ((2, 0.9), (7, 0.35), (12, 0.7)):                  # three pulses, the last one read out
        x[t, 0] = height
    trace = lstm_gate_trace(model["lstm"], model["head"], x)
    trace.update(losses=model["losses"], baseline=model["baseline"], steps=steps)
    return trace
