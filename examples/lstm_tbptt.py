"""An LSTM trained by truncated backpropagation through time (TBPTT) on one long stream.

The task is a delayed echo: the input is a stream of random symbols and the target at
step ``t`` is the input at step ``t - delay``. The stream is far too long to backpropagate
through in one piece, so it is cut into chunks of ``--bptt`` steps:

* the hidden state ``(h, c)`` is carried from one chunk to the next, so the network
  still *sees* the whole stream (the first ``delay`` targets of each chunk can only be
  answered from state carried over from the previous chunk);
* the state is detached at each chunk boundary, so ``backward`` only runs through the
  last ``bptt`` steps and memory and time per update stay constant.

What it shows: ``nn.LSTM(batch_first=True)`` with an explicit initial state, state
carrying plus ``.detach()`` on ``(h, c)``, gradient clipping with
``nn.utils.clip_grad_norm_``, and evaluation on a fresh stream under ``no_grad``.

Run it::

    python examples/lstm_tbptt.py               # ~99.8% echo accuracy on a held-out stream
    python examples/lstm_tbptt.py --delay 12 --bptt 24 --epochs 6
    python examples/lstm_tbptt.py --tiny        # a seconds-long smoke run
"""

from __future__ import annotations

import argparse

import numpy as np

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F


def make_stream(batch: int, length: int, symbols: int, delay: int, seed: int):
    """``batch`` parallel streams of ``length`` random symbols and their delayed echo.

    Returns one-hot inputs ``(batch, length, symbols)`` and int64 targets
    ``(batch, length)``; the first ``delay`` targets, which have nothing to echo, are
    ``-100`` so the loss ignores them.
    """
    rng = np.random.default_rng(seed)
    s = rng.integers(0, symbols, size=(batch, length))
    target = np.full_like(s, -100)
    target[:, delay:] = s[:, :-delay]
    x = F.one_hot(cr.from_numpy(s), symbols).float()
    return x, cr.from_numpy(target)


class EchoLSTM(nn.Module):
    """An LSTM over one-hot symbols and a linear read-out per step."""

    def __init__(self, symbols: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(symbols, hidden, batch_first=True)
        self.head = nn.Linear(hidden, symbols)

    def forward(self, x: cr.Tensor, state=None):
        """Logits ``(batch, steps, symbols)`` and the final ``(h, c)``."""
        out, state = self.lstm(x, state)
        return self.head(out), state


def run_stream(model: EchoLSTM, x: cr.Tensor, y: cr.Tensor, bptt: int, delay: int,
               optimizer=None, clip: float = 1.0) -> tuple[float, float, float]:
    """Walk the stream chunk by chunk; train when ``optimizer`` is given.

    Returns the mean loss and accuracy over every position that has a target, and the
    accuracy over the first ``delay`` positions of each chunk alone: those echo a symbol
    from the previous chunk, which only the carried state remembers.
    """
    loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
    batch, length, symbols = x.shape
    hidden = model.lstm.hidden_size
    # (h, c) start at zero and are then carried across chunk boundaries.
    h = cr.zeros(1, batch, hidden)
    c = cr.zeros(1, batch, hidden)
    total_loss, correct, counted = 0.0, 0, 0
    carried_correct, carried_counted = 0, 0
    for start in range(0, length, bptt):
        xb = x[:, start:start + bptt]
        yb = y[:, start:start + bptt]
        # Truncate: keep the values of (h, c) but cut the graph behind them, so this
        # chunk's backward stops here instead of running back to the start of the stream.
        # (Without it, the second backward raises: the previous chunk's graph was already
        # freed by the first; keeping it with retain_graph would make every step slower.)
        h, c = h.detach(), c.detach()
        logits, (h, c) = model(xb, (h, c))
        loss = loss_fn(logits.reshape(-1, symbols), yb.reshape(-1))
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
        mask = yb.numpy() != -100
        n = int(mask.sum())
        if n:
            pred = logits.detach().numpy().argmax(-1)
            hit = (pred == yb.numpy()) & mask
            correct += int(hit.sum())
            if start > 0:
                carried_correct += int(hit[:, :delay].sum())
                carried_counted += int(mask[:, :delay].sum())
            total_loss += loss.item() * n
            counted += n
    return (total_loss / max(counted, 1), correct / max(counted, 1),
            carried_correct / max(carried_counted, 1))


def main(argv: list[str] | None = None) -> float:
    """Train on one long stream and return the echo accuracy on a held-out stream."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="passes over the stream")
    parser.add_argument("--delay", type=int, default=8, help="steps between input and echo")
    parser.add_argument("--bptt", type=int, default=20, help="steps per truncated chunk")
    parser.add_argument("--length", type=int, default=2000, help="steps in the stream")
    parser.add_argument("--batch", type=int, default=32, help="parallel streams")
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=48)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args(argv)
    if args.tiny:
        args.epochs, args.length, args.batch, args.hidden = 2, 400, 16, 16
        args.delay, args.bptt = 2, 10
    if not 0 < args.delay < args.length // 2:
        parser.error("--delay must be positive and shorter than half the stream")

    cr.manual_seed(args.seed)
    x, y = make_stream(args.batch, args.length, args.symbols, args.delay, seed=args.seed)
    x_test, y_test = make_stream(args.batch, args.length // 2, args.symbols, args.delay,
                                 seed=args.seed + 1)
    model = EchoLSTM(args.symbols, args.hidden)
    optimizer = cr.optim.Adam(model.parameters(), lr=args.lr)
    chance = 1.0 / args.symbols
    print(f"echo with delay {args.delay}, chunks of {args.bptt} steps, chance {chance:.2f}")
    for epoch in range(args.epochs):
        model.train()
        loss, acc, _ = run_stream(model, x, y, args.bptt, args.delay, optimizer)
        print(f"epoch {epoch + 1}  train loss {loss:.4f}  train accuracy {acc:.4f}")
    model.eval()
    with cr.no_grad():
        loss, acc, carried = run_stream(model, x_test, y_test, args.bptt, args.delay)
    print(f"held-out: loss {loss:.4f}, accuracy on echoes of the previous chunk "
          f"(carried state) {carried:.4f}")
    print(f"held-out echo accuracy: {acc:.4f}")
    return acc


if __name__ == "__main__":
    main()
