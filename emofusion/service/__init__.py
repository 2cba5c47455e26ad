"""The HTTP service and web page: `create_app(recognizer)` returns a FastAPI app (see app.py)."""

__all__ = ["create_app"]


def __getattr__(name: str):
    # Lazy, so `emofusion serve --help` can read `service.limits` without importing torch and FastAPI.
    if name == "create_app":
        from emofusion.service.app import create_app

        return create_app
    raise AttributeError(f"module 'emofusion.service' has no attribute {name!r}")
