"""For tests: keep sent messages in `outbox` (a module-level list), like Django's locmem mail."""

from .base import BaseProvider, Outcome, SendResult

outbox: list = []


class LocmemProvider(BaseProvider):
    def send_messages(self, messages):
        outbox.extend(messages)
        return [SendResult(sms.message_id, Outcome.SENT) for sms in messages]
