"""The pure helpers behind the C writer, on their own."""
import keyword

import ml_dtypes
import numpy as np
import pytest

from converter import dtypes
from converter import c_text

C_KEYWORDS = set("""auto break case char const continue default do double else enum extern float for goto if inline int long
register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while _Bool
_Complex _Imaginary alignas alignof and asm bool catch class constexpr delete explicit export false friend mutable
namespace new noexcept not nullptr operator or private protected public template this throw true try typename using
virtual""".split())


@pytest.mark.parametrize("name", ["int", "2fast", "__init", "_X", "a  b", "Über", "层", "", "???", "a__b_", "Dense"])
def test_identifiers_are_never_reserved_or_keywords(name):
    ident = c_text.unique_identifiers([name], "m")[name]
    assert ident.isascii() and ident.isidentifier() and not keyword.iskeyword(ident)
    assert ident not in C_KEYWORDS and "__" not in ident and not ident.startswith("_") and ident == ident.lower()


def test_collisions_after_sanitising_get_stable_suffixes():
    names = ["a.b", "a_b", "a b", "A_B", "a_b_2"]
    first = c_text.unique_identifiers(names, "m")
    assert list(first.values()) == ["m_a_b", "m_a_b_2", "m_a_b_3", "m_a_b_4", "m_a_b_2_2"]
    assert c_text.unique_identifiers(names, "m") == first  # same input, same identifiers


@pytest.mark.parametrize("text", ["*/", "/*", "a\nb", "tab\there", "x\\", "é层", "??/", "\x00"])
def test_comment_text_is_one_safe_ascii_line(text):
    safe = c_text.comment_text(text)
    assert safe.isascii() and "\n" not in safe and "*/" not in safe and "/*" not in safe
    assert all(32 <= ord(c) < 127 for c in safe)


def test_c_string_escapes_to_ascii_and_round_trips_through_c_rules():
    text = 'q"b\\s??=\n\tü层'
    literal = c_text.c_string(text)
    assert literal.isascii() and "??" not in literal
    # undo the C escapes by hand: \ooo octal, \" \\ \?
    body, out, i = literal[1:-1], bytearray(), 0
    while i < len(body):
        if body[i] == "\\" and body[i + 1] in "01234567":
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
        elif body[i] == "\\":
            out.append(ord(body[i + 1]))
            i += 2
        else:
            out.append(ord(body[i]))
            i += 1
    assert out.decode("utf-8") == text


def test_float32_tokens_read_back_bit_identical_over_a_million_random_patterns():
    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2**32, size=1_000_000, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    values = values[np.isfinite(values)]
    tokens = c_text.float32_tokens(values)
    assert tokens.shape == (values.size, 16)
    text = tokens.tobytes().decode()
    parsed = np.array([text[i:i + 15] for i in range(0, len(text), 16)], dtype=np.float64).astype(np.float32)
    assert parsed.tobytes() == values.tobytes()


@pytest.mark.parametrize("value, literal", [
    (0.0, " 0.00000000e+00f"), (-0.0, "-0.00000000e+00f"), (1.0, " 1.00000000e+00f"),
    (16777216.0, " 1.67772160e+07f"), (1.4e-45, " 1.40129846e-45f"), (-3.4028235e38, "-3.40282347e+38f"),
])
def test_float32_literals_are_valid_c_with_a_point_or_exponent(value, literal):
    assert c_text.float32_literal(value) == literal


def test_special_values_use_the_header_macros():
    nan_payload = np.array([0x7FC12345, 0xFFC00000, 0x7F800001], np.uint32).view(np.float32)
    assert c_text.lines(c_text.tokens(nan_payload, dtypes.by_name("float32"), "P")).decode().split() == [
        'P_NANF("0x12345"),', '-P_NANF("0x0"),', 'P_SNANF("0x1"),']
    doubles = np.array([np.inf, -np.inf, 5e-324, 0.1], np.float64)
    assert c_text.lines(c_text.tokens(doubles, dtypes.by_name("float64"), "P")).decode().split() == [
        "P_INF,", "-P_INF,", "5e-324,", "0.1,"]


def test_integer_and_bit_pattern_literals():
    line = lambda values, name: c_text.lines(c_text.tokens(values, dtypes.by_name(name), "P")).decode().split()  # noqa: E731
    assert line(np.array([-2**31, 7], np.int32), "int32") == ["(-2147483647", "-", "1),", "7,"]
    assert line(np.array([2**64 - 1], np.uint64), "uint64") == ["UINT64_C(18446744073709551615),"]
    assert line(np.array([4294967295], np.uint32), "uint32") == ["4294967295u,"]
    assert line(np.array([1.0, -2.0], ml_dtypes.bfloat16), "bfloat16") == ["0x3f80,", "0xc000,"]
    assert line(np.array([1.0], np.float16), "float16") == ["0x3c00,"]
    assert line(np.array([True, False]), "bool") == ["0x01,", "0x00,"]


def test_lines_wrap_within_120_columns_and_end_each_value_with_a_comma():
    text = c_text.lines(c_text.float32_tokens(np.arange(100, dtype=np.float32))).decode()
    rows = text.splitlines()
    assert all(len(r) <= 120 for r in rows) and sum(r.count(",") for r in rows) == 100
    assert text.endswith(",\n")


def test_the_fast_literal_parser_reads_back_every_float32_pattern():
    from converter.formats import c_parse

    rng = np.random.default_rng(5)
    values = rng.integers(0, 2**32, size=300_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    values = np.concatenate([values[np.isfinite(values)], np.array([0.0, -0.0, 1e-45, -3.4028235e38], np.float32)])
    text = c_text.lines(c_text.tokens(values, dtypes.by_name("float32"), "P"))
    assert c_parse._parse_float32_literals(text).tobytes() == values.tobytes()
    assert c_parse._parse_float32_literals(text.replace(b"e+", b"E+", 1)) is None  # anything unexpected: general parser


@pytest.mark.parametrize("c_type", ["int8_t", "uint8_t", "int16_t", "uint16_t"])
def test_small_integer_lines_by_table_are_the_generic_text_byte_for_byte(c_type):
    """The table path (int8 weights of quantized exports) writes exactly what the generic path writes:
    line lengths depend on the widest literal of each piece, so narrow and full-range pieces are both tried."""
    from converter import c_text

    dtype = np.dtype(c_type.replace("_t", ""))
    info = np.iinfo(dtype)
    rng = np.random.default_rng(8)
    for count in (1, 2, 29, 30, 31, 1000, c_text.CHUNK):
        full = rng.integers(int(info.min), int(info.max) + 1, count).astype(dtype)
        full[:min(count, 2)] = [info.min, info.max][:min(count, 2)]
        for values in (full, (full % 10).astype(dtype)):
            for indent in ("  ", "    ", ""):
                assert c_text.small_int_lines(values, c_type, indent) == \
                    c_text.lines(c_text._int_tokens(values, c_type), indent)
