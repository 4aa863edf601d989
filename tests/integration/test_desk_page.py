"""The enrollment desk in real headless Chromium against the real daemon and its simulated devices:
one whole applicant, step by step, as an operator does it. Screenshots of every step are kept in
``out/screenshots/desk`` (the test's artifacts)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "screenshots" / "desk"


def test_an_operator_enrols_a_whole_applicant(station_server, browser, sign_in, shared):
    _, base, data, _ = station_server
    token = (data / "token").read_text().strip()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    shot = lambda name: page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # noqa: E731

    sign_in(page, base, token)
    page.click("#lang")  # the desk in Vietnamese, as at a police desk
    page.click("#new-applicant")
    page.wait_for_selector("#demo input[name=id_number]", timeout=10000)
    page.fill("input[name=id_number]", "079095000777")
    page.fill("input[name=surname]", "Trần")
    page.fill("input[name=given_names]", "Thị Ngọc Ánh")
    page.select_option("select[name=sex]", "F")
    page.fill("input[name=id_number]", "079195000777")  # 1 = female born 1900-1999
    page.fill("input[name=date_of_birth]", "1995-05-06")
    page.fill("input[name=place_of_birth]", "Thành phố Hồ Chí Minh")
    shot("1-demographics")
    page.click("#demo button[type=submit]")
    page.wait_for_selector(".stepper li.now[data-step=fingers]", timeout=60000)

    for pos in (13, 14, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10):
        page.click(f".tile[data-pos='{pos}'] [data-act=capture]")
        if pos == 13:  # the live preview with its quality border while the slap is on the platen
            page.wait_for_selector("#preview img", timeout=120000)
            shot("2-fingers-live-preview")
        try:
            if pos == 10:  # the last finger: the sequence check passes and the desk moves on
                page.wait_for_selector(".stepper li.now[data-step=portrait]", timeout=300000)
            else:
                page.wait_for_selector(f".tile[data-pos='{pos}'] img", timeout=300000)
                page.wait_for_selector("[data-act=capture]:not([disabled])", timeout=300000)
        except Exception:
            shot(f"failed-at-{pos}")
            raise
        if pos == 9:
            shot("3-fingers")
    assert page.locator("#pchecks").count() == 1

    photo = shared / "data" / "faces" / "LONDON_FRL" / "005" / "1_neutral.jpg"
    page.set_input_files("#pfile", str(photo))
    page.wait_for_selector("#pchecks li", timeout=30000)
    shot("4-portrait")
    page.wait_for_selector(".stepper li.now[data-step=duplicates]", timeout=20000)
    page.click("#dsearch")
    page.wait_for_selector("[data-role=dups]", timeout=30000)
    shot("5-review")
    assert page.locator("[data-role=surname]").inner_text() == "Trần"
    page.click("#confirm")
    page.wait_for_selector("[data-role=final].okline", timeout=300000)
    page.wait_for_selector("#outbox", timeout=5000)
    shot("6-confirmed")
    assert "Trần Thị Ngọc Ánh" in page.locator("#queue").inner_text()
    assert errors == []


def test_an_operator_verifies_a_citizen_against_the_chip(station_server, browser, sign_in):
    """The simulated desk's CCCD card holder is the person the simulated camera shows, with the
    first simulated applicant's index fingers in DG3: the page verifies them by face and fingers."""
    _, base, data, _ = station_server
    token = (data / "token").read_text().strip()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, base, token)
    page.click(".tabs [data-tab=devices]")
    page.wait_for_selector("article.card[data-cls=card_reader] [data-role=hint]:has-text('CAN')", timeout=20000)
    can = page.locator("article.card[data-cls=card_reader] [data-role=hint]").inner_text().split("CAN ")[1].strip()
    page.click(".tabs [data-tab=verify]")
    page.fill("#vcan", can)
    page.click("#vgo")
    page.wait_for_selector("[data-role=verdict]", timeout=600000)
    page.screenshot(path=str(ARTIFACTS / "7-verification.png"), full_page=True)
    assert page.locator("[data-role=verdict]").get_attribute("data-decision") == "verified"
    assert page.locator(".vtable tr").count() == 3  # the face and two fingers, each with score and threshold
    assert errors == []
