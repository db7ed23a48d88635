"""The differentiable operations, one file per family, and their public wrappers."""

from . import methods as _methods

_methods.attach()
