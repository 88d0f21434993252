#!/usr/bin/env python3
"""Cross-reference checks that schema validation cannot make, for scripts/check-deploy.

  check_manifests.py k8s RENDERED.yaml
      Within one rendered overlay: selectors match the pod labels they are meant for (and no Job's
      pods), HPAs and PDBs point at workloads, HPA targets request CPU, ConfigMaps referenced by pods
      exist, every image is pinned (a tag other than latest, or a digest), every long-running
      container has liveness and readiness probes, and pods run as non-root with a read-only root
      filesystem. Prints the Secrets the cluster must already hold.

  check_manifests.py compose docker-compose.yml .env.example SERVICE...
      Every long-running service has a health check and a valid restart policy, every depends_on
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

    for (namespace, _), hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        ref = dig(hpa, "spec", "scaleTargetRef") or {}
        target = by_kind.get(ref.get("kind", ""), {}).get((namespace, ref.get("name")))
        if target is None:
            problems.append(f"{label(hpa)}: scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not rendered")
            continue
        if dig(hpa, "spec", "minReplicas") and dig(hpa, "spec", "minReplicas") > dig(hpa, "spec", "maxReplicas"):
            problems.append(f"{label(hpa)}: minReplicas is above maxReplicas")
        if "replicas" in (target.get("spec") or {}):
            problems.append(f"{label(target)}: sets spec.replicas although {label(hpa)} scales it "
                            "(every apply would reset the scaled count)")
        uses_cpu = any(dig(m, "resource", "name") == "cpu" for m in dig(hpa, "spec", "metrics") or [])
        containers = dig(target, *WORKLOADS[target["kind"]], "spec", "containers") or []
        if uses_cpu and not all(dig(c, "resources", "requests", "cpu") for c in containers):
            problems.append(f"{label(hpa)}: scales on CPU but {label(target)} does not request CPU in every container")

    for (namespace, _), pdb in by_kind.get("PodDisruptionBudget", {}).items():
        selector = dig(pdb, "spec", "selector", "matchLabels") or {}
        if not any(ns == namespace and d["kind"] in LONG_RUNNING and matches(selector, lbls) for d, ns, lbls, _ in pods):
            problems.append(f"{label(pdb)}: selector {selector} matches no Deployment's pods")

    for namespace, name in sorted(secrets_needed):
        where = f"namespace {namespace}" if namespace else "the target namespace"
        print(f"    note: needs Secret {name} in {where} (not part of the manifests)")
    return problems


VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?[^}]*\}")


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
