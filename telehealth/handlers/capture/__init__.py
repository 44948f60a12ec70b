"""Capture rules: starting a protocol, takes and skips, device uploads, and the events they emit."""

from .events import CaptureChange, CaptureListener, NoCaptureListener, notify

__all__ = ["CaptureChange", "CaptureListener", "NoCaptureListener", "notify"]
