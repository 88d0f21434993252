#!/usr/bin/env python3
"""Cross-reference checks that schema validation cannot make, for scripts/check-deploy.

  check_manifests.py k8s RENDERED.yaml
      Within one rendered overlay: selectors match the pod labels they are meant for (and no Job's
      pods), HPAs, KEDA ScaledObjects and PDBs point at workloads, CPU-scaled targets request CPU,
      every Deployment has exactly one autoscaler (an HPA or a ScaledObject, never both: KEDA makes
      its own HPA), a PDB, and requests and limits in every container; each PDB leaves a drain
      possible at the autoscaler's minimum and never lets it take every pod at once; ScaledObjects'
      TriggerAuthentications are rendered; ConfigMaps referenced by pods exist, every image is pinned
      (a tag other than latest, or a digest), every long-running container has liveness and readiness
      probes, and pods run as non-root with a read-only root filesystem. Prints the Secrets the
      cluster must already hold.

  check_manifests.py split RENDERED.yaml OUTDIR
      Sorts one rendered file's objects for validation: those of Kubernetes' own API groups into
      OUTDIR/core/<RENDERED>, for kubernetes-validate; each object of a custom resource Almoner
      uses (CRD_SCHEMAS: KEDA's ScaledObject and TriggerAuthentication, cert-manager's
      ClusterIssuer) into OUTDIR/<schema>/, one file each, for check-jsonschema against
      deploy/schemas/<schema>.json. Any other kind of another API group fails: it has no schema.

  check_manifests.py compose docker-compose.yml .env.example SERVICE...
      Every long-running service has a health check and a valid restart policy, each SERVICE a
      stop_grace_period of at least 25 s (its 20 s drain deadline and some), every depends_on
      names a service, and every ${VAR} without a default is documented in .env.example. The
      postgres service's ALMONER_DB_SERVICES (read by compose/postgres-init, the database
      definition scripts/lib/infra.sh uses too) names exactly the SERVICEs (scripts/lib/config.sh),
      each with its <SERVICE>_DB_PASSWORD.

  check_manifests.py gateway nginx.conf.template docker-compose.yml RENDERED.yaml...
      Every ${ALMONER_GATEWAY_*} placeholder of the template is given a value by the Compose
      gateway service and by the gateway Deployment of each rendered overlay.

Exit status 1 with one line per problem.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

WORKLOADS = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet"}


def dig(doc, *path):
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_k8s(path: Path) -> list[str]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    problems: list[str] = []
    by_kind: dict[str, dict[tuple[str, str], dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[(doc["metadata"].get("namespace", ""), doc["metadata"]["name"])] = doc

    def label(doc):
        return f"{doc['kind']}/{doc['metadata']['name']}"

    pods = []  # (workload doc, namespace, pod labels, pod spec)
    for kind, path_ in WORKLOADS.items():
        for (namespace, _), doc in by_kind.get(kind, {}).items():
            template = dig(doc, *path_) or {}
            pods.append((doc, namespace, dig(template, "metadata", "labels") or {}, template.get("spec") or {}))

    secrets_needed: set[tuple[str, str]] = set()
    for doc, namespace, pod_labels, spec in pods:
        name = label(doc)
        selector = dig(doc, "spec", "selector", "matchLabels")
        if doc["kind"] in LONG_RUNNING and not matches(selector or {}, pod_labels):
            problems.append(f"{name}: spec.selector.matchLabels {selector} does not match the pod labels {pod_labels}")
        security = spec.get("securityContext") or {}
        if security.get("runAsNonRoot") is not True:
            problems.append(f"{name}: pod securityContext.runAsNonRoot must be true")
        for volume in spec.get("volumes") or []:
            ref = dig(volume, "configMap", "name")
            if ref and (namespace, ref) not in by_kind.get("ConfigMap", {}):
                problems.append(f"{name}: volume {volume['name']} uses ConfigMap {ref}, which is not rendered")
            if dig(volume, "secret", "secretName"):
                secrets_needed.add((namespace, volume["secret"]["secretName"]))
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            where = f"{name} container {container.get('name')}"
            image = container.get("image", "")
            if "@" not in image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
                problems.append(f"{where}: image {image!r} is not pinned to a tag or digest")
            if dig(container, "securityContext", "readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: securityContext.readOnlyRootFilesystem must be true")
            if dig(container, "securityContext", "allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
            if not dig(container, "resources", "requests"):
                problems.append(f"{where}: no resources.requests")
            port_names = {p.get("name") for p in container.get("ports") or []}
            if doc["kind"] in LONG_RUNNING and container in (spec.get("containers") or []):
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe not in container:
                        problems.append(f"{where}: no {probe}")
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = dig(container, probe, "httpGet", "port")
                if isinstance(port, str) and port not in port_names:
                    problems.append(f"{where}: {probe} uses port {port!r}, not a named container port")
            for env_from in container.get("envFrom") or []:
                ref = dig(env_from, "configMapRef", "name")
                if ref and (namespace, ref) not in by_kind.get("ConfigMap", {}):
                    problems.append(f"{where}: envFrom ConfigMap {ref} is not rendered")
                if dig(env_from, "secretRef", "name"):
                    secrets_needed.add((namespace, env_from["secretRef"]["name"]))

    pod_specs = {id(d): s for d, _, _, s in pods}
    for (namespace, _), svc in by_kind.get("Service", {}).items():
        selector = dig(svc, "spec", "selector") or {}
        targets = [d for d, ns, lbls, _ in pods if ns == namespace and matches(selector, lbls)]
        if not [d for d in targets if d["kind"] in LONG_RUNNING]:
            problems.append(f"{label(svc)}: selector {selector} matches no Deployment's pods")
        for d in targets:
            if d["kind"] not in LONG_RUNNING:
                problems.append(f"{label(svc)}: selector {selector} also matches the pods of {label(d)}")
        workload_ports = {p.get("name") for d in targets for c in pod_specs[id(d)].get("containers") or []
                          for p in c.get("ports") or []}
        for port in dig(svc, "spec", "ports") or []:
            target = port.get("targetPort")
            if isinstance(target, str) and target not in workload_ports:
                problems.append(f"{label(svc)}: targetPort {target!r} is not a port name of its pods")

    # Autoscalers: plain HPAs and KEDA ScaledObjects (which make an HPA of their own), by target.
    scalers: dict[tuple[str, str, str], list[tuple[dict, int, int, set[str]]]] = {}
    for (namespace, _), hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        ref = dig(hpa, "spec", "scaleTargetRef") or {}
        resources = {dig(m, "resource", "name") for m in dig(hpa, "spec", "metrics") or [] if m.get("type") == "Resource"}
        minimum = dig(hpa, "spec", "minReplicas") or 1
        scalers.setdefault((namespace, ref.get("kind", ""), ref.get("name")), []).append(
            (hpa, minimum, dig(hpa, "spec", "maxReplicas") or 0, resources))
    for (namespace, _), scaled in by_kind.get("ScaledObject", {}).items():
        ref = dig(scaled, "spec", "scaleTargetRef") or {}
        if ref.get("apiVersion", "apps/v1") != "apps/v1":
            problems.append(f"{label(scaled)}: scaleTargetRef.apiVersion {ref.get('apiVersion')} is not apps/v1")
        triggers = dig(scaled, "spec", "triggers") or []
        resources = {t.get("type") for t in triggers if t.get("type") in ("cpu", "memory")}
        # KEDA's defaults: 0 and 100.
        minimum = dig(scaled, "spec", "minReplicaCount") or 0
        maximum = dig(scaled, "spec", "maxReplicaCount") or 100
        if minimum < 1:
            problems.append(f"{label(scaled)}: minReplicaCount {minimum} would scale the Deployment to zero (a "
                            "CPU trigger cannot, and the Service would have no endpoint): at least 1")
        for trigger in triggers:
            auth = trigger.get("authenticationRef") or {}
            kind = auth.get("kind", "TriggerAuthentication")
            if auth and kind == "TriggerAuthentication" and (namespace, auth.get("name")) not in by_kind.get(
                    "TriggerAuthentication", {}):
                problems.append(f"{label(scaled)}: trigger {trigger.get('name') or trigger.get('type')} uses "
                                f"TriggerAuthentication {auth.get('name')}, which is not rendered")
        scalers.setdefault((namespace, ref.get("kind", "Deployment"), ref.get("name")), []).append(
            (scaled, minimum, maximum, resources))
    for (namespace, _), auth in by_kind.get("TriggerAuthentication", {}).items():
        for ref in dig(auth, "spec", "secretTargetRef") or []:
            secrets_needed.add((namespace, ref.get("name")))

    for (namespace, kind, name), found in scalers.items():
        target = by_kind.get(kind, {}).get((namespace, name))
        for scaler, minimum, maximum, resources in found:
            if target is None or kind not in LONG_RUNNING:
                problems.append(f"{label(scaler)}: scaleTargetRef {kind}/{name} is not a rendered Deployment")
                continue
            if minimum > maximum:
                problems.append(f"{label(scaler)}: the minimum replica count {minimum} is above the maximum {maximum}")
            containers = dig(target, *WORKLOADS[target["kind"]], "spec", "containers") or []
            for resource in sorted(resources):
                if not all(dig(c, "resources", "requests", resource) for c in containers):
                    problems.append(f"{label(scaler)}: scales on {resource} but {label(target)} does not request "
                                    f"{resource} in every container")
        if target is None:
            continue
        if len(found) > 1:
            problems.append(f"{label(target)}: scaled by {' and '.join(label(s) for s, *_ in found)}; one autoscaler "
                            "per Deployment (a ScaledObject makes its own HPA, and two would fight over the count)")
        if "replicas" in (target.get("spec") or {}):
            problems.append(f"{label(target)}: sets spec.replicas although {label(found[0][0])} scales it "
                            "(every apply would reset the scaled count)")

    pdbs_by_target: dict[int, list[dict]] = {}
    for (namespace, _), pdb in by_kind.get("PodDisruptionBudget", {}).items():
        selector = dig(pdb, "spec", "selector", "matchLabels") or {}
        selected = [d for d, ns, lbls, _ in pods if ns == namespace and d["kind"] in LONG_RUNNING and matches(selector, lbls)]
        if not selected:
            problems.append(f"{label(pdb)}: selector {selector} matches no Deployment's pods")
        for d in selected:
            pdbs_by_target.setdefault(id(d), []).append(pdb)

    for (namespace, name), deployment in by_kind.get("Deployment", {}).items():
        found = scalers.get((namespace, "Deployment", name), [])
        if not found:
            problems.append(f"{label(deployment)}: no HorizontalPodAutoscaler or KEDA ScaledObject scales it")
        budgets = pdbs_by_target.get(id(deployment), [])
        if not budgets:
            problems.append(f"{label(deployment)}: no PodDisruptionBudget selects its pods")
        for container in dig(deployment, "spec", "template", "spec", "containers") or []:
            if not dig(container, "resources", "limits", "memory"):
                problems.append(f"{label(deployment)} container {container.get('name')}: no resources.limits.memory")
        for pdb in budgets:
            for scaler, minimum, _, _ in found:
                problems.extend(budget_problems(pdb, label(pdb), minimum, label(scaler)))

    for namespace, name in sorted(secrets_needed):
        where = f"namespace {namespace}" if namespace else "the target namespace"
        print(f"    note: needs Secret {name} in {where} (not part of the manifests)")
    return problems


def budget_problems(pdb: dict, where: str, minimum: int, scaler: str) -> list[str]:
    """A PodDisruptionBudget against the autoscaler's minimum: at that many pods a node drain must still be
    able to evict one (else it blocks until someone scales up by hand), and, with more than one pod, must
    never be allowed to evict them all at once."""
    def count(value, round_up: bool) -> int:
        if isinstance(value, str) and value.endswith("%"):
            share = int(value[:-1]) * minimum
            return -(-share // 100) if round_up else share // 100
        return int(value)

    spec = pdb.get("spec") or {}
    if "maxUnavailable" in spec:
        allowed = count(spec["maxUnavailable"], round_up=True)
    elif "minAvailable" in spec:
        allowed = minimum - count(spec["minAvailable"], round_up=True)
    else:
        return [f"{where}: sets neither minAvailable nor maxUnavailable"]
    problems = []
    if allowed < 1:
        problems.append(f"{where}: at {scaler}'s minimum of {minimum} replicas it allows no eviction, so a node "
                        "drain would wait forever")
    if minimum > 1 and allowed >= minimum:
        problems.append(f"{where}: at {scaler}'s minimum of {minimum} replicas it allows evicting all {minimum} at "
                        "once")
    return problems


# Custom resources Almoner renders, each validated against deploy/schemas/<schema>.json (written from the
# projects' documentation; kubernetes-validate knows built-in kinds only).
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda-triggerauthentication",
    ("cert-manager.io/v1", "ClusterIssuer"): "cert-manager-clusterissuer",
}


def is_core_api(api_version: str) -> bool:
    """Kubernetes' own API groups: the core group (v1), the unqualified ones (apps, batch, policy,
    autoscaling) and *.k8s.io (networking.k8s.io, rbac.authorization.k8s.io, ...)."""
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def split_rendered(path: Path, outdir: Path) -> list[str]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    problems = []
    core = []
    for doc in docs:
        api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        name = dig(doc, "metadata", "name") or "unnamed"
        schema = CRD_SCHEMAS.get((api_version, kind))
        if schema:
            target = outdir / schema / f"{path.stem}.{kind}.{name}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(yaml.safe_dump(doc, sort_keys=False))
        elif is_core_api(api_version):
            core.append(doc)
        else:
            known = ", ".join(f"{k} ({a})" for a, k in CRD_SCHEMAS)
            problems.append(f"{path.name}: {kind}/{name} ({api_version}) is neither a built-in Kubernetes kind nor one "
                            f"with a schema in deploy/schemas ({known}): add its schema and CRD_SCHEMAS entry")
    (outdir / "core").mkdir(parents=True, exist_ok=True)
    (outdir / "core" / path.name).write_text(yaml.safe_dump_all(core, sort_keys=False))
    return problems


VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?[^}]*\}")


def compose_seconds(duration: str) -> float | None:
    """A Compose duration ("30s", "1m30s", "1h") in seconds; None when it is not one."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", duration.strip())
    if not parts or not any(parts.groups()):
        return None
    hours, minutes, seconds = (float(group or 0) for group in parts.groups())
    return hours * 3600 + minutes * 60 + seconds


