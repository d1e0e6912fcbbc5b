"""Kafka in: parse messages (``s3_events``), run the consume loop (``kafka_loop``)."""
