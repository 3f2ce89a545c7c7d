"""The touchpoints CSV import: all or nothing with line-numbered errors (as every import),
the same checks as an API batch, safe to run again."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from attribution.imports import import_touchpoints
from attribution.models import Touchpoint
from campaigns.imports import ImportFailed
from core.audit import Actor
from core.errors import PermissionDenied
from tests.attribution.conftest import ACTOR, World

HEADER = "source,external_id,channel,kind,occurred_at,member_number,visitor_id,campaign_code\n"


def count(world: World) -> int:
    return int(world.db.scalar(select(func.count(Touchpoint.id))) or 0)


def test_a_file_imports_whole_and_again_without_writing_twice(world: World) -> None:
    member = world.join()
    world.campaign("SPRING26", "email")
    data = (
        "\ufeff"  # Excel's BOM
        + HEADER
        + f"web,E1,email,click,2026-03-01T10:00:00+08:00,{member.number},,spring26\n"
        + "\n"  # blank lines are skipped
        + "ads,I1,search_ads,impression,2026-03-01T09:00:00Z,,cookie-7,\n"
    ).encode()
    result = import_touchpoints(world.db, ACTOR, data)
    assert (result.rows, result.created, result.replayed) == (2, 2, 0)
    again = import_touchpoints(world.db, ACTOR, data)
    assert (again.rows, again.created, again.replayed) == (2, 0, 2)
    assert count(world) == 2


def test_every_bad_line_is_named_and_nothing_is_imported(world: World) -> None:
    import_touchpoints(
        world.db, ACTOR, (HEADER + "web,E1,email,click,2026-03-01T10:00:00+08:00,,v1,\n").encode()
    )
    data = (
        HEADER
        + "web,OK,email,click,2026-03-01T10:00:00+08:00,,v1,\n"  # line 2: fine
        + "web,B1,email,click,yesterday,,v1,\n"  # 3: not a time
        + "web,B2,email,click,2026-03-01T10:00:00,,v1,\n"  # 4: no offset
        + "web,B3,fax,click,2026-03-01T10:00:00+08:00,,v1,\n"  # 5: unknown channel
        + "web,B4,email,click,2026-03-01T10:00:00+08:00,,,\n"  # 6: nobody
        + ",B5,email,click,2026-03-01T10:00:00+08:00,,v1,\n"  # 7: empty source
        + "web,E1,email,visit,2026-03-01T10:00:00+08:00,,v1,\n"  # 8: E1 is stored otherwise
        + "web,B6,email,click,2026-03-01T10:00:00+08:00,M99999999,,\n"  # 9: no such member
    ).encode()
    with pytest.raises(ImportFailed) as failed:
        import_touchpoints(world.db, ACTOR, data)
    lines = [e["line"] for e in failed.value.details]
    assert lines == [3, 4, 5, 6, 7, 9]  # conflicts with stored rows come once the rest pass
    assert failed.value.message.startswith("Nothing was imported: 6 bad row(s). line 3: ")
    assert "line 4: The time needs its time zone" in failed.value.message
    assert "(and 1 more)" in failed.value.message
    assert count(world) == 1

    conflicting = (HEADER + "web,E1,email,visit,2026-03-01T10:00:00+08:00,,v1,\n").encode()
    with pytest.raises(ImportFailed) as refused:
        import_touchpoints(world.db, ACTOR, conflicting)
    assert refused.value.details == [
        {"line": 2, "message": "web/E1 was imported before with different content."}
    ]


def test_header_encoding_empty_file_and_roles(world: World) -> None:
    with pytest.raises(ImportFailed) as missing:
        import_touchpoints(world.db, ACTOR, b"source,external_id\nweb,E1\n")
    assert missing.value.code == "import.columns"
    with pytest.raises(ImportFailed) as encoding:
        import_touchpoints(world.db, ACTOR, HEADER.encode("utf-16"))
    assert encoding.value.code == "import.encoding"
    with pytest.raises(ImportFailed) as empty:
        import_touchpoints(world.db, ACTOR, HEADER.encode())
    assert empty.value.code == "import.empty"
    with pytest.raises(PermissionDenied):
        import_touchpoints(world.db, Actor("user", "fang", roles=frozenset({"finance"})), b"")
