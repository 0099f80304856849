"""Remote filesystems behind :class:`cluster_pack.store.storage.Store` (HDFS, viewfs, S3).

Kept apart from the store so that ``import cluster_pack`` never imports hdfs-native
or s3fs.

* HDFS/viewfs: hdfs-native (pure Rust client, no JVM). ``hdfs://nn:port/p``, ``hdfs:///p``
  (the default FS of ``$HADOOP_CONF_DIR``), name services and viewfs mount tables are
  resolved by hdfs-native itself from the files in ``$HADOOP_CONF_DIR``. Its default retry
  policy waits ~3 minutes for a namenode that is down: unless the Hadoop configuration or
  ``fs_args`` say otherwise, we use 3 failover attempts with 200-1000 ms sleeps (~2 s).
  On a Kerberized cluster hdfs-native authenticates with GSSAPI from the ticket cache
  (``KRB5CCNAME``, ``KRB5_CONFIG``): a missing or expired ticket, or a missing
  libgssapi_krb5, becomes a :class:`~cluster_pack.errors.KerberosError` saying to ``kinit``
  (and as whom when the cache names the principal). Tickets are never read or logged.
* S3: s3fs; ``s3a://`` means ``s3://``. Endpoint/region/credentials come from ``fs_args``
  (``endpoint_url``, ``key``, ``secret``, ``client_kwargs``...) or the standard AWS
  variables/files. Error messages never contain the secret.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import subprocess
import time
from typing import Any, Dict, Iterator, List, NamedTuple
from urllib.parse import urlparse

from cluster_pack.errors import ConfigurationError, KerberosError, StorageError
from cluster_pack.store import hadoop_conf

# fast failure for a namenode that is down (hdfs-native defaults hang ~3 minutes)
HDFS_FAST_FAIL = {
    "dfs.client.failover.max.attempts": "3",
    "dfs.client.failover.sleep.base.millis": "200",
    "dfs.client.failover.sleep.max.millis": "1000",
}
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_SECRET_ARGS = ("secret", "token", "aws_secret_access_key", "aws_session_token")


def _missing(url: str, scheme: str, exc: Exception) -> ConfigurationError:
    extra = {"hdfs": "hdfs", "viewfs": "hdfs", "s3": "s3"}.get(scheme, "all")
    return ConfigurationError(
        f"{url}: support for {scheme}:// is not installed "
        f"(pip install 'cluster-pack[{extra}]'): {exc}")


# modes of what we create in a store: directories private to the owner, files
# readable by the owner (and the group on shared clusters), never world-writable
DIR_MODE = 0o750
FILE_MODE = 0o640
ARTIFACT_MODE = 0o750  # artifacts are run directly (./env.pex) once localized


class Resolved(NamedTuple):
    """A remote URL resolved to its filesystem: what a Store is made of."""

    fs: Any
    scheme: str  # the store's scheme ("s3" for s3a:// too)
    netloc: str
    path: str  # the path inside ``fs``


def resolve(url: str, scheme: str, fs_args: Dict[str, Any]) -> Resolved:
    """The fsspec filesystem and path for a remote ``url`` of ``scheme``."""
    parsed = urlparse(url)
    if scheme in ("hdfs", "viewfs"):
        fs = _hdfs(url, scheme, parsed.hostname, parsed.port, fs_args)
        return Resolved(fs, scheme, parsed.netloc or "", parsed.path or "/")
    if scheme in ("s3", "s3a"):
        if not parsed.netloc:
            raise ConfigurationError(f"{url}: no bucket in the S3 URL (s3://bucket/key)")
        fs = _s3(url, fs_args)
        return Resolved(fs, "s3", "", f"{parsed.netloc}{parsed.path}")
    import fsspec

    try:
        fs = fsspec.filesystem(scheme, **fs_args)
    except ImportError as exc:
        raise _missing(url, scheme, exc) from None
    path = f"{parsed.netloc}{parsed.path}" if scheme in ("gs", "gcs", "abfs", "memory") \
        else parsed.path
    return Resolved(fs, scheme, parsed.netloc or "", path)


# -- HDFS ------------------------------------------------------------------------------

def hdfs_config(fs_args: Dict[str, Any]) -> Dict[str, str]:
    """hdfs-native config overrides: ``fs_args`` plus fast-fail defaults not set elsewhere."""

    site = hadoop_conf.load()
    config = {k: str(v) for k, v in fs_args.items()}
    for key, value in HDFS_FAST_FAIL.items():
        if key not in site and key not in config:
            config[key] = value
    return config


# what hdfs-native's errors say when Kerberos (GSSAPI, SASL) is what failed
_KERBEROS_MARKERS = ("GSSAPIError", "GSSAPI error", "SASLError", "NoSASLMechanism",
                     "No valid SASL mechanism", "javax.security.sasl.SaslException",
                     "libgssapi_krb5", "Kerberos")
_GSS_DETAIL = re.compile(r'"([^"]{8,})"\)?\s*$')


def is_kerberos_error(exc: BaseException) -> bool:
    """True if ``exc`` (from hdfs-native) is a Kerberos/SASL authentication failure."""
    text = f"{type(exc).__name__}: {exc}"
    return any(marker in text for marker in _KERBEROS_MARKERS)


def ticket_principal(timeout: float = 5.0) -> str:
    """The principal the ticket cache (``KRB5CCNAME`` or the default) belongs to, from
    ``klist``; "" when there is no cache, no klist, or it does not answer in ``timeout``."""
    klist = shutil.which("klist")
    if not klist:
        return ""
    try:
        out = subprocess.run([klist], capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    found = re.search(r"^Default principal:\s*(\S+)", out, re.MULTILINE)
    return found.group(1) if found else ""


def kerberos_error(url: str, exc: BaseException) -> KerberosError:
    """One line saying what to do about a Kerberos failure talking to ``url``."""
    text = str(exc)
    detail = _GSS_DETAIL.search(text)
    reason = detail.group(1) if detail else text.splitlines()[0] if text else type(exc).__name__
    cache = os.environ.get("KRB5CCNAME", "the default ticket cache")
    if "libgssapi_krb5" in text or "Failed to load" in text:
        return KerberosError(
            f"{url}: Kerberos needs the GSSAPI library libgssapi_krb5.so.2, which cannot be "
            "loaded: install it (Debian/Ubuntu: apt-get install libgssapi-krb5-2; RHEL: "
            "yum install krb5-libs) or point LD_LIBRARY_PATH at it")
    if "expired" in text.lower():
        who = ticket_principal()
        what = f"the Kerberos ticket of {who}" if who else "the Kerberos ticket"
        return KerberosError(
            f"{url}: {what} in {cache} has expired: run `kinit {who or '<principal>'}` "
            "(or `kinit -kt <keytab> <principal>`) and retry")
    if "GSS_S_NO_CRED" in text or "No Kerberos credentials" in text or "No credentials" in text:
        return KerberosError(
            f"{url}: no Kerberos ticket in {cache}: run `kinit <principal>` (or `kinit -kt "
            "<keytab> <principal>`; KRB5CCNAME chooses the cache) and retry")
    who = ticket_principal()
    as_whom = f" as {who}" if who else ""
    return KerberosError(
        f"{url}: Kerberos authentication{as_whom} failed ({reason}): check the ticket "
        f"(`klist`), KRB5_CONFIG and the cluster's principals, then `kinit` again")


class _KerberosAware:
    """Wraps an hdfs-native client: a Kerberos failure of any call is a KerberosError, a
    refusal of the namenode (AccessControlException) a PermissionError."""

    def __init__(self, client: Any, url: str):
        self._client = client
        self._url = url

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr
        url = self._url

        def call(*args: Any, **kwargs: Any) -> Any:
            with _client_errors(url):
                result = attr(*args, **kwargs)
            if type(result).__name__.endswith("Iter"):  # lazy listings connect when iterated
                return _checked_iter(result, url)
            return result

        return call


_ACCESS_DENIED = "org.apache.hadoop.security.AccessControlException"
_JAVA_MESSAGE = re.compile(r'AccessControlException", "(.*?)(?:\\n|"\))', re.DOTALL)


@contextlib.contextmanager
def _client_errors(url: str) -> Iterator[None]:
    """hdfs-native's RuntimeErrors as what they mean: KerberosError, PermissionError."""
    try:
        yield
    except KerberosError:
        raise
    except Exception as exc:  # noqa: BLE001 - hdfs-native raises RuntimeError/OSError
        if is_kerberos_error(exc):
            raise kerberos_error(url, exc) from None
        text = str(exc)
        if _ACCESS_DENIED in text and not isinstance(exc, PermissionError):
            # the namenode's message without its Java stack trace
            found = _JAVA_MESSAGE.search(text)
            message = found.group(1).replace('\\"', '"') if found else "permission denied"
            raise PermissionError(f"{url}: {message}") from None
        raise


