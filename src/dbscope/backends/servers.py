"""What every database-server backend shares: where the server is, who owns its databases, what is garbage.

Stdlib only, importing no driver: the PostgreSQL modules (psycopg) and the MariaDB
modules (PyMySQL) both build on it, and keep only what their dialect says differently
(how a record is stored, how a run's lock is read).

* Whether a server is on this machine (:func:`is_local_host`), and the refusal of one
  that is not (:func:`require_local`): dbscope creates and drops databases on the
  server it is given, so a stray ``DATABASE_URL`` pointing at production must never be used.
* The *owner record* every ``dbscope_*`` database carries (:class:`OwnerRecord`): what
  it is (:class:`OwnerKind`), which run made it, on which machine and boot, with which
  pid. PostgreSQL keeps it in the database's comment, MariaDB in a registry table.
* Whether the run that owns a database is alive (:class:`RunJudge`), from what the
  server says (the run's lock, its heartbeat) and what this machine says (its pid, its
  boot), and what ``dbscope gc`` does with each database (:func:`garbage_item`).
* The names of the databases of scopes (:func:`clone_name`).
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from ..errors import BackendUnavailableError
from .processes import pid_alive

if TYPE_CHECKING:
    from .base import Checkup, GarbageRequest

__all__ = [
    "KINDS",
    "PREFIX",
    "REGISTRY_DB",
    "STALE_AFTER_S",
    "TEMPLATE_NAME",
    "TEMPLATE_PREFIX",
    "DatabaseState",
    "GarbageItem",
    "Machine",
    "OwnerKind",
    "OwnerRecord",
    "RunBeat",
    "RunJudge",
    "ago",
    "clone_name",
    "drop_garbage",
    "garbage_item",
    "garbage_options",
    "is_local_host",
    "refusal",
    "require_local",
    "templates_note",
    "this_machine",
]

PREFIX = "dbscope_"
TEMPLATE_PREFIX = "dbscope_tpl_"
#: a template's name (a half-built one, ``<name>_b<hex>``, is not one)
TEMPLATE_NAME = re.compile(re.escape(TEMPLATE_PREFIX) + r"[0-9a-f]+")
REGISTRY_DB = "dbscope_registry"
#: A run whose heartbeat is older than this (and that holds no lock) is gone.
STALE_AFTER_S = 60.0


# -- is the server on this machine? ---------------------------------------------------------------


def _is_local_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.is_loopback or ip.is_unspecified:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _is_local_address(str(ip.ipv4_mapped))
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:  # an address of one of this machine's interfaces is one we can bind to
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((address, 0))
        return True
    except OSError:
        return False


def is_local_host(host: str) -> bool:
    """True for a socket path, ``localhost``, a loopback or unspecified address, an address
    of this machine's interfaces, or this machine's own host name.

    Any other name is not local and is never looked up: a DNS answer can point anywhere
    (``127.0.0.1.nip.io``) or change between this check and the driver's own lookup, and
    an unresolvable name must be refused, not tried.
    """
    host = host.strip()
    if not host or host.startswith(("/", "@")):
        return True  # a unix-domain socket (an '@' one lives in the abstract namespace)
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return _is_local_address(name)
    if name != socket.gethostname().lower():
        return False
    try:  # this machine's own name (from /etc/hosts, usually): local if all its addresses are
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and all(_is_local_address(a) for a in addresses)


def require_local(hosts: Iterable[str], *, server: str, masked_url: str, allow_remote: bool) -> None:
    """Refuse the ``server`` ("PostgreSQL") at any of ``hosts`` that is not on this machine, unless ``allow_remote``."""
    if allow_remote:
        return
    for host in hosts:
        if not is_local_host(host):
            raise BackendUnavailableError(
                f"refusing to use the {server} server at {host} ({masked_url}): it is not on this "
                "machine, and dbscope creates and drops databases on the server it is given, so a stray "
                "DATABASE_URL or dbscope_url pointing at production must never be used for tests. "
                "If this server is meant for tests, allow it with dbscope_allow_remote = true "
                "(or --dbscope-allow-remote, or DBSCOPE_ALLOW_REMOTE=1)."
            )


# -- a scope's database ------------------------------------------------------------------------------


class DatabaseState(enum.Enum):
    """Where a scope's database on a server is in its life; it is dropped once, kept or not."""

    OPEN = "open"
    RELEASED = "released"  # dbscope's own connections closed; the database still there
    KEPT = "kept"  # left on the server for a failed test (--dbscope-keep-failed)
    DROPPED = "dropped"  # handed to the drop thread


# -- names --------------------------------------------------------------------------------------------


