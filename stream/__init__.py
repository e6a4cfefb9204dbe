"""The frame path (sources, processor, sinks, preview window) and ``python -m stream``."""
# OpenCV before PyAV, always: both wheels bundle X11/xcb libraries under the same file names,
# and when PyAV's load first, OpenCV's Qt windows (the preview) hang without an error.
import cv2  # noqa: F401
