"""The embedded defaults of ``fleetwire dev``: an in-process amqtt broker and its identities."""
