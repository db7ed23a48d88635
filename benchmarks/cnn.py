"""One LeNet-5 training step against every installed peer.

Workload: a batch of 64 images ``1x28x28``; ``Conv2d(1, 6, 5)``, ReLU, ``MaxPool2d(2)``,
``Conv2d(6, 16, 5)``, ReLU, ``MaxPool2d(2)``, flatten (256), ``Linear(256, 120)``, ReLU,
``Linear(120, 84)``, ReLU, ``Linear(84, 10)``, cross-entropy; one step is zero_grad,
forward, loss, backward and a plain SGD update (lr 0.01, no momentum). Every library
starts from the same NumPy weights (PyTorch's default init ranges) and the losses of two
steps are cross-checked before the interleaved timing (see :mod:`benchmarks.peers`).
Target: chainrule at most 1.5x PyTorch's time.

How each library expresses it:

- chainrule and PyTorch: their ``nn`` modules (``Conv2d``, ``MaxPool2d``, ...).
- JAX, HIPS autograd and MyGrad: one functional network, :func:`lenet_loss`, written once
  against their NumPy-like modules; only the convolution and the pooling call each
  library's own primitive (:func:`conv2d`, :func:`maxpool2`): JAX
  ``lax.conv_general_dilated`` and ``lax.reduce_window`` with the whole step under
  ``jax.jit`` (compile time reported apart); MyGrad ``nnet.layers.conv_nd`` and
  ``max_pool``; autograd ``autograd.scipy.signal.convolve`` (its only convolution: an
  ``einsum`` over strided windows, slow) and a reshape-and-max pooling.
- tinygrad: ``Tensor.conv2d`` and ``max_pool2d``; the row ``tinygrad`` runs the step
  under ``TinyJit``, ``tinygrad-eager`` schedules it anew every step.

Run: ``python -m benchmarks.run cnn`` (or ``python -m benchmarks.cnn``). On a loaded
machine, BLAS worker threads that spin while waiting for a core distort every library;
``OPENBLAS_NUM_THREADS=1 python -m benchmarks.cnn`` runs NumPy's BLAS single-threaded and
then gives PyTorch the same thread count.
"""

from __future__ import annotations

import numpy as np

from . import common, peers

NAME = "cnn"
DESCRIPTION = "LeNet-5 on 64 x 1x28x28, conv/pool/linear, cross-entropy: full training step"
LR, MOMENTUM = 0.01, 0.0  # plain SGD
CLASSES = 10
TINYGRAD_NOTE = ("tinygrad: 'compile s' is the time of the jitted step's first two calls "
                 "(kernel compiles and the TinyJit capture); tinygrad-eager reuses the "
                 "compiled kernels but schedules the whole step again on every call")
SHAPES = ((6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 256), (120,), (84, 120), (84,),
          (10, 84), (10,))


def _lenet(nn):
    """The same LeNet-5 in either library (``nn`` is ``torch.nn`` or ``chainrule.nn``)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def init_weights(seed: int = 0) -> list[np.ndarray]:
    """The ten parameters in PyTorch's layout and order, uniform(+-1/sqrt(fan_in))."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(0, len(SHAPES), 2):
        w_shape = SHAPES[i]
        bound = 1.0 / np.sqrt(int(np.prod(w_shape[1:])))
        out.append(rng.uniform(-bound, bound, w_shape).astype(np.float32))
        out.append(rng.uniform(-bound, bound, SHAPES[i + 1]).astype(np.float32))
    return out