def _checked_iter(iterator: Any, url: str) -> Iterator[Any]:
    while True:
        with _client_errors(url):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


def _hdfs(url: str, scheme: str, host: Any, port: Any, fs_args: Dict[str, Any]) -> Any:
    try:
        from hdfs_native.fsspec import HdfsFileSystem, ViewfsFileSystem
    except ImportError as exc:
        raise _missing(url, scheme, exc) from None
    base = HdfsFileSystem if scheme == "hdfs" else ViewfsFileSystem

    # ignore: the base class is chosen at run time (mypy wants a static one)
    class _Fs(base):  # type: ignore[misc, valid-type]
        cachable = False

        def chmod(self, path: str, mode: int) -> None:
            self.client.set_permission(self._strip_protocol(path), mode)

        def makedirs(self, path: str, exist_ok: bool = False) -> None:
            self.client.mkdirs(self._strip_protocol(path), DIR_MODE, True)

    try:
        fs = _Fs(host or None, port or None, **hdfs_config(fs_args))
        fs.client = _KerberosAware(fs.client, url)
        return fs
    except KerberosError:
        raise
    except OSError as exc:
        raise StorageError(f"connecting to {url} failed: {exc}") from None
    except Exception as exc:  # hdfs-native raises RuntimeError on a bad configuration
        raise ConfigurationError(f"{url}: cannot set up the HDFS client: {exc}") from None


