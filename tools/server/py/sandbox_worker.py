# Warm fork server that runs inside bubblewrap as PID 1 of its own PID namespace (roilens Sandbox).
#
# It pre-imports numpy, cv2, matplotlib (Agg) and PIL once, then serves jobs one at a time over
# fd 0/1 (a socket to the host). The server itself never reads job data: for each job it forks a
# disposable supervisor that reads the job, forks the runner that executes the code under rlimits,
# collects the results and exits. So no job leaves anything in the server's memory that a later
# job's fork could inherit, and everything the job started dies before the next job begins.
#
# Protocol (host -> supervisor): b"RUN <n>\n" + n bytes: u32 header length, JSON header, inputs.
# (supervisor -> host):          b"RES <n>\n" + n bytes: u32 header length, JSON header, blobs.
# (server -> host):              b"READY <json>\n" once, b"DONE\n" after every job (after RES,
#                                or alone when the supervisor died before reporting).
import errno
import fcntl
import json
import os
import resource
import select
import signal
import struct
import sys
import time

os.environ.setdefault("MPLCONFIGDIR", "/tmp")
import numpy  # noqa: E402,F401
import cv2  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import PIL.Image  # noqa: E402,F401


def warm_up():
    # First use of a font, the Agg renderer and the PNG codecs costs ~0.5 s; pay it once here
    # so that every forked job starts with them loaded.
    import io

    fig = plt.figure(figsize=(2, 2))
    plt.plot([0, 1], [1, 0], label="x")
    plt.title("warm")
    plt.legend()
    fig.savefig(io.BytesIO(), format="png")
    plt.close("all")
    img = numpy.zeros((8, 8, 3), numpy.uint8)
    cv2.imencode(".png", img)
    cv2.imencode(".jpg", img)
    PIL.Image.fromarray(img).save(io.BytesIO(), format="PNG")


# One OpenCV thread: threads count against the job's RLIMIT_NPROC, and jobs are small.
cv2.setNumThreads(1)

JOB_ROOT = "/job"
SCRATCH_ROOTS = (JOB_ROOT, "/tmp")
IMAGE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def read_exact(fd, n):
    chunks = []
    while n > 0:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("host closed the channel")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_line(fd):
    # Byte by byte on purpose: a buffered reader would pull the job payload into the server.
    out = bytearray()
    while True:
        b = os.read(fd, 1)
        if not b:
            return None
        if b == b"\n":
            return bytes(out)
        out += b
        if len(out) > 64:
            raise ValueError("protocol line too long")


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def kill_everything_else():
    """SIGKILLs every process of the namespace except PID 1 and the caller; waits until gone."""
    me = os.getpid()
    for _ in range(1000):
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
        # Reap what we can (our own children); orphans are reaped by PID 1.
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if not others:
            return
        time.sleep(0.002)


def count_processes():
    return sum(1 for p in os.listdir("/proc") if p.isdigit())


def run_code(job_r, out_w, err_w, status_w):
    """The runner: forked before the job arrives, it holds no channel to the host. It waits for
    the job header from its supervisor, applies the limits and runs the code. Never returns."""
    try:
        os.setsid()
        # Lift the four pipe ends above the target numbers first so no dup2 clobbers another.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in (out_w, err_w, status_w, job_r)]
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        for target, fd in zip((1, 2, 3, 4), high):
            os.dup2(fd, target)
        os.closerange(5, 65536)
        raw = bytearray()
        while True:
            chunk = os.read(4, 1 << 20)
            if not chunk:
                break
            raw += chunk
        os.close(4)
        if not raw:
            os._exit(0)  # the supervisor went away without a job
        header = json.loads(raw.decode())
        del raw
        job_dir = os.path.join(JOB_ROOT, header["dir"])
        os.chdir(job_dir)
        os.environ["HOME"] = job_dir
        os.environ["TMPDIR"] = job_dir
        limits = header["limits"]
        wall_s = max(1, int(limits["wall_ms"] / 1000) + 1)
        resource.setrlimit(resource.RLIMIT_CPU, (wall_s, wall_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"],) * 2)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"],) * 2)
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["tasks"],) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    except BaseException as e:  # noqa: BLE001 - the supervisor reports it
        os.write(2, ("sandbox setup failed: %r\n" % (e,)).encode())
        os._exit(125)

    figure_counter = [0]

    def show(*_args, **_kwargs):
        for num in plt.get_fignums():
            figure_counter[0] += 1
            plt.figure(num).savefig(os.path.join(job_dir, "figure_%d.png" % figure_counter[0]))
        plt.close("all")

    plt.show = show
    status = {}
    code = 0
    try:
        compiled = compile(header["code"], "<code>", "exec")
        exec(compiled, {"__name__": "__main__", "__builtins__": __builtins__})  # noqa: S102
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code & 0xFF
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException as e:  # noqa: BLE001 - user code may raise anything
        import traceback

        tb = e.__traceback__
        # Drop this wrapper's frame so the traceback starts at the user's code.
        if tb is not None and tb.tb_next is not None and tb.tb_frame.f_code is run_code.__code__:
            tb = tb.tb_next
        try:
            traceback.print_exception(type(e), e, tb)
        except BaseException:  # noqa: BLE001 - e.g. MemoryError while formatting
            pass
        status = {
            "exc_type": type(e).__name__,
            "exc_message": str(e)[:500],
            "memory": isinstance(e, MemoryError),
            "errno": getattr(e, "errno", None),
        }
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        pass
    try:
        os.write(3, json.dumps(status).encode())
    except BaseException:  # noqa: BLE001
        pass
    os._exit(code)


