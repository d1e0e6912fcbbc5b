"""The runs database: topics, buckets, runs, steps, artifacts, ingest errors.

See docs/architecture.md for how an event becomes rows here. Models hold
data and constraints only; every write goes through ``runs/services/``.
"""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Upper

from runs.layouts import DEFAULT_LAYOUTS, validate_layout_names


def default_layouts() -> list[str]:
    return list(DEFAULT_LAYOUTS)


def _validate_layouts(value) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError("Layouts must be a list of layout names.")
    try:
        validate_layout_names(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


class KafkaTopic(models.Model):
    """A Kafka topic that an object store publishes its events to.

    ``consume_events`` subscribes to every enabled topic and follows changes
    to this table without a restart; ``message_format`` says which parser
    reads the topic's messages (docs/stores.md).
    """

    class MessageFormat(models.TextChoices):
        S3 = "s3", "S3 event JSON (MinIO, Versity, AWS)"
        SEAWEEDFS_FILER = "seaweedfs_filer", "SeaweedFS filer notification (protobuf)"

    name = models.CharField(max_length=249, unique=True)
    message_format = models.CharField(
        max_length=20,
        choices=MessageFormat.choices,
        default=MessageFormat.S3,
        help_text="How the messages on this topic are written. SeaweedFS publishes from its filer, "
        "configured in the filer's notification.toml, not through the S3 API (docs/stores.md).",
    )
    bootstrap_servers = models.CharField(
        max_length=500,
        blank=True,
        help_text="Leave empty to use the KAFKA_BOOTSTRAP_SERVERS setting.",
    )
    enabled = models.BooleanField(default=True)
    # What the topic was created with on the broker (runs/services/topics.py);
    # the console shows what the broker reports, these are what was asked for.
    partitions = models.PositiveIntegerField(default=4)
    replication_factor = models.PositiveSmallIntegerField(
        default=1, help_text="Copies of each partition; fixed once the topic exists on the broker."
    )
    retention_ms = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="How long the broker keeps messages (retention.ms); empty keeps the broker's default, "
        "-1 keeps them forever.",
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def _validate_store(value: str) -> None:
    from django.conf import settings

    if value not in settings.OBJECT_STORES:
        raise ValidationError(
            f"{value!r} is not a configured object store; choose one of "
            f"{', '.join(sorted(settings.OBJECT_STORES))} (OBJECT_STORES setting)."
        )


class Bucket(models.Model):
    """A MinIO (or other S3) bucket whose events Pipelens records.

    ``layouts`` lists the key layouts (runs/layouts.py) tried in order for
    this bucket's keys; the first that matches decides run, step and artifact.
    """

    class NotificationStatus(models.TextChoices):
        UNKNOWN = "unknown", "Not configured yet"
        CONFIGURED = "configured", "Configured"
        FAILED = "failed", "Failed"
        # SeaweedFS: its filer publishes every change; nothing to set per bucket.
        IN_FILER_CONFIG = "in_filer_config", "Configured in the filer's notification.toml"

    name = models.CharField(max_length=63, unique=True)
    store = models.CharField(
        max_length=50,
        default="default",
        validators=[_validate_store],
        help_text="Object store alias from the OBJECT_STORES setting (addresses and credentials live "
        "in settings, never here).",
    )
    topic = models.ForeignKey(
        KafkaTopic, on_delete=models.PROTECT, null=True, blank=True, related_name="buckets"
    )
    layouts = models.JSONField(default=default_layouts, validators=[_validate_layouts])
    notify_arn = models.CharField(
        max_length=200,
        blank=True,
        help_text="MinIO notification target ARN (arn:minio:sqs::<target id>:kafka); empty uses the "
        "MINIO_NOTIFY_ARN setting. The target must publish to this bucket's topic.",
    )
    prefix_filter = models.CharField(max_length=1024, blank=True)
    suffix_filter = models.CharField(max_length=1024, blank=True)
    event_names = models.JSONField(
        default=list, blank=True, help_text="Notification event names; empty means created+removed."
    )
    notification_status = models.CharField(
        max_length=20, choices=NotificationStatus.choices, default=NotificationStatus.UNKNOWN
    )
    notification_error = models.TextField(blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# Statuses no event changes any more (KFP's final states, and a v1 step's end).
FINAL_STATUSES = ("succeeded", "failed", "skipped", "canceled", "done")
# Kubeflow's states of a run still in progress: an event keeps them (KFP knows better).
KFP_PROGRESS_STATUSES = ("pending", "running", "canceling", "paused")
# Runs still moving: active, or in progress according to Kubeflow.
LIVE_STATUSES = ("active", *KFP_PROGRESS_STATUSES)


class Run(models.Model):
    """One pipeline run: every artifact whose key resolves to the same run key.

    ``status`` (docs/portal.md#run-status): ``active`` while events arrive,
    ``idle`` after RUN_IDLE_AFTER_S without one, or the run's state in
    Kubeflow Pipelines when its API is configured (runs/services/lifecycle.py).
    """

    class Status(models.TextChoices):
        # From the event stream (runs/services/ingest.py, runs/services/lifecycle.py).
        ACTIVE = "active", "Active"
        IDLE = "idle", "Idle"
        # A KFP v1 step whose main.log arrived: it ended, outcome unknown
        # (Argo archives the log of a failed pod too). Steps only.
        DONE = "done", "Done"
        # Kubeflow Pipelines' V2beta1RuntimeState, lower-cased (runs/kfp_api.py).
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        CANCELING = "canceling", "Canceling"
        CANCELED = "canceled", "Canceled"
        PAUSED = "paused", "Paused"

    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, related_name="runs")
    run_key = models.CharField(max_length=1024)
    name = models.CharField(max_length=1024)
    pipeline = models.CharField(max_length=512, blank=True)
    namespace = models.CharField(max_length=253, blank=True)
    layout = models.CharField(max_length=50)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    first_event_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    artifact_count = models.PositiveIntegerField(default=0)
    # Bumped by every batch that touches the run; browsers use it to notice
    # missed pushes (docs/portal.md#seq).
    seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "run_key"], name="run_unique_key_per_bucket")
        ]
        # The runs list's keyset pages (runs/selectors/runs_list.py): one index per sort,
        # its last column the id tiebreak; chosen by EXPLAIN ANALYZE on 200,000 runs
        # (docs/performance.md). Search uses trigram indexes on the upper-cased text
        # (icontains is UPPER(col) LIKE UPPER(pattern) on PostgreSQL).
        indexes = [
            models.Index(fields=["last_event_at", "id"], name="run_recent_idx"),
            models.Index(fields=["name", "id"], name="run_name_idx"),
            models.Index(fields=["artifact_count", "last_event_at", "id"], name="run_artifacts_idx"),
            # The namespace filter's choices: skipped through per bucket (runs_list._distinct_namespaces).
            models.Index(fields=["bucket", "namespace"], name="run_bucket_ns_idx"),
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="run_name_trgm_idx"),
            GinIndex(OpClass(Upper("pipeline"), name="gin_trgm_ops"), name="run_pipeline_trgm_idx"),
            GinIndex(OpClass(Upper("run_key"), name="gin_trgm_ops"), name="run_key_trgm_idx"),
            # The few runs still moving: what runs_mark_idle and steps_mark_ended scan.
            models.Index(
                fields=["last_event_at"], name="run_live_idx", condition=models.Q(status__in=LIVE_STATUSES)
            ),
        ]
        ordering = ["-last_event_at"]

    def __str__(self) -> str:
        return self.name


