"""Our minutiae against third-party ISO templates of the same images, and through the matcher.

The SecuGen ISO/IEC 19794-2 templates in ``../shared/data/fvc2002/iso_secugen`` were made from
the FVC2002 images resized to SecuGen's 300 x 400 frame, so their coordinates are mapped back to
the image's pixels (and their directions through the same anisotropic scale) before comparing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biostation.fingerprint import extract, read_image
from biostation.templates import load_template

DPI = {"DB1_B": 500, "DB2_B": 569, "DB3_B": 500, "DB4_B": 500}


def _secugen_in_image(sg: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sx, sy = w / 300.0, h / 400.0
    x = sg["x"].astype(float) * sx
    y = sg["y"].astype(float) * sy
    a = np.arctan2(np.sin(sg["angle"].astype(float)) * sy, np.cos(sg["angle"].astype(float)) * sx)
    return x, y, a


def test_positions_and_directions_agree_with_secugen(shared: Path) -> None:
    n_sg = n_paired = 0
    dirs, kinds = [], []
    for db, dpi in DPI.items():
        for name in ("101_1", "104_5", "107_8"):
            img = read_image(shared / "data" / "fvc2002" / db / f"{name}.tif")
            ours = extract(img, dpi=dpi).minutiae
            sg = load_template(shared / "data" / "fvc2002" / "iso_secugen" / db / f"{name}.iso").minutiae
            x, y, a = _secugen_in_image(sg, img.shape[1], img.shape[0])
            d = np.hypot(ours["x"][:, None] - x[None], ours["y"][:, None] - y[None])
            i = d.argmin(axis=0)
            mutual = (d[i, np.arange(len(sg))] < 10) & (d.argmin(axis=1)[i] == np.arange(len(sg)))
            n_sg += len(sg)
            n_paired += int(mutual.sum())
            da = (ours["angle"][i].astype(float) - a + np.pi) % (2 * np.pi) - np.pi
            dirs += list(np.abs(da[mutual]))
            kinds += list(ours["kind"][i][mutual] == sg["kind"][mutual])
    dirs = np.degrees(np.array(dirs))
    # most of SecuGen's minutiae are found by ours at the same place ...
    assert n_paired >= 0.55 * n_sg, (n_paired, n_sg)
    # ... pointing the same way (the ISO direction conventions: a 180-degree error would show here)
    assert np.mean(dirs < 30) >= 0.9, np.mean(dirs < 30)
    assert np.median(dirs) < 10
    # and mostly of the same type
    assert np.mean(kinds) >= 0.75


@pytest.mark.slow
def test_lower_eer_than_secugen_with_the_project_matcher(shared: Path) -> None:
    """Issue 3, item 5: FVC2002 B, all-pairs protocol, mean EER over DB1..DB4 with our templates
    below the one with the SecuGen templates, both through the project's matcher."""
    from biostation import matcher
    from biostation.matcher.evaluation import fvc_eer, protocol_pairs

    ours_eer, sg_eer = [], []
    for db, dpi in DPI.items():
        files = sorted((shared / "data" / "fvc2002" / db).glob("*.tif"))
        names = [f.name for f in files]
        ours = [matcher.prepare(extract(read_image(f), dpi=dpi)) for f in files]
        sg = [matcher.prepare(load_template(shared / "data" / "fvc2002" / "iso_secugen" / db / (f.stem + ".iso")))
              for f in files]
        genuine, impostor = protocol_pairs(names, "all-pairs")
        for templates, out in ((ours, ours_eer), (sg, sg_eer)):
            g = np.array([matcher.match(templates[a], templates[b]) for a, b in genuine])
            i = np.array([matcher.match(templates[a], templates[b]) for a, b in impostor])
            out.append(fvc_eer(g, i)[0])
    assert np.mean(ours_eer) < np.mean(sg_eer), (ours_eer, sg_eer)
