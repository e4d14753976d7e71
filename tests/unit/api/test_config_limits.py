"""``xpushare config validate`` on hostile files: every one gets a message and exit 1, never a traceback.

From a security review: a few hundred bytes of YAML aliases took seconds and a gigabyte, and list keys,
huge integers, a list as ``kind`` or a self-referencing alias crashed the command.
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.yamlfile import MAX_DEPTH, MAX_VALUES
from dra_driver.cli import main

PROJECT_ROOT = Path(__file__).resolve().parents[3]
HEADER = "apiVersion: xpushare.io/v1alpha1\nkind: SharingConfig\n"
PARAMS = "spec.config[0].opaque.parameters"


def device_class(parameters: str) -> str:
    """A DeviceClass whose one xpushare.io config has ``parameters`` (a flow mapping's inside)."""
    return ("apiVersion: resource.k8s.io/v1\nkind: DeviceClass\nmetadata: {name: c}\nspec:\n  config:\n"
            "  - opaque:\n      driver: xpushare.io\n      parameters: {apiVersion: xpushare.io/v1alpha1, "
            f"kind: SharingConfig{', ' + parameters if parameters else ''}}}\n")


def validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str) -> tuple[int, str, str]:
    path = tmp_path / "config.yaml"
    path.write_text(content, encoding="utf-8")
    code = main(["config", "validate", str(path)])
    out, err = capsys.readouterr()
    return code, out, err.replace(str(path), "FILE")


@pytest.mark.parametrize(("content", "expected"), [
    pytest.param("apiVersion: xpushare.io/v1alpha1\nkind: [DeviceClass]\n",
                 'kind: must be "SharingConfig" (got an array)', id="kind a list"),
    pytest.param("apiVersion: xpushare.io/v1alpha1\nkind: {a: 1}\n",
                 'kind: must be "SharingConfig" (got an object)', id="kind a map"),
    pytest.param(HEADER + "? [a, b]\n: 1\n", "parameters: field names must be strings (got an array)",
                 id="list as key"),
    pytest.param(HEADER + "? {a: 1}\n: 1\n", "parameters: field names must be strings (got an object)",
                 id="map as key"),
    pytest.param(HEADER + "7: x\n", "parameters: field names must be strings (got 7)", id="integer key"),
    pytest.param(HEADER + "yes: x\n", "parameters: field names must be strings (got true)",
                 id="YAML 1.1 boolean key"),
    pytest.param(HEADER + "!!binary aGk=: x\n", "parameters: field names must be strings (got bytes)",
                 id="binary key"),
    pytest.param(device_class("1.5: x"), f"{PARAMS}: field names must be strings (got 1.5)",
                 id="float key inside a class"),
    pytest.param("apiVersion: resource.k8s.io/v1\nkind: DeviceClass\nspec: {null: 1, config: []}\n",
                 "spec: field names must be strings (got null)", id="null key outside parameters"),
    pytest.param(HEADER + "memoryMiB: " + "9" * 5000 + "\n",
                 "memoryMiB: must be between 1 and 8796093022207 (got a 5000-digit number)",
                 id="5000-digit integer"),
    pytest.param(HEADER + "corePercent: -" + "1" * 4301 + "\n",
                 "corePercent: must be between 1 and 100 (got a negative 4301-digit number)",
                 id="negative integer past Python's limit"),
    pytest.param(HEADER + "memoryMiB: 0x" + "f" * 5000 + "\n",
                 "memoryMiB: must be between 1 and 8796093022207 (got a 5000-digit number)",
                 id="long hexadecimal integer"),
    pytest.param(HEADER + "memoryMiB: 1" + ":1" * 200_000 + "\n",
                 "memoryMiB: must be between 1 and 8796093022207 (got a 200001-digit number)",
                 id="long sexagesimal integer"),
    pytest.param('{"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig", "corePercent": '
                 + "1" * 4400 + "}", "corePercent: must be between 1 and 100 (got a 4400-digit number)",
                 id="huge integer in a JSON file"),
    pytest.param(HEADER + "priority: 2001-02-30\n",
                 'priority: must be one of high, normal, low (got "2001-02-30")', id="impossible date"),
    pytest.param(HEADER + "priority: high\npriority: low\n", "priority: field given more than once",
                 id="duplicate field"),
    pytest.param(device_class("priority: high, priority: high"),
                 f"{PARAMS}.priority: field given more than once", id="duplicate field inside a class"),
    pytest.param("apiVersion: resource.k8s.io/v1\nkind: DeviceClass\nspec: {config: []}\n"
                 "spec: {config: []}\n", "spec: field given more than once",
                 id="duplicate field outside parameters"),
    pytest.param(HEADER + "priority: high\n'priority': low\n", "priority: field given more than once",
                 id="duplicate spelled differently"),
])
def test_hostile_document_gets_one_line_naming_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    code, out, err = validate(tmp_path, capsys, content)
    assert (code, err) == (1, "")
    assert out.splitlines() == [expected]


