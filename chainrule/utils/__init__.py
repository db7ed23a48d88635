"""``chainrule.utils``: data loading (``chainrule.utils.data``) and other helpers."""

from . import checkpoint, data

__all__ = ["checkpoint", "data"]