class RunMetric(models.Model):
    """A run's value of one metric, as the runs list shows and sorts it (docs/portal.md#metrics).

    Denormalised from the run's current, ready METRICS renditions (later
    artifacts win) by runs/services/run_metrics.py whenever they change, so
    the list sorts and shows metric columns from an index, never from JSON.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics", db_index=False)
    name = models.CharField(max_length=200)
    value = models.FloatField()
    display = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="runmetric_unique")]
        # A metric-sorted page walks this index from either end; its distinct names
        # are read by skipping through it (runs.selectors.runs_list.metric_names).
        indexes = [models.Index(fields=["name", "value", "run"], name="runmetric_sort_idx")]

    def __str__(self) -> str:
        return f"{self.run_id} {self.name}={self.display}"


class RunProgress(models.Model):
    """A run's latest progress, as the runs list's progress bar shows it (docs/portal.md#metrics).

    Denormalised like RunMetric, by the same service, from the run's current,
    ready PROGRESS renditions (the latest artifact wins): a page reads 50 rows
    here instead of every artifact of its 50 runs.
    """

    run = models.OneToOneField(Run, on_delete=models.CASCADE, primary_key=True, related_name="progress_row")
    percent = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"{self.run_id} {self.percent}%"


class Step(models.Model):
    """A step (Kubeflow pod or task) of a run."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=512)
    status = models.CharField(max_length=20, choices=Run.Status.choices, default=Run.Status.ACTIVE)
    first_event_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    artifact_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="step_unique_name_per_run")]
        ordering = ["first_event_at", "name"]

    def __str__(self) -> str:
        return self.name


