"""The REST service: a BentoML service with a FastAPI app mounted at /v1 (see `service.py`)."""
