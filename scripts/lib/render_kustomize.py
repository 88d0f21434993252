#!/usr/bin/env python3
"""Render a kustomization directory the way `kustomize build` does, for the subset k8s/ uses.

The machines that check this repository have neither the kustomize binary nor a kubectl recent
enough for `kubectl kustomize`, so scripts/check-deploy renders the overlays with this file and
validates the result. It implements only what Almoner's manifests use, and refuses anything else
with an error rather than rendering it differently from kustomize:

  resources          files (one or more YAML documents) and directories holding a kustomization
  namespace          set on every namespaced resource (and, as kustomize does, the name of a Namespace)
  labels             pairs, with includeTemplates; includeSelectors must stay false
  images             name -> newName / newTag / digest, in containers and initContainers
  replicas           name -> count, for Deployments and StatefulSets
  configMapGenerator files and literals, behavior create|merge|replace, options.disableNameSuffixHash
                     (generated names get kustomize's content hash suffix; references in pod
                     specs follow the rename)
  generatorOptions   disableNameSuffixHash
  patches            strategic merge (path or inline; target inferred from kind and name, or
                     given) and JSON 6902 (path or inline, with target kind/name)

Strategic merge follows the Kubernetes rules for the lists it knows (containers, env, volumes,
volumeMounts, ports...); other lists are replaced. `null` deletes a field; `$patch: delete` deletes
a list element or map.

Usage: render_kustomize.py DIR [-o FILE]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from pathlib import Path

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = {
    "apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas",
    "configMapGenerator", "generatorOptions", "patches",
}
CLUSTER_SCOPED_KINDS = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass",
    "StorageClass", "PersistentVolume", "IngressClass", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration", "APIService",
}
# kustomize's "legacy" output order: these kinds first, in this order, the rest by kind and name.
ORDER_FIRST = [
    "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount",
    "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap",
    "Secret", "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume",
    "PersistentVolumeClaim", "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget",
]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


class RenderError(Exception):
    pass


class Build:
    """Resources of one kustomization, plus which generated ConfigMaps still need a hash suffix."""

    def __init__(self) -> None:
        self.resources: list[dict] = []
        self.hashed: set[tuple[str, str]] = set()  # (kind, name) before the suffix

    def extend(self, other: "Build") -> None:
        for res in other.resources:
            ident = resource_id(res)
            if any(resource_id(r) == ident for r in self.resources):
                raise RenderError(f"resource {format_id(ident)} is defined twice")
            self.resources.append(res)
        self.hashed |= other.hashed


# ---------------------------------------------------------------------------------------------
# loading


def find_kustomization(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise RenderError(f"{directory}: no kustomization.yaml")


def load_documents(path: Path) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as exc:
        raise RenderError(f"{path}: {exc}") from exc
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "metadata" not in doc:
            raise RenderError(f"{path}: every document must be a Kubernetes object with kind and metadata")
    return docs


def inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def build(directory: Path) -> Build:
    kfile = find_kustomization(directory)
    spec = yaml.safe_load(kfile.read_text()) or {}
    unknown = set(spec) - SUPPORTED_KEYS
    if unknown:
        raise RenderError(f"{kfile}: unsupported kustomization fields {sorted(unknown)} "
                          f"(scripts/lib/render_kustomize.py implements {sorted(SUPPORTED_KEYS)})")

    result = Build()
    for entry in spec.get("resources") or []:
        target = (directory / entry)
        if target.is_dir():
            result.extend(build(target))
        elif target.is_file():
            # kustomize's default load restrictor: files must sit under the kustomization root.
            if not inside(target, directory):
                raise RenderError(f"{kfile}: resource file {entry} is outside {directory}; "
                                  "reference its directory (with a kustomization) instead")
            part = Build()
            part.resources = load_documents(target)
            result.extend(part)
        else:
            raise RenderError(f"{kfile}: resource {entry} not found")

    generate_config_maps(directory, kfile, spec, result)
    for patch in spec.get("patches") or []:
        apply_patch_entry(directory, kfile, patch, result)
    if "namespace" in spec:
        set_namespace(result, spec["namespace"])
    for entry in spec.get("labels") or []:
        apply_labels(kfile, entry, result)
    for entry in spec.get("images") or []:
        apply_image(kfile, entry, result)
    for entry in spec.get("replicas") or []:
        apply_replicas(kfile, entry, result)
    return result


# ---------------------------------------------------------------------------------------------
# identities


def resource_id(res: dict) -> tuple[str, str, str]:
    meta = res.get("metadata") or {}
    return (res.get("kind", ""), meta.get("name", ""), meta.get("namespace", ""))


def format_id(ident: tuple[str, str, str]) -> str:
    kind, name, namespace = ident
    return f"{kind}/{name}" + (f" in namespace {namespace}" if namespace else "")


def find(result: Build, kind: str, name: str, kfile: Path, what: str) -> list[dict]:
    matches = [r for r in result.resources if r.get("kind") == kind and r["metadata"].get("name") == name]
    if not matches:
        raise RenderError(f"{kfile}: {what} targets {kind}/{name}, which is not among the resources")
    return matches


# ---------------------------------------------------------------------------------------------
# generators


def generate_config_maps(directory: Path, kfile: Path, spec: dict, result: Build) -> None:
    options = spec.get("generatorOptions") or {}
    unknown = set(options) - {"disableNameSuffixHash"}
    if unknown:
        raise RenderError(f"{kfile}: unsupported generatorOptions {sorted(unknown)}")
    for gen in spec.get("configMapGenerator") or []:
        unknown = set(gen) - {"name", "files", "literals", "behavior", "options"}
        if unknown:
            raise RenderError(f"{kfile}: unsupported configMapGenerator fields {sorted(unknown)}")
        gen_options = {**options, **(gen.get("options") or {})}
        if set(gen_options) - {"disableNameSuffixHash"}:
            raise RenderError(f"{kfile}: unsupported configMapGenerator options {sorted(gen_options)}")
        name = gen["name"]
        data: dict[str, str] = {}
        for literal in gen.get("literals") or []:
            key, sep, value = literal.partition("=")
            if not sep:
                raise RenderError(f"{kfile}: configMapGenerator {name}: literal {literal!r} has no '='")
            data[key] = value
        for file_entry in gen.get("files") or []:
            key, sep, rel = file_entry.partition("=")
            if not sep:
                key, rel = Path(file_entry).name, file_entry
            path = directory / rel
            if not inside(path, directory):
                raise RenderError(f"{kfile}: configMapGenerator {name}: {rel} is outside {directory} "
                                  "(kustomize refuses files outside the kustomization root)")
            if not path.is_file():
                raise RenderError(f"{kfile}: configMapGenerator {name}: file {rel} not found")
            data[key] = path.read_text()
        behavior = gen.get("behavior", "create")
        if behavior == "create":
            if any(r.get("kind") == "ConfigMap" and r["metadata"]["name"] == name for r in result.resources):
                raise RenderError(f"{kfile}: configMapGenerator {name} already exists; use behavior: merge")
            result.resources.append({"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": name}, "data": data})
        elif behavior in ("merge", "replace"):
            (existing,) = find(result, "ConfigMap", name, kfile, f"configMapGenerator behavior {behavior}")
            existing["data"] = {**(existing.get("data") or {}), **data} if behavior == "merge" else data
        else:
            raise RenderError(f"{kfile}: configMapGenerator {name}: unknown behavior {behavior!r}")
        if gen_options.get("disableNameSuffixHash"):
            result.hashed.discard(("ConfigMap", name))
        else:
            result.hashed.add(("ConfigMap", name))


def kustomize_hash(res: dict) -> str:
    """kustomize's ConfigMap name suffix: sha256 of the JSON of kind, name and data, 10 characters
    of its hex with the letters that could spell words swapped out."""
    encoded = json.dumps({"kind": res["kind"], "name": res["metadata"]["name"],
                          "data": res.get("data") or {}}, sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False)
    # Go's encoding/json, which kustomize uses, escapes these; match it so the names agree.
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        encoded = encoded.replace(char, escaped)
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"}))


def apply_name_hashes(result: Build) -> None:
    renamed: dict[tuple[str, str], str] = {}
    for res in result.resources:
        key = (res["kind"], res["metadata"]["name"])
        if key in result.hashed:
            new_name = f"{key[1]}-{kustomize_hash(res)}"
            renamed[(key[0], key[1], res["metadata"].get("namespace", ""))] = new_name
            res["metadata"]["name"] = new_name
    if not renamed:
        return
    for res in result.resources:
        pod_spec = pod_spec_of(res)
        if pod_spec is None:
            continue
        namespace = res["metadata"].get("namespace", "")

        def rename(holder: dict, field: str, kind: str = "ConfigMap") -> None:
            if holder and holder.get(field) is not None:
                holder[field] = renamed.get((kind, holder[field], namespace), holder[field])

        for volume in pod_spec.get("volumes") or []:
            rename(volume.get("configMap"), "name")
            for source in (volume.get("projected") or {}).get("sources") or []:
                rename(source.get("configMap"), "name")
        for container in all_containers(pod_spec):
            for env_from in container.get("envFrom") or []:
                rename(env_from.get("configMapRef"), "name")
            for env in container.get("env") or []:
                rename((env.get("valueFrom") or {}).get("configMapKeyRef"), "name")


# ---------------------------------------------------------------------------------------------
# patches


def apply_patch_entry(directory: Path, kfile: Path, entry: dict, result: Build) -> None:
    unknown = set(entry) - {"path", "patch", "target"}
    if unknown or ("path" in entry) == ("patch" in entry):
        raise RenderError(f"{kfile}: a patch needs exactly one of path or patch (and optionally target); got {entry}")
    if "path" in entry:
        path = directory / entry["path"]
        if not path.is_file():
            raise RenderError(f"{kfile}: patch file {entry['path']} not found")
        text, where = path.read_text(), path
    else:
        text, where = entry["patch"], kfile
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise RenderError(f"{where}: {exc}") from exc
    target = entry.get("target")
    if target is not None:
        unknown = set(target) - {"kind", "name", "group", "version"}
        if unknown or "kind" not in target or "name" not in target:
            raise RenderError(f"{kfile}: patch target must name kind and name (no selectors); got {target}")

    if len(docs) == 1 and isinstance(docs[0], list):
        if target is None:
            raise RenderError(f"{where}: a JSON 6902 patch needs a target")
        for res in targets(result, target, kfile):
            for op in docs[0]:
                json6902(res, op, where)
        return
    for doc in docs:
        if not isinstance(doc, dict):
            raise RenderError(f"{where}: a patch is either one JSON 6902 list or strategic merge objects")
        doc_target = target or {"kind": doc.get("kind"), "name": (doc.get("metadata") or {}).get("name")}
        if not doc_target["kind"] or not doc_target["name"]:
            raise RenderError(f"{where}: a strategic merge patch needs kind and metadata.name")
        for res in targets(result, doc_target, kfile):
            merged = strategic_merge(res, {k: v for k, v in doc.items()}, (), where)
            res.clear()
            res.update(merged)


def targets(result: Build, target: dict, kfile: Path) -> list[dict]:
    matches = find(result, target["kind"], target["name"], kfile, "patch")
    for res in matches:
        group, _, version = res.get("apiVersion", "").rpartition("/")
        if "group" in target and target["group"] != group:
            raise RenderError(f"{kfile}: patch target group {target['group']!r} does not match {res['apiVersion']}")
        if "version" in target and target["version"] != version:
            raise RenderError(f"{kfile}: patch target version {target['version']!r} does not match {res['apiVersion']}")
    return matches


def merge_key(path: tuple[str, ...], field: str) -> str | None:
    """The patchMergeKey Kubernetes declares for the lists Almoner's patches touch."""
    if field in ("containers", "initContainers", "ephemeralContainers", "env", "volumes",
                 "imagePullSecrets", "hostAliases"):
        return "ip" if field == "hostAliases" else "name"
    if field == "volumeMounts":
        return "mountPath"
    if field == "ports":
        return "containerPort" if "containers" in path or "initContainers" in path else "port"
    if field == "topologySpreadConstraints":
        return "topologyKey"
    return None


