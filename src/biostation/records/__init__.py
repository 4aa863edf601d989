"""Biometric records: ANSI/NIST-ITL 1-2011 transactions, ISO/IEC 19794-4/-5 image records, WSQ.

* :mod:`.ansi_nist`: read and write ANSI/NIST-ITL transactions (traditional encoding);
  :func:`read_transaction`, :class:`Transaction`, :func:`write_file` (atomic).
* :mod:`.builder`: the records of one enrollment: :func:`build_transaction`,
  :func:`build_records` and their inputs (:class:`FingerImage`, :class:`Segment`,
  :class:`Portrait`, :class:`TransactionHeader`).
* :mod:`.iso19794_4` / :mod:`.iso19794_5`: finger and face image records, 2005 editions (as in
  ICAO 9303 DG3/DG2, the default) and 2011 editions (MOSIP's SBI), with :mod:`.iso19794_1` for
  what the 2011 editions share; :mod:`.wsq`: WSQ through NIST's coder.
* :mod:`.vocabulary`: finger positions and impression kinds, shared with devices and segmenters.

The ISO/IEC 19794-2 minutiae templates live in :mod:`biostation.templates`.
"""

# vocabulary first: devices and segmenters import it, and need nothing else from here
from .vocabulary import ISO_IMPRESSION_CODE, FingerPosition, ImpressionKind  # noqa: I001
from .ansi_nist import Record, Transaction, read_transaction, write_file
from .builder import (
    NFIQ2_ALGORITHM,
    EnrollmentRecords,
    FingerImage,
    Portrait,
    QualityAlgorithm,
    Segment,
    TransactionHeader,
    build_records,
    build_transaction,
    minutiae_record,
    read_minutiae,
)

__all__ = ["FingerPosition", "ImpressionKind", "ISO_IMPRESSION_CODE", "Record", "Transaction",
           "read_transaction", "write_file", "FingerImage", "Segment", "Portrait", "TransactionHeader",
           "EnrollmentRecords", "QualityAlgorithm", "NFIQ2_ALGORITHM", "build_transaction", "build_records",
           "minutiae_record", "read_minutiae"]
