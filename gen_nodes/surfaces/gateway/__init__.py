"""gateway: the HTTP gateway (``app.py``) and its OpenAPI document (``openapi.py``)."""
