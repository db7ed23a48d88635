"""Optimizers and learning-rate schedulers, mirroring ``torch.optim``.

>>> import chainrule as cr
>>> w = cr.tensor([2.0], requires_grad=True)
>>> opt = cr.optim.SGD([w], lr=0.25, momentum=0.9)
>>> for _ in range(3):
...     opt.zero_grad()
...     (w * w).sum().backward()
...     _ = opt.step()
>>> round(w.item(), 4)
-1.46
"""

from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .kfac import KFAC
from .lbfgs import LBFGS
from .nadam import NAdam
from .natural_gradient import NaturalGradient
from .newton import Newton
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "NAdam",
           "RAdam", "LBFGS", "Newton", "KFAC", "NaturalGradient", "lr_scheduler"]
