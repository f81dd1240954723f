"""The admin is the operators' console: campaigns (progress, live page, buttons), runs,
clients and the message history (fast at millions of messages, phones masked)."""

from . import campaigns, clients, messages, reports, runs  # noqa: F401 - each registers its models
