"""The JSON API under /api/v1. Integrations send `Authorization: Bearer <key>`."""
