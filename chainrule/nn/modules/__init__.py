"""The layers, one family per file; every public name is re-exported as ``chainrule.nn.X``.

To add a family: create ``<family>.py`` with an ``__all__`` and add one
``from .<family> import *`` line below.
"""

import types as _types

from .activation import *  # noqa: F403
from .attention import *  # noqa: F403
from .batchnorm import *  # noqa: F403
from .container import *  # noqa: F403
from .conv import *  # noqa: F403
from .dropout import *  # noqa: F403
from .flatten import *  # noqa: F403
from .linear import *  # noqa: F403
from .loss import *  # noqa: F403
from .module import *  # noqa: F403
from .normalization import *  # noqa: F403
from .pooling import *  # noqa: F403
from .rnn import *  # noqa: F403
from .sparse import *  # noqa: F403
from .transformer import *  # noqa: F403

__all__ = sorted(n for n, v in list(globals().items())
                 if not n.startswith("_") and not isinstance(v, _types.ModuleType))
