"""Delivery layer: the FastAPI app (HTML pages, JSON API) and the `retain` command line."""
