"""The evaluation module: leave-one-database-out choice, resolutions, top-k order, galleries."""

from __future__ import annotations

import numpy as np
import pytest

from biostation.evaluation import FVC_DPI, database_dpi, gallery_from, leave_one_out, top_k


def test_leave_one_out_never_sees_the_held_out_database():
    # candidate "b" is best on DB3 only, through that database alone: held out, DB3 must get the
    # candidate chosen on the others ("a"), and the others must not be judged at "b" for DB3's sake
    table = {"a": {"DB1": 1.0, "DB2": 1.0, "DB3": 9.0},
             "b": {"DB1": 2.0, "DB2": 2.0, "DB3": 0.0}}
    cv = leave_one_out(table)
    assert cv.chosen == {"DB1": "b", "DB2": "b", "DB3": "a"}
    assert cv.eer == {"DB1": 2.0, "DB2": 2.0, "DB3": 9.0}
    assert cv.mean == pytest.approx(13.0 / 3) and cv.worst == 9.0


def test_leave_one_out_ties_go_to_the_first_candidate_and_bad_tables_are_refused():
    cv = leave_one_out({"untuned": {"A": 1.0, "B": 2.0}, "other": {"A": 1.0, "B": 2.0}})
    assert set(cv.chosen.values()) == {"untuned"}
    with pytest.raises(ValueError):
        leave_one_out({})
    with pytest.raises(ValueError):
        leave_one_out({"a": {"A": 1.0}})
    with pytest.raises(ValueError):
        leave_one_out({"a": {"A": 1.0, "B": 1.0}, "b": {"A": 1.0, "C": 1.0}})


def test_database_dpi_follows_the_collection(tmp_path):
    for coll, table in FVC_DPI.items():
        for db, dpi in table.items():
            path = tmp_path / coll / f"{db}_B"
            path.mkdir(parents=True)
            assert database_dpi(path) == dpi
    assert database_dpi(tmp_path / "fvc2000" / "DB2_B") == 500.0  # not FVC2002's 569
    (tmp_path / "mine" / "DB2_B").mkdir(parents=True)
    assert database_dpi(tmp_path / "mine" / "DB2_B") == 569.0


def test_top_k_is_the_gallery_order():
    s = np.array([5, 9, 9, 1, 7])
    assert top_k(s, 3).tolist() == [1, 2, 4]


def test_gallery_from_uses_the_public_gallery(shared):
    from biostation.templates import load_template

    paths = sorted((shared / "data" / "fvc2002" / "iso_secugen" / "DB1_B").glob("10[12]_[12].iso"))
    tpls = [(p.stem, load_template(p)) for p in paths]
    local = gallery_from(tpls)
    assert local.count() == len(tpls)
    assert local.search(tpls[0][1], k=1)[0].reference_id == tpls[0][0]
