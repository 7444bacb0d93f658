"""The TensorRT 10 op check: the allow-list and the project's rules catch the known traps."""

import io
import warnings

import onnx
import pytest
import torch
import torch.nn.functional as F

from perception_mtl.deploy.tensorrt_ops import (
    TENSORRT10_ONNX_OPS,
    TENSORRT10_SOURCE,
    assert_tensorrt_compatible,
    check_graph,
)


def _export(fn, *args, opset=17) -> onnx.ModelProto:
    class Wrap(torch.nn.Module):
        def forward(self, *inputs):
            return fn(*inputs)

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Wrap(), args, buffer, dynamo=False, opset_version=opset)
    return onnx.load_from_string(buffer.getvalue())


def _ops(found):
    return {v.op_type for v in found}


def test_allow_list_is_the_cited_tensorrt10_matrix():
    assert "96e7811" in TENSORRT10_SOURCE and "operators.md" in TENSORRT10_SOURCE
    assert {"Conv", "Gather", "CumSum", "ReduceSum", "GridSample", "ScatterND", "TopK"} <= TENSORRT10_ONNX_OPS
    assert not {"Unique", "Compress", "SequenceAt", "AffineGrid"} & TENSORRT10_ONNX_OPS


def test_plain_conv_graph_passes():
    weight = torch.randn(4, 3, 3, 3)
    assert check_graph(_export(lambda x: F.conv2d(x, weight).relu().sum(1), torch.randn(1, 3, 8, 8))) == []


def test_boolean_mask_indexing_is_caught_as_nonzero():
    found = check_graph(_export(lambda x: x[x > 0], torch.randn(10)))
    assert "NonZero" in _ops(found)


def test_scatter_add_is_caught_but_plain_scatter_passes():
    index = torch.tensor([0, 1, 1, 2])
    add = _export(lambda x: torch.zeros(3).scatter_add(0, index, x), torch.randn(4))
    found = check_graph(add)
    assert _ops(found) == {"ScatterElements"} and "reduction='add'" in str(found[0])
    plain = _export(lambda x: torch.zeros(3).scatter(0, index, x), torch.randn(4))
    assert check_graph(plain) == []


def test_grid_sample_only_in_4d():
    grid4 = torch.rand(1, 5, 5, 2) * 2 - 1
    assert check_graph(_export(lambda x: F.grid_sample(x, grid4, align_corners=False), torch.randn(1, 2, 6, 6))) == []
    grid5 = torch.rand(1, 3, 5, 5, 3) * 2 - 1
    found = check_graph(
        _export(lambda x: F.grid_sample(x, grid5, align_corners=False), torch.randn(1, 2, 4, 6, 6), opset=20)
    )
    assert _ops(found) == {"GridSample"} and "4D" in str(found[0])


def test_unique_and_custom_domains_are_caught():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, None)
    graph = helper.make_graph(
        [helper.make_node("Unique", ["x"], ["y"]), helper.make_node("bev_pool_v2", ["x"], ["z"], domain="mmdeploy")],
        "g",
        [x],
        [y, z],
    )
    found = check_graph(helper.make_model(graph))
    assert _ops(found) == {"Unique", "bev_pool_v2"}
    with pytest.raises(ValueError, match="my_graph: 2 node"):
        assert_tensorrt_compatible(helper.make_model(graph), "my_graph")
