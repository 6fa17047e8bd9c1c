"""Tokens and roles in EDITING_SERVICE_API_TOKENS: `name:role=token`, and the older `name=token` as admin."""

from __future__ import annotations

import pytest

from editing_service.config import BAD_TOKEN_ENTRY, BAD_TOKEN_ROLE, ServiceConfig, parse_tokens
from editing_service.roles import Principal, Role


def test_roles_are_read_and_a_bare_name_is_an_admin() -> None:
    tokens = parse_tokens("root=t0, ana:reviewer=t1,vic:viewer=t2 ,bot:service=t3,adm:admin=t4")
    assert tokens == {
        "t0": Principal("root", Role.admin), "t1": Principal("ana", Role.reviewer),
        "t2": Principal("vic", Role.viewer), "t3": Principal("bot", Role.service), "t4": Principal("adm", Role.admin),
    }


@pytest.mark.parametrize(("value", "message"), [
    ("ana:owner=t", BAD_TOKEN_ROLE.format(name="ana", role="owner", roles="admin, reviewer, viewer, service")),
    ("ana:=t", BAD_TOKEN_ENTRY.format(entry="ana:=t")),
    (":viewer=t", BAD_TOKEN_ENTRY.format(entry=":viewer=t")),
])
def test_bad_roles_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_tokens(value)
    assert str(raised.value) == message


def test_database_tokens_are_off_unless_asked() -> None:
    plain = ServiceConfig.from_env({"EDITING_SERVICE_API_TOKENS": "a=1"})
    assert not plain.database_tokens and plain.token_cache_seconds == 5.0
    on = ServiceConfig.from_env({"EDITING_SERVICE_API_TOKENS": "a=1", "EDITING_SERVICE_DATABASE_TOKENS": "1",
                                 "EDITING_SERVICE_TOKEN_CACHE_S": "0"})
    assert on.database_tokens and on.token_cache_seconds == 0.0
    with pytest.raises(ValueError, match="EDITING_SERVICE_TOKEN_CACHE_S='-1': Input should be greater than or equal to 0"):
        ServiceConfig.from_env({"EDITING_SERVICE_API_TOKENS": "a=1", "EDITING_SERVICE_TOKEN_CACHE_S": "-1"})
