"""Settings for the benchmarks (bench/): local defaults, and MinIO's bench target.

Buckets made by a benchmark publish through MinIO's bench notification
target to a topic of their own (deploy/local/minio.sh), never to the topic
`make run` consumes; the benchmark creates it and deletes it when it ends
(bench/_common.py).
"""

from .base import *  # noqa: F403

MINIO_KAFKA_TOPIC = env("MINIO_BENCH_KAFKA_TOPIC", default="pipelens-bench-events")  # noqa: F405
MINIO_NOTIFY_ARN = env("MINIO_BENCH_NOTIFY_ARN", default="arn:minio:sqs::PIPELENSBENCH:kafka")  # noqa: F405
