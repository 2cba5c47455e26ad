"""The HTTP service and web page: `create_app(recognizer)` returns a FastAPI app (see app.py)."""

from emofusion.service.app import create_app

__all__ = ["create_app"]