def check_compose(compose_path: Path, env_example: Path, db_services: list[str]) -> list[str]:
    text = compose_path.read_text()
    compose = yaml.safe_load(text)
    problems: list[str] = []
    services = compose.get("services") or {}
    for name, svc in services.items():
        restart = str(svc.get("restart", "no"))
        one_shot = restart == "no"
        # The Compose schema takes any string here; the engine knows only these.
        if not re.fullmatch(r"no|always|unless-stopped|on-failure(:\d+)?", restart):
            problems.append(f"service {name}: restart {restart!r} is not no, always, unless-stopped or on-failure[:N]")
        if not one_shot and "healthcheck" not in svc:
            problems.append(f"service {name}: no healthcheck")
        if not one_shot and "restart" not in svc:
            problems.append(f"service {name}: no restart policy")
        # An Almoner service drains for up to its shutdown deadline (20 s) after SIGTERM; Docker's default
        # stop_grace_period (10 s) would SIGKILL it half way.
        if name in db_services and not one_shot:
            grace = str(svc.get("stop_grace_period", "10s"))
            seconds = compose_seconds(grace)
            if seconds is None:
                problems.append(f"service {name}: stop_grace_period {grace} is not a duration like 30s or 1m30s")
            elif seconds < 25:
                problems.append(f"service {name}: stop_grace_period {grace} is shorter than its 20 s shutdown deadline plus 5 s")
        depends = svc.get("depends_on") or {}
        for dep in depends if isinstance(depends, (dict, list)) else []:
            if dep not in services:
                problems.append(f"service {name}: depends_on {dep}, which is not a service")
            elif isinstance(depends, dict):
                condition = depends[dep].get("condition")
                dep_svc = services[dep]
                if condition == "service_healthy" and "healthcheck" not in dep_svc:
                    problems.append(f"service {name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
                if condition == "service_completed_successfully" and str(dep_svc.get("restart", "no")) != "no":
                    problems.append(f"service {name}: waits for {dep} to complete, but {dep} restarts")
    postgres_env = (services.get("postgres") or {}).get("environment") or {}
    if isinstance(postgres_env, list):
        postgres_env = dict(item.partition("=")[::2] for item in postgres_env)
    listed = str(postgres_env.get("ALMONER_DB_SERVICES", "")).split()
    if sorted(listed) != sorted(db_services):
        problems.append(f"service postgres: ALMONER_DB_SERVICES is {' '.join(listed) or 'unset'}, but the services "
                        f"(scripts/lib/config.sh) are {' '.join(db_services)}: each needs its database role")
    for service in db_services:
        password = service.upper().replace("-", "_") + "_DB_PASSWORD"
        if password not in postgres_env:
            problems.append(f"service postgres: {password} is not set (compose/postgres-init needs it for {service})")
    documented = set()
    for line in env_example.read_text().splitlines():
        line = line.strip()
        if line.startswith("#"):
            line = line.lstrip("#").strip()
        key, sep, _ = line.partition("=")
        if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            documented.add(key)
    stripped = text.replace("$$", "")
    for var, operator in set(VAR_RE.findall(stripped)):
        if operator in ("", "?", ":?") and var not in documented:
            problems.append(f"${{{var}}} has no default and is not in {env_example.name}")
    return problems


PLACEHOLDER_RE = re.compile(r"\$\{(ALMONER_GATEWAY_[A-Z0-9_]+)\}")


def check_gateway(template: Path, compose_path: Path, rendered: list[Path]) -> list[str]:
    """Every ${ALMONER_GATEWAY_*} placeholder outside the template's comments gets a value from the
    Compose gateway service and from each rendered gateway Deployment (env or envFrom ConfigMap)."""
    needed = set()
    for line in template.read_text().splitlines():
        if not line.lstrip().startswith("#"):
            needed |= set(PLACEHOLDER_RE.findall(line))
    problems: list[str] = []
    if not needed:
        problems.append(f"{template}: no ${{ALMONER_GATEWAY_*}} placeholders found")
    gateway = (yaml.safe_load(compose_path.read_text()).get("services") or {}).get("gateway") or {}
    environment = gateway.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    for var in sorted(needed - set(environment)):
        problems.append(f"{compose_path}: service gateway does not set {var}, used by {template.name}")
    for path in rendered:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        config_maps = {(d["metadata"].get("namespace", ""), d["metadata"]["name"]): d.get("data") or {}
                       for d in docs if d["kind"] == "ConfigMap"}
        for doc in docs:
            if doc["kind"] != "Deployment" or doc["metadata"]["name"] != "gateway":
                continue
            namespace = doc["metadata"].get("namespace", "")
            for container in dig(doc, "spec", "template", "spec", "containers") or []:
                defined = {e["name"] for e in container.get("env") or []}
                for env_from in container.get("envFrom") or []:
                    ref = dig(env_from, "configMapRef", "name")
                    defined |= set(config_maps.get((namespace, ref), {}))
                for var in sorted(needed - defined):
                    problems.append(f"{path.name}: Deployment/gateway container {container['name']} "
                                    f"does not set {var}, used by {template.name}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "k8s":
        problems = check_k8s(Path(argv[2]))
    elif len(argv) == 4 and argv[1] == "split":
        problems = split_rendered(Path(argv[2]), Path(argv[3]))
    elif len(argv) >= 5 and argv[1] == "compose":
        problems = check_compose(Path(argv[2]), Path(argv[3]), argv[4:])
    elif len(argv) >= 4 and argv[1] == "gateway":
        problems = check_gateway(Path(argv[2]), Path(argv[3]), [Path(p) for p in argv[4:]])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for problem in problems:
        print(f"    problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