def collect_images(job_dir, inputs, limits, notes):
    found = []
    for dirpath, dirnames, filenames in os.walk(job_dir, followlinks=False):
        dirnames.sort()
        for name in filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, job_dir)
            suffix = os.path.splitext(name)[1].lower()
            if suffix not in IMAGE_SUFFIXES:
                continue
            st = os.lstat(path)
            if not (st.st_mode & 0o170000 == 0o100000):  # regular files only, never links
                continue
            if rel in inputs and inputs[rel] == (st.st_size, st.st_mtime_ns):
                continue  # an input the code left untouched
            found.append((st.st_mtime_ns, rel, path, st.st_size))
    found.sort()
    images, total = [], 0
    for _, rel, path, size in found:
        if len(images) >= limits["max_images"] or total + size > limits["max_image_bytes"]:
            notes.append("image %s dropped: more than %d images or %d bytes"
                         % (rel, limits["max_images"], limits["max_image_bytes"]))
            continue
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            data = read_exact(fd, size) if size else b""
        finally:
            os.close(fd)
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            mime = "image/png"
        elif data.startswith(b"\xff\xd8\xff"):
            mime = "image/jpeg"
        else:
            notes.append("image %s dropped: not a PNG or JPEG file" % rel)
            continue
        images.append({"name": rel, "mime_type": mime, "size": len(data), "data": data})
        total += len(data)
    return images


