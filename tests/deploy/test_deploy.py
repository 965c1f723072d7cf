"""Checks deploy/ without a cluster or a container engine.

What is checked: the Kubernetes manifests against the fields the batch/v1 Job, v1 ConfigMap and
v1 PersistentVolumeClaim schemas require and against each other (volumes, claims, config keys,
the Secret that holds the API key), the Job's command line against the built CLI (every flag it
uses exists, and the command really runs a two-shard batch on the sample station with the mounts
mapped onto temporary folders), the container's runtime packages against the libraries the built
binary links, and the systemd unit against README. What is not: applying to a real cluster and
building the image (neither a Kubernetes API server nor a container daemon exists here).
"""
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"


def cli():
    path = os.environ.get("ROILENS_CLI") or shutil.which("roilens")
    assert path, "set ROILENS_CLI to the built roilens CLI (ctest does)"
    return path


def documents():
    docs = []
    for f in sorted(K8S.glob("*.yaml")):
        for d in yaml.safe_load_all(f.read_text()):
            if d is not None:
                docs.append((f.name, d))
    return docs


def by_kind(kind):
    return {d["metadata"]["name"]: d for _, d in documents() if d["kind"] == kind}


def jobs():
    return by_kind("Job")


def pod_spec(job):
    return job["spec"]["template"]["spec"]


# --- schema: the fields each object kind requires, with their types ----------------------------

API_VERSIONS = {"Job": "batch/v1", "ConfigMap": "v1", "PersistentVolumeClaim": "v1"}
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label (Job names: <= 63)


def test_every_document_has_a_known_kind_api_version_and_a_valid_name():
    docs = documents()
    assert {d["kind"] for _, d in docs} == set(API_VERSIONS)
    for f, d in docs:
        assert d["apiVersion"] == API_VERSIONS[d["kind"]], f
        name = d["metadata"]["name"]
        assert NAME.match(name) and len(name) <= 63, f"{f}: metadata.name {name!r}"


def test_jobs_have_the_required_fields_with_the_right_types():
    for name, job in jobs().items():
        spec = job["spec"]
        for key in ("backoffLimit", "ttlSecondsAfterFinished"):
            assert isinstance(spec.get(key, 0), int) and spec.get(key, 0) >= 0, (name, key)
        pod = pod_spec(job)
        assert pod["restartPolicy"] in ("Never", "OnFailure"), name  # Always is refused for Jobs
        assert pod["containers"], name
        for c in pod["containers"]:
            assert NAME.match(c["name"]) and isinstance(c["image"], str) and c["image"], name
            assert all(isinstance(a, str) for a in c["args"]), (name, "args must be strings")
            res = c["resources"]
            assert res["requests"]["cpu"] and res["requests"]["memory"], name
            assert res["limits"]["memory"], name
            for e in c.get("env", []):
                assert isinstance(e["name"], str) and ("value" in e) != ("valueFrom" in e), e
                if "value" in e:
                    assert isinstance(e["value"], str), f"{name}: env {e['name']} must be a string"


def test_the_batch_job_is_indexed_and_tells_roilens_its_shard_count():
    job = jobs()["roilens-batch"]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert isinstance(spec["completions"], int) and spec["completions"] >= 1
    assert 1 <= spec["parallelism"] <= spec["completions"]
    (container,) = pod_spec(job)["containers"]
    env = {e["name"]: e for e in container["env"]}
    # Kubernetes sets JOB_COMPLETION_INDEX itself; the count is ours to pass and must agree.
    assert "JOB_COMPLETION_INDEX" not in env
    assert env["JOB_COMPLETIONS"]["value"] == str(spec["completions"])
    assert "--resume" in container["args"], "a replaced pod must continue its shard"


def test_volumes_claims_and_config_keys_refer_to_objects_that_exist():
    claims = by_kind("PersistentVolumeClaim")
    config_maps = by_kind("ConfigMap")
    for claim in claims.values():
        assert claim["spec"]["accessModes"] and claim["spec"]["resources"]["requests"]["storage"]
    assert "ReadWriteMany" in claims["roilens-out"]["spec"]["accessModes"], \
        "shards on different nodes write the same output root"
    for name, job in jobs().items():
        pod = pod_spec(job)
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {}
        for c in pod["containers"]:
            for m in c["volumeMounts"]:
                assert m["name"] in volumes, f"{name}: mount {m['name']} has no volume"
                mounts[m["mountPath"]] = volumes[m["name"]]
        for v in volumes.values():
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims, (name, v)
            if "configMap" in v:
                assert v["configMap"]["name"] in config_maps, (name, v)
        # Every absolute path in the arguments lies under a mount, and files under a ConfigMap
        # mount are keys of that ConfigMap.
        for c in pod["containers"]:
            for arg in c["args"]:
                if not arg.startswith("/"):
                    continue
                root = max((p for p in mounts if arg.startswith(p + "/")), key=len, default=None)
                assert root, f"{name}: {arg} is not under a mounted volume"
                if "configMap" in mounts[root]:
                    key = arg[len(root) + 1:]
                    assert key in config_maps[mounts[root]["configMap"]["name"]]["data"], arg


def test_the_api_key_comes_from_a_secret_and_matches_the_config():
    batch = jobs()["roilens-batch"]
    (container,) = pod_spec(batch)["containers"]
    env = {e["name"]: e for e in container["env"]}
    config = json.loads(by_kind("ConfigMap")["roilens-batch"]["data"]["station.json"])
    key_env = config["backend"].get("api_key_env", "GEMINI_API_KEY")
    assert env[key_env]["valueFrom"]["secretKeyRef"]["name"]
    for _, d in documents():
        text = yaml.safe_dump(d)
        assert not re.search(r"AIza[0-9A-Za-z_-]{20,}", text), "an API key is written in a manifest"
    for job in jobs().values():
        for c in pod_spec(job)["containers"]:
            for e in c.get("env", []):
                assert not ("KEY" in e["name"] and "value" in e), f"{e['name']} set as plain text"


