"""``chainrule.train``: the ``fit`` loop, its callbacks and ``evaluate``."""

from .callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    LambdaCallback,
    ModelCheckpoint,
)
from .loop import History, Trainer, accuracy, evaluate, fit

__all__ = [
    "CSVLogger", "Callback", "EarlyStopping", "History", "JSONLogger", "LambdaCallback",
    "ModelCheckpoint", "Trainer", "accuracy", "evaluate", "fit",
]
