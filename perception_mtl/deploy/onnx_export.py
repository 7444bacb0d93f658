"""ONNX export with an ONNX Runtime session to run the exported graph."""

from __future__ import annotations

import io
import warnings

import torch


def export_onnx(module: torch.nn.Module, args: tuple, **export_kwargs):
    """Exports ``module(*args)`` (TorchScript exporter, opset 17, tracer warnings silenced) and loads it
    in onnxruntime on the CPU. Returns ``(session, op_types)``, the set of the graph's node types, so
    tests can assert that no data-dependent-shape op (NonZero from boolean-mask indexing) got in."""
    import onnx
    import onnxruntime as ort

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buffer, dynamo=False, opset_version=17, **export_kwargs)
    op_types = {node.op_type for node in onnx.load_from_string(buffer.getvalue()).graph.node}
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    return session, op_types
