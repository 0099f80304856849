"""A distribution's RECORD file, read once: its bytes and its rows.

Deciding whether an environment is published again reads every RECORD (the fingerprint,
:meth:`~cluster_pack.pack.environment.Distribution.content_hash`), so do choosing the
single file's layout (:func:`installed_size`) and zipping a distribution
(:func:`cluster_pack.pack.distzip.plan`). A RECORD is read from disk once and kept while
the file is the same (device, inode, size and mtime: an install or an upgrade rewrites
it), so one publish reads each RECORD once.

>>> import pathlib, tempfile
>>> meta = pathlib.Path(tempfile.mkdtemp()) / "six-1.17.0.dist-info"
>>> meta.mkdir()
>>> _ = (meta / "RECORD").write_text("six.py,sha256=abc,34549\\nsix-1.17.0.dist-info/RECORD,,\\n")
>>> read_record(meta).rows
[['six.py', 'sha256=abc', '34549'], ['six-1.17.0.dist-info/RECORD', '', '']]
>>> installed_size([meta])
(34549, 2)
"""

from __future__ import annotations

import csv
import functools
import io
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

# A RECORD is a few kB to a few MB; this many covers the largest environments.
_KEPT = 4096
_lock = threading.Lock()
_records: "OrderedDict[str, Tuple[tuple, Record]]" = OrderedDict()


class Record:
    """The content of one RECORD file."""

    def __init__(self, path: Path, raw: bytes):
        self.path = path
        self.raw = raw

    @functools.cached_property
    def rows(self) -> List[List[str]]:
        """The CSV rows as written (not padded), empty lines left out. Raises
        ``UnicodeDecodeError`` for a RECORD that is not UTF-8."""
        text = self.raw.decode("utf-8")
        return [row for row in csv.reader(io.StringIO(text, newline="")) if row]

    @property
    def line_ending(self) -> str:
        """The file's line ending (``\\r\\n`` or ``\\n``), to write a RECORD the same way."""
        return "\r\n" if self.raw.split(b"\n", 1)[0].endswith(b"\r") else "\n"

    def installed(self) -> Tuple[int, int]:
        """(bytes, files) the RECORD lists: rows with a path, a hash and a size column."""
        rows = [row for row in self.rows if len(row) >= 3]
        return sum(int(row[-1]) for row in rows if row[-1].isdigit()), len(rows)


def read_record(metadata_dir: Path) -> Optional[Record]:
    """The RECORD of a ``.dist-info`` directory, None when it has no readable one."""
    path = metadata_dir / "RECORD"
    try:
        st = os.stat(path)
    except OSError:
        return None
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    key = str(path)
    with _lock:
        kept = _records.get(key)
        if kept is not None and kept[0] == identity:
            _records.move_to_end(key)
            return kept[1]
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            record = Record(path, f.read())
    except OSError:
        return None
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _lock:
        _records[key] = (identity, record)
        while len(_records) > _KEPT:
            _records.popitem(last=False)
    return record


def installed_size(metadata_dirs: Iterable[Path]) -> Tuple[int, int]:
    """(bytes, files) installed by these distributions, from their RECORD files."""
    total, count = 0, 0
    for metadata_dir in metadata_dirs:
        record = read_record(metadata_dir)
        if record is not None:
            size, files = record.installed()
            total, count = total + size, count + files
    return total, count
