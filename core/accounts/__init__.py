"""Staff accounts, roles, sign-in sessions and integration API keys."""
