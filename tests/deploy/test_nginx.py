"""deploy/nginx/pipelens.conf (docs/deploy.md#scaling-out): nginx accepts it, as shipped
(with certificates) and as the loopback variant the scale demo runs; and a real
WebSocket passes through it to daphne processes behind it.

nginx is the Debian package (deploy/nginx/install.sh); a missing nginx fails
these tests and says how to install it (`make test` does); the tests that run it are
integration tests, outside `make test-fast`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect

from tests.conftest import wait_db_sessions_gone
from tests.helpers import database_url, wait_for

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "nginx"))
from loopback import NGINX, SITE_CONF, LoopbackNginx, RenderError, free_port, render_site  # noqa: E402


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    if not os.access(NGINX, os.X_OK):
        pytest.fail(f"{NGINX} is missing: run `bash deploy/nginx/install.sh` (Debian package)", pytrace=False)
    return NGINX


@pytest.mark.integration
def test_the_loopback_variant_passes_nginx_t(nginx_binary, tmp_path):
    proxy = LoopbackNginx(prefix=tmp_path / "nginx", web_ports=[free_port(), free_port()])
    result = proxy.test()
    assert result.returncode == 0, result.stderr
    site = (tmp_path / "nginx" / "pipelens.conf").read_text()
    # Only the loopback, plain HTTP, both upstream processes; the proxying as shipped.
    assert "ssl" not in site and "listen 80" not in site and "[::]" not in site
    assert f"listen 127.0.0.1:{proxy.port};" in site
    assert all(f"server 127.0.0.1:{port} " in site for port in proxy.web_ports)
    assert "proxy_set_header Upgrade $http_upgrade;" in site


@pytest.mark.integration
def test_the_shipped_config_passes_nginx_t_with_certificates(nginx_binary, tmp_path):
    """The production file itself, only its certificate paths pointing at a throwaway pair."""
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=pipelens.example.com", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    site = SITE_CONF.read_text().replace("/etc/ssl/pipelens/fullchain.pem", str(cert))
    site = site.replace("/etc/ssl/pipelens/privkey.pem", str(key))
    (tmp_path / "pipelens.conf").write_text(site)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\nevents {{}}\n"
        f"http {{\n  include /etc/nginx/mime.types;\n  include {tmp_path / 'pipelens.conf'};\n}}\n"
    )
    result = subprocess.run(
        [nginx_binary, "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def test_rendering_refuses_a_config_that_lost_its_marks():
    text = SITE_CONF.read_text().replace("# loopback: static", "")
    with pytest.raises(RenderError, match="static"):
        render_site(
            text, web_ports=[1], webapp_port=2, listen_port=3, listen_webapp_port=4, static_root="/srv/static"
        )


def test_websockets_pass_through_nginx_to_each_web_process(
    nginx_binary, transactional_db, tmp_path, client, django_user_model
):
    """Two daphne processes behind the rendered config: two authenticated sockets opened
    through nginx both get the portal's hello, one on each process (least_conn)."""
    ports = [free_port(), free_port()]
    daphne = str(Path(sys.executable).with_name("daphne"))
    procs, logs = [], []
    proxy = LoopbackNginx(prefix=tmp_path / "nginx", web_ports=ports)
    try:
        for i, port in enumerate(ports):
            logs.append(tmp_path / f"daphne-{i}.log")
            procs.append(
                subprocess.Popen(
                    [daphne, "-b", "127.0.0.1", "-p", str(port), "vizsite.asgi:application"],
                    cwd=ROOT,
                    env={
                        **os.environ,
                        "DJANGO_SETTINGS_MODULE": "vizsite.settings.test",
                        "DATABASE_URL": database_url(application_name=f"pipelens-test-nginx-{i}"),
                        "TRUSTED_PROXY_COUNT": "1",
                    },
                    stdout=logs[-1].open("ab"),
                    stderr=subprocess.STDOUT,
                )
            )
        proxy.start()

        def all_up():
            for proc, log in zip(procs, logs, strict=True):
                assert proc.poll() is None, log.read_text()[-3000:]
            return all(b"Listening on TCP address" in log.read_bytes() for log in logs)

        wait_for(all_up, timeout=30, what="both daphne processes")
        admin = django_user_model.objects.create_superuser("nginx-admin", password="pw-nginx-admin")
        client.force_login(admin)
        headers = {"Cookie": f"sessionid={client.cookies['sessionid'].value}", "Origin": proxy.url}
        ws_url = proxy.url.replace("http://", "ws://") + "/ws/runs/"
        with (
            ws_connect(ws_url, additional_headers=headers) as first,
            ws_connect(ws_url, additional_headers=headers) as second,
        ):
            assert '"hello"' in first.recv(timeout=10)
            assert '"hello"' in second.recv(timeout=10)
            connects = [log.read_text().count('"WSCONNECT /ws/runs/"') for log in logs]
        assert connects == [1, 1]
    finally:
        proxy.stop()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        for i in range(len(procs)):
            wait_db_sessions_gone(f"pipelens-test-nginx-{i}")