def clone_name(run: str, label: str, *, max_length: int) -> str:
    """``dbscope_<run>_<label>``, lower case, at most ``max_length`` characters (a hash keeps cut names unique)."""

    def clean(text: str) -> str:
        return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")

    name = f"{PREFIX}{clean(run) or 'run'}_{clean(label) or 'db'}"
    if len(name) > max_length:
        digest = hashlib.sha256(f"{run}\0{label}".encode()).hexdigest()[:8]
        name = f"{name[: max_length - 9]}_{digest}"
    return name


# -- owner records ------------------------------------------------------------------------------------


class OwnerKind(enum.StrEnum):
    """What a dbscope database is, as its owner record's ``kind`` says."""

    CLONE = "clone"  # a scope's database
    BUILDING = "building"  # a template being built
    TEMPLATE = "template"
    SNAPSHOT = "snapshot"  # a short-lived copy read by restore, or a suite's baseline
    KEPT = "kept"  # a failed test's database, kept on request
    REGISTRY = "registry"


KINDS = tuple(OwnerKind)


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class Machine:
    host: str
    boot: str


def this_machine() -> Machine:
    return Machine(socket.gethostname(), _boot_id())


@dataclass(frozen=True)
class OwnerRecord:
    """Who owns a dbscope database, as JSON::

        {"dbscope": 1, "kind": "clone", "run": "3f2a9c1d", "session": "...", "host": "ci-7",
         "boot": "<kernel boot id>", "pid": 4242, "created": 1732185600.5, "template": "dbscope_tpl_..."}

    ``kind`` given as a string is read as an :class:`OwnerKind` (a ``str`` too), which the
    ``is_*`` properties ask about.
    """

    kind: str
    run: str
    session: str
    host: str
    boot: str
    pid: int
    created: float = field(default_factory=time.time)
    template: str | None = None
    fingerprint: str | None = None

    @classmethod
    def for_run(cls, run: str, *, session: str | None = None, kind: str = "clone") -> OwnerRecord:
        machine = this_machine()
        return cls(kind, run, session or run, machine.host, machine.boot, os.getpid())

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", OwnerKind(self.kind))

    @property
    def is_registry(self) -> bool:
        """The ``dbscope_registry`` database: runs and their heartbeats."""
        return self.kind is OwnerKind.REGISTRY

    @property
    def is_template(self) -> bool:
        """A finished template, reused by later runs with the same migrations and seed."""
        return self.kind is OwnerKind.TEMPLATE

    @property
    def is_kept(self) -> bool:
        """A failed test's database, kept by ``--dbscope-keep-failed`` until ``dbscope gc --kept``."""
        return self.kind is OwnerKind.KEPT

    def but(self, **changes: Any) -> OwnerRecord:
        """A copy with ``changes`` and a fresh ``created`` time (unless given)."""
        changes.setdefault("created", time.time())
        return replace(self, **changes)

    def to_json(self) -> str:
        data = {"dbscope": 1, **{k: v for k, v in asdict(self).items() if v is not None}}
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> OwnerRecord | None:
        """The record in ``text`` (a database comment, a registry row), or None when it is not a dbscope record."""
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("dbscope") != 1 or data.get("kind") not in KINDS:
            return None
        try:
            return cls(
                kind=str(data["kind"]),
                run=str(data.get("run", "")),
                session=str(data.get("session", data.get("run", ""))),
                host=str(data.get("host", "")),
                boot=str(data.get("boot", "")),
                pid=int(data.get("pid", 0)),
                created=float(data.get("created", 0.0)),
                template=data.get("template"),
                fingerprint=data.get("fingerprint"),
            )
        except (TypeError, ValueError):
            return None

    #: PostgreSQL's name for it: the record is the database's comment
    from_comment = from_json


def refusal(name: str, why: str, *, recorded: str) -> BackendUnavailableError:
    """Why dbscope will not drop ``name``; ``recorded``: where its owner record would be ("whose comment holds one")."""
    return BackendUnavailableError(
        f"refusing to drop database {name!r}: {why}. dbscope only drops databases it created, whose name "
        f"starts with {PREFIX!r} and {recorded}."
    )


# -- is the owner alive? ------------------------------------------------------------------------------


def ago(seconds: float) -> str:
    """``42 s ago``, ``5 min ago``, ``3 h ago``, ``9 days ago``."""
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


@dataclass(frozen=True)
class RunBeat:
    """A run's row in the registry: how long ago it beat, and the templates it uses."""

    heartbeat_age: float
    templates: tuple[str, ...]


