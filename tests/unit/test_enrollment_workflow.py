"""The enrollment workflow over the simulated scanner: steps in order, quality, sequence check,
exceptions, duplicates, resuming from the repo, bad demographics."""

from __future__ import annotations

import pytest

from biostation.errors import InvalidInputError, SessionNotFoundError, StepOrderError
from biostation.hal import Attachment, Feature
from biostation.identify import LocalBackend
from biostation.identify.persons import PersonGallery
from biostation.station.workflows.enrollment import Enrollments, Step, validate_demographics

DEMO = {"id_number": "079095000123", "surname": "Nguyễn", "given_names": "Thị Ánh Tuyết", "sex": "M",
        "date_of_birth": "1995-05-06", "place_of_birth": "Thành phố Hồ Chí Minh"}


class MemoryRepo:
    """The SessionRepo protocol over dicts (the daemon uses the encrypted store)."""

    def __init__(self):
        self.states, self.blobs, self.records = {}, {}, {}

    def create_session(self, sid, state):
        assert sid not in self.states
        self.states[sid] = state

    def save_state(self, sid, state):
        import copy

        self.states[sid] = copy.deepcopy(state)

    def load_state(self, sid):
        import copy

        st = self.states.get(sid)
        return None if st is None else copy.deepcopy(st)

    def put_blob(self, sid, name, data):
        self.blobs[(sid, name)] = bytes(data)

    def get_blob(self, sid, name):
        return self.blobs[(sid, name)]

    def session_ids(self):
        return list(self.states)

    def finish(self, sid, state, transaction, records):
        self.save_state(sid, state)
        self.records[sid] = (transaction, dict(records))

    def cancel(self, sid, state, reason):
        self.save_state(sid, state)
        self.blobs = {k: v for k, v in self.blobs.items() if k[0] != sid}


@pytest.fixture
def scanner(settings, shared):
    from biostation_drivers.simulated.scanner import SimulatedScanner

    dev = SimulatedScanner(Attachment("sim", "sim:scanner-enrol", "sim"), settings)
    # no live preview: each capture is assessed as it comes, so no verdict hangs on how fast
    # this machine scores preview frames (the preview path has its own tests)
    dev.features = dev.features & ~Feature.PREVIEW
    dev.open()
    yield dev
    dev.close()


@pytest.fixture(params=["memory", "store"])
def desk(tmp_path, request):
    """The workflow over a plain repo, and over the station's encrypted store (as the daemon)."""
    audit = []
    repo = MemoryRepo()
    if request.param == "store":
        from biostation.station.workflows.store_repo import StoreSessions
        from biostation.store import DataKey, EnrollmentStore

        repo = StoreSessions(EnrollmentStore(tmp_path / "enrollment.db", DataKey(b"k" * 32)))
        repo.records = _StoreRecords(repo.store)
    e = Enrollments(repo, PersonGallery(tmp_path / "gallery"), quality_gate=20, capture_timeout_s=120,
                    audit=lambda a, s, d: audit.append((a, s, d)))
    e.audit_lines = audit
    yield e
    if request.param == "store":
        assert repo.store.verify_audit().ok
        repo.store.close()


class _StoreRecords:
    """``records[sid]`` of the store, as MemoryRepo keeps them."""

    def __init__(self, store):
        self.store = store

    def __getitem__(self, sid):
        names = [n for n in ("iso19794-4", "iso19794-5") + tuple(f"iso19794-2/{p:02d}" for p in range(1, 11))]
        out = {}
        for n in names:
            try:
                out[n] = self.store.record(sid, n)
            except Exception:
                pass
        return self.store.record(sid), out


def _portrait(shared):
    return (shared / "data" / "faces" / "LONDON_FRL" / "001").glob("*")


def _all_fingers(desk, sid, scanner, skip=()):
    for slap in (13, 14, 15):
        r = desk.capture(sid, scanner, slap)
        assert r["accepted"], r
    for p in range(1, 11):
        if p in skip:
            continue
        r = desk.capture(sid, scanner, p)
        assert r["accepted"] and r["nfiq2"] is not None, r


