"""Helpers for the data tests: tiny raw files of every format, written from the format specs."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pytest

from ttsctr.data.preprocess import preprocess
from ttsctr.data.readers import RawReader, get_reader, synthetic_sidecar_paths
from ttsctr.errors import DataFormatError

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


def run_failing(
    dataset: str | RawReader, raw: Path, tmp_path: Path, *, about: Path | None = None, **params
) -> DataFormatError:
    """Preprocess ``raw``; assert it fails with a DataFormatError that names the file it is about
    (``raw``, or the side file ``about``) and leaves nothing behind."""
    out = tmp_path / "out"
    with pytest.raises(DataFormatError) as exc:
        preprocess(dataset, raw, out, {"min_count": 1, **params}, progress=False)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "temporary output left behind"
    err = exc.value
    named = str(about if about is not None else raw)
    assert err.path == named and str(err).startswith(named), f"the error names {err.path!r}, not {named!r}: {err}"
    return err


# ---- every raw file of every format, and its integer columns ----------------------------------
DELIMITERS = {"train.txt": b"\t", "s.txt": b"\t", "a.csv": b",", "k.txt": b"\t", "profile.txt": b"\t",
              "u.data": b"\t", "u.user": b"|", "u.item": b"|"}  # fmt: skip

# file name -> 0-based indexes of its columns read as integers (labels included)
INTEGER_COLUMNS = {
    "train.txt": range(14),  # label, I1..I13
    "s.txt": range(14),
    "a.csv": (1, 2),  # click, hour
    "k.txt": (0, 1),  # Click, Impression (UserID is text, parsed only to join the profile)
    "profile.txt": (0,),  # UserID
    "u.data": range(4),  # user_id, item_id, rating, timestamp
    "u.user": (0,),  # user_id
    "u.item": (0, *range(5, 24)),  # movie_id, 19 genre flags
}


def make_dataset(root: Path, dataset: str) -> tuple[RawReader, Path]:
    """(reader, raw path) for small valid files of ``dataset`` in the new directory ``root``.

    Every side file is used too: kdd12 gets a user profile, synthetic its probabilities, the
    MovieLens files are ``u.data``, ``u.user`` (gzip) and ``u.item`` (ISO-8859-1). An Avazu header
    makes file line numbers differ from row numbers.
    """
    root.mkdir()
    if dataset == "criteo":
        return get_reader("criteo"), write(root / "train.txt", criteo_text(CRITEO_ROWS))
    if dataset == "synthetic":
        raw = write(root / "s.txt", criteo_text(CRITEO_ROWS))
        np.save(synthetic_sidecar_paths(raw)[0], np.linspace(0.1, 0.9, len(CRITEO_ROWS), dtype=np.float32))
        return get_reader("synthetic"), raw
    if dataset == "avazu":
        return get_reader("avazu"), write(root / "a.csv", "\n".join([AVAZU_HEADER, *AVAZU_ROWS]) + "\n")
    if dataset == "kdd12":
        profile = write(root / "profile.txt", "\n".join(KDD12_PROFILE) + "\n")
        return get_reader("kdd12", user_profile=profile), write(root / "k.txt", "\n".join(KDD12_ROWS) + "\n")
    if dataset == "movielens":
        return get_reader("movielens"), make_movielens_dir(root) / "u.data"
    raise ValueError(dataset)


def rewrite_cells(path: Path, change: Callable[[int, int, bytes], bytes]) -> None:
    """Replace every cell of the delimited file ``path`` (plain or gzip, kept so) with
    ``change(1-based line, 0-based column, cell)``."""
    data = path.read_bytes()
    gz = data.startswith(b"\x1f\x8b")
    sep = DELIMITERS[path.name]
    lines = (gzip.decompress(data) if gz else data).split(b"\n")
    out = [
        sep.join(change(no, col, cell) for col, cell in enumerate(line.split(sep))) if line else line
        for no, line in enumerate(lines, 1)
    ]
    write(path, b"\n".join(out), gz=gz)
