"""pimsk: physics-informed musculoskeletal modelling from C3D and surface EMG."""

from pimsk.errors import PimskError

__all__ = ["PimskError", "__version__"]
__version__ = "0.1.0"
