"""Pure parts of the operations console: MinIO's target listing, the drift between rules,
MinIO's rule for filter values (no service needed)."""

from runs.selectors.buckets import Rule, filter_value_problem, rule_drift
from runs.storage import parse_kafka_targets

# What MinIO's get-config-kv answers for "notify_kafka" (captured from the pinned release):
# the default target, one defined by the environment, one set through the admin API. (MinIO
# ends each target line with a space; the parser does not depend on it.)
LISTING = """notify_kafka enable=off topic= brokers= sasl_username= sasl_password= queue_dir=
# MINIO_NOTIFY_KAFKA_ENABLE_PIPELENS=on
# MINIO_NOTIFY_KAFKA_TOPIC_PIPELENS=minio-events
# MINIO_NOTIFY_KAFKA_BROKERS_PIPELENS=127.0.0.1:19092
notify_kafka:PIPELENS
notify_kafka:SECOND topic=second-events brokers=10.0.0.1:9092,10.0.0.2:9092 sasl_username= queue_dir=
notify_kafka:QUOTED topic="has space" brokers=b:1
"""


def test_targets_are_read_with_their_topic_and_where_they_are_defined():
    targets = {t.id: t for t in parse_kafka_targets(LISTING)}
    assert set(targets) == {"PIPELENS", "SECOND", "QUOTED"}
    assert (targets["PIPELENS"].topic, targets["PIPELENS"].from_env) == ("minio-events", True)
    assert targets["PIPELENS"].brokers == "127.0.0.1:19092"
    assert (targets["SECOND"].topic, targets["SECOND"].from_env) == ("second-events", False)
    assert targets["SECOND"].arn == "arn:minio:sqs::SECOND:kafka"
    assert targets["QUOTED"].topic == "has space"
    assert parse_kafka_targets("") == []


EXPECTED = Rule(
    arn="arn:minio:sqs::A:kafka", events=("s3:ObjectCreated:*",), prefix="runs/", rule_id="pipelens"
)


def test_no_drift_when_the_store_holds_the_rule_and_others_are_ignored():
    other = Rule(arn="arn:minio:sqs::B:kafka", events=("s3:ObjectCreated:Put",), rule_id="theirs")
    assert rule_drift(EXPECTED, [other, EXPECTED]) == []


def test_each_difference_is_named():
    held = Rule(
        arn="arn:minio:sqs::A:kafka", events=("s3:ObjectRemoved:*",), suffix=".csv", rule_id="pipelens"
    )
    assert rule_drift(EXPECTED, [held]) == [
        "events: Pipelens expects s3:ObjectCreated:*, the store has s3:ObjectRemoved:*",
        "prefix filter: Pipelens expects runs/, the store has (none)",
        "suffix filter: Pipelens expects (none), the store has .csv",
    ]
    assert rule_drift(EXPECTED, []) == ["the store has no rule sending to arn:minio:sqs::A:kafka"]
    assert rule_drift(EXPECTED, [EXPECTED, EXPECTED]) == ["the store has 2 rules for Pipelens instead of one"]


def test_filter_values_follow_minios_rule():
    for fine in ("", "runs/", "a.b/c..d", "é/x"):
        assert filter_value_problem(fine) == ""
    for bad in ("./x", "a/../b", "..", "a\\b", "x" * 1025, "\udcff"):
        assert filter_value_problem(bad), bad
