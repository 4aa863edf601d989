"""ABIS operations in MOSIP's vocabulary over the station's 1:N gallery (either backend).

One endpoint per operation, each taking and answering MOSIP ABIS API shaped JSON (``id``,
``version``, ``requestId``, ``requesttime``; answers carry ``returnValue`` ``"1"`` on success,
``"2"`` with a ``failureReason`` otherwise):

===========================  =======================  ==============================================
route                        MOSIP ``id``             does
===========================  =======================  ==============================================
POST /v1/abis/insert         mosip.abis.insert        enrol ``referenceId`` with the template given
POST /v1/abis/identify       mosip.abis.identify      1:N search, ``flags.maxResults`` best, over the
                                                      whole gallery or ``gallery.referenceIds`` only
POST /v1/abis/delete         mosip.abis.delete        remove ``referenceId``
POST /v1/abis/ping           mosip.abis.ping          the gallery answers
POST /v1/abis/pendingjobs    mosip.abis.pendingJobs   requests being served now
POST /v1/abis/referencecount mosip.abis.referenceCount references enrolled
===========================  =======================  ==============================================

The template travels inline, base64, in ``biometrics`` (ISO/IEC 19794-2, ANSI 378 or the native
format; sniffed), where MOSIP's ABIS fetches a CBEFF from ``referenceURL``. ``identify`` searches
either that inline probe or the template already enrolled under ``referenceId`` (then left out of
its own candidates). Candidates carry the matcher's score (``analytics.score``, 0..35679) and
whether it reaches the 0.01 % FMR threshold (``analytics.match``).

**Retries are safe.** Every answer is kept by ``requestId`` (the last 100,000, and on disk next to
the gallery when it has a directory): a request repeated with the same ``requestId`` and the same
body gets the first answer again without doing the work twice (an insert is not enrolled twice,
nor refused as a duplicate); the same ``requestId`` with another body is refused
(``failureReason`` 5). Failure reasons used: 3 unexpected error, 5 invalid request, 8 missing
``referenceId``, 9 missing ``requestId``, 13 ``referenceId`` already exists, 15 ``referenceId``
not found, 19 invalid biometric data (codes as in MOSIP's ABIS API specification).

The gallery is ``app.state.abis_gallery`` when set (any :class:`~biostation.identify.Backend`,
or a :class:`~biostation.identify.persons.PersonGallery`), else opened on first use in
``<data_dir>/abis``: a :class:`~biostation.identify.ray_backend.RayBackend` when the
``ray_address`` setting is set, else a :class:`~biostation.identify.LocalBackend`; with the
``abis_unit`` setting ``person``, a RayBackend of persons or a PersonGallery.

**Persons.** Over a PersonGallery a ``referenceId`` is a person: insert enrols every finger view of
the record (each at its ISO/IEC 19794-2 finger position 1..10, distinct; failure 19 otherwise),
identify searches with all of the probe's fingers, each against the same finger of every person
(scores summed; :mod:`biostation.identify.persons`), and a candidate's ``analytics`` add
``fingers``, the number compared; ``match`` is then the 0.01 % FMR threshold for a sum of that many
finger scores (``identify.params.FUSED_MATCH_THRESHOLDS``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from ..errors import BiostationError, GalleryError, MatcherError, TemplateError
from ..templates import decode

router = APIRouter(prefix="/v1/abis", tags=["abis"])

#: answers kept for retried requests (entries)
MAX_REMEMBERED = 100_000
#: most candidates one identify returns
MAX_RESULTS = 1000
#: largest inline template (bytes, before base64)
MAX_TEMPLATE = 256 * 1024

FAIL_UNEXPECTED, FAIL_INVALID, FAIL_NO_REFERENCE, FAIL_NO_REQUEST = "3", "5", "8", "9"
FAIL_EXISTS, FAIL_NOT_FOUND, FAIL_BAD_BIOMETRIC = "13", "15", "19"


class AbisRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    version: str | None = "1.1"
    requestId: str | None = Field(None, max_length=256)
    requesttime: str | None = None
    referenceId: str | None = Field(None, max_length=1024)
    biometrics: str | None = Field(None, description="base64 template (ISO 19794-2, ANSI 378 or native)")
    gallery: dict[str, Any] | None = None
    flags: dict[str, Any] | None = None


class _Failure(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class AbisService:
    """The operations, the answers kept for retries and the pending-job count (thread-safe)."""

    def __init__(self, gallery: Any, journal: Path | None = None):
        from ..identify.persons import PersonGallery

        self.gallery = gallery
        #: a ten-print gallery: a referenceId is a person, every finger view of a record counts
        self.persons = isinstance(gallery, PersonGallery) or getattr(gallery, "unit", "finger") == "person"
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._busy: set[str] = set()
        self._pending = 0
        self._journal = journal
        # requests begun but not answered before a crash: (requestId -> digest); an insert among
        # them that finds its reference enrolled took effect, and answers success when retried
        self._begun: dict[str, str] = {}
        if journal is not None and journal.is_file():
            for line in journal.read_text("utf-8").splitlines():
                try:
                    rid, digest, answer = json.loads(line)
                except (ValueError, TypeError):
                    continue  # a torn last line
                if answer is None:
                    self._begun[rid] = digest
                else:
                    self._begun.pop(rid, None)
                    self._remember(rid, digest, answer, write=False)

    def _remember(self, rid: str, digest: str, answer: dict[str, Any], write: bool = True) -> None:
        self._answers[rid] = (digest, answer)
        self._answers.move_to_end(rid)
        while len(self._answers) > MAX_REMEMBERED:
            self._answers.popitem(last=False)
        if write and self._journal is not None:
            with open(self._journal, "a", encoding="utf-8") as f:
                f.write(json.dumps([rid, digest, answer]) + "\n")

    @property
    def pending(self) -> int:
        return self._pending

    def serve(self, op: str, req: AbisRequest) -> dict[str, Any]:
        base = {"id": f"mosip.abis.{op}", "requestId": req.requestId}
        if not req.requestId:
            return self._answer(base, failure=_Failure(FAIL_NO_REQUEST, "requestId is missing"))
        digest = hashlib.sha256(json.dumps([op, req.model_dump(exclude={"requesttime"})], sort_keys=True,
                                           default=str).encode()).hexdigest()
        with self._lock:
            seen = self._answers.get(req.requestId)
            if seen is not None:
                if seen[0] != digest:
                    return self._answer(base, failure=_Failure(FAIL_INVALID, "requestId already used for "
                                                                             "another request"))
                return dict(seen[1], responsetime=_now())
            if req.requestId in self._busy:
                return self._answer(base, failure=_Failure(FAIL_INVALID, "the same requestId is being served"))
            self._busy.add(req.requestId)
            self._pending += 1
            if op in ("insert", "delete") and self._journal is not None:
                with open(self._journal, "a", encoding="utf-8") as f:  # the intent, before the work
                    f.write(json.dumps([req.requestId, digest, None]) + "\n")
        try:
            try:
                out = self._answer(base, **getattr(self, "_" + op.lower())(req))
            except _Failure as f:
                out = self._answer(base, failure=f)
            except BiostationError as exc:  # the gallery did not answer: not remembered, retry later
                out = self._answer(base, failure=_Failure(FAIL_UNEXPECTED, type(exc).__name__))
                return out
            if op != "ping":
                with self._lock:
                    self._remember(req.requestId, digest, out)
            return out
        finally:
            with self._lock:
                self._busy.discard(req.requestId)
                self._pending -= 1

    @staticmethod
    def _answer(base: dict[str, Any], failure: _Failure | None = None, **body: Any) -> dict[str, Any]:
        out = dict(base, responsetime=_now())
        if failure is None:
            out.update(returnValue="1", **body)
        else:
            out.update(returnValue="2", failureReason=failure.reason, reason=str(failure))
        return out

    # --- the operations ---------------------------------------------------------------------
    def _template(self, req: AbisRequest):
        return self._views(req)[0]

    def _views(self, req: AbisRequest) -> list:
        if not req.biometrics:
            raise _Failure(FAIL_INVALID, "biometrics (a base64 template) is missing")
        try:
            raw = base64.b64decode(req.biometrics, validate=True)
        except (binascii.Error, ValueError):
            raise _Failure(FAIL_BAD_BIOMETRIC, "biometrics is not base64") from None
        if len(raw) > MAX_TEMPLATE:
            raise _Failure(FAIL_BAD_BIOMETRIC, f"template larger than {MAX_TEMPLATE} bytes")
        try:
            record = decode(raw)
            if not record.views:
                raise _Failure(FAIL_BAD_BIOMETRIC, "the template holds no finger view")
            return list(record.views)
        except TemplateError as exc:
            raise _Failure(FAIL_BAD_BIOMETRIC, f"unreadable template: {exc}") from None

    def _insert(self, req: AbisRequest) -> dict[str, Any]:
        if not req.referenceId:
            raise _Failure(FAIL_NO_REFERENCE, "referenceId is missing")
        template = self._person(req, prepare=False) if self.persons else self._template(req)
        if req.requestId in self._begun and req.referenceId in self.gallery:
            return {}  # this very request enrolled it before a crash took its answer
        try:
            self.gallery.insert(req.referenceId, template)
        except MatcherError as exc:
            raise _Failure(FAIL_BAD_BIOMETRIC, str(exc)) from None
        except GalleryError as exc:
            if type(exc) is GalleryError and req.referenceId in self.gallery:
                raise _Failure(FAIL_EXISTS, "referenceId already exists") from None
            if type(exc) is GalleryError:
                raise _Failure(FAIL_INVALID, str(exc)) from None
            raise
        return {}

    def _person(self, req: AbisRequest, prepare: bool = True) -> dict:
        """The record's finger views by position (person galleries), in search form unless
        ``prepare`` is False (an insert prepares them once, in the gallery); a failure naming what
        is wrong."""
        from ..identify import persons

        try:
            return (persons.probe_views if prepare else persons.finger_views)(self._views(req))
        except GalleryError as exc:
            raise _Failure(FAIL_BAD_BIOMETRIC, f"a person record needs finger views at distinct ISO/IEC 19794-2 "
                                               f"positions 1..10: {exc}") from None
        except MatcherError as exc:
            raise _Failure(FAIL_BAD_BIOMETRIC, str(exc)) from None

    def _delete(self, req: AbisRequest) -> dict[str, Any]:
        if not req.referenceId:
            raise _Failure(FAIL_NO_REFERENCE, "referenceId is missing")
        if req.referenceId not in self.gallery:
            raise _Failure(FAIL_NOT_FOUND, "referenceId not found")
        self.gallery.delete(req.referenceId)
        return {}

    def _identify(self, req: AbisRequest) -> dict[str, Any]:
        from .. import matcher

        flags = req.flags or {}
        try:
            max_results = int(flags.get("maxResults", 10))
        except (TypeError, ValueError):
            raise _Failure(FAIL_INVALID, "flags.maxResults must be an integer") from None
        if not 1 <= max_results <= MAX_RESULTS:
            raise _Failure(FAIL_INVALID, f"flags.maxResults must be 1..{MAX_RESULTS}")
        subset = None
        if req.gallery is not None:
            ids = req.gallery.get("referenceIds")
            if not isinstance(ids, list) or not all(isinstance(i, (str, dict)) for i in ids):
                raise _Failure(FAIL_INVALID, "gallery.referenceIds must be a list")
            subset = {i["referenceId"] if isinstance(i, dict) else i for i in ids}
        exclude = None
        if req.biometrics:
            probe = self._person(req) if self.persons else self._template(req)
        elif req.referenceId:
            probe = self._enrolled(req.referenceId)
            exclude = req.referenceId
        else:
            raise _Failure(FAIL_NO_REFERENCE, "give referenceId (enrolled) or biometrics")
        try:
            if subset is None:
                found = self.gallery.search(probe, max_results + (exclude is not None))
            else:
                everyone = self.gallery.search(probe, max(1, self.gallery.count()))
                found = [c for c in everyone if c.reference_id in subset]
        except MatcherError as exc:
            raise _Failure(FAIL_BAD_BIOMETRIC, str(exc)) from None
        found = [c for c in found if c.reference_id != exclude][:max_results]
        if self.persons:
            from ..identify.persons import is_match

            cands = [{"referenceId": c.reference_id, "analytics": {
                "score": c.score, "fingers": c.fingers, "match": is_match(c.score, c.fingers)}} for c in found]
        else:
            threshold = matcher.THRESHOLDS["FMR_1e-4"]
            cands = [{"referenceId": c.reference_id, "analytics": {"score": c.score, "match": c.score >= threshold}}
                     for c in found]
        return {"candidateList": {"count": len(cands), "candidates": cands}}

    def _enrolled(self, reference_id: str):
        get = getattr(self.gallery, "fingers" if self.persons else "search_template", None)
        if reference_id not in self.gallery:
            raise _Failure(FAIL_NOT_FOUND, "referenceId not found")
        if get is None:
            raise _Failure(FAIL_INVALID, "this gallery cannot search by referenceId: send biometrics")
        return get(reference_id)

    def _ping(self, req: AbisRequest) -> dict[str, Any]:
        self.gallery.count()
        return {}

    def _pendingjobs(self, req: AbisRequest) -> dict[str, Any]:
        return {"jobscount": str(max(0, self._pending - 1))}

    def _referencecount(self, req: AbisRequest) -> dict[str, Any]:
        return {"count": str(self.gallery.count())}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_OPEN = threading.Lock()


def service(request: Request) -> AbisService:
    """The app's ABIS service, opened on first use."""
    state = request.app.state
    svc = getattr(state, "abis", None)
    if svc is not None:
        return svc
    with _OPEN:
        svc = getattr(state, "abis", None)
        if svc is None:
            gallery = getattr(state, "abis_gallery", None)
            journal = None
            if gallery is None:
                settings = state.settings
                root = Path(settings.data_dir) / "abis"
                root.mkdir(parents=True, exist_ok=True)
                if settings.ray_address:
                    from ..identify.ray_backend import RayBackend

                    if settings.abis_unit == "person":
                        gallery = RayBackend(root / "ray-persons", settings=settings, unit="person")
                    else:
                        gallery = RayBackend(root / "ray", settings=settings)
                elif settings.abis_unit == "person":
                    from ..identify.persons import PersonGallery

                    gallery = PersonGallery(root / "persons")
                else:
                    from ..identify import LocalBackend

                    gallery = LocalBackend(root / "local")
                journal = root / "requests.jsonl"
            svc = AbisService(gallery, journal)
            state.abis = svc
    return svc


def _route(op: str, summary: str):
    def handler(req: AbisRequest, request: Request) -> dict[str, Any]:
        return service(request).serve(op, req)

    handler.__name__ = f"abis_{op.lower()}"
    router.post(f"/{op.lower()}", summary=summary)(handler)


for _op, _summary in (("insert", "Enrol a reference (MOSIP ABIS insert)"),
                      ("identify", "1:N search (MOSIP ABIS identify)"),
                      ("delete", "Remove a reference (MOSIP ABIS delete)"),
                      ("ping", "The gallery answers (MOSIP ABIS ping)"),
                      ("pendingJobs", "Requests being served (MOSIP ABIS pendingJobs)"),
                      ("referenceCount", "References enrolled (MOSIP ABIS referenceCount)")):
    _route(_op, _summary)
