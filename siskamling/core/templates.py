"""One Jinja environment for every domain's templates (``<domain>/templates/<domain>/…``)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader
from markupsafe import Markup

from siskamling.core import i18n
from siskamling.core.time import format_wib

PACKAGE = Path(__file__).resolve().parent.parent
DOMAINS = ["core", "web", "accounts", "areas", "audit", "cameras", "reports", "sla", "placement"]


def _tojson_attr(value) -> Markup:
    return Markup(json.dumps(value, ensure_ascii=False).replace("&", "\\u0026").replace("<", "\\u003c")
                  .replace(">", "\\u003e").replace("'", "\\u0027"))


def build_templates() -> Jinja2Templates:
    loader = ChoiceLoader([FileSystemLoader(str(PACKAGE / d / "templates")) for d in DOMAINS])
    templates = Jinja2Templates(directory=str(PACKAGE / "core" / "templates"))
    env = templates.env
    env.loader = loader
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)
    env.filters["wib"] = format_wib
    env.filters["role_label"] = i18n.role_label
    env.filters["level_label"] = i18n.level_label
    env.filters["site_label"] = i18n.site_label
    env.filters["health_label"] = i18n.health_label
    env.filters["tojson_safe"] = _tojson_attr
    env.filters["report_status"] = i18n.report_status_label
    env.filters["step_label"] = i18n.step_label
    env.filters["request_status"] = i18n.request_status_label
    env.filters["request_reason"] = i18n.request_reason_label
    env.filters["score_part"] = i18n.score_part_label
    env.filters["plan_method"] = lambda v: i18n.label_in(i18n.PLAN_METHOD_LABELS, v)
    env.filters["plan_status"] = lambda v: i18n.label_in(i18n.PLAN_STATUS_LABELS, v)
    env.filters["plan_input"] = lambda v: i18n.label_in(i18n.PLAN_INPUT_LABELS, v)
    env.filters["demand_source"] = lambda v: i18n.label_in(i18n.DEMAND_LABELS, v)
    env.filters["num"] = i18n.format_number
    env.globals["LANGUAGES"] = i18n.LANGUAGES
    return templates


templates = build_templates()
