"""Quoted-printable pieces: decode to what went in, lines of 76 at most, already canonical."""

from __future__ import annotations

import binascii
import random

from dkim.canonicalization import Relaxed

from clarion.delivery import qp

ALPHABET = [b"a", b"Z", b" ", b"\t", b"=", b".", b"\r\n", b"\n", b"\r", "ы".encode(), b"~"]


def _decode(wire: bytes) -> bytes:
    return binascii.a2b_qp(wire.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")


def _text(rng: random.Random, n: int) -> bytes:
    return b"".join(rng.choice(ALPHABET) for _ in range(n))


def _expected(raw: bytes) -> bytes:
    # What a reader sees: line ends CRLF, a bare CR a CR (encoded, never a line end).
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_pieces_joined_decode_to_the_text_fit_76_and_are_their_own_canonical_form():
    rng = random.Random(20261203)
    for _ in range(400):
        raws = [_text(rng, rng.randrange(0, 120)) for _ in range(rng.randrange(1, 6))]
        wire = b"".join([*(qp.piece(r) for r in raws[:-1]), qp.encode(raws[-1])])
        assert _decode(wire) == b"".join(_expected(r) for r in raws), raws
        lines = wire.split(b"\r\n")
        assert max(len(line) for line in lines) <= qp.MAX_LINE, raws
        assert b"\n" not in wire.replace(b"\r\n", b"") and b"\r" not in wire.replace(b"\r\n", b"")
        # Relaxed canonicalisation only drops empty lines at the very end; nothing inside.
        assert Relaxed.canonicalize_body(wire + b"\r\nEND\r\n") == wire + b"\r\nEND\r\n", raws


def test_a_piece_whose_last_character_fills_the_line_moves_it_to_the_next():
    for tail in (b"x", b"=", "é".encode()):
        raw = b"a" * 75 + tail
        wire = qp.piece(raw)
        assert max(len(line) for line in wire.split(b"\r\n")) <= qp.MAX_LINE
        assert wire.endswith(qp.SOFT_BREAK) and _decode(wire) == raw


def test_runs_of_whitespace_and_tabs_are_encoded_not_collapsed():
    wire = qp.encode(b"a  b\t\tc \r\nd ")
    assert wire == b"a =20b=09=09c=20\r\nd=20"
    assert _decode(wire) == b"a  b\t\tc \r\nd "


def test_control_bytes_used_as_stand_ins_are_dropped():
    assert _decode(qp.encode(b"a\x00b\x01c\x02d")) == b"abcd"


def test_quoted_printable_only_where_it_is_no_longer_than_base64():
    assert qp.worth_it(b"<p>Hello, readers</p>\r\n" * 40)
    assert not qp.worth_it("Пішыце яму ліст\r\n".encode() * 40)
