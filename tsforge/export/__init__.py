"""ONNX export of forecasters' streaming steps, alone or as a deployment bundle."""

from tsforge.export.bundle import BundleReport, export_bundle
from tsforge.export.onnx import ExportReport, export_onnx, manifest_path_for

__all__ = ["BundleReport", "ExportReport", "export_bundle", "export_onnx", "manifest_path_for"]