# --- the Job's command line against the built CLI --------------------------------------------


def flags_of(args):
    return [a for a in args if a.startswith("--")]


def help_text(subcommand):
    out = subprocess.run([cli(), subcommand, "--help"], check=True, capture_output=True, text=True)
    return out.stdout


@pytest.mark.parametrize("job_name", ["roilens-batch", "roilens-merge"])
def test_every_flag_the_jobs_use_exists_in_the_cli(job_name):
    (container,) = pod_spec(jobs()[job_name])["containers"]
    args = container["args"]
    commands = subprocess.run([cli(), "--help"], check=True, capture_output=True, text=True)
    assert re.search(r"^\s+" + args[0] + r"\s", commands.stdout, re.M), f"no roilens {args[0]}"
    usage = help_text(args[0])
    for flag in flags_of(args):
        assert re.search(r"(^|[\s,])" + re.escape(flag) + r"\b", usage), \
            f"{job_name}: roilens {args[0]} has no {flag}"


def mapped(args, mounts):
    """The arguments with each /MOUNT/... path moved under the folder standing in for MOUNT."""
    result = []
    for arg in args:
        top = arg.split("/")[1] if arg.startswith("/") else None
        result.append(mounts[top] + arg[len(top) + 1:] if top in mounts else arg)
    return result


def test_the_jobs_commands_run_a_two_shard_batch_and_merge_it(tmp_path):
    """Both shards of the Indexed Job and the merge Job, as the pods would run them, with the
    mounts mapped onto folders here, the hosted endpoint swapped for the embedded backend and the
    inputs swapped for two short sample videos."""
    station = tmp_path / "station"
    subprocess.run([cli(), "samples", str(station), "--frames", "4"], check=True,
                   stdout=subprocess.DEVNULL)
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    config = json.loads(by_kind("ConfigMap")["roilens-batch"]["data"]["station.json"])
    config["backend"]["endpoint"] = "local"
    (config_dir / "station.json").write_text(json.dumps(config))
    videos = []
    for name in ("a", "b"):
        shutil.copy(station / "station.mp4", tmp_path / f"{name}.mp4")
        videos.append(str(tmp_path / f"{name}.mp4"))
    (config_dir / "inputs.txt").write_text("# test inputs\n" + "\n".join(videos) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    mounts = {"config": str(config_dir), "out": str(out), "data": str(tmp_path)}

    batch = pod_spec(jobs()["roilens-batch"])["containers"][0]
    for index in range(2):
        env = dict(os.environ, JOB_COMPLETION_INDEX=str(index), JOB_COMPLETIONS="2")
        env.pop("GEMINI_API_KEY", None)
        run = subprocess.run([cli(), *mapped(batch["args"], mounts), "--coder", "echo"],
                             env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    merge = pod_spec(jobs()["roilens-merge"])["containers"][0]
    run = subprocess.run([cli(), *mapped(merge["args"], mounts)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    root = pathlib.Path(mapped([batch["args"][batch["args"].index("--out") + 1]], mounts)[0])
    summary = json.loads((root / "summary.json").read_text())
    assert json.dumps(summary).count("a.mp4") >= 1 and json.dumps(summary).count("b.mp4") >= 1
    assert (root / "report.html").is_file()


# --- the container's runtime packages against the built binary ------------------------------

BASE = {"libc6", "libstdc++6", "libgcc-s1"}  # in every Debian image


def runtime_packages():
    text = (DEPLOY / "container" / "Dockerfile").read_text()
    runtime = text.split("FROM ")[-1]  # the last stage
    install = re.search(r"apt-get install[^\n]*\\\n(.*?)&&", runtime, re.S).group(1)
    return set(re.findall(r"[a-z0-9][a-z0-9.+-]+", install.replace("\\", " "))) - {"rm"}


def test_the_runtime_image_installs_every_library_the_binary_links():
    if shutil.which("dpkg") is None or shutil.which("objdump") is None:
        pytest.skip("needs dpkg and objdump (a Debian machine)")
    needed = re.findall(r"NEEDED\s+(\S+)",
                        subprocess.run(["objdump", "-p", cli()], check=True, capture_output=True,
                                       text=True).stdout)
    ldd = subprocess.run(["ldd", cli()], check=True, capture_output=True, text=True).stdout
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    packages = runtime_packages()
    missing = []
    for lib in needed:
        if lib not in paths:  # the dynamic loader itself (libc6)
            continue
        real = os.path.realpath(paths[lib])
        owner = None
        for candidate in (real, paths[lib], "/usr" + paths[lib]):
            q = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if q.returncode == 0:
                owner = q.stdout.split(":")[0]
                break
        assert owner, f"no Debian package owns {lib}"
        if owner not in packages and owner not in BASE:
            missing.append(f"{lib} ({owner})")
    assert not missing, "runtime stage lacks: " + ", ".join(missing)
    for tool in ("bubblewrap", "python3", "python3-numpy", "python3-opencv"):
        assert tool in packages, f"the embedded backend's sandbox needs {tool}"


def test_the_systemd_unit_is_the_one_readme_shows():
    readme = (ROOT / "README.md").read_text()
    unit = (DEPLOY / "systemd" / "roilens-line3.service").read_text()
    assert "```ini\n" + unit + "```" in readme
