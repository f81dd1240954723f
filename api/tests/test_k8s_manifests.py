"""deploy/k8s, checked offline (no cluster): every standard object against the Kubernetes schema
of K8S_VERSION (kubernetes-validate, strict: unknown fields fail), the KEDA ScaledObject against
a shape check of our own, and what the service needs of them — the api's probes and replicas,
one beat, the Procfile's processes, one image, non-root, selectors that select, env references
that resolve, settings names that exist. Run on the files themselves and, when kubectl is
installed, on `kubectl kustomize deploy/k8s` (what `kubectl apply -k` sends)."""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from api.tests.servers import ROOT

K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.30"
NAME_LABEL = ("app.kubernetes.io/name", "task-delay-service")
COMPONENT = "app.kubernetes.io/component"
# In the directory, not in kustomization.yaml's resources: documentation to copy from.
EXAMPLES = {"secret.example.yaml", "worker-hpa.example.yaml"}
# Custom resources: kubernetes-validate has no schema for them (it only warns); shape-checked here.
CRD_GROUPS = {"keda.sh"}
# Settings new with the metrics/logging work: allowed whether .env.example lists them yet or not.
NEW_SETTINGS = {"METRICS_DIR", "WORKER_METRICS_PORT", "LOG_FORMAT", "METRICS_TOKEN"}
# Set by the manifests for the manifests' own use ($(VAR) expansion), not read by the service.
K8S_ONLY_VARIABLES = {"POD_IP"}
WORKLOAD_KINDS = {"Deployment", "Job"}
POD_IP = "10.0.0.7"  # the pod address the kubelet would give, for container_env()
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
POD_TMP = "/tmp"  # noqa: S108 - the pods' /tmp, an emptyDir (readOnlyRootFilesystem)


# --- loading ----------------------------------------------------------------------------------
def load_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@functools.cache
def kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


@functools.cache
def deployed_from_files() -> tuple[dict, ...]:
    """The objects of kustomization.yaml's resources, read with PyYAML."""
    return tuple(doc for name in kustomization()["resources"] for doc in load_documents(K8S / name))


@functools.cache
def rendered() -> tuple[dict, ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize deploy/k8s` not checked")
    result = subprocess.run(  # noqa: S603 - kubectl from PATH, our own directory
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc is not None)


@functools.cache
def secret_example() -> dict:
    (secret,) = load_documents(K8S / "secret.example.yaml")
    return secret


@functools.cache
def documented_settings() -> frozenset[str]:
    """Every NAME= of .env.example, commented-out examples (`# NAME=value`) included."""
    text = (ROOT / ".env.example").read_text()
    return frozenset(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))


