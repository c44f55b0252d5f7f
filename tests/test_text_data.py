"""Text loading, Gutenberg stripping, vocabulary round trip, the contiguous split and the clear errors."""

from __future__ import annotations

import pytest

from neuralsight.data.text import (
    Vocab,
    check_lengths,
    choose_seed,
    encode_corpus,
    read_text,
    seed_from_text,
    split_ids,
    strip_gutenberg,
)
from neuralsight.errors import DataError

GUTENBERG = ("The Project Gutenberg eBook of Something\n\nLicence blah\n"
             "*** START OF THE PROJECT GUTENBERG EBOOK ROMEO AND JULIET ***\n\n"
             "ROMEO.\nBut soft!\n\n*** END OF THE PROJECT GUTENBERG EBOOK ROMEO AND JULIET ***\nmore licence\n")


def test_vocab_round_trip_and_json():
    text = "ROMEO.\nBut soft, what light’s æ?\n"
    vocab = Vocab.from_text(text)
    assert vocab.chars == "".join(sorted(set(text)))
    ids = vocab.encode(text)
    assert vocab.decode(ids.tolist()) == text
    again = Vocab.from_json(vocab.to_json())
    assert again == vocab and again.decode(again.encode(text)) == text
    assert encode_corpus(text, vocab).tolist() == ids.tolist()


def test_unknown_characters_are_named():
    vocab = Vocab.from_text("abc ")
    assert vocab.unknown("abzxz") == ["z", "x"]
    with pytest.raises(DataError, match=r"2 character\(s\).*'z', 'x'"):
        vocab.check("abzxz", "seed")


def test_strip_gutenberg_header_and_footer(tmp_path):
    assert strip_gutenberg(GUTENBERG) == "ROMEO.\nBut soft!\n"
    plain = "no header here\n"
    assert strip_gutenberg(plain) == plain
    p = tmp_path / "book.txt"
    p.write_bytes(GUTENBERG.replace("\n", "\r\n").encode("utf-8"))
    assert read_text(p) == "ROMEO.\nBut soft!\n"


def test_split_is_contiguous_90_10():
    ids = list(range(1000))
    train, val = split_ids(ids, 0.9)
    assert train == ids[:900] and val == ids[900:]


@pytest.mark.parametrize("content,match", [
    (b"", "is empty"),
    (b"   \n\n", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    (b"caf\xe9 au lait", "not UTF-8"),
])
def test_bad_files_get_clear_errors(tmp_path, content, match):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(DataError, match=match) as err:
        read_text(p)
    assert str(p) in str(err.value)


def test_missing_and_too_short(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_text(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="too short.*needs 130"):
        check_lengths(50, 10, 128, "text file x.txt")



def test_seed_from_text_is_the_most_frequent_short_line_else_the_first_line():
    play = "THE TRAGEDY\n\nHAMLET.\nTo be.\n\nOPHELIA.\nMy lord.\n\nOPHELIA.\nNo.\n\nHAMLET.\nAy.\n"
    assert seed_from_text(play) == "HAMLET."                       # twice each: the one that came first
    assert seed_from_text(play + "OPHELIA.\n") == "OPHELIA."
    assert seed_from_text("  ***  \n\n***\nSzeptember végén\n***\n") == "Szeptember végén"   # needs a letter
    prose = "Még nyílnak a völgyben a kerti virágok, még zöldel a nyárfa az ablak előtt.\nDe látod amottan.\n"
    assert seed_from_text(prose) == "Még nyílnak a völgyben a kerti virágok,"   # first line, cut at a space (40)
    assert seed_from_text("1234 5678\n") == "1234 5678"


def test_choose_seed_keeps_a_seed_that_fits_and_says_why_it_replaced_one():
    vocab = Vocab.from_text("A magyarok istenére\nEsküszünk, ő ű\n")
    assert choose_seed("magyar", vocab, "A magyarok istenére") == ("magyar", "")
    assert choose_seed("", vocab, "A magyarok istenére") == ("A magyarok istenére", "")   # empty: from the text
    seed, note = choose_seed("ROMEO:", vocab, "A magyarok istenére")
    assert seed == "A magyarok istenére"
    assert note == ("samples.seed 'ROMEO:' holds characters the text lacks ('R', 'O', 'M', ':'); the samples "
                    "continue 'A magyarok istenére', from the text")
