"""The Celery broker transport (chatbot.broker): kombu's Redis transport with one client object per channel."""

import uuid

from chatbot import broker
from chatbot.celery import app


def test_a_channel_publishes_and_acknowledges_through_one_client_and_delivers():
    # given: the broker connection the web process publishes with and the worker consumes from
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        # then: it is this project's channel, and it hands out the same client each time (not one per command)
        assert isinstance(channel, broker.Channel)
        assert channel._create_client() is channel._create_client()
        # and: a message published through it is delivered and acknowledged
        with connection.SimpleQueue(f"test-broker-{uuid.uuid4().hex}") as queue:
            queue.put({"message_id": 42})
            message = queue.get(timeout=5)
            assert message.payload == {"message_id": 42}
            message.ack()
