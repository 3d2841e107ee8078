"""Blocks of whole lines from a JSONL file, including lines far longer than a block
(one huge value): gathered in pieces, joined once."""

from __future__ import annotations

import io

import pytest

from harness.formats.jsonl import _blocks


class _CountingFile(io.BytesIO):
    """Counts the reads, to see that a long line is read once, piece by piece."""

    reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        return super().read(size)


@pytest.mark.parametrize("size", [1, 3, 16, 1 << 16])
def test_blocks_are_whole_lines_whatever_their_length(size: int) -> None:
    long = b'{"value": "' + b"x" * 5000 + b'"}\n'
    text = b'{"a": 1}\n' + long + b'{"b": 2}\n' + long + b'{"c": 3}'
    f = _CountingFile(text)
    blocks = list(_blocks(f, size))
    assert b"".join(blocks) == text
    assert all(b.endswith(b"\n") for b in blocks[:-1])
    assert f.reads == -(-len(text) // size) + 1  # each byte read once, then the end


def test_an_empty_file_has_no_block() -> None:
    assert list(_blocks(io.BytesIO(b""), 8)) == []