@functools.cache
def procfile_processes() -> frozenset[str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return frozenset(
        line.split(":", 1)[0].strip() for line in lines if line.strip() and line[0] != "#"
    )


@pytest.fixture(params=["files", "kustomize"], scope="module")
def manifests(request) -> tuple[dict, ...]:
    return deployed_from_files() if request.param == "files" else rendered()


# --- helpers ----------------------------------------------------------------------------------
def of_kind(docs, kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def workload(docs, kind: str, component: str) -> dict:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["labels"][COMPONENT] == component]
    assert len(found) == 1, f"one {kind} of component {component}, found {len(found)}"
    return found[0]


def workloads(docs) -> list[dict]:
    return [doc for doc in docs if doc["kind"] in WORKLOAD_KINDS]


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def containers(docs) -> list[tuple[dict, dict]]:
    return [
        (obj, container)
        for obj in workloads(docs)
        for container in pod_spec(obj).get("initContainers", []) + pod_spec(obj)["containers"]
    ]


def match_labels(selector: dict) -> dict:
    assert set(selector) == {"matchLabels"}, f"only matchLabels selectors here: {selector}"
    return selector["matchLabels"]


def selects(selector_labels: dict, labels: dict) -> bool:
    return bool(selector_labels) and all(labels.get(k) == v for k, v in selector_labels.items())


def container_port(container: dict, port: int | str) -> int:
    """A probe's or Service's port (a number or a port name) as a declared containerPort."""
    declared = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if isinstance(port, str):
        assert port in declared, f"{container['name']}: no port named {port!r}"
        return declared[port]
    assert port in declared.values(), f"{container['name']}: port {port} not declared"
    return port


def config_map(docs) -> dict:
    (cm,) = of_kind(docs, "ConfigMap")
    return cm


def container_env(container: dict, docs) -> dict[str, str]:
    """The variables the kubelet would give the container (the ConfigMap of `docs`, the Secret
    of secret.example.yaml, the pod at POD_IP): envFrom first, then `env` in order, where a
    value's $(VAR) expands what is set so far. Missing references are another test's business."""
    config = config_map(docs)["data"]
    secret = secret_example()["stringData"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config if "configMapRef" in source else secret)
    for variable in container.get("env", []):
        name, ref = variable["name"], variable.get("valueFrom", {})
        if "fieldRef" in ref:
            assert ref["fieldRef"]["fieldPath"] == "status.podIP", name
            env[name] = POD_IP
        elif "configMapKeyRef" in ref and ref["configMapKeyRef"]["key"] in config:
            env[name] = config[ref["configMapKeyRef"]["key"]]
        elif "secretKeyRef" in ref and ref["secretKeyRef"]["key"] in secret:
            env[name] = secret[ref["secretKeyRef"]["key"]]
        elif "value" in variable:
            env[name] = VAR_REF.sub(lambda m: env.get(m[1], m[0]), variable["value"])
    return env


def api_version_group(doc: dict) -> str:
    return doc["apiVersion"].rpartition("/")[0]


# Values the OpenAPI schema leaves free strings but the API server restricts.
ENUMS = {
    "pathType": {"Exact", "Prefix", "ImplementationSpecific"},
    "imagePullPolicy": {"Always", "IfNotPresent", "Never"},
    "restartPolicy": {"Always", "OnFailure", "Never"},
    "protocol": {"TCP", "UDP", "SCTP"},
    "policyTypes": {"Ingress", "Egress"},
}


def enum_values(node, found=None) -> list[tuple[str, str]]:
    found = [] if found is None else found
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ENUMS:
                values = value if isinstance(value, list) else [value]
                found.extend((key, item) for item in values)
            else:
                enum_values(value, found)
    elif isinstance(node, list):
        for item in node:
            enum_values(item, found)
    return found


def validate_standard(doc: dict) -> None:
    """Strict schema validation; a kind the package has no schema for is a failure here (the
    command line only warns), so a misspelt kind or apiVersion cannot pass silently."""
    where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    for key, value in enum_values(doc):
        assert value in ENUMS[key], f"{where}: {key}: {value!r} is not one of {ENUMS[key]}"
    strategy = doc.get("spec", {}).get("strategy", {}).get("type", "RollingUpdate")
    assert strategy in {"RollingUpdate", "Recreate"}, f"{where}: strategy {strategy!r}"
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(item) for item in exc.path)
        pytest.fail(f"{where} does not validate against {K8S_VERSION}: {path}: {exc.message}")
    except kubernetes_validate.SchemaNotFoundError as exc:
        pytest.fail(f"{where}: {exc.message}")


# --- the files and the schema -----------------------------------------------------------------
def test_the_kustomization_lists_every_manifest_but_the_examples():
    resources = kustomization()["resources"]
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert len(resources) == len(set(resources))
    assert set(resources) == files - EXAMPLES
    assert "secret.example.yaml" not in resources  # real secrets never go through git
    assert not of_kind(deployed_from_files(), "Secret")


@pytest.mark.parametrize(
    "name", sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
)
def test_every_standard_object_validates_strictly(name):
    docs = load_documents(K8S / name)
    assert docs, f"{name} is empty"
    for doc in docs:
        if api_version_group(doc) not in CRD_GROUPS:
            validate_standard(doc)


def test_the_rendered_objects_validate_strictly():
    for doc in rendered():
        if api_version_group(doc) not in CRD_GROUPS:
            validate_standard(doc)
    assert {doc["kind"] for doc in rendered()} >= {
        "Deployment",
        "Job",
        "Service",
        "Ingress",
        "ConfigMap",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ScaledObject",
    }


