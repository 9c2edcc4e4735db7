"""Files and streams that never end, never open, or never get read: bounded, never a hang.

A spec file or a data file may be a symbolic link to ``/dev/zero``, a FIFO, or an endless stream on
standard input; an output file may be a FIFO that nobody reads.  Each case runs ``symmle`` as a user
runs it, in a subprocess with a time-out (a hang fails the test instead of stalling the suite) and,
where memory is at stake, a limit on its address space (``RLIMIT_AS``), so reading without a bound
fails the test as ``out of memory`` instead of filling the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from symmle.base.errors import SpecError

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs and devices")

#: Address-space limit of the child: symmle with SymPy, NumPy and SciPy loaded peaks near 350 MB.
LIMIT = 1 << 30
TIMEOUT = 120
EXPO = ["exponential"]


# `python -m symmle ARGS` with its address space limited first (no preexec_fn: pytest may run threads)
LAUNCH = f"""
import resource, runpy, sys
resource.setrlimit(resource.RLIMIT_AS, ({LIMIT}, {LIMIT}))
sys.argv = ["symmle", *sys.argv[1:]]
runpy.run_module("symmle", run_name="__main__", alter_sys=True)
"""
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")


def command(args: list[str]) -> list[str]:
    return [sys.executable, "-c", LAUNCH, *args]


def symmle(args: list[str], stdin=None) -> subprocess.CompletedProcess:
    """``symmle ARGS`` with bounded memory and time; ``stdin`` is bytes, an open file or None."""
    kwargs = {"input": stdin} if isinstance(stdin, bytes) else {"stdin": stdin or subprocess.DEVNULL}
    return subprocess.run(command(args), capture_output=True, timeout=TIMEOUT, env=ENV, **kwargs)


def one_line(proc: subprocess.CompletedProcess, code: int, *words: str) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == code, (proc.returncode, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("symmle: error: "), err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


# --- spec files --------------------------------------------------------------------------------------------


def test_spec_symlinked_to_dev_zero(tmp_path):
    """A spec linked to /dev/zero grew to 3.9 GB: the 100,000-character limit was checked after reading."""
    (tmp_path / "zero.toml").symlink_to("/dev/zero")
    proc = symmle(["derive", str(tmp_path / "zero.toml")])
    one_line(proc, 2, "zero.toml", "character device", "not a regular file")


def test_spec_that_is_a_fifo(tmp_path):
    """Opening a FIFO spec for reading waited forever for a writer."""
    os.mkfifo(tmp_path / "model.toml")
    one_line(symmle(["derive", str(tmp_path / "model.toml")]), 2, "model.toml", "FIFO", "not a regular file")


def test_huge_spec_is_refused_before_it_is_read(tmp_path):
    """A (sparse) 8 GB spec file was read whole before its size was checked."""
    spec = tmp_path / "big.toml"
    with open(spec, "wb") as fh:
        fh.truncate(8 << 30)
    one_line(symmle(["derive", str(spec)]), 2, "big.toml", "too large", "100,000 bytes")


def test_binary_spec_names_the_problem(tmp_path):
    """A binary spec was an AttributeError ('UnicodeDecodeError' object has no attribute 'strerror')."""
    spec = tmp_path / "model.toml"
    spec.write_bytes(b"name = 'x'\n\xff\xfe\x00binary")
    one_line(symmle(["derive", str(spec)]), 2, "model.toml", "not UTF-8", "line 2")


def test_spec_with_deeply_nested_inline_tables(tmp_path):
    """400 nested inline tables parse, then overflowed the stack downstream: exit 70."""
    spec = tmp_path / "deep.toml"
    spec.write_text("a = " + "{b = " * 400 + "1" + "}" * 400 + "\n")
    one_line(symmle(["derive", str(spec)]), 2, "deep.toml", "nested too deeply")


def test_read_bounded_reads_what_fits(tmp_path):
    from symmle.base.files import read_bounded

    path = tmp_path / "x.toml"
    path.write_bytes(b"a = 1\n")
    assert read_bounded(path, 6, SpecError, "spec file x.toml") == b"a = 1\n"
    with pytest.raises(SpecError, match="too large"):
        read_bounded(path, 5, SpecError, "spec file x.toml")


# --- data ------------------------------------------------------------------------------------------------


def test_dev_zero_on_standard_input():
    """`symmle fit exponential - < /dev/zero` grew to 8.4 GB: the NUL byte is refused at once."""
    with open("/dev/zero", "rb") as zero:
        one_line(symmle(["fit", *EXPO, "-"], stdin=zero), 3, "standard input", "line 1", "NUL byte")


def test_endless_line_on_standard_input():
    """An endless line without a NUL byte (`yes 1 | tr -d '\\n'`) was accumulated until memory ran out."""
    proc = subprocess.Popen(
        command(["fit", *EXPO, "-"]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )

    def feed() -> None:
        try:
            while True:
                proc.stdin.write(b"1" * 65536)
        except (OSError, ValueError):  # symmle stopped reading: a broken pipe
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        proc.wait(timeout=TIMEOUT)
        err = proc.stderr.read()
    finally:
        proc.kill()
        writer.join(TIMEOUT)
    one_line(
        subprocess.CompletedProcess(proc.args, proc.returncode, b"", err),
        3,
        "standard input",
        "line 1",
        "longer than",
    )


@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link", "directory"])
def test_data_file_that_is_not_a_regular_file(tmp_path, kind):
    """A FIFO, a device or a directory given as DATA was reported as missing (and .npy links were opened)."""
    path = tmp_path / "x.txt"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero-link":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    one_line(symmle(["fit", *EXPO, str(path)]), 3, "x.txt", "not a regular file", "give -")


# --- output files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["derive", *EXPO, "-o"],
        ["compile", *EXPO, "-o"],
        [
            "check",
            *EXPO,
            "--true",
            "lam=2",
            "--n",
            "40",
            "--reps",
            "20",
            "--agree",
            "2",
            "--seed",
            "1",
            "--plot",
        ],
    ],
    ids=["derive", "compile", "check-plot"],
)
def test_output_to_a_fifo(tmp_path, command):
    """-o to a FIFO nobody reads hung (check --plot said 'cannot write ...: None'); with a reader it works."""
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    one_line(symmle([*command, str(fifo)]), 2, str(fifo), "no process is reading")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        proc = symmle([*command, str(fifo)])
    finally:
        if reader.is_alive():  # symmle failed before opening the FIFO: release the reader
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(TIMEOUT)
    assert proc.returncode in (0, 6), proc.stderr.decode()  # check exits 6 if a verdict fails
    assert got and len(got[0]) > 100


def test_write_output_refuses_what_cannot_take_a_file(tmp_path):
    from symmle.base.files import write_output

    with pytest.raises(SpecError, match="is a directory"):
        write_output(tmp_path, "text")
    os.mkfifo(tmp_path / "f")
    with pytest.raises(SpecError, match="no process is reading"):
        write_output(tmp_path / "f", "text")
    if Path("/dev/full").exists():
        with pytest.raises(SpecError, match="cannot write /dev/full: No space left"):
            write_output("/dev/full", b"x" * 10)
    write_output(tmp_path / "ok.txt", "é\n")
    assert (tmp_path / "ok.txt").read_bytes() == "é\n".encode()
