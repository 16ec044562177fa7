"""The Kafka relay: the event log published to Kafka for subscribers (docs/events.md)."""
