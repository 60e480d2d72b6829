"""Read and rewrite the float32 weights of an ONNX file with the standard library only.

An edge box that keeps learning must write its updated weights back into an
ONNX file, without torch and without the ``onnx`` package.  An ONNX model is a
protocol-buffer message; the weights are ``TensorProto`` initializers of the
graph, stored as ``raw_data`` (little-endian bytes) or packed ``float_data``.
Updated weights have the same shapes, hence the same number of bytes, so they
are written over the old ones in place: every other byte of the file (graph,
metadata, opset) stays identical, and onnxruntime loads the result as before.

Only the wire format is parsed (varints and length-delimited fields), along the
path ``ModelProto.graph (7) -> GraphProto.initializer (5) -> TensorProto``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsforge.errors import ArtifactError

_MODEL_GRAPH, _GRAPH_INITIALIZER = 7, 5
_T_DIMS, _T_DATA_TYPE, _T_FLOAT_DATA, _T_NAME, _T_RAW_DATA = 1, 2, 4, 8, 9
_FLOAT = 1  # TensorProto.DataType.FLOAT


@dataclass(frozen=True)
class TensorSpan:
    """Where an initializer's values lie in the file: ``data[offset:offset+length]``."""

    name: str
    dims: tuple[int, ...]
    data_type: int
    offset: int
    length: int


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ArtifactError("ONNX file ends inside a varint; it is truncated")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes, start: int, end: int):
    """Yield ``(field, wire_type, value_or_offset, length)`` of a message in ``buf[start:end]``.

    For length-delimited fields the third item is the payload offset; for varints the value.
    """
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield field, wire, value, 0
        elif wire == 1:
            yield field, wire, pos, 8
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            yield field, wire, pos, length
            pos += length
        elif wire == 5:
            yield field, wire, pos, 4
            pos += 4
        else:
            raise ArtifactError(f"unsupported protobuf wire type {wire} in the ONNX file")
    if pos != end:
        raise ArtifactError("ONNX message overruns its length; the file is damaged")


def _tensor(buf: bytes, start: int, end: int) -> TensorSpan | None:
    dims: list[int] = []
    name, dtype, offset, length = "", 0, -1, 0
    for field, wire, val, ln in _fields(buf, start, end):
        if field == _T_DIMS and wire == 0:
            dims.append(val)
        elif field == _T_DIMS and wire == 2:
            p = val
            while p < val + ln:
                d, p = _varint(buf, p)
                dims.append(d)
        elif field == _T_DATA_TYPE and wire == 0:
            dtype = val
        elif field == _T_NAME and wire == 2:
            name = buf[val : val + ln].decode()
        elif field in (_T_RAW_DATA, _T_FLOAT_DATA) and wire == 2:
            offset, length = val, ln
    if offset < 0:
        return None
    return TensorSpan(name, tuple(dims), dtype, offset, length)


def initializer_spans(data: bytes) -> dict[str, TensorSpan]:
    """Every initializer of the model's main graph whose values are stored in bulk."""
    spans: dict[str, TensorSpan] = {}
    for field, wire, off, ln in _fields(data, 0, len(data)):
        if field != _MODEL_GRAPH or wire != 2:
            continue
        for g_field, g_wire, t_off, t_ln in _fields(data, off, off + ln):
            if g_field == _GRAPH_INITIALIZER and g_wire == 2:
                span = _tensor(data, t_off, t_off + t_ln)
                if span is not None:
                    spans[span.name] = span
    return spans


def read_initializers(data: bytes) -> dict[str, np.ndarray]:
    """The float32 initializers as arrays (copies), by name."""
    out = {}
    for name, s in initializer_spans(data).items():
        if s.data_type == _FLOAT and s.length == 4 * int(np.prod(s.dims, dtype=np.int64)):
            raw = np.frombuffer(data, dtype="<f4", count=s.length // 4, offset=s.offset)
            out[name] = raw.reshape(s.dims).copy()
    return out


def patch_initializers(data: bytes, values: dict[str, np.ndarray]) -> bytes:
    """Return ``data`` with the named float32 initializers replaced by ``values``.

    Raises :class:`ArtifactError` naming the initializer when it is absent, not
    float32, or of another shape than the new value.
    """
    spans = initializer_spans(data)
    out = bytearray(data)
    for name, value in values.items():
        span = spans.get(name)
        if span is None:
            raise ArtifactError(f"ONNX file has no initializer '{name}' to update; the bundle's "
                                "adaptation map does not match its model, re-export the bundle")
        arr = np.ascontiguousarray(value, dtype="<f4")
        if span.data_type != _FLOAT or tuple(arr.shape) != span.dims or arr.nbytes != span.length:
            raise ArtifactError(
                f"initializer '{name}' holds {span.dims} (type {span.data_type}); the update has "
                f"shape {arr.shape}: re-export the bundle with this model's configuration"
            )
        out[span.offset : span.offset + span.length] = arr.tobytes()
    return bytes(out)
