"""A throwaway PostgreSQL server on 127.0.0.1 for the tests (Debian's postgresql package)."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

PASSWORD = "pg-test-secret"


@dataclass
class PostgresServer:
    host: str
    port: int
    username: str
    password: str
    database: str = "postgres"

    def connect(self):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.username, password=self.password,
                                dbname=self.database)


def bin_dir() -> Optional[Path]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres() -> Iterator[PostgresServer]:
    """initdb + pg_ctl start in a temp dir (as user `postgres` when running as root); stopped on exit."""
    binaries = bin_dir()
    data = Path(tempfile.mkdtemp(prefix="foundation-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    pwfile = data / "pw"
    pwfile.write_text(PASSWORD)
    if as_postgres:
        shutil.chown(data, "postgres")
        shutil.chown(pwfile, "postgres")
        data.chmod(0o700)
    cluster, port = data / "cluster", _free_port()
    subprocess.run([*as_postgres, str(binaries / "initdb"), "-D", str(cluster), "-U", "foundation", "--auth=md5",
                    f"--pwfile={pwfile}", "-E", "UTF8"], check=True, capture_output=True)
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run([*as_postgres, str(binaries / "pg_ctl"), "-D", str(cluster), "-o", options, "-w", "-l",
                    str(data / "log"), "start"], check=True, capture_output=True)
    try:
        yield PostgresServer("127.0.0.1", port, "foundation", PASSWORD)
    finally:
        subprocess.run([*as_postgres, str(binaries / "pg_ctl"), "-D", str(cluster), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)
