"""Data codecs shared by every container: training files, request bodies and response bodies.

Training: :func:`find_channel_files`, then :func:`iter_file_batches` (streamed, bounded memory) or
:func:`read_files` (whole). Serving: :func:`decode_request` and :func:`encode_rows`, with
:func:`negotiate_accept` run before any compute. Formats: CSV, LIBSVM, Parquet, JSON, JSON Lines and
RecordIO-protobuf (byte-identical with the SageMaker SDK writers).
"""

from __future__ import annotations

from containers.toolkit.codecs.batch import Batch, concat_batches, rebatch
from containers.toolkit.codecs.content_types import (
    CSV,
    JSON,
    JSONLINES,
    LIBSVM,
    PARQUET,
    RECORDIO_PROTOBUF,
    MediaType,
    negotiate_accept,
    parse_media_type,
)
from containers.toolkit.codecs.files import HIDDEN_FILE_MESSAGE, find_channel_files, iter_file_batches, read_files
from containers.toolkit.codecs.inference import decode_dense_request, decode_request, encode_rows
from containers.toolkit.codecs.recordio import (
    decode_label_records,
    encode_label_records,
    iter_recordio_batches,
    iter_records,
    read_recordio,
    write_recordio,
)

__all__ = [
    "CSV",
    "HIDDEN_FILE_MESSAGE",
    "JSON",
    "JSONLINES",
    "LIBSVM",
    "PARQUET",
    "RECORDIO_PROTOBUF",
    "Batch",
    "MediaType",
    "concat_batches",
    "decode_dense_request",
    "decode_label_records",
    "decode_request",
    "encode_label_records",
    "encode_rows",
    "find_channel_files",
    "iter_file_batches",
    "iter_recordio_batches",
    "iter_records",
    "negotiate_accept",
    "parse_media_type",
    "read_files",
    "read_recordio",
    "rebatch",
    "write_recordio",
]
