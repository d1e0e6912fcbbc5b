"""deploy/k8s: every kustomize build, the strict schema check, and what every Pipelens pod
must carry (docs/deploy.md#validation). Needs Go and the module proxy (first run), not
the services; marked integration so `make test-fast` stays seconds."""

from __future__ import annotations

import shutil

import pytest

from tests.deploy.tools import (
    BUILDS,
    OVERLAYS,
    ROOT,
    SCHEMA_MODULE,
    build,
    go_env,
    kustomize,
    run,
    settings_with,
    to_json,
)

pytestmark = pytest.mark.integration

ROLES = {"web", "webapp", "consume", "worker", "sandbox-worker"}


def _pipelens_pods(objects):
    """(object, pod spec) of every Deployment and Job of Pipelens itself."""
    for obj in objects:
        if (
            obj["kind"] in ("Deployment", "Job")
            and obj["metadata"]["labels"].get("app.kubernetes.io/name") == "pipelens"
        ):
            yield obj, obj["spec"]["template"]["spec"]


def _workloads(objects):
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield obj, obj["spec"]["template"]["spec"]


def test_every_build_decodes_strictly_into_the_kubernetes_api_types():
    # The Go test runs `kustomize build` of each directory itself and decodes every
    # object with unknown, duplicate and wrongly cased fields refused (schema_test.go).
    env = dict(go_env(), KUSTOMIZE=kustomize())
    out = run(["go", "test", "-count=1", "-v", "./..."], cwd=SCHEMA_MODULE, env=env).decode()
    for name in (
        "TestEveryBuildDecodesStrictly",
        "TestSeaweedfsPatchDecodesStrictly",
        "TestStrictDecodingRefusesMistakes",
    ):
        assert f"--- PASS: {name}" in out, out
    for path in BUILDS:
        assert f"--- PASS: TestEveryBuildDecodesStrictly/{path}" in out, out


@pytest.mark.parametrize("path", OVERLAYS)
def test_each_overlay_has_every_role_once_in_namespace_kubeflow(path):
    objects = build(path)
    roles = [
        obj["metadata"]["labels"]["app.kubernetes.io/component"]
        for obj in objects
        if obj["kind"] == "Deployment"
        and obj["metadata"]["labels"].get("app.kubernetes.io/name") == "pipelens"
    ]
    assert sorted(roles) == sorted(ROLES)
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Job"] == ["pipelens-migrate"]
    assert {o["metadata"].get("namespace") for o in objects} == {"kubeflow"}
    kinds = {o["kind"] for o in objects}
    assert {"Service", "PodDisruptionBudget", "NetworkPolicy", "StatefulSet", "ConfigMap"} <= kinds
    # Every role has a disruption budget selecting its pods.
    budgets = [o["spec"]["selector"]["matchLabels"] for o in objects if o["kind"] == "PodDisruptionBudget"]
    assert {b["app.kubernetes.io/component"] for b in budgets} == ROLES


@pytest.mark.parametrize("path", BUILDS)
def test_every_deployment_has_probes_limits_and_a_non_root_security_context(path):
    deployments = 0
    for obj, pod in _workloads(build(path)):
        name = obj["metadata"]["name"]
        deployments += obj["kind"] == "Deployment"
        pod_ctx = pod.get("securityContext", {})
        # Kubeflow's namespace injects Istio sidecars; Pipelens' pods opt out (docs/deploy.md#istio).
        assert obj["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] == "false", name
        assert pod.get("automountServiceAccountToken") is False, name
        for c in pod["containers"]:
            ctx = {**pod_ctx, **c.get("securityContext", {})}
            assert ctx.get("runAsNonRoot") is True, name
            assert ctx.get("runAsUser", 0) > 0, name
            assert ctx.get("allowPrivilegeEscalation") is False, name
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], name
            limits = c.get("resources", {}).get("limits", {})
            assert limits.get("cpu") and limits.get("memory"), name
            assert c.get("resources", {}).get("requests", {}).get("memory"), name
            if obj["kind"] != "Job":
                assert c.get("readinessProbe") and c.get("livenessProbe"), name
    assert deployments == (0 if path == "backing" else 5)


