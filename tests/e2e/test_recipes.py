"""In Chromium: each starter recipe, one click on the artifact page, its output shows there
(screenshots in test-results/). Real MinIO, consumer, sandbox worker, portal and web-app origin."""

import pytest

from runs.models import Artifact
from tests.e2e.conftest import APP_NAME, RESULTS, Daphne, free_port, log_in, screenshot
from tests.helpers import wait_for
from tests.runs.test_recipes_live import CONFUSION, author, predictions_csv, put


@pytest.fixture
def recipes_portal(transactional_db, webapp_origin, sandbox_worker_process):
    from django.conf import settings

    from tests.helpers import database_url

    RESULTS.mkdir(parents=True, exist_ok=True)
    server = Daphne(database_url(application_name=APP_NAME), free_port(), RESULTS / "daphne-recipes.log")
    app = webapp_origin(portal_url=server.url)  # its documents come from this portal
    server.env["WEBAPP_ORIGIN"] = f"http://localhost:{app.port}"
    server.env["SANDBOX_QUEUE"] = settings.SANDBOX_QUEUE
    server.env["RENDER_QUEUE"] = settings.RENDER_QUEUE  # runs.recipe_run goes to the render worker
    server.env["RECIPES_ENABLED"] = "true"
    server.start()
    yield server
    server.stop()


def test_starter_recipes_run_with_one_click_and_show_on_the_artifact_page(
    minio, live_bucket, running_consumer, recipes_portal, browser_page, django_user_model
):
    from django.db import connections

    from runs.services.recipes import recipes_install_starters

    try:
        user, _ = author(django_user_model, "e2e-author", bucket=live_bucket)
        user.set_password("pw-e2e")
        user.save()
        starters = {r.name: r for r in recipes_install_starters(owner=user)}
        put(minio, live_bucket.name, "e2e/eval/predictions.csv", predictions_csv())
        put(minio, live_bucket.name, "e2e/eval/confusion.csv", CONFUSION)
        arts = {
            key: wait_for(
                lambda key=key: Artifact.objects.filter(bucket=live_bucket, key=key).exclude(etag="").first(),
                timeout=30,
                what=key,
            )
            for key in ("e2e/eval/predictions.csv", "e2e/eval/confusion.csv")
        }
        page = browser_page
        log_in(page, recipes_portal.url, "e2e-author", "pw-e2e")
        cases = [
            ("e2e/eval/predictions.csv", "Calibration curve", "img.recipe-png", "recipes-calibration"),
            (
                "e2e/eval/confusion.csv",
                "Per-class precision/recall",
                "table.recipe-table",
                "recipes-per-class",
            ),
            (
                "e2e/eval/predictions.csv",
                "Histogram of a numeric column",
                "iframe.webapp",
                "recipes-histogram",
            ),
        ]
        for key, name, selector, shot in cases:
            artifact = arts[key]
            page.goto(f"{recipes_portal.url}/runs/{artifact.run_id}/artifacts/{artifact.pk}/")
            page.click(f'button[data-recipe="{starters[name].pk}"]')
            output = page.locator(f'.recipe-output[data-recipe-id="{starters[name].pk}"] {selector}')
            output.wait_for(timeout=60_000)
            if selector.startswith("iframe"):
                frame = output.content_frame
                frame.locator("#chart svg g.mark-rect path").first.wait_for(timeout=20_000)  # drawn by vega
            if selector.startswith("img"):
                page.wait_for_function(
                    "el => el.complete && el.naturalWidth > 100", arg=output.element_handle(), timeout=20_000
                )
            if selector.startswith("table"):
                assert "precision" in output.inner_text()
            screenshot(page, shot)
    finally:
        connections.close_all()


PIE = {
    "title": "Share per class",
    "data": {"values": [{"c": "cat", "n": 4}, {"c": "dog", "n": 6}, {"c": "bird", "n": 2}]},
    "mark": "arc",
    "encoding": {"theta": {"field": "n", "type": "quantitative"}, "color": {"field": "c", "type": "nominal"}},
}
LAYERED = {
    "data": {"values": [{"x": "a", "y": 3}, {"x": "b", "y": 7}, {"x": "c", "y": 5}]},
    "layer": [
        {
            "mark": "bar",
            "encoding": {"x": {"field": "x", "type": "nominal"}, "y": {"field": "y", "type": "quantitative"}},
        },
        {"mark": {"type": "rule", "color": "red"}, "encoding": {"y": {"aggregate": "mean", "field": "y"}}},
    ],
}
INVALID = {"data": {"values": [{"a": 1}]}, "mark": {"type": "no-such-mark"}, "encoding": {}}


def test_any_vega_lite_spec_renders_with_the_vendored_libraries_and_no_network(
    minio, live_bucket, running_consumer, recipes_portal, browser_page, django_user_model
):
    """Specs beyond the old inline subset (an arc pie, a layered bar + rule) draw SVG marks with
    the vega/vega-lite/vega-embed files the web-app origin serves; an invalid spec shows an error
    text; Chromium reports no CSP violation (the documents load nothing else)."""
    import json

    from django.db import connections

    from runs.services.recipes import recipe_save

    try:
        user, _ = author(django_user_model, "e2e-vega", bucket=live_bucket)
        user.set_password("pw-e2e")
        user.save()
        recipes = {
            name: recipe_save(
                user=user,
                name=name,
                source=(
                    "import json\nfrom pipelens import VegaLite\n\n\ndef render(path, meta):\n"
                    f"    return VegaLite(json.loads({json.dumps(spec)!r}))\n"
                ),
                name_patterns=["*predictions*.csv"],
            )
            for name, spec in (("pie", PIE), ("layered", LAYERED), ("invalid", INVALID))
        }
        put(minio, live_bucket.name, "e2e-vega/eval/predictions.csv", predictions_csv(50))
        artifact = wait_for(
            lambda: (
                Artifact.objects.filter(bucket=live_bucket, key="e2e-vega/eval/predictions.csv")
                .exclude(etag="")
                .first()
            ),
            timeout=30,
            what="predictions.csv",
        )
        page = browser_page
        console = []
        page.on("console", lambda msg: console.append(msg.text))
        log_in(page, recipes_portal.url, "e2e-vega", "pw-e2e")
        url = f"{recipes_portal.url}/runs/{artifact.run_id}/artifacts/{artifact.pk}/"
        frames = {}
        for name, recipe in recipes.items():
            page.goto(url)
            page.click(f'button[data-recipe="{recipe.pk}"]')
            output = page.locator(f'.recipe-output[data-recipe-id="{recipe.pk}"] iframe.webapp')
            output.wait_for(timeout=60_000)
            frames[name] = output.content_frame
            if name == "pie":
                frames[name].locator("#chart svg g.mark-arc path").first.wait_for(timeout=20_000)
                assert frames[name].locator("#chart svg g.mark-arc path").count() == 3
                screenshot(page, "recipes-vega-pie")
            elif name == "layered":
                frames[name].locator("#chart svg g.mark-rule line").first.wait_for(
                    state="attached", timeout=20_000
                )
                assert frames[name].locator("#chart svg g.mark-rect path").count() == 3
                screenshot(page, "recipes-vega-layered")
            else:
                error = frames[name].locator("#chart.error")
                error.wait_for(timeout=20_000)
                assert "could not be drawn" in error.inner_text()
                assert frames[name].locator("#chart svg").count() == 0
                assert "no-such-mark" in frames[name].locator("details pre").text_content()
        violations = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
        assert not violations, violations
    finally:
        connections.close_all()
