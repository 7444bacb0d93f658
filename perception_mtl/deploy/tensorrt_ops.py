"""Which ONNX graphs TensorRT 10's ONNX parser builds without plugins, and a checker for exported graphs.

Source of the allow-list: the operator support matrix of ONNX-TensorRT, ``docs/operators.md`` at
``onnx/onnx-tensorrt`` commit 96e7811 ("ONNX-TensorRT 10.1 GA release", opsets 9-20); every operator
marked ``Y`` there is listed in :data:`TENSORRT10_ONNX_OPS`, and the restrictions this project can hit
are in :data:`TENSORRT10_RESTRICTIONS` (quoted from the same table).

:func:`check_graph` applies the allow-list plus this project's own stricter rules (DESIGN §2):

* no ``NonZero`` (TensorRT 10 parses it, but its output shape depends on the data; it is what
  boolean-mask indexing exports to, and mask indexing is not allowed in our graphs);
* no ``reduction`` on ``ScatterND`` (TensorRT: "`reduction` is not supported") nor on
  ``ScatterElements`` / ``Scatter`` (the scatter-add BEV pool; TensorRT's table lists no reduction
  support for them either, and mmdeploy's ScatterND plugin rejects duplicate indices);
* ``GridSample`` only on 4D inputs (TensorRT: "Input must be 4D input"; a 5D volume lookup fails);
* no custom-domain ops (they need a plugin library);
* ``Unique`` and the other ``N`` operators are simply absent from the allow-list.
"""

from __future__ import annotations

from dataclasses import dataclass

TENSORRT10_SOURCE = (
    "onnx/onnx-tensorrt docs/operators.md @ 96e7811 (ONNX-TensorRT 10.1 GA release): "
    "https://github.com/onnx/onnx-tensorrt/blob/96e7811/docs/operators.md"
)

# Operators marked "Y" in the TensorRT 10.1 support matrix (TENSORRT10_SOURCE).
TENSORRT10_ONNX_OPS = frozenset(
    {
        "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
        "AveragePool", "BatchNormalization", "Cast", "CastLike", "Ceil", "Celu", "Clip", "Concat", "Constant",
        "ConstantOfShape", "Conv", "ConvTranspose", "Cos", "Cosh", "CumSum", "DeformConv", "DepthToSpace",
        "DequantizeLinear", "Div", "Dropout", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike",
        "Flatten", "Floor", "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool",
        "GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "GridSample", "GroupNormalization", "GRU",
        "HardSigmoid", "HardSwish", "Hardmax", "Identity", "If", "ImageScaler", "InstanceNormalization", "IsInf",
        "IsNaN", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop", "LRN",
        "LSTM", "LpNormalization", "LpPool", "MatMul", "Max", "MaxPool", "Mean", "MeanVarianceNormalization",
        "Min", "Mish", "Mod", "Mul", "Neg", "NonMaxSuppression", "NonZero", "Not", "OneHot", "Or", "Pad",
        "ParametricSoftplus", "Pow", "PRelu", "QuantizeLinear", "RandomNormal", "RandomNormalLike",
        "RandomUniform", "RandomUniformLike", "Range", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum",
        "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare",
        "Relu", "Reshape", "Resize", "ReverseSequence", "RNN", "RoiAlign", "Round", "ScaledTanh", "Scan",
        "Scatter", "ScatterElements", "ScatterND", "Selu", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh",
        "Size", "Slice", "Softmax", "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub",
        "Sum", "Tan", "Tanh", "ThresholdedRelu", "Tile", "TopK", "Transpose", "Trilu", "Unsqueeze", "Upsample",
        "Where", "Xor",
    }
)  # fmt: skip

# Restrictions from the same table for operators our models emit (quoted).
TENSORRT10_RESTRICTIONS = {
    "CumSum": "`axis` must be an initializer",
    "GridSample": "Input must be 4D input.",
    "ScatterND": "`reduction` is not supported",
    "TopK": "`sorted` must be 1. `K` input must be less than 3840.",
    "ReduceSum": "`axes` must be an initializer",
    "Resize": "modes half_pixel, pytorch_half_pixel, tf_half_pixel_for_nn, asymmetric, align_corners; "
    "nearest or linear; no antialiasing",
}

# Project rules on top of the allow-list (module docstring).
FORBIDDEN_OPS = {"NonZero": "data-dependent output shape (boolean-mask indexing); not allowed in our graphs"}
SCATTER_OPS = ("Scatter", "ScatterElements", "ScatterND")


@dataclass(frozen=True)
class OpViolation:
    """One node that TensorRT 10 cannot parse without a plugin (or that our rules forbid)."""

    node: str
    op_type: str
    reason: str

    def __str__(self) -> str:
        return f"{self.op_type} ({self.node or 'unnamed'}): {self.reason}"


def _attribute(node, name: str):
    import onnx

    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return None


def _ranks(model) -> dict[str, int]:
    """Rank of every tensor whose shape ONNX shape inference can tell (inputs, outputs, value_info)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference is best effort; unknown ranks are reported below
        inferred = model
    graph = inferred.graph
    ranks = {}
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        tensor_type = value.type.tensor_type
        if tensor_type.HasField("shape"):
            ranks[value.name] = len(tensor_type.shape.dim)
    for init in graph.initializer:
        ranks[init.name] = len(init.dims)
    return ranks


def _subgraphs(graph):
    """The graph and every subgraph of If / Loop / Scan nodes, depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from _subgraphs(attr.g)
            for sub in attr.graphs:
                yield from _subgraphs(sub)


def check_graph(model) -> list[OpViolation]:
    """Every node of ``model`` (an ``onnx.ModelProto`` or a path) that breaks the TensorRT 10 rules.

    Returns:
        The violations, empty when TensorRT 10's ONNX parser should build the graph without plugins.
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    ranks = _ranks(model)
    found = []
    for graph in _subgraphs(model.graph):
        for node in graph.node:
            op, name = node.op_type, node.name
            if node.domain not in ("", "ai.onnx"):
                found.append(OpViolation(name, op, f"custom domain {node.domain!r} needs a TensorRT plugin"))
                continue
            if op in FORBIDDEN_OPS:
                found.append(OpViolation(name, op, FORBIDDEN_OPS[op]))
            elif op not in TENSORRT10_ONNX_OPS:
                found.append(OpViolation(name, op, "not supported by TensorRT 10's ONNX parser"))
            elif op in SCATTER_OPS and (_attribute(node, "reduction") or b"none") not in (b"none", "none"):
                reduction = _attribute(node, "reduction")
                reduction = reduction.decode() if isinstance(reduction, bytes) else reduction
                found.append(OpViolation(name, op, f"reduction={reduction!r} is not supported by TensorRT 10"))
            elif op == "GridSample":
                rank = ranks.get(node.input[0])
                if rank != 4:
                    what = "unknown rank" if rank is None else f"a {rank}D input"
                    found.append(OpViolation(name, op, f"TensorRT 10 supports 4D inputs only, got {what}"))
    return found


def assert_tensorrt_compatible(model, graph_name: str = "graph") -> None:
    """Raises ``ValueError`` listing every violation of :func:`check_graph` (at most 20 shown)."""
    found = check_graph(model)
    if found:
        shown = "; ".join(str(v) for v in found[:20])
        more = f" (+{len(found) - 20} more)" if len(found) > 20 else ""
        raise ValueError(f"{graph_name}: {len(found)} node(s) TensorRT 10 cannot parse: {shown}{more}")