@pytest.mark.parametrize(("content", "expected"), [
    pytest.param("a: &a [1, *a]\n", "FILE is refused: alias *a at line 1, column 11 sits inside the value it "
                 "refers to, which would never end and has no JSON form", id="self-referencing alias"),
    pytest.param("a: &a {b: *a}\n", "FILE is refused: alias *a at line 1, column 11",
                 id="self-referencing map"),
    pytest.param("a: !!int abc\n", "FILE is neither valid YAML nor JSON at line 1, column 4: "
                 'cannot read "abc" as tag:yaml.org,2002:int', id="tag the value cannot hold"),
    pytest.param("é: b\nc: \x00\n", "FILE is neither valid YAML nor JSON at line 2, column 4: control "
                 "characters are not allowed (#x0000)", id="control character"),
    pytest.param("a: !!bool maybe\n", "FILE is neither valid YAML nor JSON at line 1, column 4: cannot read",
                 id="bool tag on a word"),
    # The document's mapping is the first level.
    pytest.param("a: " + "[" * 100 + "]" * 100 + "\n", "FILE is nested too deeply to be a config: more than "
                 f"{MAX_DEPTH} levels at line 1, column {MAX_DEPTH + 3}", id="nested past the bound"),
    pytest.param("[" + ", ".join(["1"] * MAX_VALUES) + "]\n", f"FILE holds more than {MAX_VALUES} values",
                 id="too many values"),
    pytest.param("---\n" * (MAX_VALUES + 1), f"FILE holds more than {MAX_VALUES} values",
                 id="too many documents"),
])
def test_file_refused_before_it_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    code, out, err = validate(tmp_path, capsys, content)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {expected}")
    assert err.count("\n") == 1


def test_aliases_that_repeat_rather_than_multiply_are_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claim = ("apiVersion: resource.k8s.io/v1\nkind: ResourceClaim\nspec:\n  devices:\n    config:\n"
             "    - opaque: &npu\n        driver: xpushare.io\n        parameters: &fixed\n"
             "          apiVersion: xpushare.io/v1alpha1\n          kind: SharingConfig\n"
             "          computePolicy: fixed\n    - opaque: *npu\n"
             "    - opaque:\n        driver: xpushare.io\n"
             "        parameters: {<<: *fixed, computePolicy: guaranteed, corePercent: 30}\n")
    assert validate(tmp_path, capsys, claim)[:2] == (0, "valid\n")


def test_a_key_given_once_beside_a_merge_is_no_duplicate_but_twice_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = "base: &b {priority: high}\n"
    merged = HEADER + base.replace("base", "x-base") + "<<: *b\npriority: low\n"
    assert validate(tmp_path, capsys, merged)[1] == (
        "x-base: unknown field; allowed fields: apiVersion, kind, priority, computePolicy, memoryMiB, "
        "corePercent\n")
    code, out, _ = validate(tmp_path, capsys, merged + "priority: normal\n")
    assert code == 1
    assert "priority: field given more than once" in out.splitlines()


def bomb(levels: int, width: int = 9) -> str:
    """The "billion laughs": each anchor is a list of ``width`` aliases to the one before."""
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


MEMORY_LIMIT = 300 * 1024 * 1024
# The peak is VmHWM of this process's own memory map: ru_maxrss survives execve, so it would report the
# forking test runner's size instead.
CHILD = """\
import resource, sys
from dra_driver.cli import main
code = main(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_SELF)
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(f"{usage.ru_utime + usage.ru_stime} {peak}", file=sys.stderr)
sys.exit(code)
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.parametrize("levels", [8, 9, 10])
def test_alias_bombs_are_refused_in_under_a_second_and_100_mb(tmp_path: Path, levels: int) -> None:
    """Measured in a fresh process under a 300 MB address-space limit: the CPU time of the whole process
    (interpreter start included; wall time would measure the machine's load) and its peak memory."""
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(levels), encoding="utf-8")
    assert path.stat().st_size < 600
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", CHILD, "config", "validate", str(path)],
                            capture_output=True, text=True, timeout=10, cwd=PROJECT_ROOT, check=False,
                            preexec_fn=_limit_memory)
    wall = time.monotonic() - started
    *lines, usage = result.stderr.splitlines()
    cpu_seconds, peak_kib = float(usage.split()[0]), int(usage.split()[1])
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert lines == [f"error: {path} would hold more than {MAX_VALUES} values once alias *a4 at line 6, "
                     "column 10 is expanded: anchors and aliases may repeat parts of a config file, "
                     "not multiply it"]
    assert cpu_seconds < 1.0, f"{cpu_seconds:.2f} s of CPU ({wall:.2f} s wall)"
    assert peak_kib < 100 * 1024, f"{peak_kib} KiB peak"


