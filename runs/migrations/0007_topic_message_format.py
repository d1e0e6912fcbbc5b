from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0006_recipes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="bucket",
            name="notification_status",
            field=models.CharField(
                choices=[
                    ("unknown", "Not configured yet"),
                    ("configured", "Configured"),
                    ("failed", "Failed"),
                    ("in_filer_config", "Configured in the filer's notification.toml"),
                ],
                default="unknown",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="kafkatopic",
            name="message_format",
            field=models.CharField(
                choices=[
                    ("s3", "S3 event JSON (MinIO, Versity, AWS)"),
                    ("seaweedfs_filer", "SeaweedFS filer notification (protobuf)"),
                ],
                default="s3",
                help_text="How the messages on this topic are written. SeaweedFS publishes from its filer, "
                "configured in the filer's notification.toml, not through the S3 API (docs/stores.md).",
                max_length=20,
            ),
        ),
    ]