def strategic_merge(base, patch, path: tuple[str, ...], where):
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive not in (None,):
        raise RenderError(f"{where}: unsupported directive $patch: {directive} at {'.'.join(path) or '<root>'}")
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if key.startswith("$"):
            raise RenderError(f"{where}: unsupported directive {key} at {'.'.join(path + (key,))}")
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and value.get("$patch") == "delete":
            out.pop(key, None)
        elif isinstance(value, dict):
            out[key] = strategic_merge(out.get(key), value, path + (key,), where)
        elif isinstance(value, list):
            mkey = merge_key(path, key)
            if mkey is None or not isinstance(out.get(key), list):
                out[key] = [strip_directives(v) for v in value]
            else:
                out[key] = merge_list(out[key], value, mkey, path + (key,), where)
        else:
            out[key] = copy.deepcopy(value)
    return out


def strip_directives(value):
    if isinstance(value, dict):
        return {k: strip_directives(v) for k, v in value.items() if k != "$patch"}
    return copy.deepcopy(value)


def merge_list(base: list, patch: list, mkey: str, path: tuple[str, ...], where) -> list:
    out = copy.deepcopy(base)
    for item in patch:
        if not isinstance(item, dict) or mkey not in item:
            raise RenderError(f"{where}: every element patched into {'.'.join(path)} needs its merge key {mkey}")
        index = next((i for i, cur in enumerate(out) if isinstance(cur, dict) and cur.get(mkey) == item[mkey]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
        elif index is None:
            out.append(strip_directives(item))
        else:
            out[index] = strategic_merge(out[index], item, path, where)
    return out


def pointer(path: str, where) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise RenderError(f"{where}: JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json6902(doc: dict, op: dict, where) -> None:
    kind = op.get("op")
    if kind not in ("add", "remove", "replace", "test"):
        raise RenderError(f"{where}: unsupported JSON 6902 op {kind!r} (add, remove, replace, test)")
    parts = pointer(op.get("path", ""), where)
    if not parts:
        raise RenderError(f"{where}: JSON 6902 op on the whole document is not supported")
    parent = doc
    for part in parts[:-1]:
        try:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        except (KeyError, IndexError, ValueError) as exc:
            raise RenderError(f"{where}: path {op['path']} does not exist in "
                              f"{doc['kind']}/{doc['metadata']['name']}") from exc
    last = parts[-1]
    missing = RenderError(f"{where}: path {op['path']} does not exist in {doc['kind']}/{doc['metadata']['name']}")
    if isinstance(parent, list):
        if kind == "add" and last == "-":
            parent.append(copy.deepcopy(op["value"]))
            return
        try:
            index = int(last)
        except ValueError as exc:
            raise missing from exc
        if kind == "add":
            if not 0 <= index <= len(parent):
                raise missing
            parent.insert(index, copy.deepcopy(op["value"]))
            return
        if not 0 <= index < len(parent):
            raise missing
        if kind == "remove":
            parent.pop(index)
        elif kind == "replace":
            parent[index] = copy.deepcopy(op["value"])
        elif parent[index] != op["value"]:
            raise RenderError(f"{where}: test failed at {op['path']}")
        return
    if kind == "add":
        parent[last] = copy.deepcopy(op["value"])
    elif last not in parent:
        raise missing
    elif kind == "remove":
        del parent[last]
    elif kind == "replace":
        parent[last] = copy.deepcopy(op["value"])
    elif parent[last] != op["value"]:
        raise RenderError(f"{where}: test failed at {op['path']}")


# ---------------------------------------------------------------------------------------------
# transformers


def dig(doc: dict, path: tuple[str, ...]):
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def pod_spec_of(res: dict) -> dict | None:
    if res.get("kind") == "Pod":
        return res.get("spec")
    path = POD_TEMPLATE_PATHS.get(res.get("kind", ""))
    return dig(res, path + ("spec",)) if path else None


def all_containers(pod_spec: dict) -> list[dict]:
    return list(pod_spec.get("initContainers") or []) + list(pod_spec.get("containers") or [])


def set_namespace(result: Build, namespace: str) -> None:
    for res in result.resources:
        if res["kind"] == "Namespace":
            # kustomize renames Namespace objects to the kustomization's namespace.
            res["metadata"]["name"] = namespace
        elif res["kind"] not in CLUSTER_SCOPED_KINDS:
            res["metadata"]["namespace"] = namespace


def apply_labels(kfile: Path, entry: dict, result: Build) -> None:
    unknown = set(entry) - {"pairs", "includeSelectors", "includeTemplates"}
    if unknown:
        raise RenderError(f"{kfile}: unsupported labels fields {sorted(unknown)}")
    if entry.get("includeSelectors"):
        raise RenderError(f"{kfile}: labels with includeSelectors: true are not supported "
                          "(selectors are immutable on Deployments; keep them in the base manifests)")
    pairs = {str(k): str(v) for k, v in (entry.get("pairs") or {}).items()}
    for res in result.resources:
        res["metadata"].setdefault("labels", {}).update(pairs)
        if entry.get("includeTemplates"):
            path = POD_TEMPLATE_PATHS.get(res["kind"])
            template = dig(res, path) if path else None
            if template is not None:
                template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


IMAGE_RE = re.compile(r"^(?P<name>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z0-9:+.-]+))?$")


def apply_image(kfile: Path, entry: dict, result: Build) -> None:
    unknown = set(entry) - {"name", "newName", "newTag", "digest"}
    if unknown or "name" not in entry:
        raise RenderError(f"{kfile}: an images entry needs name and only newName/newTag/digest; got {entry}")
    matched = False
    for res in result.resources:
        pod_spec = pod_spec_of(res)
        for container in all_containers(pod_spec) if pod_spec else []:
            parsed = IMAGE_RE.match(container.get("image", ""))
            if not parsed or parsed["name"] != entry["name"]:
                continue
            matched = True
            name = entry.get("newName", parsed["name"])
            if "digest" in entry:
                container["image"] = f"{name}@{entry['digest']}"
            elif "newTag" in entry:
                container["image"] = f"{name}:{entry['newTag']}"
            else:
                tag = f":{parsed['tag']}" if parsed["tag"] else ""
                digest = f"@{parsed['digest']}" if parsed["digest"] else ""
                container["image"] = f"{name}{tag}{digest}"
    if not matched:
        raise RenderError(f"{kfile}: images entry {entry['name']} matches no container")


def apply_replicas(kfile: Path, entry: dict, result: Build) -> None:
    if set(entry) != {"name", "count"}:
        raise RenderError(f"{kfile}: a replicas entry needs exactly name and count; got {entry}")
    matches = [r for r in result.resources
               if r["kind"] in ("Deployment", "StatefulSet", "ReplicaSet") and r["metadata"]["name"] == entry["name"]]
    if not matches:
        raise RenderError(f"{kfile}: replicas entry {entry['name']} matches no Deployment or StatefulSet")
    for res in matches:
        res.setdefault("spec", {})["replicas"] = int(entry["count"])


# ---------------------------------------------------------------------------------------------
# output


def order_key(res: dict):
    kind = res["kind"]
    if kind in ORDER_FIRST:
        rank = (0, ORDER_FIRST.index(kind), "")
    elif kind in ORDER_LAST:
        rank = (2, ORDER_LAST.index(kind), "")
    else:
        rank = (1, 0, f"{res.get('apiVersion', '')}/{kind}")
    return rank + (res["metadata"].get("namespace", ""), res["metadata"]["name"])


def render(directory: Path) -> str:
    result = build(directory)
    apply_name_hashes(result)
    result.resources.sort(key=order_key)
    return yaml.safe_dump_all(result.resources, sort_keys=False, default_flow_style=False, width=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("-o", "--output", type=Path, help="write here instead of standard output")
    args = parser.parse_args()
    try:
        text = render(args.directory)
    except RenderError as exc:
        print(f"render_kustomize: {exc}", file=sys.stderr)
        return 1
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