def test_demographics_validation_keeps_names_exactly():
    out = validate_demographics(dict(DEMO, surname="  Nguyễn "))
    assert out["surname"] == "Nguyễn" and out["given_names"] == "Thị Ánh Tuyết"
    for bad, word in [({"id_number": "07909500012"}, "12 digits"), ({"id_number": "999095000123"}, "province"),
                      ({"surname": "Tr\x00an"}, r"U\+0000"), ({"given_names": "x" * 10_000_000}, "at most"),
                      ({"date_of_birth": "1996-05-06"}, "birth-year"), ({"sex": "F"}, "sex digit"),
                      ({"nickname": "x"}, "unknown"), ({"surname": "a\u202eb"}, r"U\+202E")]:
        with pytest.raises(InvalidInputError, match=word):
            validate_demographics(dict(DEMO, **bad))


def test_steps_out_of_order_name_the_missing_step(desk, scanner):
    s = desk.start("op1")
    with pytest.raises(StepOrderError) as e:
        desk.capture(s.session_id, scanner, 2)
    assert e.value.missing == "demographics"
    desk.set_demographics(s.session_id, DEMO)
    with pytest.raises(StepOrderError) as e:
        desk.upload_portrait(s.session_id, b"not read")
    assert e.value.missing == "fingers"
    with pytest.raises(StepOrderError) as e:
        desk.confirm(s.session_id, "op1")
    assert e.value.missing == "fingers"
    with pytest.raises(SessionNotFoundError):
        desk.get("nope")


def test_whole_enrollment_then_the_same_person_is_a_duplicate(desk, scanner, shared):
    photo = next(p for p in _portrait(shared) if p.name.endswith("_neutral.jpg"))
    s = desk.start("op1")
    sid = s.session_id
    desk.set_demographics(sid, DEMO)
    scanner.applicants.absent = {10}
    desk.declare_exception(sid, 10, "XX")  # the applicant has lost the left little finger
    _all_fingers(desk, sid, scanner, skip=(10,))
    st = desk.get(sid).state
    assert st["sequence"]["ok"], st["sequence"]
    assert set(st["slaps"]["14"]["fingers"]) == {"7", "8", "9"}  # the bandaged finger is not looked for
    assert desk.get(sid).step is Step.PORTRAIT
    r = desk.upload_portrait(sid, photo.read_bytes())
    assert r["accepted"], [c for c in r["report"]["checks"] if c["status"] == "fail"]
    dup = desk.search_duplicates(sid)
    assert dup["hits"] == [] and dup["searched_fingers"] == 9
    desk.confirm(sid, "op1")
    assert desk.get(sid).step is Step.CONFIRMED and desk.gallery.count() == 1
    assert sorted(desk.gallery.fingers(sid)) == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # one person, nine fingers
    # the records: the ANSI/NIST-ITL transaction and the ISO records beside it
    from biostation.records.ansi_nist import read_transaction

    nist, isos = desk.repo.records[sid]
    tx = read_transaction(nist)
    assert tx.of_type(2)[0].text(18) == "Nguyễn, Thị Ánh Tuyết" and tx.of_type(2)[0].text(17) == DEMO["id_number"]
    assert len(tx.of_type(14)) == 3 + 9 and len(tx.of_type(10)) == 1 and len(tx.of_type(9)) == 9
    left_slap = next(r for r in tx.of_type(14) if r.text(13).startswith("14"))
    assert left_slap.image().shape == (st["slaps"]["14"]["height"], st["slaps"]["14"]["width"])
    assert {"iso19794-4", "iso19794-5", "iso19794-2/01"} <= set(isos) and "iso19794-2/10" not in isos
    # the same person again (the simulated applicants start over) is found
    for _ in range(scanner.applicants.count):
        scanner.simulate("next_applicant")
    s2 = desk.start("op2")
    desk.set_demographics(s2.session_id, dict(DEMO, id_number="079095000124"))
    _all_fingers(desk, s2.session_id, scanner)
    desk.upload_portrait(s2.session_id, photo.read_bytes())
    dup2 = desk.search_duplicates(s2.session_id)
    assert [h["session_id"] for h in dup2["hits"]] == [sid] and len(dup2["hits"][0]["fingers"]) >= 2
    assert dup2["hits"][0]["fingers_compared"] == 9 and dup2["searched_fingers"] == 10
    with pytest.raises(StepOrderError, match="duplicate"):
        desk.confirm(s2.session_id, "op2")
    actions = [a for a, _, _ in desk.audit_lines]
    assert actions.count("enrollment.capture") >= 25 and "enrollment.confirm" in actions
    assert all("Nguyễn" not in repr(d) for _, _, d in desk.audit_lines)  # no personal data in the trail


