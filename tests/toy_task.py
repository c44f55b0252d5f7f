"""A tiny task for engine tests: learn y = W x + b on synthetic data (CPU, seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from neuralsight.config import TrainConfig


@dataclass
class ToyData:
    n: int = 512
    noise: float = 0.01


@dataclass
class ToyConfig:
    data: ToyData = field(default_factory=ToyData)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3, batch_size=32, lr=0.05, progress=False))


class ToyTask:
    monitor = "val_loss"
    monitor_mode = "min"
    channels_last = False

    def __init__(self, cfg: ToyConfig, device):
        g = torch.Generator().manual_seed(1234)
        self.x = torch.randn(cfg.data.n, 8, generator=g)
        w = torch.randn(8, 2, generator=g)
        self.y = self.x @ w + cfg.data.noise * torch.randn(cfg.data.n, 2, generator=g)
        self.xv = torch.randn(64, 8, generator=g)
        self.yv = self.xv @ w
        self.device = device
        self.model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.1), nn.Linear(16, 2))
        self.model_spec = {"name": "toy", "kwargs": {}}

    def train_size(self) -> int:
        return len(self.x)

    def get_batch(self, idx):
        noise = 0.01 * torch.randn(len(idx), 8)  # consumes the global RNG, like augmentation does
        return self.x[idx].to(self.device) + noise.to(self.device), self.y[idx].to(self.device)

    def training_step(self, model, batch):
        x, y = batch
        return nn.functional.mse_loss(model(x).float(), y)

    def evaluate(self, model):
        return {"val_loss": float(nn.functional.mse_loss(model(self.xv.to(self.device)).float(),
                                                         self.yv.to(self.device)))}