def test_the_validator_rejects_broken_objects():
    """The checks above would fail on a broken manifest: strict mode, a wrong type, a bad kind."""
    api = copy.deepcopy(workload(deployed_from_files(), "Deployment", "api"))
    validate_standard(api)
    broken = copy.deepcopy(api)
    pod_spec(broken)["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = copy.deepcopy(api)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate({**api, "kind": "Deploymnet"}, K8S_VERSION, strict=True)


def test_every_object_is_labelled(manifests):
    for doc in manifests:
        labels = doc["metadata"].get("labels", {})
        assert labels.get(NAME_LABEL[0]) == NAME_LABEL[1], doc["metadata"]["name"]
        assert labels.get(COMPONENT), doc["metadata"]["name"]
    for obj in workloads(manifests):
        pod_labels = obj["spec"]["template"]["metadata"]["labels"]
        assert pod_labels[NAME_LABEL[0]] == NAME_LABEL[1]
        assert pod_labels[COMPONENT] == obj["metadata"]["labels"][COMPONENT]
        if obj["kind"] == "Deployment":
            assert pod_labels[COMPONENT] in {"api", "worker", "beat"}
            assert selects(match_labels(obj["spec"]["selector"]), pod_labels)


# --- the processes ----------------------------------------------------------------------------
def test_the_api_runs_two_probed_replicas(manifests):
    api = workload(manifests, "Deployment", "api")
    assert api["spec"]["replicas"] >= 2
    (container,) = pod_spec(api)["containers"]
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert readiness["httpGet"]["path"] == "/readyz"
    assert liveness["httpGet"]["path"] == "/healthz"
    for probe in (readiness, liveness, container.get("startupProbe")):
        if probe is not None:
            assert container_port(container, probe["httpGet"]["port"]) == 8000
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])


def test_the_api_answers_at_its_pod_ip(manifests):
    """The kubelet's probes and Prometheus call an api pod at its IP, a Host that Django answers
    with 400 unless it is in DJANGO_ALLOWED_HOSTS: the pod's IP must be."""
    api = workload(manifests, "Deployment", "api")
    (container,) = pod_spec(api)["containers"]
    allowed = container_env(container, manifests)["DJANGO_ALLOWED_HOSTS"].split(",")
    assert POD_IP in allowed
    assert set(config_map(manifests)["data"]["DJANGO_ALLOWED_HOSTS"].split(",")) <= set(allowed)
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[kind]["httpGet"]
        headers = {h["name"].lower(): h["value"] for h in get.get("httpHeaders", [])}
        assert headers.get("host", POD_IP) in allowed, kind
        assert get.get("host", POD_IP) == POD_IP, f"{kind}: the kubelet must call the pod itself"
    # gunicorn and the worker's metrics listener bind all interfaces (as the image does).
    assert config_map(manifests)["data"]["BIND_ADDRESS"] == "0.0.0.0"  # noqa: S104


def test_beat_is_a_single_recreated_replica(manifests):
    beat = workload(manifests, "Deployment", "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    for scaler in of_kind(manifests, "ScaledObject") + of_kind(
        manifests, "HorizontalPodAutoscaler"
    ):
        assert scaler["spec"]["scaleTargetRef"]["name"] != beat["metadata"]["name"]


