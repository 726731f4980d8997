"""read_csv / iter_csv_chunks on small files written for each test."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from structlog.testing import capture_logs

from wdh_io.errors import ReaderError
from wdh_io.readers import detect_encoding, iter_csv_chunks, normalize_header, read_csv
from wdh_io.readers._encoding import SAMPLE_BYTES

pytestmark = pytest.mark.unit


def _write(tmp_path: Path, content: bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_utf8_file_is_read_with_pandas_types(tmp_path: Path) -> None:
    path = _write(tmp_path, "id,name,amount\n1,张三,1.5\n2,😀 emoji,\n".encode())
    frame = read_csv(path)
    assert list(frame.columns) == ["id", "name", "amount"]
    assert frame["id"].tolist() == [1, 2]
    assert frame["name"].tolist() == ["张三", "😀 emoji"]
    assert frame["amount"].isna().tolist() == [False, True]


@pytest.mark.parametrize(
    ("encoded", "expected_encoding"),
    [
        ("\ufeff客户名称,金额\n张三,1\n".encode(), "utf-8-sig"),
        ("客户名称,金额\n张三,1\n".encode("gbk"), "gb18030"),
        ("客户名称,金额\n张三,1\n".encode("gb18030"), "gb18030"),
        ("客户名称,金额\n张三,1\n".encode("utf-16"), "utf-16"),
    ],
)
def test_encodings_are_detected(tmp_path: Path, encoded: bytes, expected_encoding: str) -> None:
    path = _write(tmp_path, encoded)
    assert detect_encoding(path) == expected_encoding
    frame = read_csv(path)
    assert list(frame.columns) == ["客户名称", "金额"]
    assert frame.iloc[0].tolist() == ["张三", 1]


def test_the_detected_encoding_is_logged(tmp_path: Path) -> None:
    gbk = _write(tmp_path, "名称\n张三\n".encode("gbk"), "gbk.csv")
    utf8 = _write(tmp_path, "名称\n张三\n".encode(), "utf8.csv")
    with capture_logs() as logs:
        read_csv(gbk)
        read_csv(utf8)
        read_csv(utf8, encoding="utf-8")  # given, not guessed: nothing to say
    detected = [entry for entry in logs if entry["event"] == "reader.encoding.detected"]
    assert [(e["path"], e["encoding"]) for e in detected] == [
        (str(gbk), "gb18030"),
        (str(utf8), "utf-8"),
    ]
    assert "pass encoding=" in detected[0]["note"]
    assert detected[1]["note"] is None


def test_explicit_encoding_wins(tmp_path: Path) -> None:
    path = _write(tmp_path, "名称\n张三\n".encode("gbk"))
    assert read_csv(path, encoding="gbk")["名称"].tolist() == ["张三"]


def test_headers_are_normalised(tmp_path: Path) -> None:
    assert normalize_header("\ufeff 客户\u3000\u3000名称 \t") == "客户 名称"
    path = _write(tmp_path, "\ufeff\u3000客户名称\u3000, amount ,\tregion\n张三,1,east\n".encode())
    assert list(read_csv(path).columns) == ["客户名称", "amount", "region"]
    assert list(read_csv(path, dtype={"amount": "float64"})["amount"]) == [1.0]


def test_short_rows_are_an_error_not_silent_padding(tmp_path: Path) -> None:
    path = _write(tmp_path, b"a,b,c\n1,2,3\n\n4,5\n6,7,8\n")
    with pytest.raises(ReaderError) as caught:
        read_csv(path)
    assert (
        str(caught.value) == f"expected 3 fields like the header, found 2 | file: {path} | line: 4"
    )
    assert caught.value.line == 4


def test_long_rows_are_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, b'a,b\n1,"x\ny"\n2,3,4\n')  # a quoted newline: line 4 is the bad one
    with pytest.raises(ReaderError, match="expected 2 fields like the header, found 3") as caught:
        read_csv(path)
    assert caught.value.line == 4


def test_ragged_rows_fail_before_the_first_chunk(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i}\n" for i in range(50))
    path = _write(tmp_path, ("a,b\n" + rows + "9\n").encode())
    with pytest.raises(ReaderError) as caught:
        iter_csv_chunks(path, chunksize=10)
    assert caught.value.line == 52


def test_chunks_cover_the_file(tmp_path: Path) -> None:
    rows = "".join(f"{i},名{i}\n" for i in range(25))
    path = _write(tmp_path, ("id,名称\n" + rows).encode("gbk"))
    chunks = list(read_csv(path, chunksize=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    whole = pd.concat(chunks, ignore_index=True)
    assert whole["id"].tolist() == list(range(25))
    assert whole["名称"].iloc[-1] == "名24"
    with pytest.raises(ValueError, match="chunksize must be at least 1"):
        iter_csv_chunks(path, chunksize=0)


def test_undecodable_bytes_name_encoding_offset_and_line(tmp_path: Path) -> None:
    good = "id,name\n" + "".join(f"{i},名字\n" for i in range(3))
    content = good.encode() + b"9,\xff\xfe bad\n"
    path = _write(tmp_path, content)
    with pytest.raises(ReaderError) as caught:
        read_csv(path, encoding="utf-8")
    message = str(caught.value)
    assert f"cannot decode byte offset {len(good.encode()) + 2} as utf-8" in message
    assert caught.value.line == 5


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="file not found") as caught:
        read_csv(tmp_path / "nope.csv")
    assert caught.value.path == str(tmp_path / "nope.csv")
    with pytest.raises(ReaderError, match="the file is empty"):
        read_csv(_write(tmp_path, b""))
    with pytest.raises(ReaderError, match=r"the file is empty \(no header line\)"):
        read_csv(_write(tmp_path, b"\n\n", "blank.csv"))
    with pytest.raises(ReaderError, match="not a regular file"):
        read_csv(tmp_path)


def test_header_only_file_gives_an_empty_frame(tmp_path: Path) -> None:
    frame = read_csv(_write(tmp_path, b"a,b\n"))
    assert list(frame.columns) == ["a", "b"]
    assert len(frame) == 0


def test_bad_headers(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="duplicate header name 'a' \\(fields 1 and 3\\)"):
        read_csv(_write(tmp_path, "a,b,\u3000a\n1,2,3\n".encode()))
    with pytest.raises(ReaderError, match="header field 2 of 3 is blank"):
        read_csv(_write(tmp_path, b"a, ,c\n1,2,3\n", "blank.csv"))


def test_unknown_encoding_and_bad_values(tmp_path: Path) -> None:
    path = _write(tmp_path, b"a\nx\n")
    with pytest.raises(ReaderError, match="unknown encoding 'klingon'"):
        read_csv(path, encoding="klingon")
    with pytest.raises(ReaderError, match="cannot parse the CSV"):
        read_csv(path, dtype={"a": "int64"})
    with pytest.raises(ReaderError, match="cannot parse the CSV"):
        list(iter_csv_chunks(path, chunksize=1, dtype={"a": "int64"}))


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b'a,b\n1,"open\n', 2),
        # Earlier records span lines and escape quotes; the open field starts on line 6.
        (b'a,b\n1,"two\nlines"\n2,"say ""hi"""\n3,4\n5,"never closed\n6,7\n8,9\n', 6),
    ],
)
def test_unterminated_quote_names_the_line_where_the_field_starts(
    tmp_path: Path, content: bytes, line: int
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(ReaderError, match="unterminated quoted field") as caught:
        read_csv(path)
    assert caught.value.line == line
    assert f"line: {line}" in str(caught.value)
    with pytest.raises(ReaderError, match="unterminated quoted field"):
        list(iter_csv_chunks(path, chunksize=2))


def test_gbk_after_a_long_ascii_start_is_detected(tmp_path: Path) -> None:
    ascii_part = "".join(f"{i},name{i}\n" for i in range(SAMPLE_BYTES // 8))  # > 1 MiB
    assert len(ascii_part) > SAMPLE_BYTES
    path = _write(tmp_path, ("id,name\n" + ascii_part + "999,张三\n").encode("gbk"))
    assert detect_encoding(path) == "gb18030"
    frame = read_csv(path)
    assert frame["name"].iloc[-1] == "张三"


def test_a_file_neither_utf8_nor_gb18030_is_reported_clearly(tmp_path: Path) -> None:
    start = "id,name\n" + "1,x\n" * (SAMPLE_BYTES // 4 + 1)
    path = _write(tmp_path, start.encode() + b"2,\x80\xff\n")  # no encoding decodes this
    with pytest.raises(ReaderError, match="cannot detect the encoding: not UTF-8") as caught:
        read_csv(path)
    assert "and not GB18030" in str(caught.value)
    assert caught.value.line == start.count("\n") + 1
