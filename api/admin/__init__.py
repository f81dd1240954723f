"""The admin is the operators' console: campaigns (progress, live page, buttons), runs,
clients and the message history (fast at millions of messages, phones masked)."""

from api import admin_import  # noqa: F401 - the bulk import's pages (issue 13)

from . import campaigns, clients, messages, reports, runs  # noqa: F401 - each registers its models
