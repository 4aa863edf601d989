"""Hardware abstraction: typed interfaces for scanners, cameras and card readers, events and
the driver registry. Interfaces only; the drivers live in the ``biostation_drivers`` package."""

from .base import Attachment, Device, DeviceClass, DeviceInfo, DeviceState, Feature
from .camera import Camera, CameraSettings, Frame
from .card_reader import ApduTransport, CardReader
from .events import Event, EventBus, EventKind, EventQueue
from .registry import DriverRegistry, load_driver_classes
from .scanner import (
    Deadline,
    FingerPosition,
    FingerprintScanner,
    Impression,
    ImpressionKind,
    PreviewFrame,
)

__all__ = [
    "ApduTransport",
    "Attachment",
    "Camera",
    "CameraSettings",
    "CardReader",
    "Deadline",
    "Device",
    "DeviceClass",
    "DeviceInfo",
    "DeviceState",
    "DriverRegistry",
    "Event",
    "EventBus",
    "EventKind",
    "EventQueue",
    "Feature",
    "FingerPosition",
    "FingerprintScanner",
    "Frame",
    "Impression",
    "ImpressionKind",
    "PreviewFrame",
    "load_driver_classes",
]