class Artifact(models.Model):
    """One object in a bucket, as of the newest event seen for its key.

    ``event_order`` (the MinIO sequencer, or the event time in ns) guards
    against an older event overwriting a newer one. A removed object keeps
    its row with ``deleted=True`` so that a late, older "created" event
    cannot bring it back.
    """

    # No database-level foreign keys on this, the hottest table: each one
    # costs a row-locking lookup per inserted row at commit, which halved
    # ingest throughput (docs/performance.md). Integrity holds because only
    # runs.services writes artifacts, in the same transaction that upserts
    # their run and step; Django still cascades deletes from runs and steps.
    # Indexes: (run, step) serves run pages and run lookups, the unique
    # (bucket, key) serves bucket lookups, so neither FK needs its own.
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="artifacts", db_constraint=False, db_index=False
    )
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="artifacts", db_constraint=False)
    bucket = models.ForeignKey(
        Bucket, on_delete=models.CASCADE, related_name="artifacts", db_constraint=False, db_index=False
    )
    # Byte order ("C"), the order S3 lists keys in: the reconciler compares a
    # listing page with the key range it covers (runs/services/reconcile.py),
    # and prefix and range lookups use the (bucket, key) index whatever the
    # database's default collation.
    key = models.CharField(max_length=1024, db_collation="C")
    name = models.CharField(max_length=1024)
    kind = models.CharField(max_length=30, default="other")
    size = models.BigIntegerField(null=True, blank=True)
    etag = models.CharField(max_length=100, blank=True)
    content_type = models.CharField(max_length=255, blank=True)
    version_id = models.CharField(max_length=100, blank=True)
    sequencer = models.CharField(max_length=40, blank=True)
    event_order = models.BigIntegerField()
    event_time = models.DateTimeField()
    deleted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "key"], name="artifact_unique_key_per_bucket")
        ]
        indexes = [models.Index(fields=["run", "step"], name="artifact_run_step_idx")]
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class BucketSweep(models.Model):
    """One reconciliation of a bucket (or a prefix of it) with its listing (docs/reconcile.md).

    The row is the sweep's persisted cursor: a sweep killed half-way resumes
    after ``cursor`` with its original ``started_at``, which is what decides
    whether a key missing from the listing was deleted (only keys whose last
    event is older than the listing's start are). At most one unfinished
    sweep per (bucket, prefix).
    """

    class Reason(models.TextChoices):
        START = "start", "Consumer start"
        GAP = "gap", "Gap in the event stream"
        RECENT = "recent", "Recently active run"
        FULL = "full", "Periodic full sweep"
        MANUAL = "manual", "Requested by staff"
        BACKFILL = "backfill", "History backfill"

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, related_name="sweeps")
    prefix = models.CharField(max_length=1024, blank=True, db_collation="C")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.REQUESTED)
    # Objects found only by this sweep render on first view, not at once
    # (a backfill of a million objects must not starve live renders).
    lazy_render = models.BooleanField(default=False)
    # Backfill --since: only objects modified since then are imported, and
    # nothing is marked deleted (the listing is deliberately partial).
    since = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    cursor = models.CharField(max_length=1024, blank=True, db_collation="C")
    listed = models.BigIntegerField(default=0)
    stored = models.BigIntegerField(default=0)
    deleted = models.BigIntegerField(default=0)
    rejected = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "prefix"],
                condition=models.Q(status__in=["requested", "running"]),
                name="bucketsweep_one_open_per_prefix",
            )
        ]
        indexes = [models.Index(fields=["bucket", "reason", "-finished_at"], name="bucketsweep_last_idx")]
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"{self.bucket_id}:{self.prefix or '*'} {self.reason} {self.status}"


