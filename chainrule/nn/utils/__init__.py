"""``chainrule.nn.utils``: gradient clipping and parameter helpers."""

from .clip_grad import clip_grad_norm_, clip_grad_value_
from .convert_parameters import parameters_to_vector, vector_to_parameters
from .detach import detach_state

__all__ = ["clip_grad_norm_", "clip_grad_value_", "detach_state", "parameters_to_vector",
           "vector_to_parameters"]
