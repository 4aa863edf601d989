"""The station daemon: FastAPI app factory, routes, workflows, operator page."""

from .app import create_app

__all__ = ["create_app"]
