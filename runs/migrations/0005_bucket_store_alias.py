from django.db import migrations, models

import runs.models


def empty_endpoint_is_the_default_store(apps, schema_editor):
    """Buckets named an endpoint; now they name a store alias from settings. The empty
    endpoint meant MINIO_ENDPOINT, which is the "default" store. Any other value stays
    and is refused by validation until an operator maps it to a configured alias."""
    Bucket = apps.get_model("runs", "Bucket")
    Bucket.objects.filter(store="").update(store="default")


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0004_ingest_error_retention"),
    ]

    operations = [
        migrations.RenameField(model_name="bucket", old_name="endpoint", new_name="store"),
        migrations.RunPython(empty_endpoint_is_the_default_store, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="bucket",
            name="store",
            field=models.CharField(
                default="default", max_length=50, validators=[runs.models._validate_store],
                help_text="Object store alias from the OBJECT_STORES setting (addresses and credentials "
                          "live in settings, never here).",
            ),
        ),
    ]
