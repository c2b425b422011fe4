"""Helpers for the data tests: tiny raw files of every format, written from the format specs."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Sequence

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A file under ../shared/data (beside the checkout), or skip with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real click-log sample not found at {path} (expected ../shared/data beside the checkout)")
    return path


def write(path: Path, text: str | bytes, *, gz: bool = False) -> Path:
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def criteo_line(label: object, ints: Sequence[object] = (), cats: Sequence[object] = ()) -> str:
    """One Criteo line: label, 13 ints (None/'' = empty), 26 categoricals (None = empty)."""
    ints = list(ints) + [None] * (13 - len(ints))
    cats = list(cats) + [None] * (26 - len(cats))
    cells = [label, *ints, *cats]
    return "\t".join("" if c is None else str(c) for c in cells)


def criteo_text(lines: Sequence[str]) -> str:
    return "".join(line + "\n" for line in lines)


CRITEO_ROWS = [
    criteo_line(0, [1, 1, 5, 0, 1382, 4, 15, 2, 181, 1, 2, None, 2], ["68fd1e64", "80e26c9b", "fb936136"]),
    criteo_line(1, [None, -1, 3], ["68fd1e64", None, "aaaaaaaa"]),
    criteo_line(0, [3, 20, 1000], ["05db9164", "80e26c9b"]),
    criteo_line(1, [], []),
]


AVAZU_HEADER = (
    "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,app_category,"
    "device_id,device_ip,device_model,device_type,device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21"
)


def avazu_line(id_: str, click: object, hour: object, site_id: str = "1fbe01fe", c1: str = "1005") -> str:
    rest = [c1, "0", site_id, "f3845767", "28905ebd", "ecad2386", "7801e8d9", "07d7df22",
            "a99f214a", "ddd2926e", "44956a24", "1", "2", "15706", "320", "50", "1722", "0", "35", "-1", "79"]  # fmt: skip
    return ",".join([id_, str(click), str(hour), *rest])


AVAZU_ROWS = [
    avazu_line("1000009418151094273", 0, 14102100),  # 2014-10-21 (Tuesday) 00h
    avazu_line("10000169349117863715", 1, 14102523, site_id="85f751fd"),  # Saturday 23h
    avazu_line("10000371904215119486", 0, 14102613, c1="1002"),  # Sunday 13h
]


KDD12_ROWS = [
    # Click, Impression, DisplayURL, AdID, AdvertiserID, Depth, Position, QueryID, KeywordID, TitleID, DescriptionID, UserID
    "0\t1\t4298118681424644510\t7686695\t385\t3\t3\t1601\t5521\t7709\t576\t490234",
    "2\t3\t18446744073709551615\t21560664\t37484\t2\t2\t2255103\t317\t48989\t44771\t1",
    "1\t1\t9704320783495875564\t21748480\t36759\t3\t3\t4532751\t60721\t685038\t29681\t2",
]
KDD12_PROFILE = ["1\t1\t5", "2\t2\t3", "3\t1\t5"]


def make_movielens_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ml"
    d.mkdir()
    # user_id, item_id, rating, timestamp (not in time order on purpose)
    write(d / "u.data", "1\t10\t5\t300\n1\t11\t3\t100\n2\t10\t4\t200\n1\t12\t1\t200\n3\t99\t4\t50\n")
    write(d / "u.user", "1|24|M|technician|85711\n2|53|F|other|T8H1N\n3|23|M|writer|32067\n", gz=True)
    flags_toy = "|".join(["0", "0", "0", "1", "1", "1"] + ["0"] * 13)  # Animation|Children's|Comedy
    flags_drama = "|".join(["0"] * 8 + ["1"] + ["0"] * 10)
    flags_none = "|".join(["0"] * 19)
    item = (
        f"10|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|{flags_toy}\n"
        f"11|Cit\xe9 des enfants perdus (1995)|01-Jan-1995||http://x|{flags_drama}\n"
        f"12|Nothing (1990)|01-Jan-1990||http://y|{flags_none}\n"
    ).encode("latin-1")
    write(d / "u.item", item)
    return d