def rename_over(fs: Any, source: str, target: str) -> None:
    """Rename ``source`` to ``target``, replacing it in one namenode operation.

    hdfs-native's rename with overwrite is HDFS's rename2(OVERWRITE): readers see the old
    file or the new one, never nothing. Other filesystems fall back to remove + rename
    (a tiny window where the target is missing; the manifest is only written after).
    """
    try:
        if hasattr(fs, "client") and hasattr(fs.client, "rename"):
            fs.client.rename(fs._strip_protocol(source), fs._strip_protocol(target), True)
            return
        if fs.exists(target):
            fs.rm(target)
        fs.mv(source, target)
    except OSError as exc:
        raise StorageError(f"renaming {source} to {target} failed: {exc}") from exc


def rename_if_absent(fs: Any, source: str, target: str) -> bool:
    """Rename ``source`` to ``target`` only if ``target`` does not exist, in one namenode
    operation (hdfs-native's rename without overwrite); False if it exists or if the
    filesystem has no such operation (the caller then checks and renames)."""
    if not (hasattr(fs, "client") and hasattr(fs.client, "rename")):
        return False
    try:
        fs.client.rename(fs._strip_protocol(source), fs._strip_protocol(target), False)
        return True
    except Exception:  # noqa: BLE001 - "exists" and other refusals: the caller re-checks
        return False


# -- S3 --------------------------------------------------------------------------------

def secrets_of(fs_args: Dict[str, Any]) -> List[str]:
    """The secret strings that must never appear in a message."""
    found = [str(fs_args[k]) for k in _SECRET_ARGS if fs_args.get(k)]
    for key in ("client_kwargs", "config_kwargs"):
        sub = fs_args.get(key) or {}
        found += [str(sub[k]) for k in _SECRET_ARGS if isinstance(sub, dict) and sub.get(k)]
    found += [os.environ[k] for k in _SECRET_ENV if os.environ.get(k)]
    return [s for s in found if len(s) >= 4]


