"""Verifying a citizen against the chip: the simulated desk's CCCD card (its holder is the person
the simulated camera shows, with the first simulated applicant's index fingers in DG3, behind
EAC), the live face and fingers, the decision, and what the store records."""

from __future__ import annotations

import pytest

from biostation.errors import AccessDeniedError
from biostation.hal import Attachment, Feature
from biostation.store import DataKey, EnrollmentStore


@pytest.fixture
def desk(settings, shared, tmp_path):
    from biostation.station.workflows.chip import ChipReads
    from biostation.station.workflows.verification import Verifications
    from biostation_drivers.simulated.camera import SimulatedCamera
    from biostation_drivers.simulated.card_reader import SimulatedCardReader
    from biostation_drivers.simulated.scanner import SimulatedScanner

    reader = SimulatedCardReader(SimulatedCardReader.probe(settings)[0], settings)
    scanner = SimulatedScanner(Attachment("sim", "sim:scanner-verify", "sim"), settings)
    scanner.features = scanner.features & ~Feature.PREVIEW  # each capture assessed as it comes
    camera = SimulatedCamera(SimulatedCamera.probe(settings)[0], settings)
    for d in (reader, scanner, camera):
        d.open()
    store = EnrollmentStore(tmp_path / "enrollment.db", DataKey(b"v" * 32))
    v = Verifications(ChipReads(settings.trust_dir), store, capture_timeout_s=120, quality_gate=20)
    yield v, reader, scanner, camera
    store.close()
    for d in (reader, scanner, camera):
        d.close()


def _can(reader):
    return reader.info().details["can"]


def test_the_holder_is_verified_by_face_and_fingers(desk):
    v, reader, scanner, camera = desk
    out = v.verify(reader, can=_can(reader), camera=camera, scanner=scanner, operator="officer.b")
    d = out.to_dict()
    assert d["document"]["passive_authentication"] == "verified"
    assert d["document"]["terminal_authentication"] == "passed" and d["document"]["fingerprints"] == "read"
    assert d["face"]["decision"] == "match" and d["face"]["operating_point"]["name"] == "fmr-0.1%"
    assert d["fingers"]["decision"] == "match" and {c["position"] for c in d["fingers"]["comparisons"]} == {2, 7}
    assert d["decision"] == "verified", d["reasons"]
    # recorded: one decision per comparison with score and threshold, the document number; no image
    store = v.store
    kinds = {x.kind: x for x in store.decisions(out.verification_id)}
    assert {"face-1:1", "finger-1:1/02", "finger-1:1/07", "verification"} <= set(kinds)
    assert kinds["finger-1:1/02"].threshold == d["fingers"]["threshold"]
    assert kinds["verification"].details["document_number"] == d["document"]["document_number"]
    assert store.session(out.verification_id).fields == {}
    assert store.verify_audit().ok
    assert any(line.action == "verification.decide" for line in store.audit_lines())


def test_someone_else_at_the_desk_is_not_verified(desk):
    v, reader, scanner, camera = desk
    scanner.simulate("next_applicant")  # another person's fingers on the scanner
    out = v.verify(reader, can=_can(reader), camera=camera, scanner=scanner)
    assert out.fingers["decision"] == "no_match" and out.decision == "not_verified"
    assert any("no live finger matches" in r for r in out.reasons)


def test_without_a_scanner_the_face_decides_and_says_so(desk):
    v, reader, _, camera = desk
    out = v.verify(reader, can=_can(reader), camera=camera)
    assert out.decision == "verified" and out.fingers["decision"] == "not_available"
    assert any("face alone" in r for r in out.reasons)


def test_a_wrong_can_records_nothing(desk):
    v, reader, scanner, camera = desk
    with pytest.raises(AccessDeniedError):
        v.verify(reader, can="000000", camera=camera, scanner=scanner)
    assert v.store.sessions() == []
