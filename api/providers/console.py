"""Development default: log each message (phone masked) and count it as sent."""

import logging

from api.phones import mask_phone

from .base import BaseProvider, Outcome, SendResult

logger = logging.getLogger(__name__)


class ConsoleProvider(BaseProvider):
    def send_messages(self, messages):
        for sms in messages:
            logger.info(
                "console sms message=%s phone=%s chars=%s",
                sms.message_id,
                mask_phone(sms.phone),
                len(sms.text),
                extra={"message_id": sms.message_id},
            )
        return [SendResult(sms.message_id, Outcome.SENT) for sms in messages]
