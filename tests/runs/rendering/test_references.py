"""The pure half of KFP metadata references (runs/rendering/kfp_metadata.py, runs/kinds.py):
which outputs are reported as references, and a referenced file shown as its output says."""

import json

import pytest

from runs import kinds
from runs.rendering import kfp_metadata
from runs.rendering.base import BytesSource, Context, RenderError
from runs.rendering.registry import render_artifact
from tests.runs.rendering import files


def metadata(outputs) -> BytesSource:
    return BytesSource("mlpipeline-ui-metadata.json", json.dumps({"version": 1, "outputs": outputs}).encode())


def test_outputs_naming_objects_are_reported_with_their_options():
    referred = []
    ctx = Context(store=lambda *a: "k", fetch=lambda uri: [], refer=lambda *a: referred.append(a))
    roc = {"type": "roc", "format": "csv", "schema": [{"name": "fpr"}], "source": " minio://b/run/roc.csv "}
    kfp_metadata.render(
        metadata(
            [
                {"type": "markdown", "storage": "inline", "source": "# hi"},  # inline: no object
                roc,
                {"type": "tensorboard", "source": "s3://b/run/logs"},  # a directory, not a file
                {"type": "table", "source": "gs://elsewhere/t.csv"},  # never read
                {"type": ["roc"], "source": "minio://b/x.csv"},  # hostile type
                "not an object",
                {"type": "confusion_matrix", "labels": ["a"], "source": "s3://b/run/cm-*.csv", "extra": 1},
            ]
        ),
        ctx,
    )
    assert referred == [
        (1, "minio://b/run/roc.csv", {k: v for k, v in roc.items() if k != "source"}),
        (6, "s3://b/run/cm-*.csv", {"type": "confusion_matrix", "labels": ["a"]}),
    ]


def test_a_headerless_roc_csv_is_drawn_with_the_schema_of_the_output_that_names_it():
    source = BytesSource("roc.csv", b"0,0,1\n0.5,0.8,0.5\n1,1,0\n")
    options = {"type": "roc", "format": "csv", "schema": [{"name": "fpr"}, {"name": "tpr"}, {"name": "t"}]}
    (out,) = render_artifact(source, kinds.ROC, Context(store=lambda *a: "k"), reference=options)
    assert out.viewer == "roc" and not out.failed and out.payload["points"] == 3


def test_a_confusion_matrix_file_keeps_the_label_order_of_its_output():
    options = {"type": "confusion_matrix", "labels": ["bird", "dog", "cat"]}
    source = BytesSource("cm.csv", files.CONFUSION_CSV.encode())
    (out,) = render_artifact(source, kinds.CONFUSION_MATRIX, Context(store=lambda *a: "k"), reference=options)
    assert out.payload["labels"] == ["bird", "dog", "cat"]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"type": "roc", "format": "parquet"}, "not supported"),
        ({"type": "confusion_matrix", "labels": {"a": 1}}, "list of names"),
        ({"type": "table", "schema": "fpr"}, "schema must be a list"),
        ({"type": "nope"}, "Unknown output type"),
        ({"type": ["roc"]}, "Unknown output type"),
    ],
)
def test_hostile_options_fail_the_referenced_file_with_a_reason(options, reason):
    with pytest.raises(RenderError, match=reason):
        kfp_metadata.render_referenced(
            BytesSource("x.csv", b"1,2\n"), Context(store=lambda *a: "k"), options=options
        )
    (out,) = render_artifact(
        BytesSource("x.csv", b"1,2\n"), kinds.ROC, Context(store=lambda *a: "k"), reference=options
    )
    assert out.failed and reason.lower() in out.error.lower()


def test_only_plain_data_files_may_be_restyled_by_a_reference():
    assert kinds.restylable("roc.csv") and kinds.restylable("notes") and kinds.restylable("report.html")
    assert not kinds.restylable("mlpipeline-ui-metadata.tgz")
    assert not kinds.restylable("mlpipeline-metrics.json")
    assert not kinds.restylable("cat.png") and not kinds.restylable("data.parquet")