def supervise():
    """The disposable supervisor, forked by PID 1 before the job arrives. It forks the runner,
    reads one job from the host, hands it over, watches it, writes RES and exits. Exit status 3
    means the host closed the channel (shut down); anything else ends the job."""
    job_r, job_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        run_code(job_r, out_w, err_w, st_w)
    for fd in (job_r, out_w, err_w, st_w):
        os.close(fd)

    line = read_line(0)
    if line is None:
        os._exit(3)
    if not line.startswith(b"RUN "):
        raise ValueError("bad command %r" % line[:16])
    payload = read_exact(0, int(line[4:]))
    (hlen,) = struct.unpack("<I", payload[:4])
    header = json.loads(payload[4:4 + hlen].decode())
    limits = header["limits"]
    job_dir = os.path.join(JOB_ROOT, header["dir"])
    os.mkdir(job_dir, 0o700)
    inputs = {}
    offset = 4 + hlen
    for item in header["inputs"]:
        name, size = item["name"], item["size"]
        if "/" in name or name in ("", ".", "..") or "\0" in name:
            raise ValueError("bad input name %r" % name)
        fd = os.open(os.path.join(job_dir, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            write_all(fd, payload[offset:offset + size])
        finally:
            os.close(fd)
        offset += size
        st = os.stat(os.path.join(job_dir, name))
        inputs[name] = (st.st_size, st.st_mtime_ns)
    del payload

    start = time.monotonic()
    try:
        write_all(job_w, json.dumps({"code": header["code"], "dir": header["dir"],
                                     "limits": limits}).encode())
    except OSError:
        pass  # the runner is gone; its exit status says why
    os.close(job_w)
    deadline = start + limits["wall_ms"] / 1000.0
    cap = limits["output_bytes"]
    bufs = {out_r: bytearray(), err_r: bytearray()}
    status_raw = bytearray()
    total_output = 0
    timed_out = False
    limit = None
    exit_code, signal_no = None, None
    peak_processes = 0
    open_fds = {out_r, err_r, st_r}
    while True:
        if exit_code is None and signal_no is None:
            try:
                wpid, wstatus = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # already reaped while killing after a limit
                wpid, wstatus = pid, signal.SIGKILL
            if wpid == pid:
                if os.WIFEXITED(wstatus):
                    exit_code = os.WEXITSTATUS(wstatus)
                else:
                    signal_no = os.WTERMSIG(wstatus)
                # The code is done: anything it left behind (sleepers, daemons) dies now, so the
                # pipes reach EOF and nothing survives into the next job.
                kill_everything_else()
        reaped = exit_code is not None or signal_no is not None
        if not open_fds and reaped:
            break
        now = time.monotonic()
        if exit_code is None and signal_no is None:
            if now >= deadline:
                timed_out = True
                kill_everything_else()
                continue
            count = count_processes() - 2  # minus PID 1 and this supervisor
            peak_processes = max(peak_processes, count)
            if count > limits["max_processes"]:
                limit = "process limit %d exceeded" % limits["max_processes"]
                kill_everything_else()
                continue
        tick = max(0.0, min(0.01, deadline - now)) if not reaped else 0.01
        if not open_fds:  # the code closed its pipes but is still running
            time.sleep(tick)
            continue
        ready, _, _ = select.select(list(open_fds), [], [], tick)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
                os.close(fd)
                continue
            if fd == st_r:
                if len(status_raw) < 4096:
                    status_raw += chunk[:4096 - len(status_raw)]
                continue
            total_output += len(chunk)
            buf = bufs[fd]
            room = cap - len(bufs[out_r]) - len(bufs[err_r])
            if room > 0:
                buf += chunk[:room]
            if total_output > cap and limit is None and exit_code is None and signal_no is None:
                limit = "output limit of %d bytes exceeded (stdout+stderr)" % cap
                kill_everything_else()
    elapsed_ms = (time.monotonic() - start) * 1000.0
    try:
        status = json.loads(status_raw.decode()) if status_raw else {}
        if not isinstance(status, dict):
            status = {}
    except ValueError:
        status = {}
    notes = []
    images = collect_images(job_dir, inputs, limits, notes)
    result = {
        "exit_code": exit_code,
        "signal": signal_no,
        "timed_out": timed_out,
        "limit": limit,
        "status": status,
        "elapsed_ms": elapsed_ms,
        "peak_processes": peak_processes,
        "output_total": total_output,
        "notes": notes,
        "stdout_size": len(bufs[out_r]),
        "stderr_size": len(bufs[err_r]),
        "images": [{k: v for k, v in im.items() if k != "data"} for im in images],
    }
    head = json.dumps(result).encode()
    body = b"".join([struct.pack("<I", len(head)), head, bytes(bufs[out_r]), bytes(bufs[err_r])]
                    + [im["data"] for im in images])
    write_all(1, b"RES %d\n" % len(body))
    write_all(1, body)
    os._exit(0)


def wipe(path):
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        for root, dirs, files in os.walk(path, topdown=False, followlinks=False):
            for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                os.unlink(os.path.join(root, name))
            for name in dirs:
                full = os.path.join(root, name)
                if not os.path.islink(full):
                    os.rmdir(full)
        os.rmdir(path)
    else:
        os.unlink(path)


def require_seccomp():
    """The host hands bwrap a seccomp filter (--seccomp) that every job inherits from this
    server; a server that is not under it must not serve (e.g. a bwrap that ignored it)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Seccomp:"):
                mode = line.split(":", 1)[1].strip()
                if mode == "2":
                    return
                break
        else:
            mode = "?"
    raise SystemExit("sandbox worker: the seccomp filter is not in force (Seccomp: %s); "
                     "refusing to serve" % mode)


def serve():
    require_seccomp()
    # PID 1 ignores signals it has no handler for; drop Python's SIGINT handler so a job cannot
    # interrupt the server. Non-dumpable: same-uid job processes cannot ptrace the server or a
    # supervisor, nor read their memory through /proc (inherited over fork).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_dumpable = 4
    if libc.prctl(pr_set_dumpable, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
    warm_up()
    info = {
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "cv2": cv2.__version__,
        "matplotlib": matplotlib.__version__,
        "pid": os.getpid(),
    }
    for root in SCRATCH_ROOTS:  # e.g. matplotlib's cache from the imports: jobs start clean
        for name in os.listdir(root):
            wipe(os.path.join(root, name))
    write_all(1, b"READY " + json.dumps(info).encode() + b"\n")
    while True:
        # The next job's supervisor (and its runner) are forked before the job arrives, so a
        # job's latency does not include the two forks of this big process.
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                supervise()
            except BaseException as e:  # noqa: BLE001
                try:
                    os.write(2, ("sandbox supervisor failed: %r\n" % (e,)).encode())
                except OSError:
                    pass
            os._exit(code)
        while True:
            wpid, status = os.waitpid(-1, 0)  # also reaps orphans re-parented to PID 1
            if wpid == pid:
                break
        kill_everything_else()
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3:
            return  # the host closed the channel
        # Nothing a job wrote may be seen by the next one: the job dirs and the scratch tmpfs go.
        for root in SCRATCH_ROOTS:
            for name in os.listdir(root):
                wipe(os.path.join(root, name))
        write_all(1, b"DONE\n")


if __name__ == "__main__":
    serve()
