"""`apply`, `get`, `delete`, `describe`: resources, the kubectl way."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from gossamer.api.errors import ApplyError, ResourceError
from gossamer.api.loader import load_documents, parse_resources
from gossamer.api.registry import KindInfo, UnknownKind, all_kinds, resolve
from gossamer.cli.client import ApiError, CliError, resource_path
from gossamer.cli.columns import columns_for
from gossamer.cli.output import age, print_documents, print_table
from gossamer.cli.proxies import (
    ENDPOINT_NAMES,
    PROXY_NAMES,
    describe_proxy,
    print_endpoints,
    print_proxies,
)
from gossamer.cli.security import CA_NAMES, REPORT_NAMES, print_ca, print_mtls_report

F = TypeVar("F", bound=Callable[..., Any])

_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def _kind(name: str) -> KindInfo:
    try:
        return resolve(name)
    except UnknownKind as exc:
        raise CliError(str(exc)) from None


def _manifest_files(paths: tuple[str, ...], recursive: bool) -> list[tuple[str, str]]:
    """(source name, text) for each -f argument: a file, a directory, or `-` (stdin)."""
    out: list[tuple[str, str]] = []
    for arg in paths:
        if arg == "-":
            out.append(("<stdin>", sys.stdin.read()))
            continue
        path = Path(arg)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern) if p.suffix in _MANIFEST_SUFFIXES)
            if not files:
                raise CliError(f"{arg}: no .yaml, .yml or .json files in this directory")
            out += [(str(p), p.read_text()) for p in files]
        elif path.exists():
            out.append((arg, path.read_text()))
        else:
            raise CliError(f"{arg}: no such file or directory")
    return out


def _load(paths: tuple[str, ...], recursive: bool) -> list[dict[str, Any]]:
    """Every document of every file, validated here first so errors name their file."""
    docs: list[dict[str, Any]] = []
    errors: list[ResourceError] = []
    for source, text in _manifest_files(paths, recursive):
        try:
            file_docs = load_documents(text, source)
            parse_resources(file_docs, source)
        except ApplyError as exc:
            errors += exc.errors
            continue
        docs += file_docs
    if errors:
        raise CliError(str(ApplyError(errors)))
    if not docs:
        raise CliError("no resources found in the given files")
    return docs


def _files_option(required: bool) -> Callable[[F], F]:
    return click.option(
        "-f",
        "--filename",
        "files",
        multiple=True,
        required=required,
        metavar="FILE|DIR|-",
        help="Manifest file, directory of manifests, or - for stdin (repeatable).",
    )


@click.command()
@_files_option(required=True)
@click.option("-R", "--recursive", is_flag=True, help="Read directories recursively.")
@click.option("--dry-run", is_flag=True, help="Validate on the server; store nothing.")
@click.pass_obj
def apply(options: Any, files: tuple[str, ...], recursive: bool, dry_run: bool) -> None:
    """Create or update resources from YAML or JSON manifests.

    All documents of all files are validated, then applied in one transaction: if any of
    them is invalid, nothing is applied and every problem is reported.
    """
    docs = _load(files, recursive)
    source = files[0] if len(files) == 1 else "manifests"
    with options.client() as client:
        try:
            body = client.apply(docs, source, dry_run)
        except ApiError as exc:
            raise CliError(str(exc)) from None
    suffix = " (dry run)" if dry_run else ""
    for result in body["results"]:
        click.echo(f"{result['resource']} {result['action']}{suffix}")


def _namespace_scope(info: KindInfo, namespace: str | None, all_namespaces: bool) -> str | None:
    if not info.namespaced or all_namespaces:
        return None
    return namespace or "default"


@click.command()
@click.argument("kind")
@click.argument("names", nargs=-1)
@click.option("-n", "--namespace", help="Namespace [default: default].")
@click.option("-A", "--all-namespaces", is_flag=True, help="List across all namespaces.")
@click.option("-l", "--selector", help="Label selector, e.g. app=web,version!=v1.")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "wide", "yaml", "json", "name"]),
    default="table",
    show_default=True,
)
@click.pass_obj
def get(
    options: Any,
    kind: str,
    names: tuple[str, ...],
    namespace: str | None,
    all_namespaces: bool,
    selector: str | None,
    output: str,
) -> None:
    """List resources, or show some by name.

    KIND is a kind, its plural or short name (svc, ts, tp, ...), `all`, `proxies`
    (the connected data plane: state, config versions ACKed, NACK errors), `ca` (roots and
    certificates with their expiry), `mtls-report` (per sidecar: mTLS mode and the
    clients still sending plaintext; check it before switching PERMISSIVE to STRICT) or
    `endpoints` (every service endpoint and what the sidecars' active health checks report).
    """
    if kind.lower() in PROXY_NAMES:
        with options.client() as client:
            print_proxies(client.get("/api/v1/proxies"), output)
        return
    if kind.lower() in CA_NAMES:
        with options.client() as client:
            print_ca(client.get("/api/v1/ca"), output)
        return
    if kind.lower() in REPORT_NAMES:
        with options.client() as client:
            print_mtls_report(client.get("/api/v1/mtls-report"), output)
        return
    if kind.lower() in ENDPOINT_NAMES:
        with options.client() as client:
            print_endpoints(client.get("/api/v1/endpoints"), output)
        return
    infos = [k for k in all_kinds()] if kind == "all" else [_kind(kind)]
    docs: list[dict[str, Any]] = []
    with options.client() as client:
        for info in infos:
            ns = _namespace_scope(info, namespace, all_namespaces)
            if names:
                for name in names:
                    docs.append(client.get(resource_path(info, ns or "default", name)))
            else:
                body = client.get(resource_path(info, ns), labelSelector=selector)
                docs += body["items"]
    if output in ("yaml", "json"):
        if not docs and output == "yaml":
            return
        print_documents(docs, output)
        return
    if output == "name":
        for d in docs:
            click.echo(f"{d['kind'].lower()}/{d['metadata']['name']}")
        return
    if not docs:
        where = "any namespace" if all_namespaces else f"namespace {namespace or 'default'}"
        click.echo(f"No resources found in {where}.", err=True)
        return
    _print_docs(docs, show_namespace=all_namespaces, show_kind=len(infos) > 1)


def _print_docs(docs: list[dict[str, Any]], show_namespace: bool, show_kind: bool) -> None:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    for index, (kind, items) in enumerate(by_kind.items()):
        extra = columns_for(kind)
        namespaced = any(d["metadata"].get("namespace") for d in items)
        headers = (["NAMESPACE"] if show_namespace and namespaced else []) + ["NAME"]
        headers += [h for h, _ in extra] + ["AGE"]
        rows = []
        for d in items:
            meta = d["metadata"]
            name = f"{kind.lower()}/{meta['name']}" if show_kind else meta["name"]
            row = ([meta.get("namespace", "")] if show_namespace and namespaced else []) + [name]
            row += [fn(d) for _, fn in extra] + [age(meta.get("creationTimestamp"))]
            rows.append(row)
        if index:
            click.echo()
        print_table(headers, rows)


@click.command()
@click.argument("kind", required=False)
@click.argument("names", nargs=-1)
@_files_option(required=False)
@click.option("-n", "--namespace", help="Namespace [default: default].")
@click.option("--ignore-not-found", is_flag=True, help="Succeed if the resource does not exist.")
@click.pass_obj
def delete(
    options: Any,
    kind: str | None,
    names: tuple[str, ...],
    files: tuple[str, ...],
    namespace: str | None,
    ignore_not_found: bool,
) -> None:
    """Delete resources by kind and name, or those described in manifests (-f)."""
    targets: list[tuple[KindInfo, str, str]] = []
    if files:
        if kind:
            raise CliError("give either -f or KIND NAME, not both")
        for doc in _load(files, recursive=False):
            info = _kind(f"{doc['kind']}.{doc['apiVersion'].rsplit('/', 1)[0]}")
            meta = doc.get("metadata") or {}
            targets.append((info, meta.get("namespace") or "default", meta["name"]))
    else:
        if not kind or not names:
            raise CliError("usage: gossamer delete KIND NAME... | -f FILE")
        info = _kind(kind)
        targets = [(info, namespace or "default", name) for name in names]
    with options.client() as client:
        for info, ns, name in targets:
            ref = f"{info.kind} {ns}/{name}" if info.namespaced else f"{info.kind} {name}"
            try:
                client.delete(resource_path(info, ns, name))
            except ApiError as exc:
                if exc.status == 404 and ignore_not_found:
                    continue
                raise
            click.echo(f"{ref} deleted")


@click.command()
@click.argument("kind")
@click.argument("name")
@click.option("-n", "--namespace", help="Namespace [default: default].")
@click.pass_obj
def describe(options: Any, kind: str, name: str, namespace: str | None) -> None:
    """Show one resource (or `proxy NAME`) in detail."""
    if kind.lower() in PROXY_NAMES:
        with options.client() as client:
            describe_proxy(client.get(f"/api/v1/proxies/{name}"))
        return
    info = _kind(kind)
    with options.client() as client:
        doc = client.get(resource_path(info, namespace or "default", name))
    meta = doc["metadata"]
    fields = [
        ("Name", meta["name"]),
        ("Namespace", meta.get("namespace", "-")),
        ("Kind", f"{doc['kind']} ({doc['apiVersion']})"),
        ("Labels", ", ".join(f"{k}={v}" for k, v in (meta.get("labels") or {}).items()) or "-"),
        ("Annotations", ", ".join(f"{k}={v}" for k, v in (meta.get("annotations") or {}).items())),
        ("Created", f"{meta.get('creationTimestamp')} ({age(meta.get('creationTimestamp'))} ago)"),
        ("Generation", str(meta.get("generation"))),
        ("Resource version", str(meta.get("resourceVersion"))),
    ]
    width = max(len(k) for k, _ in fields) + 2
    for key, value in fields:
        click.echo(f"{key + ':':<{width}}{value or '-'}")
    if doc.get("spec"):
        click.echo("Spec:")
        text = yaml.safe_dump(doc["spec"], sort_keys=False, default_flow_style=False)
        click.echo("".join(f"  {line}\n" for line in text.splitlines()), nl=False)


COMMANDS = [apply, get, delete, describe]
