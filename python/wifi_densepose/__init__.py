"""WiFi-DensePose (minimal package init on the dsp branch; the lead owns the real one)."""

from . import dsp

__all__ = ["dsp"]