def test_swapped_singles_keep_the_fingers_step_open(desk, scanner, settings):
    from biostation.records import FingerPosition
    from biostation_drivers.simulated.scanner import SimulatedScanner

    s = desk.start("op1")
    sid = s.session_id
    desk.set_demographics(sid, DEMO)
    for slap in (13, 14, 15):
        desk.capture(sid, scanner, slap)
    # the applicant puts the right middle finger down when asked for the index, and vice versa
    swap = {2: 3, 3: 2}
    people = scanner.applicants
    confused = SimulatedScanner.create(
        source=lambda kind, pos: people.capture(kind, FingerPosition(swap.get(int(pos), int(pos)))),
        settings=settings)
    confused.features = confused.features & ~Feature.PREVIEW
    for p in range(1, 11):
        desk.capture(sid, confused, p)
    st = desk.get(sid).state
    assert st["sequence"] is not None and not st["sequence"]["ok"]
    assert any(i["kind"] == "swapped" and set(i["fingers"]) == {2, 3} for i in st["sequence"]["issues"])
    assert desk.get(sid).step is Step.FINGERS
    # recapturing the two fingers right closes the step
    for p in (2, 3):
        desk.capture(sid, scanner, p)
    assert desk.get(sid).state["sequence"]["ok"]
    assert desk.get(sid).step is Step.PORTRAIT


def test_a_scanner_gone_mid_step_leaves_the_session_resumable(desk, scanner):
    from biostation.errors import DeviceError

    s = desk.start("op1")
    desk.set_demographics(s.session_id, DEMO)
    desk.capture(s.session_id, scanner, 13)
    before = desk.get(s.session_id).state
    scanner.unplug()
    with pytest.raises(DeviceError):
        desk.capture(s.session_id, scanner, 14)
    assert desk.get(s.session_id).state == before
    # a new Enrollments over the same repo (a restarted daemon) resumes it
    again = Enrollments(desk.repo, desk.gallery)
    assert again.get(s.session_id).step is Step.FINGERS
    assert [r["session_id"] for r in again.sessions()] == [s.session_id]


def test_a_station_gallery_of_fingers_moves_over_to_persons_once(tmp_path, shared):
    """A station that kept one reference per finger (``<session>:<position>``) gets a gallery of
    persons at its next start; a migration cut short is finished, never done twice."""
    from biostation.station.workflows.store_repo import desk_gallery
    from biostation.templates import load_template

    def tpl(f, k):
        return load_template(shared / "data" / "fvc2002" / "iso_secugen" / "DB1_B" / f"{f}_{k}.iso")

    old = LocalBackend(tmp_path / "gallery")
    old.insert("s1:1", tpl(101, 1))
    old.insert("s1:2", tpl(102, 1))
    old.insert("s2:7", tpl(103, 1))
    old.insert("s3:4", tpl(104, 1))
    old.delete("s3:4")  # deleted: not carried over
    old.insert("not-a-finger", tpl(105, 1))
    persons = desk_gallery(tmp_path)
    assert persons.count() == 2 and sorted(persons.fingers("s1")) == [1, 2] and sorted(persons.fingers("s2")) == [7]
    assert not (tmp_path / "gallery").exists() and (tmp_path / "gallery.migrated" / "journal.bin").is_file()
    assert persons.search({1: tpl(101, 3), 2: tpl(102, 3)}, k=1)[0].reference_id == "s1"
    # cut short: the old folder still there, some persons already moved
    (tmp_path / "gallery.migrated").rename(tmp_path / "gallery")
    again = desk_gallery(tmp_path)
    assert again.count() == 2 and not (tmp_path / "gallery").exists()
