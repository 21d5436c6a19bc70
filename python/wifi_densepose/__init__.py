"""WiFi-DensePose (minimal package init on the csi-readers branch; the lead owns the real one)."""

from ._native import *
