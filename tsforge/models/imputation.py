"""Gap filling in past data with a bidirectional GRU.

A bidirectional encoder reads the series in both directions, so its estimate of
reading t uses readings after t.  That is legitimate for repairing gaps in
history that has already been recorded, and it is why this class is not a
forecaster: at forecast time the future readings do not exist yet, and a model
trained to rely on them would leak information that is never available online.

Training masks random stretches of the observed series and learns to rebuild
them from the remaining readings and the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsforge.errors import DataError
from tsforge.optional import require

torch = require("torch", "the bidirectional imputer")
nn = torch.nn


class _BiGRU(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.GRU(2, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, 2) -> (B, T)
        h, _ = self.rnn(x)
        return self.out(h)[..., 0]


@dataclass
class BidirectionalImputer:
    """Fill NaN gaps of a recorded series (``fit`` then ``impute``).

    Attributes
    ----------
    hidden
        GRU units per direction.
    window
        Training window length.
    max_gap
        Longest masked stretch used in training.
    epochs, lr, seed
        Training settings.
    """

    hidden: int = 32
    window: int = 96
    max_gap: int = 12
    epochs: int = 40
    lr: float = 5e-3
    seed: int = 0

    def _inputs(self, z: np.ndarray, known: np.ndarray) -> torch.Tensor:
        values = np.where(known, z, 0.0)
        return torch.as_tensor(np.stack([values, known.astype(float)], axis=-1),
                               dtype=torch.float32)

    def fit(self, y: np.ndarray) -> BidirectionalImputer:
        y = np.asarray(y, dtype=np.float64)
        known = np.isfinite(y)
        if known.sum() < self.window:
            raise DataError(f"need at least {self.window} known readings to learn gap filling")
        self.mean_, self.std_ = float(y[known].mean()), float(y[known].std() or 1.0)
        z = (y - self.mean_) / self.std_
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        self.net_ = _BiGRU(self.hidden)
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        starts = np.arange(0, len(y) - self.window + 1, self.window // 2)
        for _ in range(self.epochs):
            wins, masks, tgt = [], [], []
            for s in starts:
                seg_known = known[s : s + self.window].copy()
                train_mask = seg_known.copy()
                for _ in range(2):  # hide two random stretches the model must rebuild
                    g = rng.integers(1, self.max_gap + 1)
                    a = rng.integers(0, self.window - g)
                    train_mask[a : a + g] = False
                wins.append(z[s : s + self.window])
                masks.append(train_mask)
                tgt.append(seg_known & ~train_mask)
            x = self._inputs(np.nan_to_num(np.array(wins)), np.array(masks))
            target = torch.as_tensor(np.nan_to_num(np.array(wins)), dtype=torch.float32)
            scored = torch.as_tensor(np.array(tgt))
            opt.zero_grad()
            pred = self.net_(x)
            loss = ((pred - target) ** 2)[scored].mean()
            loss.backward()
            opt.step()
        return self

    def impute(self, y: np.ndarray) -> np.ndarray:
        """A copy of ``y`` with its NaN readings filled; known readings are unchanged."""
        y = np.asarray(y, dtype=np.float64)
        known = np.isfinite(y)
        z = (y - self.mean_) / self.std_
        with torch.no_grad():
            pred = self.net_(self._inputs(np.nan_to_num(z)[None], known[None]))[0].numpy()
        out = y.copy()
        out[~known] = pred[~known] * self.std_ + self.mean_
        return out