class RunJudge:
    """Decides whether the run that owns a database is alive.

    ``runs``: the registry's heartbeats; ``locked(run)``: whether a session of the run
    still holds its lock on the server (the server's answer, the only one that sees
    other machines at once).
    """

    def __init__(self, *, runs: Mapping[str, RunBeat], locked: Callable[[str], bool], stale: float) -> None:
        self.runs = dict(runs)
        self.locked = locked
        self.stale = stale
        self.machine = this_machine()
        self.now = time.time()

    def alive(self, record: OwnerRecord) -> tuple[bool, str]:
        run, who = record.run, f"run {record.run} (pid {record.pid} on {record.host or '?'})"
        if self.locked(run):
            return True, f"{who} is still connected to the server"
        here = record.host == self.machine.host
        if here and record.boot and self.machine.boot and record.boot != self.machine.boot:
            return False, f"{who} is gone: this machine has rebooted since"
        if here and not pid_alive(record.pid):
            return False, f"{who} is gone: process {record.pid} is not running"
        beat = self.runs.get(run)
        if beat is not None:
            if beat.heartbeat_age > self.stale:
                return False, f"{who} stopped its heartbeat {ago(beat.heartbeat_age)} (stale after {self.stale:g} s)"
            return True, f"{who} is alive (heartbeat {ago(beat.heartbeat_age)})"
        age = max(self.now - record.created, 0.0)
        if here:
            return True, f"{who} is running"
        if age > self.stale:
            return False, f"{who} has no heartbeat and the database was created {ago(age)}"
        return True, f"{who} created it {ago(age)}; waiting for its heartbeat"

    def template_in_use(self, name: str) -> str | None:
        """The live run that uses the template ``name``, if any."""
        for run, info in self.runs.items():
            if name in info.templates and (self.locked(run) or info.heartbeat_age <= self.stale):
                return run
        return None


# -- garbage ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GarbageItem:
    """One dbscope database and what garbage collection does with it, and why."""

    name: str
    reason: str
    action: Literal["drop", "keep"]

    def __str__(self) -> str:
        return f"{self.action:4} {self.name}: {self.reason}"


def garbage_item(
    name: str, record: OwnerRecord | None, judge: RunJudge, *, templates: bool = False, kept: bool = False
) -> GarbageItem:
    """What ``dbscope gc`` does with the database ``name``, whose owner record is ``record``.

    Dropped only when its owner run is gone; never without a record, never the registry,
    templates only with ``templates`` (and none a live run uses), kept databases only with ``kept``.
    """
    if record is None:
        return GarbageItem(
            name,
            "no dbscope owner record: dbscope did not create it (or was stopped between creating it and "
            "recording its owner); dbscope never drops it, drop it by hand if it is yours",
            "keep",
        )
    if record.is_registry:
        return GarbageItem(name, "dbscope's registry of runs (their heartbeats)", "keep")
    if record.is_template:
        user = judge.template_in_use(name)
        built = f"fingerprint {record.fingerprint}, built {ago(max(judge.now - record.created, 0))}"
        if user is not None:
            return GarbageItem(name, f"template ({built}) in use by live run {user}", "keep")
        if templates:
            return GarbageItem(name, f"template ({built}) that no live run uses", "drop")
        return GarbageItem(
            name,
            f"template ({built}), reused by later runs with the same migrations and seed; "
            "drop templates no live run uses with templates=True (dbscope gc --templates)",
            "keep",
        )
    if record.is_kept:
        if kept:
            return GarbageItem(name, f"kept for a failed test by run {record.run}", "drop")
        return GarbageItem(
            name,
            f"kept for a failed test by run {record.run} (--dbscope-keep-failed); "
            "drop it with kept=True (dbscope gc --kept) when done",
            "keep",
        )
    alive, why = judge.alive(record)
    return GarbageItem(name, f"{record.kind}: {why}", "keep" if alive else "drop")


def drop_garbage(
    items: Iterable[GarbageItem],
    drop: Callable[[str], object],
    *,
    errors: tuple[type[BaseException], ...],
    describe: Callable[[BaseException], str] = str,
) -> list[GarbageItem]:
    """Drop the items marked 'drop'; one whose drop raises one of ``errors`` is kept, saying why."""
    result: list[GarbageItem] = []
    for item in items:
        if item.action == "drop":
            try:
                drop(item.name)
            except errors as exc:
                item = GarbageItem(item.name, f"{item.reason}; the drop failed: {describe(exc)}", "keep")
        result.append(item)
    return result


def garbage_options(request: GarbageRequest, *, allow_remote: bool) -> dict[str, Any]:
    """The keyword arguments of a server backend's ``collect_garbage`` for what ``dbscope gc`` was asked."""
    options: dict[str, Any] = {"dry_run": request.dry_run, "allow_remote": request.allow_remote or allow_remote}
    if request.stale_after_s is not None:
        options["stale_after_s"] = request.stale_after_s
    if request.templates:
        options["templates"] = True
    if request.kept:
        options["kept"] = True
    return options


def templates_note(checkup: Checkup, fingerprint: str) -> Callable[[], None]:
    """What ``dbscope doctor`` says of a server's cached template: the server keeps it; it was rebuilt."""
    detail = f"the server keeps the template under fingerprint {fingerprint}; rebuilt above"
    return lambda: checkup.na("cached template", detail)
