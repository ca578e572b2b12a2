"""nginx from Debian's package, started in the foreground on a rendered deploy/ site (tests and benches).

The site is deploy/nginx/paywatch.conf.template itself, rendered with
deploy/render.py; only the main configuration (pid file, logs, temp paths
under the working directory) is written here, as /etc/nginx/nginx.conf
would be on a server. ``make_certificate`` gives TLS a throw-away
self-signed certificate for localhost and 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from paywatch_dev.servers import ServerProcess, http_ready

ROOT = Path(__file__).resolve().parents[1]
SITE_TEMPLATE = ROOT / "deploy" / "nginx" / "paywatch.conf.template"
NGINX = "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "nginx"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for localhost and 127.0.0.1; return (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def render_site(values: dict[str, str], output: Path) -> Path:
    """Render deploy/'s nginx site with ``values`` (the env file's layout variables) into ``output``."""
    from deploy.render import render

    output.write_text(render(SITE_TEMPLATE.read_text(), values))
    return output


def nginx_process(workdir: Path, site: Path, logs: Path, env: dict[str, str], ready_url: str,
                  worker_connections: int = 1024) -> ServerProcess:
    """Return (not started) nginx serving ``site`` with a minimal main config under ``workdir``."""
    temp = workdir / "nginx-temp"
    temp.mkdir(exist_ok=True)
    # As root the workers would drop to nobody, who cannot read a 0700 temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = workdir / "nginx.conf"
    conf.write_text(f"""\
{user}worker_processes 2;
pid {workdir}/nginx.pid;
error_log {logs}/nginx-error.log info;
events {{ worker_connections {worker_connections}; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    access_log off;
    include {site};
}}
""")
    return ServerProcess("nginx", [NGINX, "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"], workdir,
                         env=env, timeout=30, ready=http_ready(ready_url))