def test_workers_shut_down_warm_and_are_autoscaled_once(manifests):
    worker = workload(manifests, "Deployment", "worker")
    data = config_map(manifests)["data"]
    task_seconds = float(data.get("DISPATCH_TASK_SECONDS", 30))
    assert pod_spec(worker)["terminationGracePeriodSeconds"] >= max(45, task_seconds + 15)
    # The autoscaler owns the replica count: `kubectl apply` must not reset it.
    assert "replicas" not in worker["spec"]
    (container,) = pod_spec(worker)["containers"]
    port = container_port(container, container["livenessProbe"]["tcpSocket"]["port"])
    assert port == int(data["WORKER_METRICS_PORT"]) == 9808
    scalers = [
        s
        for s in of_kind(manifests, "ScaledObject") + of_kind(manifests, "HorizontalPodAutoscaler")
        if s["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    ]
    assert len(scalers) == 1, "exactly one autoscaler on the workers"


def test_the_migrate_job_runs_once(manifests):
    job = workload(manifests, "Job", "migrate")
    assert job["metadata"]["name"] == "tds-migrate"  # the README's `kubectl wait job/tds-migrate`
    assert pod_spec(job)["restartPolicy"] in {"Never", "OnFailure"}
    assert job["spec"].get("parallelism", 1) == 1 and job["spec"].get("completions", 1) == 1
    assert "ttlSecondsAfterFinished" not in job["spec"]
    (container,) = pod_spec(job)["containers"]
    assert container["args"] == ["migrate"]


def test_every_container_runs_a_procfile_process_of_one_image(manifests):
    allowed = procfile_processes() | {"migrate"}
    assert {"web", "worker", "beat"} <= procfile_processes()
    images = set()
    for obj, container in containers(manifests):
        name = obj["metadata"]["name"]
        assert "command" not in container, f"{name}: the image's entrypoint.sh must run"
        assert len(container["args"]) == 1 and container["args"][0] in allowed, name
        images.add(container["image"])
    assert len(images) == 1, images
    (image,) = images
    assert image.rpartition(":")[0].endswith("task-delay-service")
    # Each process once: web, worker, beat and migrate.
    assert sorted(c["args"][0] for _, c in containers(manifests)) == sorted(
        ["web", "worker", "beat", "migrate"]
    )


def test_every_pod_is_non_root_and_locked_down(manifests):
    data = config_map(manifests)["data"]
    for obj in workloads(manifests):
        name = obj["metadata"]["name"]
        spec = pod_spec(obj)
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security.get("runAsUser", 10001) != 0, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec.get("automountServiceAccountToken") is False, name
        empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for container in spec.get("initContainers", []) + spec["containers"]:
            own = container["securityContext"]
            assert own["readOnlyRootFilesystem"] is True, name
            assert own["allowPrivilegeEscalation"] is False, name
            assert own["capabilities"]["drop"] == ["ALL"], name
            assert not own.get("privileged") and own.get("runAsUser", 10001) != 0, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name
            # The only writable places: DATA_DIR and /tmp (METRICS_DIR), each an emptyDir.
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            for path in {data["DATA_DIR"], data["METRICS_DIR"], POD_TMP}:
                assert mounts.get(path) in empty_dirs, f"{name}: {path} is not an emptyDir"


def test_the_pods_are_annotated_for_prometheus(manifests):
    for component in ("api", "worker"):
        obj = workload(manifests, "Deployment", component)
        annotations = obj["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        (container,) = pod_spec(obj)["containers"]
        container_port(container, int(annotations["prometheus.io/port"]))


# --- the objects around them ------------------------------------------------------------------
def test_the_service_selects_the_api_pods_and_the_ingress_the_service(manifests):
    api = workload(manifests, "Deployment", "api")
    (service,) = of_kind(manifests, "Service")
    selector = service["spec"]["selector"]
    for obj in workloads(manifests):
        labels = obj["spec"]["template"]["metadata"]["labels"]
        assert selects(selector, labels) == (obj is api), obj["metadata"]["name"]
    (container,) = pod_spec(api)["containers"]
    for port in service["spec"]["ports"]:
        assert container_port(container, port.get("targetPort", port["port"])) == 8000
    (ingress,) = of_kind(manifests, "Ingress")
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    if "defaultBackend" in ingress["spec"]:
        backends.append(ingress["spec"]["defaultBackend"]["service"])
    assert backends
    for backend in backends:
        assert backend["name"] == service["metadata"]["name"]
        port = backend["port"]
        if "name" in port:
            assert port["name"] in {p.get("name") for p in service["spec"]["ports"]}, port
        else:
            assert port["number"] in {p["port"] for p in service["spec"]["ports"]}, port
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    allowed = set(config_map(manifests)["data"]["DJANGO_ALLOWED_HOSTS"].split(","))
    assert hosts <= allowed, "the Ingress hosts must be in DJANGO_ALLOWED_HOSTS"


def test_every_disruption_budget_selects_a_deployment(manifests):
    budgets = of_kind(manifests, "PodDisruptionBudget")
    assert budgets
    deployments = of_kind(manifests, "Deployment")
    covered = []
    for budget in budgets:
        selector = match_labels(budget["spec"]["selector"])
        selected = [
            d for d in deployments if selects(selector, d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(selected) == 1, budget["metadata"]["name"]
        covered.append(selected[0]["metadata"]["labels"][COMPONENT])
        if "minAvailable" in budget["spec"]:
            assert budget["spec"]["minAvailable"] < selected[0]["spec"]["replicas"]
    # Not beat: a budget on its single pod would block every node drain.
    assert sorted(covered) == ["api", "worker"]


def test_the_network_policies_open_the_worker_metrics_port_only(manifests):
    worker = workload(manifests, "Deployment", "worker")
    pod_labels = worker["spec"]["template"]["metadata"]["labels"]
    policies = [
        p
        for p in of_kind(manifests, "NetworkPolicy")
        if selects(match_labels(p["spec"]["podSelector"]), pod_labels)
    ]
    assert len(policies) == 1
    (rule,) = policies[0]["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [9808]
    assert all("namespaceSelector" in peer for peer in rule["from"])


def test_every_referenced_setting_exists(manifests):
    """envFrom and *KeyRef name the ConfigMap and the Secret, with keys they have; every
    variable set is a known setting."""
    config = config_map(manifests)
    secret = secret_example()
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    known = documented_settings() | NEW_SETTINGS
    for obj, container in containers(manifests):
        name = obj["metadata"]["name"]
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] == config["metadata"]["name"], name
            if "secretRef" in source:
                assert source["secretRef"]["name"] == secret["metadata"]["name"], name
        for variable in container.get("env", []):
            assert variable["name"] in known | K8S_ONLY_VARIABLES, f"{name}: {variable['name']}"
            ref = variable.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                assert ref["configMapKeyRef"]["name"] == config["metadata"]["name"], name
                assert ref["configMapKeyRef"]["key"] in config["data"], name
            if "secretKeyRef" in ref:
                assert ref["secretKeyRef"]["name"] == secret["metadata"]["name"], name
                assert ref["secretKeyRef"]["key"] in secret_keys, name
                assert ref["secretKeyRef"]["key"] == variable["name"], name


def test_the_config_map_holds_known_settings_for_production(manifests):
    data = config_map(manifests)["data"]
    unknown = set(data) - documented_settings() - NEW_SETTINGS
    assert not unknown, f"not in .env.example nor NEW_SETTINGS: {sorted(unknown)}"
    assert all(isinstance(value, str) for value in data.values())
    assert data["DJANGO_DEBUG"] == "false"
    assert data["LOG_FORMAT"] == "json"
    assert data["METRICS_DIR"] == POD_TMP
    # Empty would mean a per-pod filesystem broker and file cache.
    assert data["CELERY_BROKER_URL"].startswith(("redis://", "rediss://"))
    assert data["CACHE_URL"].startswith(("redis://", "rediss://"))
    assert not set(data) & set(secret_example()["stringData"]), "a secret in the ConfigMap"


def test_the_secret_example_holds_known_settings_and_placeholders():
    secret = secret_example()
    values = secret["stringData"]
    assert secret["metadata"]["name"] == "tds"  # the README's `kubectl create secret generic tds`
    unknown = set(values) - documented_settings() - NEW_SETTINGS
    assert not unknown, f"not in .env.example nor NEW_SETTINGS: {sorted(unknown)}"
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL"} <= set(values)
    for key, value in values.items():
        assert "CHANGE-ME" in value, f"{key} must be an obvious placeholder"


def test_the_settings_load_from_each_container_environment(tmp_path):
    """What each container gets from the ConfigMap, the example Secret and its own `env` is an
    environment the production settings accept (Postgres, Redis, DEBUG off). One interpreter per
    container, all at once."""
    docs = deployed_from_files()
    script = (
        "import django, json; django.setup(); from django.conf import settings as s;"
        "print(json.dumps({'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS,"
        " 'broker': s.CELERY_BROKER_URL, 'db': s.DATABASES['default']['ENGINE']}))"
    )
    prefixes = ("DJANGO_", "SMS_", "CORS", "CELERY_", "CACHE_", "DATABASE_", "METRICS_", "LOG_")
    running = {}
    for obj, container in containers(docs):
        component = obj["metadata"]["labels"][COMPONENT]
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        env.update(container_env(container, docs))
        # Local folders instead of the pod's volumes.
        folder = tmp_path / component
        env.update(DJANGO_SETTINGS_MODULE="Work.settings", DATA_DIR=str(folder))
        env.update(STATIC_ROOT=str(folder / "static"), METRICS_DIR=str(folder))
        running[component] = subprocess.Popen(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        assert sorted(running) == ["api", "beat", "migrate", "worker"]
        for component, process in running.items():
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, f"{component}: {err}"
            loaded = json.loads(out.strip().splitlines()[-1])
            assert loaded["debug"] is False, component
            assert loaded["broker"].startswith("redis://"), component
            assert loaded["db"] == "django.db.backends.postgresql", component
            assert (POD_IP in loaded["hosts"]) == (component == "api"), component
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
                process.wait()


# --- the autoscaler ---------------------------------------------------------------------------
SCALED_OBJECT_FIELDS = {
    "scaleTargetRef",
    "pollingInterval",
    "cooldownPeriod",
    "initialCooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "fallback",
    "advanced",
    "triggers",
}
TRIGGER_FIELDS = {"type", "name", "metadata", "metricType", "authenticationRef", "useCachedMetrics"}


def test_the_keda_scaled_object_scales_the_workers_on_the_due_backlog(manifests):
    (scaled,) = of_kind(manifests, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert set(spec) <= SCALED_OBJECT_FIELDS, set(spec) - SCALED_OBJECT_FIELDS
    target = spec["scaleTargetRef"]
    assert target.get("apiVersion", "apps/v1") == "apps/v1"
    assert target.get("kind", "Deployment") == "Deployment"
    assert target["name"] == workload(manifests, "Deployment", "worker")["metadata"]["name"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert set(trigger) <= TRIGGER_FIELDS, set(trigger) - TRIGGER_FIELDS
    assert trigger["type"] == "prometheus"
    metadata = trigger["metadata"]
    assert all(isinstance(value, str) for value in metadata.values()), "KEDA takes strings"
    assert re.match(r"https?://", metadata["serverAddress"])
    assert "tds_messages_due" in metadata["query"]
    # Every api pod reports the same service-wide gauge: summing would count it once per pod.
    assert "sum(" not in metadata["query"]
    assert float(metadata["threshold"]) > 0
    if "fallback" in spec:  # KEDA allows a fallback only with AverageValue metrics
        assert trigger.get("metricType", "AverageValue") == "AverageValue"
        assert 0 < spec["fallback"]["replicas"] <= spec["maxReplicaCount"]
    behavior = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
    if behavior:  # KEDA hands it to the HPA it makes: the HPA schema checks it
        validate_standard(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "keda-hpa"},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                    "maxReplicas": spec["maxReplicaCount"],
                    "behavior": behavior,
                },
            }
        )
    metrics = pytest.importorskip("api.metrics")
    assert metrics.METRICS["tds_messages_due"][0] == "gauge"


def test_the_hpa_alternative_scales_the_workers_on_the_due_backlog():
    (hpa,) = load_documents(K8S / "worker-hpa.example.yaml")
    worker = workload(deployed_from_files(), "Deployment", "worker")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": worker["metadata"]["name"],
    }
    (scaled,) = of_kind(deployed_from_files(), "ScaledObject")
    assert hpa["spec"]["minReplicas"] == scaled["spec"]["minReplicaCount"]
    assert hpa["spec"]["maxReplicas"] == scaled["spec"]["maxReplicaCount"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["external"]["metric"]["name"] == "tds_messages_due"
