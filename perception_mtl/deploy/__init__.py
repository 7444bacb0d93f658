"""Deployment: ONNX export of the models' export boundaries and ONNX Runtime inference."""

from .onnx_export import export_onnx

__all__ = ["export_onnx"]
