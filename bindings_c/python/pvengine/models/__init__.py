"""The models package: the PyroVelocity model class and the transcription dynamics it is built on."""

from ._transcription_dynamics import mrna_dynamics
from ._velocity import PyroVelocity

__all__ = ["PyroVelocity", "mrna_dynamics"]