class IngestError(models.Model):
    """A Kafka message that could not be parsed or resolved, kept verbatim."""

    topic = models.CharField(max_length=249)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    message_key = models.BinaryField(null=True, blank=True)
    raw = models.BinaryField(null=True, blank=True)
    error = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by staff on the health page; the consumer's maintenance thread then
    # re-parses and re-ingests the message (docs/operations.md#health).
    retry_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["topic", "partition", "offset"], name="ingesterror_coords_idx"),
            # the health page: count and latest reasons per topic
            models.Index(fields=["topic", "-created_at"], name="ingesterror_topic_idx"),
            models.Index(
                fields=["retry_requested_at"],
                name="ingesterror_retry_idx",
                condition=models.Q(retry_requested_at__isnull=False),
            ),
            # retention pruning (runs.services.ingest.ingest_errors_prune)
            models.Index(fields=["created_at"], name="ingesterror_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}: {self.error[:80]}"

    @property
    def raw_preview(self) -> str:
        """The first bytes of the message, readable whatever they hold."""
        if self.raw is None:
            return "(no value)"
        return bytes(self.raw[:2000]).decode("utf-8", errors="replace")


class BucketGrant(models.Model):
    """Lets the members of a group see a bucket's runs (docs/security.md).

    Optionally narrowed to runs whose run key is ``key_prefix`` or lies below
    it (whole path segments: "team-x" never shows "team-xavier") and/or to one
    Kubeflow ``namespace``. Superusers see everything; other users see exactly
    the union of their groups' grants, decided in one place:
    ``runs.selectors.access``.
    """

    group = models.ForeignKey("auth.Group", on_delete=models.CASCADE, related_name="bucket_grants")
    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, related_name="grants")
    key_prefix = models.CharField(
        max_length=1024,
        blank=True,
        help_text="Only runs whose run key is this path or lies below it "
        "(whole segments: 'team-x' does not show 'team-xavier').",
    )
    namespace = models.CharField(
        max_length=253, blank=True, help_text="Only runs of this Kubeflow namespace."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "bucket", "key_prefix", "namespace"], name="bucketgrant_unique"
            )
        ]
        ordering = ["bucket__name", "group__name"]

    def __str__(self) -> str:
        scope = " ".join(
            filter(
                None,
                [
                    self.key_prefix and f"prefix={self.key_prefix}",
                    self.namespace and f"namespace={self.namespace}",
                ],
            )
        )
        return f"{self.group} → {self.bucket}" + (f" ({scope})" if scope else "")


class Rendition(models.Model):
    """A pre-rendered preview of one artifact version (docs/viewers.md).

    One artifact can have several (a KFP ``mlpipeline-ui-metadata`` file
    lists many outputs), ordered by ``position``. Rows are per ``etag``, so
    a render task is idempotent per (artifact, etag) and a new version gets
    fresh renditions. State lives here, not in a Celery result backend.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RENDERING = "rendering", "Rendering"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    artifact = models.ForeignKey(Artifact, on_delete=models.CASCADE, related_name="renditions")
    etag = models.CharField(max_length=100, blank=True)
    position = models.PositiveIntegerField(default=0)
    viewer = models.CharField(max_length=30)
    title = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    payload = models.JSONField(default=dict, blank=True)
    preview_key = models.CharField(
        max_length=1024, blank=True, help_text="Stored preview object in the portal's own bucket."
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["artifact", "etag", "position"], name="rendition_unique")
        ]
        ordering = ["artifact_id", "position"]
        indexes = [
            # the health page's failures per viewer in the last hour: only failed rows
            models.Index(
                fields=["updated_at"],
                name="rendition_failed_idx",
                condition=models.Q(status="failed"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.artifact_id}#{self.position} {self.viewer} {self.status}"


class Recipe(models.Model):
    """A user-supplied Python function that renders one artifact (docs/recipes.md).

    ``render(path, meta)`` runs only in the sandbox (runs/sandbox/). It applies
    to artifacts whose kind is in ``kinds`` or whose name matches one of
    ``name_patterns`` (fnmatch); members of ``groups`` (and the owner) may run
    it; ``auto_buckets`` run it on every new matching artifact of those buckets.
    ``version`` goes up with each change of the source: outputs are cached per
    (recipe version, artifact etag).
    """

    name = models.CharField(max_length=200)
    owner = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="recipes")
    source = models.TextField()
    kinds = models.JSONField(default=list, blank=True)
    name_patterns = models.JSONField(default=list, blank=True)
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="recipes")
    auto_buckets = models.ManyToManyField(Bucket, blank=True, related_name="auto_recipes")
    enabled = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        permissions = [("author_recipe", "Can create and edit recipes")]

    def __str__(self) -> str:
        return self.name


class RecipeRun(models.Model):
    """One run of a recipe on one artifact version: its outcome, logs and exit reason.

    The output itself is a ``Rendition`` (viewer ``recipe``) of the artifact;
    this row holds what only the recipe's author sees (stdout, stderr, traceback).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        OK = "ok", "OK"
        FAILED = "failed", "Failed"

    recipe = models.ForeignKey(Recipe, on_delete=models.CASCADE, related_name="runs")
    recipe_version = models.PositiveIntegerField()
    artifact = models.ForeignKey(Artifact, on_delete=models.CASCADE, related_name="recipe_runs")
    etag = models.CharField(max_length=100, blank=True)
    requested_by = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=40, blank=True)
    message = models.TextField(blank=True)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    sandbox_mode = models.CharField(max_length=20, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipe", "-created_at"], name="reciperun_recipe_idx")]

    def __str__(self) -> str:
        return f"{self.recipe_id}@{self.artifact_id} {self.status} {self.reason}"


class ArtifactReference(models.Model):
    """A file that an output of a KFP ``mlpipeline-ui-metadata`` file names as its source
    (docs/viewers.md, "References").

    Written by the rendition service when it renders the metadata file (one row per
    output and referenced key, for the version ``source_etag``), read on both sides:
    the metadata artifact lists the files it references, the referenced artifact says
    who references it and as what. The referenced object need not exist yet: the row
    is keyed by (bucket, key), and a file that arrives later finds it. A reference
    from the referenced file's own run (``same_run``) gives that file its ``kind``
    and the output's ``options`` (schema, labels, header); one from another run is
    shown only, so no pipeline can change how another run's files are shown.
    """

    source = models.ForeignKey(Artifact, on_delete=models.CASCADE, related_name="references")
    source_etag = models.CharField(max_length=100, blank=True)
    position = models.PositiveIntegerField(help_text="Index of the output in the metadata file.")
    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=1024)
    kind = models.CharField(max_length=30)
    title = models.CharField(max_length=200)
    options = models.JSONField(default=dict, blank=True)
    same_run = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "position", "bucket", "key"], name="artifactreference_unique"
            )
        ]
        indexes = [models.Index(fields=["bucket", "key"], name="artifactreference_target_idx")]
        ordering = ["source_id", "position", "key"]

    def __str__(self) -> str:
        return f"{self.source_id}#{self.position} → {self.key} as {self.kind}"


