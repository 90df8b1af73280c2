"""SSD anchors for MediaPipe's palm detection model, generated the way the hand graph does.

Owns the anchor grid and nothing else: no model, no decoding (``palm.py`` uses the anchors).
The options are those of the ``SsdAnchorsCalculator`` node (``palmdetectioncpu__SsdAnchorsCalculator``)
in ``mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.binarypb`` as shipped in the
mediapipe 0.10.21 wheel; ``tests/test_litert_constants.py`` reads that graph and checks every
value here against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class SsdAnchorOptions:
    """The subset of ``mediapipe.SsdAnchorsCalculatorOptions`` the palm graph sets or relies on.

    Defaults not set in the graph are the proto's own defaults (``interpolated_scale_aspect_ratio``
    1.0, ``reduce_boxes_in_lowest_layer`` false); together with ``aspect_ratios: 1`` they give two
    anchors per cell and layer, which is what makes the model's 2016 boxes add up.
    """

    input_size_width: int
    input_size_height: int
    min_scale: float
    max_scale: float
    anchor_offset_x: float
    anchor_offset_y: float
    strides: tuple[int, ...]
    aspect_ratios: tuple[float, ...]
    fixed_anchor_size: bool
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = False


#: From the graph's SsdAnchorsCalculator options (num_layers 4 = len(strides)).
PALM_ANCHOR_OPTIONS = SsdAnchorOptions(
    input_size_width=192,
    input_size_height=192,
    min_scale=0.1484375,
    max_scale=0.75,
    anchor_offset_x=0.5,
    anchor_offset_y=0.5,
    strides=(8, 16, 16, 16),
    aspect_ratios=(1.0,),
    fixed_anchor_size=True,
)


def _layer_scale(options: SsdAnchorOptions, layer: int) -> float:
    """Linear interpolation between min and max scale over the layers (a single layer: the mean)."""
    count = len(options.strides)
    if count == 1:
        return (options.min_scale + options.max_scale) * 0.5
    return options.min_scale + (options.max_scale - options.min_scale) * layer / (count - 1.0)


def generate_anchors(options: SsdAnchorOptions = PALM_ANCHOR_OPTIONS) -> npt.NDArray[np.float32]:
    """Anchors as an (N, 4) float32 array of (x_center, y_center, width, height), normalised.

    Consecutive layers with the same stride share one feature map; their anchors are emitted
    cell by cell (row-major), all of the group's anchor shapes for one cell together. That order
    is the order of the model's output boxes, so it must not change.
    """
    strides = options.strides
    rows: list[tuple[float, float, float, float]] = []
    layer = 0
    while layer < len(strides):
        heights: list[float] = []
        widths: list[float] = []
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            scale = _layer_scale(options, last)
            shapes: list[tuple[float, float]] = []  # (scale, aspect ratio)
            if last == 0 and options.reduce_boxes_in_lowest_layer:
                shapes = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
            else:
                shapes = [(scale, ratio) for ratio in options.aspect_ratios]
                if options.interpolated_scale_aspect_ratio > 0.0:
                    next_scale = 1.0 if last == len(strides) - 1 else _layer_scale(options, last + 1)
                    shapes.append((math.sqrt(scale * next_scale), options.interpolated_scale_aspect_ratio))
            for shape_scale, ratio in shapes:
                root = math.sqrt(ratio)
                heights.append(shape_scale / root)
                widths.append(shape_scale * root)
            last += 1
        stride = strides[layer]
        map_h = math.ceil(options.input_size_height / stride)
        map_w = math.ceil(options.input_size_width / stride)
        for y in range(map_h):
            for x in range(map_w):
                cx = (x + options.anchor_offset_x) / map_w
                cy = (y + options.anchor_offset_y) / map_h
                for h, w in zip(heights, widths, strict=True):
                    if options.fixed_anchor_size:
                        rows.append((cx, cy, 1.0, 1.0))
                    else:
                        rows.append((cx, cy, w, h))
        layer = last
    return np.asarray(rows, dtype=np.float32)