def data(batch: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A float32 image batch ``(batch, 1, 28, 28)`` and integer labels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    return x, rng.integers(0, CLASSES, batch)


# ------------------------------------------------------------- the functional network
def conv2d(xp, x, w, b):
    """Stride-1 'valid' cross-correlation ``(N, C, H, W) * (F, C, k, k)`` plus bias, with
    the convolution primitive of the library behind ``xp``."""
    name = xp.__name__
    if name == "jax.numpy":
        from jax import lax

        y = lax.conv_general_dilated(x, w, (1, 1), "VALID")
    elif name == "mygrad":
        from mygrad.nnet.layers import conv_nd

        y = conv_nd(x, w, stride=1)
    elif name == "autograd.numpy":
        from autograd.scipy.signal import convolve

        # a true convolution: flip the kernel to get PyTorch's cross-correlation; the
        # output axes are (N of x, F of w, H', W')
        y = convolve(x, w[:, :, ::-1, ::-1], axes=([2, 3], [2, 3]), dot_axes=([1], [1]),
                     mode="valid")
    else:
        raise ValueError(f"conv2d: no convolution for {name}")
    return y + xp.reshape(b, (1, -1, 1, 1))


def maxpool2(xp, x):
    """2x2 max pooling with stride 2 on ``(N, C, H, W)`` (H and W even)."""
    name = xp.__name__
    if name == "jax.numpy":
        from jax import lax

        return lax.reduce_window(x, -np.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    if name == "mygrad":
        from mygrad.nnet.layers import max_pool

        return max_pool(x, (2, 2), 2)
    n, c, h, w = x.shape
    return xp.max(xp.reshape(x, (n, c, h // 2, 2, w // 2, 2)), axis=(3, 5))


def lenet_loss(xp, ps, x, target):
    """LeNet-5 as a function of its ten parameters; mean cross-entropy to one-hot targets."""
    h = maxpool2(xp, peers.relu(xp, conv2d(xp, x, ps[0], ps[1])))
    h = maxpool2(xp, peers.relu(xp, conv2d(xp, h, ps[2], ps[3])))
    h = xp.reshape(h, (h.shape[0], -1))
    h = peers.relu(xp, peers.linear(xp, h, ps[4], ps[5]))
    h = peers.relu(xp, peers.linear(xp, h, ps[6], ps[7]))
    return peers.cross_entropy(xp, peers.linear(xp, h, ps[8], ps[9]), target)


# ------------------------------------------------------------------------ factories
def _module_factory(lib, weights, x, y):
    """chainrule or PyTorch: the ``nn`` LeNet and an in-place plain SGD update."""
    conv = lib.from_numpy
    net = _lenet(lib.nn)
    keys = list(net.state_dict().keys())
    net.load_state_dict({k: conv(w.copy()) for k, w in zip(keys, weights)})
    params = list(net.parameters())
    xx, yy = conv(x), conv(y)

    def step():
        for p in params:
            p.grad = None
        loss = lib.nn.functional.cross_entropy(net(xx), yy)
        loss.backward()
        peers.sgd_in_place(lib, params, LR)
        return loss.item()

    return step


def _tinygrad_factory(weights, x, y, jit: bool, info: dict | None = None):
    """tinygrad's LeNet step, under ``TinyJit`` or eager (scheduled every call).

    With ``info``, the jitted step records the seconds of its first two calls (kernel
    compiles and the JIT capture) once, as ``info["tinygrad"]["compile_s"]``.
    """
    from tinygrad import Tensor, TinyJit
    from tinygrad.nn.optim import SGD

    ps = [Tensor(w.copy()).realize() for w in weights]
    xx, yy = Tensor(x).realize(), Tensor(y.astype(np.int32)).realize()
    opt = SGD(ps, lr=LR, momentum=MOMENTUM)

    def one_step():
        opt.zero_grad()
        h = xx.conv2d(ps[0], ps[1]).relu().max_pool2d((2, 2))
        h = h.conv2d(ps[2], ps[3]).relu().max_pool2d((2, 2))
        h = h.flatten(1)
        h = h.linear(ps[4].T, ps[5]).relu()
        h = h.linear(ps[6].T, ps[7]).relu()
        loss = h.linear(ps[8].T, ps[9]).sparse_categorical_crossentropy(yy)
        loss.backward()
        return loss.realize(*opt.schedule_step())

    return tinygrad_step(TinyJit(one_step) if jit else one_step, info if jit else None)


def tinygrad_step(fn, info: dict | None = None):
    """A zero-argument step running tinygrad's ``fn`` in training mode, returning the loss
    as a float; with ``info``, the first two calls are timed once as ``compile_s``."""
    import time

    from tinygrad.helpers import Context

    calls = [0, 0.0]

    def step():
        t0 = time.perf_counter()
        with Context(TRAINING=1):
            val = float(fn().item())
        if info is not None and calls[0] < 2:
            calls[0] += 1
            calls[1] += time.perf_counter() - t0
            if calls[0] == 2:
                info.setdefault("tinygrad", {"compile_s": calls[1]})
        return val

    return step


def factories(weights, x, y, libs: dict, info: dict) -> dict:
    """One factory per library for the LeNet step (see :mod:`benchmarks.peers`)."""
    import chainrule as cr

    out = {"chainrule": lambda: _module_factory(cr, weights, x, y)}
    if "torch" in libs:
        torch = libs["torch"]
        out["torch"] = lambda: _module_factory(torch, weights, x, y)
    out.update(peers.xp_factories(lenet_loss, weights, x, peers.onehot(y, CLASSES), LR,
                                  MOMENTUM, libs, info))
    if "tinygrad" in libs:
        out["tinygrad"] = lambda: _tinygrad_factory(weights, x, y, jit=True, info=info)
        out["tinygrad-eager"] = lambda: _tinygrad_factory(weights, x, y, jit=False)
    return out


def step_flops(batch: int) -> float:
    """FLOPs of one step: forward convolution and linear MACs x 2, times three."""
    macs = 24 * 24 * 6 * 25 + 8 * 8 * 16 * 150 + 256 * 120 + 120 * 84 + 84 * 10
    return 3 * 2 * batch * macs


def run(smoke: bool = False, batch: int = 64, repeats: int = 15) -> dict:
    """Cross-check, then time the LeNet step in every installed library.

    Args:
        smoke: batch 2, two samples and the fast peers only; checks that it runs.
        batch: images per step.
        repeats: samples per library.
    """
    if smoke:
        batch, repeats = 2, 2
    libs, notes = peers.load_peers(smoke)
    weights = init_weights()
    x, y = data(batch)
    info: dict = {}
    facs = factories(weights, x, y, libs, info)
    result = peers.run_workload(NAME, facs, repeats=repeats, warmup=1 if smoke else 3,
                                params={"batch": batch, "image": (1, 28, 28),
                                        "repeats": repeats, "smoke": smoke,
                                        "lr": LR, "momentum": MOMENTUM, "dtype": "float32"},
                                flops=step_flops(batch), notes=notes, info=info)
    extra = [TINYGRAD_NOTE] if "tinygrad" in libs else []
    if "autograd" in libs:
        extra.append("autograd: convolution by autograd.scipy.signal.convolve (an einsum "
                     "over strided windows, no BLAS), pooling by reshape and max")
    return peers.finish_result(result, libs, 1.5, extra)


def format_result(result: dict) -> str:
    """The table of ms per step, GFLOP/s and ratios to torch."""
    return peers.format_steps(result)


if __name__ == "__main__":
    common.ensure_malloc_env()
    print(common.describe_machine())
    print(format_result(run()))
