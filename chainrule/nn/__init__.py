"""``chainrule.nn``: modules, parameters, functional layers and initialisation.

>>> import chainrule as cr
>>> net = cr.nn.Sequential(cr.nn.Linear(4, 8), cr.nn.ReLU(), cr.nn.Linear(8, 2))
>>> net(cr.randn(3, 4)).shape
(3, 2)
"""

from . import functional, init, utils
from .modules import *  # noqa: F403
from .parameter import Parameter
