"""Small built-in models used by the command line (demo, gradcheck) and the examples."""

from __future__ import annotations

from . import nn


def digits_mlp(hidden: int = 64) -> nn.Module:
    """An MLP for 8x8 digits given as 64 features: 64 -> hidden -> hidden -> 10."""
    return nn.Sequential(
        nn.Linear(64, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def digits_cnn(channels: int = 16) -> nn.Module:
    """A small CNN for 1x8x8 digits: two 3x3 conv blocks with pooling, then two dense."""
    c = channels
    return nn.Sequential(
        nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * c * 2 * 2, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


class SequenceClassifier(nn.Module):
    """An LSTM over a sequence whose last hidden state feeds a linear classifier."""

    def __init__(self, inputs: int = 3, hidden: int = 8, classes: int = 2) -> None:
        super().__init__()
        self.lstm = nn.LSTM(inputs, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class TinyAttention(nn.Module):
    """One self-attention layer with mean pooling and a linear classifier."""

    def __init__(self, dim: int = 8, heads: int = 2, classes: int = 2) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        h, _ = self.attn(x, x, x, need_weights=False)
        return self.head((h + x).mean(1))
