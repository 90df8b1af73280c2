"""Every constant of the LiteRT hand engine, checked against the graph inside the mediapipe wheel.

The engine hard-codes the options of ``hand_landmark_tracking_cpu.binarypb`` (so the worker
never imports mediapipe); this test expands that graph with mediapipe's own
``ValidatedGraphConfig``, as ``solution_base.py`` does for ``mp.solutions.hands``, and reads each
option, defaults included, from the node it came from. A mediapipe upgrade that changes the graph
fails here, by name, before it fails as a landmark drift.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from server.model.files import hand_model_files, mediapipe_package_dir
from server.model.litert import anchors, geometry, landmark, palm
from server.model.litert.engine import ASSOCIATION_MIN_SIMILARITY
from server.model.litert.models import read_handedness_labels

GRAPH = "mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.binarypb"


@pytest.fixture(scope="module")
def nodes() -> dict[str, Any]:
    """The expanded graph's nodes by name (unnamed top-level nodes by calculator)."""
    import mediapipe
    from mediapipe.framework import calculator_pb2
    from mediapipe.python._framework_bindings import resource_util, validated_graph_config

    root = Path(mediapipe.__file__).parent.parent
    resource_util.set_resource_dir(str(root))
    validated = validated_graph_config.ValidatedGraphConfig()
    validated.initialize(binary_graph_path=str(root / GRAPH))
    config = calculator_pb2.CalculatorGraphConfig()
    config.ParseFromString(validated.binary_config)
    by_name: dict[str, Any] = {}
    for node in config.node:
        by_name.setdefault(node.name or node.calculator, node)
    return by_name


def options(node: Any, extension: str) -> Any:
    """The node's options message for ``extension`` (e.g. "mediapipe.SsdAnchorsCalculatorOptions"),
    read through the extension so that unset fields give the proto's defaults."""
    from google.protobuf import descriptor_pool  # type: ignore[import-untyped]

    ext = descriptor_pool.Default().FindExtensionByName(f"{extension}.ext")
    return node.options.Extensions[ext]


def test_anchor_options(nodes: dict[str, Any]) -> None:
    o = options(nodes["palmdetectioncpu__SsdAnchorsCalculator"], "mediapipe.SsdAnchorsCalculatorOptions")
    mine = anchors.PALM_ANCHOR_OPTIONS
    assert (o.input_size_width, o.input_size_height) == (mine.input_size_width, mine.input_size_height)
    assert math.isclose(o.min_scale, mine.min_scale, rel_tol=1e-7)
    assert math.isclose(o.max_scale, mine.max_scale, rel_tol=1e-7)
    assert (o.anchor_offset_x, o.anchor_offset_y) == (mine.anchor_offset_x, mine.anchor_offset_y)
    assert o.num_layers == len(mine.strides)
    assert tuple(o.strides) == mine.strides
    assert tuple(o.aspect_ratios) == mine.aspect_ratios
    assert o.fixed_anchor_size == mine.fixed_anchor_size
    assert o.interpolated_scale_aspect_ratio == mine.interpolated_scale_aspect_ratio
    assert o.reduce_boxes_in_lowest_layer == mine.reduce_boxes_in_lowest_layer


def test_palm_input_tensor(nodes: dict[str, Any]) -> None:
    o = options(nodes["palmdetectioncpu__ImageToTensorCalculator"], "mediapipe.ImageToTensorCalculatorOptions")
    assert (o.output_tensor_width, o.output_tensor_height) == (palm.PALM_INPUT_SIZE, palm.PALM_INPUT_SIZE)
    assert o.keep_aspect_ratio
    assert (o.output_tensor_float_range.min, o.output_tensor_float_range.max) == (0.0, 1.0)
    assert o.border_mode == o.BORDER_ZERO  # crop_to_tensor(..., "zero") in detect_palms


def test_palm_decoding(nodes: dict[str, Any]) -> None:
    o = options(
        nodes["palmdetectioncpu__TensorsToDetectionsCalculator"], "mediapipe.TensorsToDetectionsCalculatorOptions"
    )
    assert o.num_classes == 1
    assert o.num_boxes == palm.NUM_BOXES == len(anchors.generate_anchors())
    assert o.num_coords == palm.NUM_COORDS
    assert o.box_coord_offset == palm.BOX_COORD_OFFSET
    assert o.keypoint_coord_offset == palm.KEYPOINT_COORD_OFFSET
    assert o.num_keypoints == palm.NUM_KEYPOINTS
    assert o.num_values_per_keypoint == palm.NUM_VALUES_PER_KEYPOINT
    assert o.x_scale == o.y_scale == o.w_scale == o.h_scale == palm.BOX_SCALE
    assert o.reverse_output_order  # decode_palms reads (x, y, w, h)
    assert o.sigmoid_score
    assert not o.apply_exponential_on_box_size
    assert not o.flip_vertically
    assert o.score_clipping_thresh == palm.SCORE_CLIPPING_THRESH
    assert o.min_score_thresh == 0.5  # the engine's min_detection_confidence default


def test_palm_nms(nodes: dict[str, Any]) -> None:
    o = options(nodes["palmdetectioncpu__NonMaxSuppressionCalculator"], "mediapipe.NonMaxSuppressionCalculatorOptions")
    assert math.isclose(o.min_suppression_threshold, palm.NMS_MIN_SUPPRESSION_THRESHOLD, rel_tol=1e-7)
    assert o.algorithm == o.WEIGHTED
    assert o.overlap_type == o.INTERSECTION_OVER_UNION


