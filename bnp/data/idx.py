"""Reading the IDX files of MNIST and Fashion-MNIST, with checks that name the bad file.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension,
then the values in C order. The magic number is ``0x0000 TT DD``: two zero
bytes, the value type (``0x08`` = unsigned byte) and the number of
dimensions, so MNIST images (3-d) have magic 2051 and labels (1-d) 2049.
Files may be gzip-compressed (``.gz``).
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy  # host-side file parsing

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (count, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (count)


class DataFileError(ValueError):
    """A data file that exists but is truncated, corrupt or of the wrong kind."""


def read_bytes(path: str) -> bytes:
    """The file's contents, decompressed if the name ends in ``.gz``."""
    if not path.endswith(".gz"):
        with open(path, "rb") as f:
            return f.read()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataFileError(f"{path}: corrupt or truncated gzip file ({exc})") from exc


def read_idx(path: str, magic: int) -> numpy.ndarray:
    """Parse an unsigned-byte IDX file and check it is complete.

    Args:
        path: the file (``.gz`` or raw).
        magic: the expected magic number (2051 for images, 2049 for labels).

    Returns:
        a uint8 array with the dimensions given in the header.

    Raises:
        DataFileError: wrong magic number, header or file size not matching the dimensions.
    """
    raw = read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{path}: truncated: {len(raw)} bytes, shorter than the {header}-byte IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataFileError(
            f"{path}: magic number {found} (0x{found:08x}), expected {magic} (0x{magic:08x}); "
            "not an MNIST " + ("image" if magic == IMAGES_MAGIC else "label") + " file, or corrupt"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(numpy.prod(dims))
    if len(raw) < expected:
        raise DataFileError(
            f"{path}: truncated: the header promises dimensions {dims} ({expected} bytes), the file has {len(raw)}"
        )
    if len(raw) > expected:
        raise DataFileError(
            f"{path}: corrupt: {len(raw) - expected} unexpected bytes after the data of dimensions {dims}"
        )
    return numpy.frombuffer(raw, dtype=numpy.uint8, offset=header).reshape(dims)


def write_idx(path: str, array: numpy.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzip-compressed if ``path`` ends in ``.gz``); used by tests."""
    array = numpy.ascontiguousarray(array, dtype=numpy.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