def scrub(message: str, secrets: List[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, "***")
    return message


# botocore settings applied unless fs_args["config_kwargs"] sets them: a dead endpoint fails
# in seconds (botocore's legacy mode retries a refused connection 5 times with up to ~15 s of
# backoff, and s3fs wraps every call in 5 more attempts)
S3_FAST_FAIL = {
    "connect_timeout": 5,
    "retries": {"max_attempts": 3, "mode": "standard"},
}
S3_CALL_ATTEMPTS = 2  # s3fs' own retry loop around each call (default 5)


def _key_id(args: Dict[str, Any]) -> str:
    """The access key id in use (not a secret: it names the credentials to check)."""
    sub = args.get("client_kwargs") or {}
    return str(args.get("key") or args.get("aws_access_key_id")
               or (sub.get("aws_access_key_id") if isinstance(sub, dict) else None)
               or (os.environ.get("AWS_ACCESS_KEY_ID") if not args.get("profile") else None)
               or "")


def _s3_error(exc: BaseException, bucket: Any, key_id: str, endpoint: str,
              hidden: List[str]) -> OSError:
    """An OSError naming the bucket (and the key id, endpoint), never a secret."""
    from botocore import exceptions as boto

    where = f"bucket '{bucket}'" if bucket else "S3"
    if isinstance(exc, PermissionError) or isinstance(exc, (boto.NoCredentialsError,
                                                            boto.PartialCredentialsError)):
        which = f"key id {key_id}" if key_id else "the AWS credentials in use"
        error: OSError = PermissionError(
            f"S3 access to {where} was denied: check the credentials ({which}): {exc}")
    elif isinstance(exc, (boto.ConnectionError, boto.HTTPClientError)):
        error = ConnectionError(
            f"S3 endpoint {endpoint or 'of AWS'} unreachable for {where}: {exc}")
    else:
        error = OSError(f"S3 request on {where} failed: {exc}")
    error.args = (scrub(str(error), hidden),)
    return error


def _s3(url: str, fs_args: Dict[str, Any]) -> Any:
    try:
        import s3fs
        from botocore.exceptions import BotoCoreError
        from fsspec.asyn import sync_wrapper
    except ImportError as exc:
        raise _missing(url, "s3", exc) from None
    args = dict(fs_args)
    env_endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if env_endpoint and "endpoint_url" not in args:
        args["endpoint_url"] = env_endpoint
    config = dict(args.get("config_kwargs") or {})
    for key, value in S3_FAST_FAIL.items():
        config.setdefault(key, value)
    args["config_kwargs"] = config
    hidden = secrets_of(args)
    key_id = _key_id(args)
    endpoint = str(args.get("endpoint_url")
                   or (args.get("client_kwargs") or {}).get("endpoint_url") or "")

    class _Fs(s3fs.S3FileSystem):
        cachable = False
        cpack_secrets = hidden
        retries = S3_CALL_ATTEMPTS

        async def _call_s3(self, method: Any, *akwarglist: Any, **kwargs: Any) -> Any:
            """s3fs' call, with errors that name the bucket and never carry a secret."""
            try:
                return await super()._call_s3(method, *akwarglist, **kwargs)
            except (FileNotFoundError, FileExistsError):
                raise
            except (PermissionError, BotoCoreError) as exc:
                raise _s3_error(exc, kwargs.get("Bucket"), key_id, endpoint, hidden) from None

        call_s3 = sync_wrapper(_call_s3)  # S3File (uploads) calls the sync wrapper

        def makedirs(self, path: str, exist_ok: bool = False) -> None:
            """Keys need no directories; only check the bucket (never create one)."""
            bucket = self._strip_protocol(path).split("/", 1)[0]
            try:
                self.ls(bucket, detail=False)
            except FileNotFoundError:
                raise StorageError(f"S3 bucket '{bucket}' does not exist") from None
            except OSError as exc:
                raise StorageError(scrub(f"S3 bucket '{bucket}': {exc}", hidden)) from None

        def chmod(self, path: str, mode: int) -> None:  # objects have no POSIX modes
            return None

    try:
        return _Fs(**args)
    except Exception as exc:
        raise ConfigurationError(scrub(f"{url}: cannot set up the S3 client: {exc}",
                                       hidden)) from None


# -- publisher lock (HDFS) -------------------------------------------------------------

LOCK_STALE_SECONDS = 600


@contextlib.contextmanager
def hdfs_lock(fs: Any, path: str, timeout: float = 600.0) -> Iterator[None]:
    """Serialize publishers of one HDFS target across machines.

    ``{path}.lock`` is created with overwrite=False (exclusive on the namenode); a lock older
    than ``LOCK_STALE_SECONDS`` (a killed publisher) is broken.
    """
    lock_path = f"{path}.lock"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with fs.open(lock_path, "wb", overwrite=False) as handle:
                handle.write(f"{os.getpid()}\n".encode())
            break
        except KerberosError:
            raise
        except (FileExistsError, OSError) as exc:
            try:
                info = fs.info(lock_path)
            except FileNotFoundError:
                continue
            except KerberosError:
                raise
            except OSError:
                raise StorageError(f"locking {lock_path} failed: {exc}") from None
            age = time.time() - info.get("modification_time", 0) / 1000.0
            if age > LOCK_STALE_SECONDS:
                with contextlib.suppress(OSError):
                    fs.rm(lock_path)
                continue
            if time.monotonic() > deadline:
                raise StorageError(f"{lock_path} is held by another publisher") from None
            time.sleep(0.1 + random.random() * 0.2)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            fs.rm(lock_path)
