"""Roles (DESIGN.md) and what each may do. A grant of a role over an area gives these
permissions over that area and everything below it."""

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"  # Diskominfotik: the whole city
    operator = "operator"  # kota / kecamatan / kelurahan operator
    officer = "officer"  # ASN of a unit
    ketua_rw = "ketua_rw"
    ketua_rt = "ketua_rt"
    fkdm = "fkdm"
    satpam = "satpam"
    linmas = "linmas"
    warga = "warga"  # a resident registered to their RT/RW: may back the area's camera requests


# Who may ask for a camera for their area (DESIGN.md: ketua RT/RW, FKDM, the kelurahan operator).
REQUESTER_ROLES = frozenset({Role.ketua_rt, Role.ketua_rw, Role.fkdm, Role.operator, Role.admin})
# Who counts as a resident of an RT/RW when backing its requests (a grant inside that RW).
RESIDENT_ROLES = frozenset({Role.warga, Role.ketua_rt, Role.ketua_rw, Role.fkdm, Role.satpam, Role.linmas})


class Permission(StrEnum):
    area_view = "area.view"
    user_view = "user.view"
    user_manage = "user.manage"
    grant_manage = "grant.manage"  # operators: community roles inside their area only
    audit_view = "audit.view"
    area_manage = "area.manage"
    camera_manage = "camera.manage"  # register and change cameras (and see every camera in the area)
    report_manage = "report.manage"  # triage, route, assign and close citizen reports in the area
    catalogue_manage = "catalogue.manage"  # report categories, units, routing rules, intake clients
    sla_manage = "sla.manage"  # deadline policies, days off, the TKD report (admins)
    placement_plan = "placement.plan"  # run and export camera placement plans (admins)


COMMUNITY_ROLES = frozenset({Role.ketua_rw, Role.ketua_rt, Role.fkdm, Role.satpam, Role.linmas})
MFA_ROLES = frozenset({Role.admin, Role.operator})

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.admin: frozenset(Permission),
    Role.operator: frozenset({Permission.area_view, Permission.user_view, Permission.grant_manage,
                              Permission.camera_manage, Permission.report_manage}),
    Role.officer: frozenset({Permission.area_view}),
    **{role: frozenset({Permission.area_view}) for role in COMMUNITY_ROLES},
    Role.warga: frozenset(),
}

# Which roles an operator may hand out inside their own area.
GRANTABLE_BY = {
    Role.admin: frozenset(Role),
    Role.operator: COMMUNITY_ROLES | {Role.officer, Role.warga},
}

# Who may be given access to shared cameras (admins and operators manage them anyway).
SHAREABLE_ROLES = frozenset({Role.officer} | COMMUNITY_ROLES)
DEFAULT_LIVE_ROLES = sorted(SHAREABLE_ROLES)
DEFAULT_RECORDING_ROLES = sorted({Role.officer})
