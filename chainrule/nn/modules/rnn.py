"""Recurrent layers: RNN, LSTM, GRU and their single-step cells, as in PyTorch.

Parameter names, shapes, gate order (LSTM i, f, g, o; GRU r, z, n) and initialisation
(every weight and bias from U(-1/sqrt(hidden), 1/sqrt(hidden))) match ``torch.nn``, so
state dicts convert one to one. The maths lives in :mod:`chainrule.nn.functional.rnn`.

>>> import chainrule as cr
>>> lstm = cr.nn.LSTM(4, 8, num_layers=2, batch_first=True)
>>> out, (h_n, c_n) = lstm(cr.randn(3, 5, 4))
>>> out.shape, h_n.shape, c_n.shape
((3, 5, 8), (2, 3, 8), (2, 3, 8))
"""

from __future__ import annotations

import math
import numbers
import warnings

from ... import creation
from ...ops.shape_api import squeeze, unsqueeze
from ...tensor import Tensor
from .. import init
from ..functional import rnn as F
from ..parameter import Parameter
from .module import Module

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell", "RNNCellBase"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _shape(t) -> tuple:
    return tuple(int(s) for s in t.shape)


def _check_sizes(name: str, input_size, hidden_size, num_layers=1) -> None:
    for arg, v, low in (("input_size", input_size, 0), ("hidden_size", hidden_size, 1),
                        ("num_layers", num_layers, 1)):
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ValueError(f"{name}: {arg} must be an integer >= {low}, got {v!r}")


