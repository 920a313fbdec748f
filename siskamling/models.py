"""Imports every domain's models so the metadata is complete (migrations, tests)."""

from siskamling.accounts import models as accounts  # noqa: F401
from siskamling.areas import models as areas  # noqa: F401
from siskamling.audit import models as audit  # noqa: F401
from siskamling.cameras import models as cameras  # noqa: F401
from siskamling.core.db import Base
from siskamling.events import models as events  # noqa: F401
from siskamling.placement import models as placement  # noqa: F401
from siskamling.reports import models as reports  # noqa: F401
from siskamling.sla import models as sla  # noqa: F401

metadata = Base.metadata