def test_palm_to_hand_rect(nodes: dict[str, Any]) -> None:
    d = options(
        nodes["palmdetectiondetectiontoroi__DetectionsToRectsCalculator"],
        "mediapipe.DetectionsToRectsCalculatorOptions",
    )
    assert d.rotation_vector_start_keypoint_index == palm.ROTATION_START_KEYPOINT
    assert d.rotation_vector_end_keypoint_index == palm.ROTATION_END_KEYPOINT
    assert math.radians(d.rotation_vector_target_angle_degrees) == palm.ROTATION_TARGET_RADIANS
    r = options(
        nodes["palmdetectiondetectiontoroi__RectTransformationCalculator"],
        "mediapipe.RectTransformationCalculatorOptions",
    )
    assert math.isclose(r.scale_x, palm.PALM_RECT_SCALE, rel_tol=1e-7)
    assert math.isclose(r.scale_y, palm.PALM_RECT_SCALE, rel_tol=1e-7)
    assert (r.shift_x, r.shift_y) == (0.0, palm.PALM_RECT_SHIFT_Y)
    assert r.square_long == palm.PALM_RECT_SQUARE_LONG


def test_association(nodes: dict[str, Any]) -> None:
    node = nodes["AssociationNormRectCalculator"]
    o = options(node, "mediapipe.AssociationCalculatorOptions")
    assert o.min_similarity_threshold == ASSOCIATION_MIN_SIMILARITY
    # Palm rects first, tracked rects last: the order associate_rects relies on.
    assert list(node.input_stream) == ["hand_rects_from_palm_detections", "gated_prev_hand_rects_from_landmarks"]


def test_landmark_input_tensor(nodes: dict[str, Any]) -> None:
    o = options(nodes["handlandmarkcpu__ImageToTensorCalculator"], "mediapipe.ImageToTensorCalculatorOptions")
    size = landmark.LANDMARK_INPUT_SIZE
    assert (o.output_tensor_width, o.output_tensor_height) == (size, size)
    assert o.keep_aspect_ratio
    assert (o.output_tensor_float_range.min, o.output_tensor_float_range.max) == (0.0, 1.0)
    # Unset means replicate (image_to_tensor_utils GetBorderMode): crop_to_tensor(..., "replicate").
    assert o.border_mode in (o.BORDER_UNSPECIFIED, o.BORDER_REPLICATE)


def test_landmark_decoding(nodes: dict[str, Any]) -> None:
    o = options(
        nodes["handlandmarkcpu__TensorsToLandmarksCalculator_1"], "mediapipe.TensorsToLandmarksCalculatorOptions"
    )
    assert o.num_landmarks == landmark.NUM_LANDMARKS
    assert o.input_image_width == o.input_image_height == landmark.LANDMARK_INPUT_SIZE
    assert math.isclose(o.normalize_z, landmark.NORMALIZE_Z, rel_tol=1e-7)
    assert not o.flip_horizontally
    assert not o.flip_vertically
    w = options(
        nodes["handlandmarkcpu__TensorsToLandmarksCalculator_2"], "mediapipe.TensorsToLandmarksCalculatorOptions"
    )
    assert w.num_landmarks == landmark.NUM_LANDMARKS
    assert not w.HasField("input_image_width")  # world landmarks stay in metres
    t = options(nodes["handlandmarkcpu__ThresholdingCalculator"], "mediapipe.ThresholdingCalculatorOptions")
    assert t.threshold == 0.5  # the engine's min_tracking_confidence default
    c = options(
        nodes["handlandmarkcpu__TensorsToClassificationCalculator"],
        "mediapipe.TensorsToClassificationCalculatorOptions",
    )
    assert c.binary_classification
    assert c.top_k == 1
    assert c.label_map_path == "mediapipe/modules/hand_landmark/handedness.txt"
    assert read_handedness_labels(mediapipe_package_dir() / "modules/hand_landmark/handedness.txt") == (
        landmark.DEFAULT_HANDEDNESS_LABELS
    )
    split = options(nodes["handlandmarkcpu__SplitTensorVectorCalculator"], "mediapipe.SplitVectorCalculatorOptions")
    # landmarks, presence, handedness, world: one tensor each, in model output order.
    assert [(r.begin, r.end) for r in split.ranges] == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_tracking_rect(nodes: dict[str, Any]) -> None:
    r = options(
        nodes["handlandmarklandmarkstoroi__RectTransformationCalculator"],
        "mediapipe.RectTransformationCalculatorOptions",
    )
    assert (r.scale_x, r.scale_y) == (landmark.TRACK_RECT_SCALE, landmark.TRACK_RECT_SCALE)
    assert math.isclose(r.shift_y, landmark.TRACK_RECT_SHIFT_Y, rel_tol=1e-6)
    assert r.shift_x == 0.0
    assert r.square_long == landmark.TRACK_RECT_SQUARE_LONG
    assert len(geometry.TRACKING_SUBSET) == 12


@pytest.mark.parametrize(("complexity", "select"), [("lite", 0), ("full", 1)])
def test_model_paths(nodes: dict[str, Any], complexity: str, select: int) -> None:
    files = hand_model_files(complexity)  # type: ignore[arg-type]
    root = mediapipe_package_dir().parent
    for loader, path in (
        ("palmdetectioncpu__palmdetectionmodelloader", files.palm_detection),
        ("handlandmarkcpu__handlandmarkmodelloader", files.hand_landmark),
    ):
        node = nodes[f"{loader}__switchcontainer__ConstantSidePacketCalculator_{select + 1}"]
        o = options(node, "mediapipe.ConstantSidePacketCalculatorOptions")
        assert root / o.packet[0].string_value == path
