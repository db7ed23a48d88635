"""``chainrule.utils``: data loading (``chainrule.utils.data``) and other helpers."""

from . import data

__all__ = ["data"]
