"""The runs list at scale (issue 13 item 5, docs/portal.md#pages, docs/performance.md).

Keyset indexes for each sort, trigram indexes for search (pg_trgm, in
PostgreSQL's contrib, which Debian's postgresql package includes), and
RunMetric and RunProgress, backfilled here from the current, ready METRICS
and PROGRESS renditions.
"""

import django.contrib.postgres.indexes
import django.db.models.deletion
import django.db.models.functions.text
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

# Every run's metrics from its current, ready METRICS renditions, later artifacts
# winning (the order runs.services.run_metrics uses: event time, artifact id,
# position, then the metric's place in the list). One set-based statement: a
# run's value depends on all its renditions, so batches by rendition range would
# need merging, and one pass over the METRICS renditions (a nested loop to each
# artifact) takes seconds for 200,000 runs (docs/performance.md).
BACKFILL = """
INSERT INTO runs_runmetric (run_id, name, value, display)
SELECT DISTINCT ON (a.run_id, left(m.e->>'name', 200))
       a.run_id, left(m.e->>'name', 200), (m.e->>'value')::float8, left(coalesce(m.e->>'display', ''), 200)
FROM runs_rendition r
JOIN runs_artifact a ON a.id = r.artifact_id
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(r.payload->'metrics') = 'array' THEN r.payload->'metrics' ELSE '[]'::jsonb END
) WITH ORDINALITY AS m(e, i)
WHERE r.viewer = 'metrics' AND r.status = 'ready' AND r.etag = a.etag AND NOT a.deleted
  AND jsonb_typeof(m.e) = 'object' AND jsonb_typeof(m.e->'name') = 'string'
  AND jsonb_typeof(m.e->'value') = 'number'
ORDER BY a.run_id, left(m.e->>'name', 200), a.event_time DESC, a.id DESC, r.position DESC, m.i DESC
"""


# Every run's latest ready, current progress rendition (its latest artifact wins).
BACKFILL_PROGRESS = """
INSERT INTO runs_runprogress (run_id, percent, message)
SELECT DISTINCT ON (a.run_id)
       a.run_id,
       CASE WHEN jsonb_typeof(r.payload->'percent') = 'number' THEN (r.payload->>'percent')::float8 END,
       left(CASE WHEN jsonb_typeof(r.payload->'message') = 'string' THEN r.payload->>'message'
                 ELSE '' END, 500)
FROM runs_rendition r
JOIN runs_artifact a ON a.id = r.artifact_id
WHERE r.viewer = 'progress' AND r.status = 'ready' AND r.etag = a.etag AND NOT a.deleted
ORDER BY a.run_id, a.event_time DESC, a.id DESC, r.position DESC
"""


def backfill(apps, schema_editor):
    schema_editor.execute(BACKFILL)
    schema_editor.execute(BACKFILL_PROGRESS)
    schema_editor.execute("ANALYZE runs_runmetric")
    schema_editor.execute("ANALYZE runs_runprogress")


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0013_health'),
    ]

    operations = [
        TrigramExtension(),
        migrations.CreateModel(
            name='RunMetric',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=200)),
                ('value', models.FloatField()),
                ('display', models.CharField(blank=True, max_length=200)),
            ],
        ),
        migrations.RemoveIndex(
            model_name='run',
            name='run_last_event_idx',
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(fields=['last_event_at', 'id'], name='run_recent_idx'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(fields=['name', 'id'], name='run_name_idx'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(fields=['artifact_count', 'last_event_at', 'id'], name='run_artifacts_idx'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(fields=['bucket', 'namespace'], name='run_bucket_ns_idx'),
        ),
        # Raw SQL: Django 5.2 wraps an OpClass expression of a GinIndex in one pair of
        # parentheses too many for PostgreSQL; the state is the model's index.
        migrations.RunSQL(
            'CREATE INDEX "run_name_trgm_idx" ON "runs_run" USING gin ((UPPER("name"::text)) gin_trgm_ops)',
            'DROP INDEX "run_name_trgm_idx"',
            state_operations=[
                migrations.AddIndex(
                    model_name='run',
                    index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper('name'), name='gin_trgm_ops'), name='run_name_trgm_idx'),
                ),
            ],
        ),
        # Raw SQL: Django 5.2 wraps an OpClass expression of a GinIndex in one pair of
        # parentheses too many for PostgreSQL; the state is the model's index.
        migrations.RunSQL(
            'CREATE INDEX "run_pipeline_trgm_idx" ON "runs_run" USING gin ((UPPER("pipeline"::text)) gin_trgm_ops)',
            'DROP INDEX "run_pipeline_trgm_idx"',
            state_operations=[
                migrations.AddIndex(
                    model_name='run',
                    index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper('pipeline'), name='gin_trgm_ops'), name='run_pipeline_trgm_idx'),
                ),
            ],
        ),
        # Raw SQL: Django 5.2 wraps an OpClass expression of a GinIndex in one pair of
        # parentheses too many for PostgreSQL; the state is the model's index.
        migrations.RunSQL(
            'CREATE INDEX "run_key_trgm_idx" ON "runs_run" USING gin ((UPPER("run_key"::text)) gin_trgm_ops)',
            'DROP INDEX "run_key_trgm_idx"',
            state_operations=[
                migrations.AddIndex(
                    model_name='run',
                    index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper('run_key'), name='gin_trgm_ops'), name='run_key_trgm_idx'),
                ),
            ],
        ),
        migrations.AddField(
            model_name='runmetric',
            name='run',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='metrics', to='runs.run'),
        ),
        migrations.AddIndex(
            model_name='runmetric',
            index=models.Index(fields=['name', 'value', 'run'], name='runmetric_sort_idx'),
        ),
        migrations.AddConstraint(
            model_name='runmetric',
            constraint=models.UniqueConstraint(fields=('run', 'name'), name='runmetric_unique'),
        ),
        migrations.CreateModel(
            name='RunProgress',
            fields=[
                ('run', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='progress_row', serialize=False, to='runs.run')),
                ('percent', models.FloatField(blank=True, null=True)),
                ('message', models.CharField(blank=True, max_length=500)),
            ],
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