class Probe(models.Model):
    """One probe of a bucket's event path (docs/operations.md#probe): an object put under
    the reserved ``PROBE_SEGMENT`` folder, followed hop by hop until the consumer has
    stored its event and handed the announcement to the channel layer, then removed.

    The hop times are the clocks of the hops themselves: ``put_at`` is the service's
    clock once ``put_object`` returned, ``topic_at`` the Kafka record's timestamp
    (CreateTime, set by MinIO's or the filer's producer), ``stored_at`` the consumer's
    clock once the batch holding the event was committed, ``pushed_at`` once the
    announcement was handed to the channel layer.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the event"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, related_name="probes")
    key = models.CharField(max_length=1024, unique=True, db_collation="C")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    put_at = models.DateTimeField(null=True, blank=True)
    topic_at = models.DateTimeField(null=True, blank=True)
    stored_at = models.DateTimeField(null=True, blank=True)
    pushed_at = models.DateTimeField(null=True, blank=True)
    event_topic = models.CharField(max_length=249, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["bucket", "-created_at"], name="probe_bucket_recent_idx")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"probe {self.key} {self.status}"

    @staticmethod
    def _ms(start, end) -> float | None:
        return None if start is None or end is None else round((end - start).total_seconds() * 1000, 1)

    def hops_ms(self) -> dict[str, float | None]:
        """Milliseconds per hop and in total (None where a hop was not reached)."""
        last = self.pushed_at or self.stored_at
        return {
            "put_to_topic": self._ms(self.put_at, self.topic_at),
            "topic_to_stored": self._ms(self.topic_at, self.stored_at),
            "stored_to_pushed": self._ms(self.stored_at, self.pushed_at),
            "total": self._ms(self.put_at, last if self.pushed_at else None),
        }


class BucketMinute(models.Model):
    """Events stored for a bucket in one minute (the health page's chart).

    One upsert per stored batch (``runs.services.health.bucket_minutes_add``)
    so the page never counts the artifact table; rows older than
    HEALTH_KEEP_S are pruned by the consumer's maintenance thread.
    """

    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    events = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bucket", "minute"], name="bucketminute_unique")]
        indexes = [models.Index(fields=["minute"], name="bucketminute_minute_idx")]

    def __str__(self) -> str:
        return f"{self.bucket_id} {self.minute:%H:%M} {self.events}"


class ConsumerHeartbeat(models.Model):
    """One ``consume_events`` process, as it last reported itself (every HEALTH_HEARTBEAT_S).

    Written by the process's maintenance thread; alive while ``last_seen`` is
    within HEALTH_ALIVE_S. ``lag`` maps each followed topic to the messages the
    process is behind on its assigned partitions.
    """

    hostname = models.CharField(max_length=255)
    pid = models.IntegerField()
    group = models.CharField(max_length=255)
    topics = models.JSONField(default=list, blank=True)
    lag = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hostname", "pid", "started_at"], name="consumerheartbeat_unique")
        ]
        verbose_name = "health"
        verbose_name_plural = "health"

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid} ({self.group})"
