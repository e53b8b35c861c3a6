"""Conversations declared as data, one module a flow; importing this package registers them."""

import bot.flows.check_in  # noqa: F401
import bot.flows.directive  # noqa: F401
import bot.flows.dispute  # noqa: F401
import bot.flows.dispute_close  # noqa: F401
import bot.flows.drill  # noqa: F401
import bot.flows.eligibility  # noqa: F401
import bot.flows.export  # noqa: F401
import bot.flows.household  # noqa: F401
import bot.flows.open_reports  # noqa: F401
import bot.flows.report  # noqa: F401
import bot.flows.schedule  # noqa: F401
import bot.flows.summary  # noqa: F401
import bot.flows.support  # noqa: F401
from bot.flows import language, registration  # noqa: F401  (registration by import)
