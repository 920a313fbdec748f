"""The one place that decides what a user may see.

Deny by default: a principal sees an object only when one of their *active* grants carries the
needed permission over an area whose path is the object's area path or a prefix of it.
``scoped`` filters list queries; ``in_scope`` checks a single object's path.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, false, or_

from siskamling.core.permissions import ROLE_PERMISSIONS, Permission, Role


@dataclass(frozen=True)
class ScopeGrant:
    role: Role
    area_path: str
    area_code: str


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    full_name: str
    grants: tuple[ScopeGrant, ...] = ()
    via_token: bool = False

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(g.role for g in self.grants)

    def paths_for(self, permission: Permission) -> list[str]:
        paths = sorted({g.area_path for g in self.grants if permission in ROLE_PERMISSIONS[g.role]})
        # Drop paths already covered by a shorter one.
        return [p for p in paths if not any(covers(q, p) for q in paths if q != p)]

    def can(self, permission: Permission) -> bool:
        return bool(self.paths_for(permission))

    def roles_over(self, path: str) -> frozenset[Role]:
        return frozenset(g.role for g in self.grants if covers(g.area_path, path))


def covers(grant_path: str, path: str | None) -> bool:
    return path is not None and (path == grant_path or path.startswith(grant_path + "/"))


def in_scope(principal: Principal, permission: Permission, path: str | None) -> bool:
    return any(covers(p, path) for p in principal.paths_for(permission))


def path_condition(column, paths: list[str]) -> ColumnElement[bool]:
    if not paths:
        return false()
    return or_(*[or_(column == p, column.startswith(p + "/", autoescape=True)) for p in paths])


def scoped(stmt: Select, principal: Principal, permission: Permission, path_column) -> Select:
    return stmt.where(path_condition(path_column, principal.paths_for(permission)))
