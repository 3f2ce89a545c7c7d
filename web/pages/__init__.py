"""HTML pages. Every unsafe request through these routers must carry a CSRF token."""
