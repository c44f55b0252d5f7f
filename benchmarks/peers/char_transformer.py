"""The textgen benchmark's peer: a character-level GPT in the shape of nanoGPT's "baby GPT", trained as nanoGPT does.

The model is nanoGPT's ``model.py`` (Karpathy, MIT licence) written down again at its small size: token and position
embeddings, pre-LayerNorm blocks of causal self-attention (``F.scaled_dot_product_attention``) and a 4x GELU MLP,
no biases, the head tied to the token embedding, weights N(0, 0.02) with the residual projections scaled by
1 / sqrt(2 * n_layer). The loop is ``train.py``'s: random windows of ``block_size`` characters (``get_batch``),
AdamW (weight decay on matrices only, betas 0.9 / 0.99), linear warmup then cosine decay to ``min_lr``, gradient
clipping at 1.0, fp32 on a CPU and bf16 autocast on a GPU that has it. The one change is the clock: the cosine
spans the wall-clock budget (the share of it used, from :func:`common.timed_loop`) instead of ``lr_decay_iters``,
the budget-aware rule our engine follows under ``--max-time``.

Shapes: :data:`CPU` is the configuration nanoGPT's README gives for a CPU ("a baby GPT" scaled down:
4 layers, 4 heads, 128 channels, 64-character context, batch 12, no dropout); :data:`GPU` is
``config/train_shakespeare_char.py`` itself (6 layers, 6 heads, 384 channels, 256 characters, batch 64,
dropout 0.2).

Evaluation reads the WHOLE validation split once: non-overlapping windows of ``block_size`` characters, every
character predicted once from the characters before it in its window. That is nanoGPT's ``estimate_loss``
(the mean over every position of random windows) computed over all windows instead of 200 random batches.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class PeerConfig:
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    batch_size: int = 12
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0


CPU = PeerConfig()
GPU = PeerConfig(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2, batch_size=64)


class LayerNorm(nn.Module):
    """LayerNorm without a bias (nanoGPT's ``bias=False``)."""

    def __init__(self, ndim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: PeerConfig):
        super().__init__()
        self.n_head, self.n_embd, self.dropout = cfg.n_head, cfg.n_embd, cfg.dropout
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)                       # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True)                       # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)                         # (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: PeerConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=False)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=False)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: PeerConfig):
        super().__init__()
        self.ln_1, self.attn = LayerNorm(cfg.n_embd), CausalSelfAttention(cfg)
        self.ln_2, self.mlp = LayerNorm(cfg.n_embd), MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class CharGPT(nn.Module):
    """nanoGPT's GPT over characters. ``forward(idx)``: (B, T) ids, T <= block_size -> (B, T, vocab) logits."""

    def __init__(self, vocab_size: int, cfg: PeerConfig):
        super().__init__()
        self.block_size = cfg.block_size
        self.wte = nn.Embedding(vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = LayerNorm(cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight                                    # weight tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        """Parameters without the position embedding, as nanoGPT counts them."""
        return sum(p.numel() for p in self.parameters()) - self.wpe.weight.numel()

    def forward(self, idx):
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError(f"a sequence of {T} characters is longer than block_size {self.block_size}")
        pos = torch.arange(T, device=idx.device)                                 # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))                             # (B, T, C)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))                                        # (B, T, V)


def configure_optimizer(model: nn.Module, cfg: PeerConfig, device_type: str) -> torch.optim.AdamW:
    """AdamW with weight decay on every parameter of two or more dimensions (matrices, embeddings), none on gains."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    fused = {"fused": True} if device_type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), **fused)


def learning_rate(cfg: PeerConfig, step: int, fraction: float, warm_fraction: float | None) -> float:
    """nanoGPT's ``get_lr``: linear warmup over ``warmup_iters`` steps, then a cosine from ``learning_rate`` to
    ``min_lr`` over the rest of the budget (``fraction``: the share used; ``warm_fraction``: the share at the end
    of warmup)."""
    if step < cfg.warmup_iters or warm_fraction is None:
        return cfg.learning_rate * (step + 1) / (cfg.warmup_iters + 1)
    ratio = min(1.0, max(0.0, (fraction - warm_fraction) / max(1e-12, 1.0 - warm_fraction)))
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.learning_rate - cfg.min_lr)


@torch.no_grad()
def evaluate(model: CharGPT, ids: torch.Tensor, autocast, batch_windows: int = 256) -> float:
    """Mean next-character loss (nats) over every character of ``ids`` (N,) but the first, each predicted once
    within non-overlapping windows of ``block_size`` characters."""
    was_training = model.training
    model.eval()
    n, T = len(ids) - 1, model.block_size
    total = torch.zeros((), dtype=torch.float64, device=ids.device)
    full = n // T
    x = ids[: full * T].view(full, T)                                            # (W, T)
    y = ids[1: full * T + 1].view(full, T)                                       # (W, T)
    for i in range(0, full, batch_windows):
        with autocast():
            logits = model(x[i:i + batch_windows])                               # (b, T, V)
        total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y[i:i + batch_windows].reshape(-1),
                                 reduction="sum").double()
    if n > full * T:                                                             # the last, shorter window
        with autocast():
            logits = model(ids[full * T: n][None])                               # (1, r, V)
        total += F.cross_entropy(logits.float()[0], ids[full * T + 1: n + 1], reduction="sum").double()
    model.train(was_training)
    return float(total) / n


def train(train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int, seed: int, budget_seconds: float,
          cfg: PeerConfig, device: torch.device, timed_loop, eval_every_seconds: float, max_steps: int = 0) -> dict:
    """Train one peer for ``budget_seconds`` of training steps (``timed_loop``: :func:`common.timed_loop`), or
    ``max_steps`` steps if that comes first (> 0).

    Returns:
        the loop's record (``stopped_by``, ``steps``, ``train_seconds``, ``wall_seconds``, ``budget_seconds``)
        with ``value`` (the best validation loss in nats/char over the evaluations, the last one at the end),
        ``curve`` ([step, val loss] of every evaluation), ``parameters``, ``precision``,
        ``throughput`` (training characters per second) and ``config``.
    """
    import contextlib

    torch.manual_seed(seed)
    model = CharGPT(vocab_size, cfg).to(device)
    optimizer = configure_optimizer(model, cfg, device.type)
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    autocast = ((lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext)
    generator = torch.Generator(device=device).manual_seed(seed)
    train_ids, val_ids = train_ids.to(device), val_ids.to(device)
    offsets = torch.arange(cfg.block_size + 1, device=device)                    # (T+1,)
    state = {"step": 0, "warm_fraction": None, "fraction": 0.0, "seconds": 0.0}
    curve: list[list[float]] = []

    def step(fraction: float) -> None:
        s = state["step"]
        if s == cfg.warmup_iters:
            state["warm_fraction"] = fraction
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, s, fraction, state["warm_fraction"])
        starts = torch.randint(len(train_ids) - cfg.block_size - 1, (cfg.batch_size,), device=device,
                               generator=generator)                              # (B,)
        window = train_ids[starts[:, None] + offsets]                            # (B, T+1)
        with autocast():
            logits = model(window[:, :-1])                                       # (B, T, V)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), window[:, 1:].reshape(-1))
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] = s + 1
        state["fraction"] = fraction

    def evaluate_now() -> None:
        curve.append([state["step"], evaluate(model, val_ids, autocast)])

    sync = torch.cuda.synchronize if device.type == "cuda" else None
    loop = timed_loop(step, budget_seconds, max_steps=max_steps, synchronize=sync, evaluate=evaluate_now,
                      eval_every_seconds=eval_every_seconds)
    if not curve or curve[-1][0] != loop["steps"]:                              # the weights it ended with
        evaluate_now()
    return {**loop, "value": min(v for _, v in curve), "curve": [[t, round(v, 4)] for t, v in curve],
            "parameters": model.num_parameters(), "precision": "bf16" if bf16 else "fp32",
            "throughput": loop["steps"] * cfg.batch_size * cfg.block_size / max(loop["train_seconds"], 1e-9),
            "throughput_unit": "tokens/s", "config": asdict(cfg)}
