"""Real servers for the channel tests: SMTP (aiosmtpd), CUPS with cups-pdf,
HylaFAX; and small PDFs made by WeasyPrint.

Test modules import what they use: ``from servers import smtp_server, ...``
(``tests`` is on pytest's ``pythonpath``).  A fixture whose server cannot
run here skips with the reason, or fails the run under CI
(:func:`helpers.unavailable`).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from helpers import unavailable

from relances.plugins import Delivery, Recipient

SMTP_USER = "relances"
SMTP_PASSWORD = "s3cret-pass"


def make_pdf(*paragraphs: str) -> bytes:
    """A small real PDF holding ``paragraphs``."""
    import weasyprint

    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return weasyprint.HTML(string=f"<html><body>{body}</body></html>").write_pdf()


def pdf_text(data: bytes) -> str:
    """The text of a PDF, whitespace folded."""
    from pypdf import PdfReader

    text = " ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)
    return " ".join(text.split())


def make_delivery(**overrides: Any) -> Delivery:
    """A level-1 letter for INTEL's invoice COD_F1026, as dispatch would build it."""
    pdf = overrides.pop("pdf", None) or make_pdf(
        "INTEL", "Relance niveau 1", "Facture COD_F1026 : reste 253,06 €")
    recipient = overrides.pop("recipient", None) or Recipient(
        code="INT01", name="INTEL", email="compta@intel.example", fax="01 45 67 89 01",
        address=("2 avenue de Paris", "78280 Guyancourt"), postal_code="78280", city="Guyancourt")
    values: dict[str, Any] = dict(
        key="letter:COD_F1026:1", kind="letter", level=1, recipient=recipient,
        subject="Relance : facture COD_F1026", pdf=pdf, filename="relance-COD_F1026.pdf",
        text_body="Madame, Monsieur,\nveuillez trouver ci-joint notre relance.\n",
        html_body="<p>Madame, Monsieur,</p><p>veuillez trouver ci-joint notre relance.</p>",
        invoice_numbers=("COD_F1026",),
    )
    values.update(overrides)
    return Delivery(**values)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- SMTP -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert, key)."""
    if shutil.which("openssl") is None:
        unavailable("openssl is not installed: cannot make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    session: int  # id of the SMTP session: equal ids mean one connection
    login: str | None


@dataclass
class RecordingHandler:
    """aiosmtpd handler keeping what arrived; scripted failures for tests."""

    messages: list[Received] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)  # next DATA answers, in order
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    drop_next_data: bool = False

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.drop_next_data:
            self.drop_next_data = False
            server.transport.close()
            return "421 closing"
        if self.data_replies:
            return self.data_replies.pop(0)
        login = session.auth_data.login.decode() if session.auth_data else None
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message,
                                      id(session), login))
        return "250 Message accepted"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode()
          and auth_data.password == SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler
    cert: Path
    security: str

    def channel_options(self, **extra: Any) -> dict[str, Any]:
        """Options for the email channel that reach this server."""
        options: dict[str, Any] = {
            "host": self.host, "port": self.port, "security": self.security,
            "username": SMTP_USER, "password_env": "RELANCES_TEST_SMTP_PASSWORD",
            "ca_file": str(self.cert), "from_address": "relances@entreprise.example",
            "from_name": "Service comptable", "timeout": 10,
        }
        options.update(extra)
        return options


def _server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def _start_smtp(tls_files: tuple[Path, Path], implicit_tls: bool,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    cert, key = tls_files
    handler = RecordingHandler()
    port = free_port()
    context = _server_context(cert, key)
    kwargs: dict[str, Any] = dict(
        hostname="127.0.0.1", port=port, authenticator=_authenticator, auth_required=True,
    )
    if implicit_tls:
        kwargs.update(ssl_context=context, auth_require_tls=False)
        kwargs["auth_required"] = False  # aiosmtpd warns on required AUTH without STARTTLS
    else:
        kwargs.update(tls_context=context, require_starttls=True)
    controller = Controller(handler, **kwargs)
    controller.start()
    monkeypatch.setenv("RELANCES_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    try:
        yield SmtpServer("127.0.0.1", port, handler, cert, "tls" if implicit_tls else "starttls")
    finally:
        # The server closes a session's socket in a callback on its own loop;
        # stopping that loop before the callback runs would leave the socket
        # to the garbage collector, and its ResourceWarning to a later test.
        time.sleep(0.2)
        controller.stop()


@pytest.fixture
def smtp_server(tls_files: tuple[Path, Path],
                monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1 requiring STARTTLS and AUTH."""
    yield from _start_smtp(tls_files, False, monkeypatch)


