"""JSON API for accounts: who am I, users, grants and API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from siskamling.accounts import schemas
from siskamling.accounts import service as accounts
from siskamling.core.deps import CurrentUser, SessionDep, actor_of, require
from siskamling.core.errors import Forbidden, Invalid, NotFound
from siskamling.core.permissions import Permission
from siskamling.core.scope import Principal

router = APIRouter(prefix="/api/v1", tags=["accounts"])


def _aware(value):
    if value is not None and value.tzinfo is None:
        raise Invalid("Times must carry a timezone offset, e.g. 2026-12-01T07:00:00+07:00")
    return value


def _user_out(user, principal: Principal) -> schemas.UserOut:
    grants = [
        schemas.GrantOut(id=g.id, role=g.role, area_code=g.area.code, area_path=g.area_path, starts_at=g.starts_at,
                         ends_at=g.ends_at, revoked_at=g.revoked_at)
        for g in accounts.visible_grants(principal, user)
    ]
    return schemas.UserOut(id=user.id, username=user.username, full_name=user.full_name, unit=user.unit,
                           is_active=user.is_active, grants=grants)


@router.get("/me", response_model=schemas.MeOut)
def me(principal: CurrentUser):
    return schemas.MeOut(
        id=principal.user_id, username=principal.username, full_name=principal.full_name,
        roles=sorted(principal.roles),
        grants=[{"role": g.role, "area_code": g.area_code, "area_path": g.area_path} for g in principal.grants],
    )


@router.get("/users", response_model=list[schemas.UserOut])
def list_users(db: SessionDep, principal: Principal = Depends(require(Permission.user_view))):
    return [_user_out(u, principal) for u in accounts.list_users(db_session=db, principal=principal)]


@router.post("/users", response_model=schemas.UserOut, status_code=201)
def create_user(body: schemas.UserCreate, request: Request, db: SessionDep,
                principal: Principal = Depends(require(Permission.user_manage))):
    user = accounts.create_user(db_session=db, actor=actor_of(request, principal), **body.model_dump())
    db.refresh(user)
    return _user_out(user, principal)


@router.post("/grants", response_model=schemas.GrantOut, status_code=201)
def add_grant(body: schemas.GrantCreate, request: Request, db: SessionDep,
              principal: Principal = Depends(require(Permission.grant_manage))):
    grant = accounts.add_grant(
        db_session=db, username=body.username, role=body.role, area_code=body.area_code,
        starts_at=_aware(body.starts_at), ends_at=_aware(body.ends_at), actor=actor_of(request, principal),
        granter=principal,
    )
    return schemas.GrantOut(id=grant.id, role=grant.role, area_code=grant.area.code, area_path=grant.area_path,
                            starts_at=grant.starts_at, ends_at=grant.ends_at, revoked_at=None)


@router.delete("/grants/{grant_id}", status_code=204)
def revoke_grant(grant_id: int, request: Request, db: SessionDep,
                 principal: Principal = Depends(require(Permission.grant_manage))):
    accounts.revoke_grant(db_session=db, grant_id=grant_id, actor=actor_of(request, principal), granter=principal)


@router.get("/tokens", response_model=list[schemas.TokenOut])
def list_tokens(db: SessionDep, principal: CurrentUser):
    return accounts.list_tokens(db_session=db, user_id=principal.user_id)


@router.post("/tokens", response_model=schemas.TokenCreated, status_code=201)
def create_token(body: schemas.TokenCreate, request: Request, db: SessionDep, principal: CurrentUser):
    if principal.via_token:
        # A token must not mint longer-lived or wider tokens: new ones come from a logged-in session.
        raise Forbidden("API tokens can only be created from a logged-in session, not with another token")
    user = accounts.get_user(db_session=db, username=principal.username)
    if user is None:
        raise NotFound("User not found")
    token, raw = accounts.create_token(db_session=db, user=user, name=body.name, actor=actor_of(request, principal),
                                       expires_at=_aware(body.expires_at))
    return schemas.TokenCreated(token=raw, **schemas.TokenOut.model_validate(token).model_dump())


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, request: Request, db: SessionDep, principal: CurrentUser):
    accounts.revoke_token(db_session=db, user_id=principal.user_id, token_id=token_id,
                          actor=actor_of(request, principal))
