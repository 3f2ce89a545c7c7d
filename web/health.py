"""/healthz for load balancers and monitors: is the app up and the database reachable?"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from web.deps import Db

router = APIRouter(include_in_schema=False)
log = logging.getLogger("retain.health")


def database_ok(db: Session) -> bool:
    try:
        db.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        log.warning("database check failed", exc_info=True)
        db.rollback()
        return False


@router.get("/healthz")
def healthz(db: Db) -> JSONResponse:
    ok = database_ok(db)
    body = {"status": "ok" if ok else "error", "database": "ok" if ok else "unreachable"}
    return JSONResponse(body, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})