# -- generated hostile documents ---------------------------------------------------------------------

BAD_VALUES = [
    "[1, 2]", "{a: 1}", "9" * 4400, "-" + "7" * 5000, "null", "~", "1.5", ".nan", "-.inf", "true",
    "!!binary aGk=", "2001-02-30", "!!set {a}", "[]", "{}", '"50"', "0x" + "f" * 200, "!!omap [a: 1]",
]
"""Values no field accepts."""
BAD_KEYS = ["[a]", "{b: 1}", "7", "true", "null", "1.5", "!!binary aGk=", "? [1, 2]"]
FIELDS = ["priority", "computePolicy", "memoryMiB", "corePercent"]


def _key(key: str) -> str:
    return key if key.startswith("?") else f"? {key}"


def _params(rng: random.Random) -> list[str]:
    """Flow-mapping entries of a SharingConfig carrying one or more defects, each invalid on its own."""
    entries = ["apiVersion: xpushare.io/v1alpha1", "kind: SharingConfig"]
    for _ in range(rng.randint(1, 3)):
        defect = rng.randrange(4)
        if defect == 0:
            entries.append(f"{rng.choice(FIELDS)}: {rng.choice(BAD_VALUES)}")
        elif defect == 1:
            entries.append(f"{_key(rng.choice(BAD_KEYS))} : {rng.choice(['x', '1', '[]'])}")
        elif defect == 2:
            field = rng.choice(FIELDS[:2])
            entries += [f"{field}: high", f"{field}: low"]
        else:
            entries[1] = f"kind: {rng.choice([*BAD_VALUES, 'Pod', 'DeviceClass'])}"
    rng.shuffle(entries)
    return entries


def _document(rng: random.Random) -> str:  # noqa: PLR0911 - one return per shape
    shape = rng.randrange(9)
    params = "{" + ", ".join(_params(rng)) + "}"
    if shape == 0:
        return params + "\n"
    if shape == 1:
        kind = rng.choice(["DeviceClass", "ResourceClaim"])
        path = "spec:\n  config:\n" if kind == "DeviceClass" else "spec:\n  devices:\n    config:\n"
        return (f"apiVersion: resource.k8s.io/v1\nkind: {kind}\nmetadata: {{name: n}}\n{path}"
                f"  - opaque: {{driver: xpushare.io, parameters: {params}}}\n")
    if shape == 2:
        return bomb(rng.randint(6, 10), rng.randint(6, 12))
    if shape == 3:
        return rng.choice(["a: &a [*a]\n", "a: &a {b: [1, *a]}\n", "&a [1, {c: *a}]\n"])
    if shape == 4:
        text = _document(rng) if rng.random() < 0.5 else params
        return text[: rng.randrange(1, len(text))] + rng.choice(["[", "{", "'", '"', "\t- x\n  :", "*nope"])
    if shape == 5:
        depth = rng.randint(MAX_DEPTH + 1, 3000)
        return rng.choice(["[", "{a: ", "- "]) * depth + "\n"
    if shape == 6:
        return rng.choice(["x: !!int abc\n", "x: !!bool maybe\n", "x: !!float f\n", "x: !unknown 1\n",
                           "x: !!binary '%%'\n", "x: !!int ''\n", "x: !!timestamp nope\n"])
    if shape == 7:
        return json.dumps({"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig"})[:-1] + (
            rng.choice([', "priority": "high", "priority": "low"}', ', "memoryMiB": ' + "1" * 4400 + "}",
                        ', "corePercent": NaN}', ', "x": ' + "[" * 2000 + "]" * 2000 + "}"]))
    return "\n".join(["---\n" + _document(rng) for _ in range(rng.randint(2, 4))])


def generated_documents(count: int, seed: int = 20261204) -> list[str]:
    rng = random.Random(seed)  # noqa: S311 - reproducible on purpose, not a secret
    return [_document(rng) for _ in range(count)]


def test_generator_is_deterministic() -> None:
    assert generated_documents(30) == generated_documents(30)
    assert generated_documents(30) != generated_documents(30, seed=1)


def test_every_generated_hostile_document_gets_a_message_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = generated_documents(400)
    started = time.monotonic()
    slowest = 0.0
    for number, content in enumerate(documents):
        before = time.monotonic()
        code, out, err = validate(tmp_path, capsys, content)
        slowest = max(slowest, time.monotonic() - before)
        assert code == 1, (number, content[:300], out)
        assert "Traceback" not in err, (number, content[:300], err)
        assert out or err.startswith("error: FILE "), (number, content[:300])
        assert all(line.strip() for line in out.splitlines()), (number, out)
    assert slowest < 1.0, f"slowest document took {slowest:.2f} s"
    assert time.monotonic() - started < 60
