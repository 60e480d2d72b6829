"""ONNX export of forecasters' streaming steps."""

from tsforge.export.onnx import ExportReport, export_onnx, manifest_path_for

__all__ = ["ExportReport", "export_onnx", "manifest_path_for"]