class RNNBase(Module):
    """Shared machinery of :class:`RNN`, :class:`LSTM` and :class:`GRU`.

    Args:
        mode: ``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"``.
        input_size: features per time step of the input.
        hidden_size: features of the hidden state.
        num_layers: stacked recurrent layers.
        bias: whether the layers have ``bias_ih`` / ``bias_hh``.
        batch_first: input and output are (batch, seq, feature) instead of
            (seq, batch, feature); the states stay (layers * directions, batch, hidden).
        dropout: dropout probability on the outputs of every layer except the last.
        bidirectional: run a second, reversed direction and concatenate the features.
        proj_size: LSTM only: project ``h`` to this size with ``weight_hr`` (0: none).
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        name = _NAME.get(mode, mode)
        if mode not in _GATES:
            raise ValueError(f"RNNBase: unknown mode {mode!r}; expected one of "
                             f"{', '.join(_GATES)}")
        _check_sizes(name, input_size, hidden_size, num_layers)
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError(f"{name}: dropout should be a number in range [0, 1] "
                             f"representing the probability of an element being zeroed, "
                             f"got {dropout!r}")
        if not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(f"{name}: proj_size should be a non-negative integer, got "
                             f"{proj_size!r}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"{name}: proj_size argument is only supported for LSTM")
        if proj_size >= hidden_size:
            raise ValueError(f"{name}: proj_size ({proj_size}) has to be smaller than "
                             f"hidden_size ({hidden_size})")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"{name}: dropout option adds dropout after all but last recurrent layer, "
                f"so non-zero dropout expects num_layers greater than 1, but got "
                f"dropout={dropout} and num_layers={num_layers}",
                UserWarning,
                stacklevel=3,
            )
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        dirs = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        names = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else real_hidden * dirs
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
                shapes = [("weight_ih", (gate_size, layer_in)),
                          ("weight_hh", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                for base, shape in shapes:
                    setattr(self, base + sfx, Parameter(creation.empty(*shape, dtype=dtype)))
                    names.append(base + sfx)
        self._flat_weights_names = names
        self.reset_parameters()

    @property
    def _flat_weights(self) -> list:
        """The parameters in PyTorch's flat order (layer, direction, ih/hh/biases/hr)."""
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list:
        """The parameters grouped per layer and direction."""
        per = len(self._flat_weights_names) // (self.num_layers * (2 if self.bidirectional
                                                                   else 1))
        w = self._flat_weights
        return [w[k: k + per] for k in range(0, len(w), per)]

    def reset_parameters(self) -> None:
        """Draw every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """Accepted for compatibility (the weights are always used as they are)."""

    def _state_shape(self, batch: int, cell: bool) -> tuple:
        dirs = 2 if self.bidirectional else 1
        size = self.proj_size if (self.proj_size > 0 and not cell) else self.hidden_size
        return (self.num_layers * dirs, batch, size)

    def _prepare(self, input, hx, n_states: int):
        """Validate; returns (batched input, states, unbatched flag)."""
        name = _NAME[self.mode]
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: expected a Tensor input, got {type(input).__name__} "
                            f"(packed sequences are not supported)")
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: expected input to be 2-D (seq, features) or 3-D "
                             f"({'batch, seq' if self.batch_first else 'seq, batch'}, "
                             f"features), got {input.ndim}-D input of shape {_shape(input)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input with input_size={self.input_size} "
                             f"features in the last dimension, got shape {_shape(input)}")
        unbatched = input.ndim == 2
        if unbatched:
            input = unsqueeze(input, 0 if self.batch_first else 1)
        batch = input.shape[0 if self.batch_first else 1]
        names = ("h_0", "c_0")
        if hx is None:
            states = [creation.zeros(*self._state_shape(batch, k == 1), dtype=input.dtype)
                      for k in range(n_states)]
        else:
            states = list(hx) if n_states == 2 else [hx]
            if len(states) != n_states:
                raise ValueError(f"{name}: expected hx to be a tuple (h_0, c_0), got "
                                 f"{len(states)} tensors")
            for k, s in enumerate(states):
                want = self._state_shape(batch, k == 1)
                if unbatched:
                    if s.ndim != 2:
                        raise ValueError(f"{name}: for unbatched 2-D input, {names[k]} "
                                         f"should also be 2-D, got shape {_shape(s)}")
                    s = unsqueeze(s, 1)
                    states[k] = s
                if _shape(s) != want:
                    shown = want if not unbatched else (want[0], want[2])
                    got = _shape(s) if not unbatched else (s.shape[0], s.shape[2])
                    raise ValueError(f"{name}: expected {names[k]} of shape {shown}, got "
                                     f"{got}")
        return input, states, unbatched

    def _finish(self, out, states, unbatched):
        if unbatched:
            out = squeeze(out, 0 if self.batch_first else 1)
            states = [squeeze(s, 1) for s in states]
        return out, states

    def forward(self, input: Tensor, hx=None):
        """Run the sequence; returns ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``)."""
        n = 2 if self.mode == "LSTM" else 1
        x, states, unbatched = self._prepare(input, hx, n)
        args = (self._flat_weights, self.bias, self.num_layers, self.dropout, self.training,
                self.bidirectional, self.batch_first)
        if self.mode == "LSTM":
            out, h, c = F.lstm(x, states, *args)
            out, (h, c) = self._finish(out, [h, c], unbatched)
            return out, (h, c)
        fn = {"GRU": F.gru, "RNN_TANH": F.rnn_tanh, "RNN_RELU": F.rnn_relu}[self.mode]
        out, h = fn(x, states[0], *args)
        out, (h,) = self._finish(out, [h], unbatched)
        return out, h

    def extra_repr(self) -> str:
        """The constructor arguments that differ from the defaults, as PyTorch prints them."""
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


_NAME = {"LSTM": "LSTM", "GRU": "GRU", "RNN_TANH": "RNN", "RNN_RELU": "RNN"}


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or ReLU).

    Args: ``input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False`` (as :class:`RNNBase`).
    Returns ``(output, h_n)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; select from "
                             f"'tanh' or 'relu'")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        """As :meth:`RNNBase.extra_repr`, plus a non-default nonlinearity."""
        s = super().extra_repr()
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class LSTM(RNNBase):
    """Long short-term memory over a sequence (gate order i, f, g, o, as PyTorch).

    ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``. Arguments as
    :class:`RNNBase`, plus ``proj_size``. Returns ``(output, (h_n, c_n))``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit over a sequence (gate order r, z, n, as PyTorch).

    ``n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))``, ``h' = (1 - z) n + z h``.
    Arguments as :class:`RNNBase`. Returns ``(output, h_n)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype=dtype)