@pytest.fixture
def smtps_server(tls_files: tuple[Path, Path],
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1 speaking implicit TLS (SMTPS), with AUTH."""
    yield from _start_smtp(tls_files, True, monkeypatch)


# -- CUPS -----------------------------------------------------------------------------

CUPSD_CONF = """\
LogLevel info
Listen 127.0.0.1:{port}
Browsing No
DefaultAuthType None
WebInterface No
<Location />
  Order allow,deny
  Allow from 127.0.0.1
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""
CUPS_FILES_CONF = """\
ServerRoot {base}/root
StateDir {base}/state
CacheDir {base}/cache
RequestRoot {base}/spool
TempDir {base}/tmp
Printcap {base}/printcap
ErrorLog {base}/log/error_log
AccessLog {base}/log/access_log
PageLog {base}/log/page_log
SystemGroup root
"""
CUPS_PDF_PPD = Path("/usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd")
CUPS_PDF_BACKEND = Path("/usr/lib/cups/backend/cups-pdf")


@dataclass
class CupsServer:
    server: str  # for lp -h
    printer: str  # a working cups-pdf queue
    stopped_printer: str  # a cups-pdf queue disabled with cupsdisable
    out: Path  # where cups-pdf writes the PDFs

    def pdfs(self) -> set[Path]:
        return set(self.out.rglob("*.pdf"))

    def idle_pdfs(self, timeout: float = 60) -> set[Path]:
        """The PDFs in ``out`` once the working queue holds no job: an earlier test's
        job still printing would otherwise land its PDF during this one."""
        deadline = time.monotonic() + timeout
        while _run("lpstat", "-h", self.server, "-o", self.printer).stdout.strip():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.printer} still has jobs after {timeout:g} s")
            time.sleep(0.2)
        return self.pdfs()

    def wait_for_pdf(self, before: set[Path], timeout: float = 60) -> Path:
        """The PDF that appears in ``out`` after ``before`` was listed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.pdfs() - before
            if new:
                path = new.pop()
                size = -1
                while path.stat().st_size != size:  # cups-pdf may still be writing
                    size = path.stat().st_size
                    time.sleep(0.3)
                return path
            time.sleep(0.3)
        raise AssertionError(f"no PDF arrived in {self.out} within {timeout:g} s")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))


@pytest.fixture(scope="session")
def cups_server() -> Iterator[CupsServer]:
    """A private cupsd on 127.0.0.1 with two cups-pdf queues.

    It runs from its own folders and port, so it neither needs nor touches
    the machine's CUPS; only cups-pdf's per-instance configuration must go
    into /etc/cups (its folder is compiled in), and is removed afterwards.
    """
    missing = [p for p in ("cupsd", "lpadmin", "lp", "lpstat", "cupsdisable")
               if shutil.which(p) is None]
    missing += [str(p) for p in (CUPS_PDF_PPD, CUPS_PDF_BACKEND) if not p.exists()]
    if missing:
        unavailable(f"CUPS or cups-pdf is not installed (missing {', '.join(missing)}); "
                    "scripts/setup.sh --test installs them")
    if os.geteuid() != 0:
        unavailable("cups-pdf runs only as root and reads its configuration from /etc/cups")
    # Filters run as the 'lp' user: the folders must be reachable, so not
    # under pytest's private (0700) temporary folder.
    base = Path(tempfile.mkdtemp(prefix="relances-cups-"))
    base.chmod(0o755)
    for sub in ("root", "state", "cache", "spool", "log", "out"):
        (base / sub).mkdir()
    (base / "tmp").mkdir(mode=0o1777)
    (base / "tmp").chmod(0o1777)
    port = free_port()
    (base / "cupsd.conf").write_text(CUPSD_CONF.format(port=port))
    (base / "cups-files.conf").write_text(CUPS_FILES_CONF.format(base=base))
    instance = f"relancestest{os.getpid()}"
    pdf_conf = Path(f"/etc/cups/cups-pdf-{instance}.conf")
    pdf_conf.write_text(f"Out {base / 'out'}\nAnonDirName {base / 'out'}\nLabel 1\n")
    daemon = subprocess.Popen(
        ["cupsd", "-f", "-c", str(base / "cupsd.conf"), "-s", str(base / "cups-files.conf")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    server = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while "scheduler is running" not in _run("lpstat", "-h", server, "-r").stdout:
            if daemon.poll() is not None or time.monotonic() > deadline:
                err = daemon.stderr.read().decode() if daemon.stderr else ""
                unavailable(f"cupsd did not start: {err.strip() or 'no message'}")
            time.sleep(0.2)
        for queue in ("RelancesPDF", "RelancesStopped"):
            # pdftocairo keeps the text extractable through cups-pdf's
            # PostScript round trip (the default renderer garbles it).
            done = _run("lpadmin", "-h", server, "-p", queue, "-E", "-v", f"cups-pdf:/{instance}",
                        "-P", str(CUPS_PDF_PPD), "-o", "pdftops-renderer-default=pdftocairo")
            if done.returncode != 0:
                unavailable(f"lpadmin failed: {done.stderr.strip()}")
        _run("cupsdisable", "-h", server, "-r", "paper jam", "RelancesStopped")
        yield CupsServer(server, "RelancesPDF", "RelancesStopped", base / "out")
    finally:
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        if daemon.stderr:
            daemon.stderr.close()
        pdf_conf.unlink(missing_ok=True)
        shutil.rmtree(base, ignore_errors=True)


# -- HylaFAX --------------------------------------------------------------------------


@dataclass
class HylafaxServer:
    host: str
    jobs: list[str] = field(default_factory=list)  # removed at the end

    def status(self) -> str:
        return _run("faxstat", "-s", "-h", self.host).stdout


def _hylafax_running(host: str) -> bool:
    # faxstat exits 0 even when it cannot reach the server.
    return "HylaFAX scheduler" in _run("faxstat", "-h", host).stdout


@pytest.fixture(scope="session")
def hylafax_server() -> Iterator[HylafaxServer]:
    """HylaFAX's faxq and hfaxd (port 4559), with no modem: jobs wait in
    the queue.  Started with its init script when not already running.
    """
    missing = [p for p in ("sendfax", "faxstat", "faxrm", "faxq", "hfaxd")
               if shutil.which(p) is None]
    if missing:
        unavailable(f"HylaFAX is not installed (missing {', '.join(missing)}); "
                    "scripts/setup.sh --test installs it")
    host = "localhost"
    started = False
    if not _hylafax_running(host):
        if os.geteuid() != 0:
            unavailable("HylaFAX is not running and only root can start it")
        default = Path("/etc/default/hylafax")
        if "USE_FAXGETTY=" not in (default.read_text() if default.exists() else ""):
            unavailable(f"{default} lacks USE_FAXGETTY=no: HylaFAX's init script breaks")
        done = _run("/etc/init.d/hylafax", "start")
        deadline = time.monotonic() + 15
        while not _hylafax_running(host):
            if time.monotonic() > deadline:
                unavailable(f"HylaFAX did not start: {(done.stdout + done.stderr).strip()}")
            time.sleep(0.3)
        started = True
    server = HylafaxServer(host)
    try:
        yield server
    finally:
        if server.jobs:
            _run("faxrm", "-h", host, *server.jobs)
        if started:
            _run("/etc/init.d/hylafax", "stop")
