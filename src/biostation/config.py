"""The station's settings: one object, read from ``BIOSTATION_*`` environment variables.

No other module reads ``os.environ``; code that needs a setting takes a :class:`Settings`
(or calls :func:`get_settings`). Every field below can be set as ``BIOSTATION_<FIELD>``, for
example ``BIOSTATION_DEVICES=simulated`` or ``BIOSTATION_PORT=9000``.
"""

from __future__ import annotations

import os
from enum import Enum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DeviceMode(str, Enum):
    """Which drivers the registry may use."""

    AUTO = "auto"  # real hardware where found; simulated devices for the classes with none
    SIMULATED = "simulated"  # simulated devices only
    HARDWARE = "hardware"  # real hardware only (a desk in production)


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "biostation"


def _shared_dir() -> Path | None:
    """``../shared`` next to the working directory, where the project's data set lives."""
    for cand in (Path.cwd() / ".." / "shared", Path(__file__).resolve().parents[3] / "shared"):
        if (cand / "data").is_dir():
            return cand.resolve()
    return None


class Settings(BaseSettings):
    """Station settings. Paths are resolved at use, not at import."""

    model_config = SettingsConfigDict(env_prefix="BIOSTATION_", extra="ignore")

    # --- daemon -----------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the daemon binds to. Biometric data is "
                      "personal data: keep the default loopback unless a TLS proxy fronts it.")
    port: int = Field(8470, ge=0, le=65535, description="TCP port of the daemon (0: any free port).")
    data_dir: Path = Field(default_factory=_default_data_dir,
                           description="Station data: token, store, galleries, journals.")
    log_level: str = Field("info", description="Python logging level name.")
    allowed_hosts: list[str] = Field(default_factory=list, description="Host names (besides localhost and "
                                     "the bound address) that requests may name in their Host header; any "
                                     "other is refused, against DNS rebinding. A JSON list in the environment.")
    max_body_bytes: int = Field(1024 * 1024, gt=0, description="Largest request body of a route that "
                                "declares no limit of its own (bytes); larger ones get 413.")
    session_ttl_s: float = Field(8 * 3600, gt=0, description="Lifetime of a browser sign-in session (s).")
    header_timeout_s: float = Field(10.0, gt=0, description="A connection that has not sent a complete "
                                    "request head this long after opening (or after its last response) "
                                    "is closed.")
    linger_s: float = Field(2.0, ge=0, description="A connection the station closes keeps reading (and "
                            "dropping) what the client still sends for at most this long, so a client still "
                            "uploading a refused body reads the answer, not a reset (0: close at once).")
    linger_max_bytes: int = Field(16 * 1024 * 1024, ge=0, description="... and at most this many bytes.")
    body_timeout_s: float = Field(30.0, gt=0, description="A request whose body stalls this long between "
                                  "two chunks gets 408 and its connection is closed.")
    heavy_workers: int = Field(2, ge=1, le=64, description="Threads for heavy request work (image decoding "
                               "and checks), off the event loop.")
    heavy_queue: int = Field(2, ge=0, le=1024, description="Heavy requests that may wait for a worker; "
                             "past that the station answers 503 with Retry-After.")

    # --- MOSIP SBI (biostation.station.sbi) ---------------------------------------------------
    sbi: bool = Field(True, description="Serve the scanners and cameras through MOSIP's Secure Biometric "
                      "Interface (SBI 0.9.5) on 127.0.0.1, one port per device, beside the API.")
    sbi_port_first: int = Field(4501, ge=0, le=65535, description="First SBI port (the spec: 4501); 0: any "
                                "free port for each device (tests).")
    sbi_port_last: int = Field(4600, ge=0, le=65535, description="Last SBI port (the spec: 4600).")
    sbi_env: str = Field("Developer", pattern="^(Staging|Developer|Pre-Production|Production)$",
                         description="The MOSIP environment the SBI devices serve (the spec's env: Staging, "
                         "Developer, Pre-Production or Production): said in deviceInfo and in every signed "
                         "capture; a capture request for another environment is refused.")
    sbi_key_source: str = Field("file", pattern="^(file|pkcs11)$", description="Where the SBI device keys "
                                "are: file (0600 PEM files in <data_dir>/sbi/keys, made on first start) or pkcs11 "
                                "(RSA key pairs made in a token; certificates and the test device CA in files).")
    sbi_pkcs11_module: Path = Field(Path("/usr/lib/softhsm/libsofthsm2.so"), description="PKCS#11 module of "
                                    "the SBI device keys.")
    sbi_pkcs11_token: str = Field("biostation-sbi", description="Label of the token with the SBI device keys.")
    sbi_pkcs11_pin: SecretStr | None = Field(None, description="User PIN of that token (never logged).")

    # --- devices ----------------------------------------------------------------------------
    devices: DeviceMode = Field(DeviceMode.AUTO, description="auto, simulated or hardware.")
    device_poll_s: float = Field(1.0, gt=0, description="Hot-plug and card-presence poll period (s).")
    sim_scanner_dir: Path | None = Field(
        None, description="Images the simulated scanner serves (default: ../shared/data/fvc2002 "
        "when present, else images generated by the package).")
    sim_scanner_dpi: int = Field(500, gt=0, description="Resolution reported by the simulated scanner.")
    sim_camera_source: Path | None = Field(
        None, description="Video file, image file or image folder the simulated camera plays (default: "
        "a compliant portrait of ../shared/data/faces/LONDON_FRL when present, else a generated clip).")
    usb_replay_dir: Path | None = Field(
        None, description="A folder with a umockdev recording (device, capture.ioctl): USB drivers "
        "then see the recorded device instead of libusb (demos, tests).")
    sim_card: str = Field("cccd", pattern="^(cccd|td3|blank)$", description="Card in the simulated reader: "
                          "a virtual Vietnamese ID card (cccd, PACE with CAN 012345), a passport (td3, BAC) "
                          "or a blank chip; kept in <data_dir>/sim/card.")
    csca_dir: Path | None = Field(None, description="CSCA trust store for card reads: certificates and ICAO "
                                  "master lists (default: <data_dir>/csca).")
    capture_timeout_s: float = Field(15.0, gt=0, le=600, description="How long the desk's capture loop tries one "
                                     "finger or slap (preview, quality gate, retries) before it keeps the best "
                                     "impression or reports a timeout (s).")
    terminal_dir: Path | None = Field(None, description="Inspection-system credentials for Extended Access "
                                      "Control (cvca.cvcert, dv.cvcert, is.cvcert, is.key) with which chip "
                                      "verification reads DG3. Default: none (a simulated reader lends its test "
                                      "credentials for its own card).")
    sim_time_scale: float = Field(1.0, ge=0, description="Multiplies the simulated devices' delays "
                                  "(0: as fast as possible, for tests).")

    # --- quality ----------------------------------------------------------------------------
    nfiq2_model: Path | None = Field(
        None, description="NIST's NFIQ 2 random forest (YAML); default: "
        "../shared/models/nfiq2/nist_plain_tir-ink.yaml when present.")

    # --- matcher ----------------------------------------------------------------------------
    purepython: bool = Field(False, description="Force the numpy matcher even when the C kernels are built.")

    # --- ABIS (station/routes_abis.py) ----------------------------------------------------------
    abis_unit: str = Field("finger", pattern="^(finger|person)$", description="What an ABIS referenceId "
                           "enrols: finger (the record's first finger view; the local or the Ray gallery) or "
                           "person (every finger view of the record, at its ISO/IEC 19794-2 position 1..10, "
                           "searched ten-print with the fused two-stage search; in <data_dir>/abis/persons, "
                           "or sharded over Ray with ray_address in <data_dir>/abis/ray-persons).")

    # --- 1:N gallery on a Ray cluster (biostation.identify.ray_backend) ---------------------
    ray_address: str | None = Field(None, description="Ray cluster to join (\"auto\", \"host:6379\" or "
                                    "\"ray://host:10001\"); unset: start a local cluster in this process.")
    ray_num_cpus: int | None = Field(None, ge=1, description="CPUs of a locally started cluster (default: all).")
    ray_shards: int = Field(2, ge=1, le=4096, description="Shard actors of a Ray gallery; fixed when the "
                            "gallery is created (recorded in its manifest).")
    ray_shard_cpus: float = Field(1.0, ge=0, description="CPUs Ray reserves for each shard actor.")
    ray_shard_threads: int = Field(1, ge=1, le=256, description="Calls one shard actor serves at once: "
                                   "concurrent searches score in parallel (the C kernels release the GIL).")
    ray_max_restarts: int = Field(-1, ge=-1, description="Restarts of a dead shard actor (-1: without limit); "
                                  "a restarted shard reloads its slice from disk.")
    ray_timeout_s: float = Field(60.0, gt=0, description="Longest wait for the shards' answer to one call.")
    ray_start_timeout_s: float = Field(180.0, gt=0, description="Longest wait for the shard actors of a gallery to "
                                       "start and load their slices when it is opened (a process each, "
                                       "slower than any call on a busy machine).")
    ray_detached: bool = Field(False, description="Keep shard actors alive after the process that started "
                               "them exits (a daemon); the next process reattaches to them by name.")

    # --- face ---------------------------------------------------------------------------------
    face_models_dir: Path | None = Field(None, description="Folder with the face model files (default: models/ "
                                         "of the source tree; see models/README.md for the sha256 list).")

    # --- card personalization line ----------------------------------------------------------
    perso_signer: str = Field("pkcs11", pattern="^(pkcs11|keyfile)$", description="Where the Document "
                              "Signer key is: pkcs11 (an HSM or token: production) or keyfile (development only).")
    perso_pkcs11_module: Path = Field(Path("/usr/lib/softhsm/libsofthsm2.so"), description="PKCS#11 module.")
    perso_pkcs11_token: str = Field("biostation-ds", description="Label of the token holding the DS key.")
    perso_pkcs11_key: str = Field("document-signer", description="Label of the DS private key in the token.")
    perso_pkcs11_pin: SecretStr | None = Field(None, description="User PIN of the token (never logged).")
    perso_pkcs11_is_key: str | None = Field(None, description="Label of the inspection system's "
                                            "terminal-authentication key (EAC) in the token; default: the DS "
                                            "key's label followed by '-is'.")
    perso_pki_dir: Path | None = Field(None, description="Folder of the PKI (csca.pem, ds.pem; ds.key for "
                                       "the keyfile signer). Default: <data_dir>/perso/pki.")
    perso_max_portrait_bytes: int = Field(48 * 1024, gt=0, description="Largest portrait an order may carry.")
    perso_chunk: int = Field(223, ge=1, le=255, description="UPDATE BINARY bytes per APDU.")
    perso_chunk_extended: int = Field(1024, ge=1, le=65535, description="UPDATE BINARY bytes per APDU on "
                                      "cards whose ATR announces extended length.")

    # --- enrollment store, audit trail, outbox ----------------------------------------------
    store_dir: Path | None = Field(None, description="Folder of the enrollment store (enrollment.db, its "
                                   "key file, the outbox lock). Default: <data_dir>/store.")
    store_key_source: str = Field("file", pattern="^(file|env|pkcs11)$", description="Where the store's "
                                  "data key comes from: file (a 0600 key file, made on first use), env "
                                  "(BIOSTATION_STORE_KEY) or pkcs11 (a data key wrapped by an AES key in a token).")
    store_key_file: Path | None = Field(None, description="The data key file (file source; default "
                                        "<store_dir>/store.key) or the wrapped data key (pkcs11 source; default "
                                        "<store_dir>/store.key.wrapped).")
    store_key: SecretStr | None = Field(None, description="The data key for the env source: 32 bytes, "
                                        "base64 or hex (never logged).")
    store_pkcs11_module: Path = Field(Path("/usr/lib/softhsm/libsofthsm2.so"), description="PKCS#11 module "
                                      "holding the store's wrapping key.")
    store_pkcs11_token: str = Field("biostation-store", description="Label of the token with the wrapping key.")
    store_pkcs11_key: str = Field("store-wrap", description="Label of the AES wrapping key in the token.")
    store_pkcs11_pin: SecretStr | None = Field(None, description="User PIN of that token (never logged).")
    central_url: str | None = Field(None, description="Where the outbox posts finished transactions "
                                    "(https://...; plain http only to a loopback address).")
    central_ca_file: Path | None = Field(None, description="CA bundle that the central endpoint's "
                                         "certificate must chain to (default: the system's).")
    central_client_cert: Path | None = Field(None, description="Client certificate (PEM, key included) "
                                             "for mutual TLS with the central endpoint.")
    central_token: SecretStr | None = Field(None, description="Bearer token sent to the central endpoint "
                                            "(never logged).")
    central_timeout_s: float = Field(30.0, gt=0, description="Timeout of one upload (connect, read, write).")
    outbox_backoff_base_s: float = Field(2.0, gt=0, description="First retry delay of the outbox (s); it "
                                         "doubles per failed attempt of a transaction, with jitter.")
    outbox_backoff_cap_s: float = Field(600.0, gt=0, description="Longest retry delay of the outbox (s).")

    @property
    def resolved_store_dir(self) -> Path:
        return self.store_dir or self.data_dir / "store"

    @property
    def resolved_pki_dir(self) -> Path:
        return self.perso_pki_dir or self.data_dir / "perso" / "pki"

    @property
    def trust_dir(self) -> Path:
        return self.csca_dir if self.csca_dir is not None else self.data_dir / "csca"

    @property
    def token_path(self) -> Path:
        return self.data_dir / "token"

    def shared_dir(self) -> Path | None:
        return _shared_dir()

    def resolved_scanner_dir(self) -> Path | None:
        if self.sim_scanner_dir is not None:
            return self.sim_scanner_dir
        shared = _shared_dir()
        if shared is not None and (shared / "data" / "fvc2002").is_dir():
            return shared / "data" / "fvc2002"
        return None

    def resolved_camera_source(self) -> Path | None:
        if self.sim_camera_source is not None:
            return self.sim_camera_source
        shared = _shared_dir()
        if shared is not None:
            # a compliant full-frontal portrait (white background, eyes 200 px apart), so that the
            # demo's portrait capture passes; the data set's videos fail the ICAO geometry
            portrait = shared / "data" / "faces" / "LONDON_FRL" / "001" / "1_neutral.jpg"
            if portrait.is_file():
                return portrait
        return None


def project_models_dir() -> Path:
    """The repository's ``models/`` folder (model files with provenance in its README)."""
    return Path(__file__).resolve().parents[2] / "models"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
