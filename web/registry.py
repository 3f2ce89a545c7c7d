"""Imports every model module so Base.metadata is complete (Alembic, tests, the app).

Each domain package adds its models module here when it lands.
"""

from __future__ import annotations

from sqlalchemy import MetaData

import analytics.models  # noqa: F401
import attribution.models  # noqa: F401
import campaigns.models  # noqa: F401
import core.accounts.models
import core.audit
import core.outbox  # noqa: F401
import loyalty.models  # noqa: F401
from core.db import Base


def metadata() -> MetaData:
    return Base.metadata