# ------------------------------------------------------------------------------ cells
class RNNCellBase(Module):
    """Shared parameters of the cells: ``weight_ih`` (chunks * hidden, input),
    ``weight_hh`` (chunks * hidden, hidden), ``bias_ih``, ``bias_hh``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None) -> None:
        super().__init__()
        _check_sizes(type(self).__name__, input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        g = num_chunks * hidden_size
        self.weight_ih = Parameter(creation.empty(g, input_size, dtype=dtype))
        self.weight_hh = Parameter(creation.empty(g, hidden_size, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(creation.empty(g, dtype=dtype))
            self.bias_hh = Parameter(creation.empty(g, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def extra_repr(self) -> str:
        """Sizes, and bias / nonlinearity when not the default."""
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _prepare(self, input, hx, n_states: int):
        name = type(self).__name__
        if not isinstance(input, Tensor) or input.ndim not in (1, 2):
            got = f"shape {_shape(input)}" if isinstance(input, Tensor) else type(input)
            raise ValueError(f"{name}: expected input to be 1-D (features) or 2-D (batch, "
                             f"features), got {got}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input with input_size={self.input_size} "
                             f"features in the last dimension, got shape {_shape(input)}")
        unbatched = input.ndim == 1
        if unbatched:
            input = unsqueeze(input, 0)
        batch = input.shape[0]
        if hx is None:
            states = [creation.zeros(batch, self.hidden_size, dtype=input.dtype)
                      for _ in range(n_states)]
        else:
            states = list(hx) if n_states == 2 else [hx]
            for k, s in enumerate(states):
                if unbatched:
                    s = unsqueeze(s, 0) if s.ndim == 1 else s
                    states[k] = s
                if _shape(s) != (batch, self.hidden_size):
                    raise ValueError(f"{name}: expected hidden state {k} of shape "
                                     f"{(batch, self.hidden_size)}, got {_shape(s)}")
        return input, states, unbatched


class RNNCell(RNNCellBase):
    """One Elman step: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or ReLU).

    Args: ``input_size, hidden_size, bias=True, nonlinearity='tanh'``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; select from "
                             f"'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, bias, 1, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """One step from ``input`` (B, I) or (I,) and ``hx`` (zeros when None)."""
        x, (h,), unbatched = self._prepare(input, hx, 1)
        fn = F.rnn_tanh_cell if self.nonlinearity == "tanh" else F.rnn_relu_cell
        out = fn(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return squeeze(out, 0) if unbatched else out


class LSTMCell(RNNCellBase):
    """One LSTM step; ``forward(input, (h, c))`` returns ``(h', c')``.

    Args: ``input_size, hidden_size, bias=True``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, dtype=dtype)

    def forward(self, input: Tensor, hx=None) -> tuple:
        """One step; ``hx = (h, c)`` (zeros when None)."""
        x, (h, c), unbatched = self._prepare(input, hx, 2)
        h, c = F.lstm_cell(x, (h, c), self.weight_ih, self.weight_hh, self.bias_ih,
                           self.bias_hh)
        if unbatched:
            return squeeze(h, 0), squeeze(c, 0)
        return h, c


class GRUCell(RNNCellBase):
    """One GRU step; ``forward(input, h)`` returns ``h'``.

    Args: ``input_size, hidden_size, bias=True``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """One step from ``input`` and ``hx`` (zeros when None)."""
        x, (h,), unbatched = self._prepare(input, hx, 1)
        out = F.gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return squeeze(out, 0) if unbatched else out