@pytest.mark.parametrize("path", BUILDS[:1] + OVERLAYS)
def test_http_roles_probe_healthz_for_liveness_and_readyz_for_readiness(path):
    pods = {obj["metadata"]["name"]: pod for obj, pod in _pipelens_pods(build(path))}
    web = pods["pipelens-web"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    webapp = pods["pipelens-webapp"]["containers"][0]
    assert webapp["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Its NetworkPolicy keeps it from Kafka and Redis, which /readyz would check.
    assert webapp["readinessProbe"]["httpGet"]["path"] == "/healthz"
    for name, pod in pods.items():
        (container,) = pod["containers"]
        assert container["image"] == ("pipelens" if path == "base" else "localhost/pipelens:latest"), name
        assert container["args"] == [name.removeprefix("pipelens-")], name


def _policy(objects, component):
    (policy,) = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy"
        and o["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == component
    ]
    return policy


@pytest.mark.parametrize("path", ["base", "overlays/kubeflow", "overlays/seaweedfs"])
def test_network_policy_limits_the_webapp_and_sandbox_pods_to_what_they_need(path):
    objects = build(path)
    allowed = {
        # The portal's web pods, which hand it each document (vizsite/internal.py).
        "webapp": {("web", 8000), ("dns", 53)},
        # The Celery broker only: jobs in, results out (runs/sandbox/task.py).
        "sandbox-worker": {("redis", 6379), ("dns", 53)},
    }
    for component, expected in allowed.items():
        spec = _policy(objects, component)["spec"]
        assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
        reached = set()
        for rule in spec["egress"]:
            (peer,) = rule["to"]  # every rule names one peer: no rule opens everything
            labels = peer["podSelector"]["matchLabels"]
            ports = {p["port"] for p in rule["ports"]}
            if labels == {"k8s-app": "kube-dns"}:
                reached |= {("dns", p) for p in ports}
            elif labels == {"app.kubernetes.io/name": "pipelens", "app.kubernetes.io/component": "web"}:
                assert "namespaceSelector" not in peer
                reached |= {("web", p) for p in ports}
            else:
                assert "namespaceSelector" not in peer, labels
                assert labels.get("app.kubernetes.io/part-of") == "pipelens", labels
                reached |= {(labels["app.kubernetes.io/name"], p) for p in ports}
        assert reached == expected, component
    # The web pods' port is the one the Service pipelens-web sends to, and the web-app
    # origin is told to go there (WEBAPP_PORTAL_URL).
    pods = {obj["metadata"]["name"]: pod for obj, pod in _pipelens_pods(objects)}
    assert {"name": "http", "containerPort": 8000} in pods["pipelens-web"]["containers"][0]["ports"]
    (config,) = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("pipelens-config")
    ]
    assert config["data"]["WEBAPP_PORTAL_URL"] == "http://pipelens-web:8000"
    # Nobody connects to the sandbox worker; the web-app origin answers on its port only.
    assert _policy(objects, "sandbox-worker")["spec"]["ingress"] == []
    (webapp_in,) = _policy(objects, "webapp")["spec"]["ingress"]
    assert webapp_in == {"ports": [{"port": 8001, "protocol": "TCP"}]}


def test_seaweedfs_overlay_ships_the_filer_notification_for_pipelens_topic():
    objects = build("overlays/seaweedfs")
    (notification,) = [o for o in objects if o["metadata"]["name"] == "seaweedfs-filer-notification"]
    toml = notification["data"]["notification.toml"]
    assert "[notification.kafka]" in toml and "enabled = true" in toml
    assert 'hosts = ["pipelens-kafka:9092"]' in toml
    (config,) = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("pipelens-config")
    ]
    assert f'topic = "{config["data"]["SEAWEEDFS_KAFKA_TOPIC"]}"' in toml
    assert config["data"]["MINIO_STORE_KIND"] == "seaweedfs"
    assert config["data"]["MINIO_ENDPOINT"] == "seaweedfs.kubeflow:8333"
    kafka = [o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "pipelens-kafka"]
    env = {e["name"]: e.get("value") for e in kafka[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://pipelens-kafka:9092"


CREDENTIAL_FREE = ("pipelens-webapp", "pipelens-sandbox-worker")


@pytest.mark.parametrize("path", OVERLAYS)
def test_overlays_read_the_store_with_kfp_credentials(path):
    for obj, pod in _pipelens_pods(build(path)):
        if obj["metadata"]["name"] in CREDENTIAL_FREE:
            continue
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        for name, key in (("MINIO_ACCESS_KEY", "accesskey"), ("MINIO_SECRET_KEY", "secretkey")):
            assert env[name]["valueFrom"]["secretKeyRef"] == {
                "name": "mlpipeline-minio-artifact",
                "key": key,
            }, obj["metadata"]["name"]


def _config(objects) -> dict[str, str]:
    (config,) = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("pipelens-config-")
    ]
    return config["data"]


@pytest.mark.parametrize("path", BUILDS[:1] + OVERLAYS)
def test_every_config_variable_is_documented(path):
    documented = (ROOT / "docs" / "configuration.md").read_text()
    for name in _config(build(path)):
        assert f"`{name}`" in documented, name


@pytest.mark.parametrize(
    ("path", "endpoint", "kind"),
    [
        ("base", "minio:9000", "minio"),
        ("overlays/kubeflow", "minio-service.kubeflow:9000", "minio"),
        ("overlays/seaweedfs", "seaweedfs.kubeflow:8333", "seaweedfs"),
    ],
)
def test_production_settings_start_with_each_builds_config(path, endpoint, kind):
    # A pod's environment: the ConfigMap, the Secret's keys (stand-ins here) and the
    # DATABASE_URL each container composes from POSTGRES_PASSWORD.
    objects = build(path)
    secret = {
        "DJANGO_SECRET_KEY": "x" * 50,
        "POSTGRES_PASSWORD": "0123abcd",
        "MINIO_ACCESS_KEY": "ak",
        "MINIO_SECRET_KEY": "sk",
    }
    (web,) = [pod for obj, pod in _pipelens_pods(objects) if obj["metadata"]["name"] == "pipelens-web"]
    (database_url,) = [e["value"] for e in web["containers"][0]["env"] if e["name"] == "DATABASE_URL"]
    env = {
        **_config(objects),
        **secret,
        "DATABASE_URL": database_url.replace("$(POSTGRES_PASSWORD)", secret["POSTGRES_PASSWORD"]),
    }
    got = settings_with(env)
    assert got["DEBUG"] is False and got["SECURE_SSL_REDIRECT"] is True
    assert got["DATABASE_HOST"] == "pipelens-postgres"
    assert got["KAFKA_BOOTSTRAP_SERVERS"] == "pipelens-kafka:9092"
    assert got["OBJECT_STORES"] == {
        "default": {"endpoint": endpoint, "access_key": "ak", "secure": False, "kind": kind}
    }
    assert got["WEBAPP_ORIGIN"] != "http://localhost:8001"
    if kind == "seaweedfs":
        toml = next(o for o in objects if o["metadata"]["name"] == "seaweedfs-filer-notification")["data"][
            "notification.toml"
        ]
        assert f'topic = "{got["SEAWEEDFS_KAFKA_TOPIC"]}"' in toml


@pytest.mark.parametrize("path", BUILDS[:1] + OVERLAYS)
def test_every_pipelens_container_can_write_where_it_must(path):
    # The root file system is read-only: /tmp and the metrics directory are volumes. A
    # PROMETHEUS_MULTIPROC_DIR that does not exist stops the process when Django loads.
    objects = build(path)
    metrics_dir = _config(objects)["PROMETHEUS_MULTIPROC_DIR"]
    for obj, pod in _pipelens_pods(objects):
        volumes = {v["name"]: v for v in pod["volumes"]}
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        for path_ in ("/tmp", metrics_dir):
            assert "emptyDir" in volumes[mounts[path_]], (obj["metadata"]["name"], path_)


@pytest.mark.parametrize("path", OVERLAYS)
def test_kustomize_edit_set_image_retargets_every_pipelens_container(path, tmp_path):
    # What docs/deploy.md tells operators to run, on a copy of deploy/k8s.
    copy = tmp_path / "k8s"
    shutil.copytree(ROOT / "deploy" / "k8s", copy, ignore=shutil.ignore_patterns("schema-test"))
    run([kustomize(), "edit", "set", "image", "pipelens=registry.example.org/pipelens:1.0"], cwd=copy / path)
    images = [
        c["image"]
        for obj in to_json(run([kustomize(), "build", str(copy / path)]))
        if obj["kind"] in ("Deployment", "Job")
        and obj["metadata"]["labels"]["app.kubernetes.io/name"] == "pipelens"
        for c in obj["spec"]["template"]["spec"]["containers"]
    ]
    assert images == ["registry.example.org/pipelens:1.0"] * 6


@pytest.mark.parametrize("path", BUILDS[:1] + OVERLAYS)
def test_webapp_and_sandbox_pods_hold_no_credentials_and_still_start(path):
    """Neither the Secret nor a secretKeyRef reaches the web-app origin or the sandbox
    worker, and the production settings start with what they do get: the ConfigMap and
    PIPELENS_ROLE (docs/deploy.md#network-policy)."""
    objects = build(path)
    pods = {obj["metadata"]["name"]: pod for obj, pod in _pipelens_pods(objects)}
    for name in CREDENTIAL_FREE:
        container = pods[name]["containers"][0]
        assert all("secretRef" not in source for source in container.get("envFrom", [])), name
        assert all("valueFrom" not in e for e in container.get("env", [])), name
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        got = settings_with({**_config(objects), **env})
        assert got["DEBUG"] is False, name
        assert got["DATABASE_HOST"] == "127.0.0.1", name  # the discard port: opens nothing
        assert got["OBJECT_STORES"]["default"]["access_key"] == "none", name
