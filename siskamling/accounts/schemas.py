from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class GrantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    role: str
    area_code: str
    area_path: str
    starts_at: datetime | None
    ends_at: datetime | None
    revoked_at: datetime | None


class UserOut(BaseModel):
    id: int
    username: str
    full_name: str
    unit: str | None
    is_active: bool
    grants: list[GrantOut]


class MeOut(BaseModel):
    id: int
    username: str
    full_name: str
    roles: list[str]
    grants: list[dict]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=3, max_length=64)
    full_name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=256)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=32)
    unit: str | None = Field(None, max_length=120)


class GrantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str
    role: str
    area_code: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    expires_at: datetime | None = None


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="shown once; only its hash is stored")
