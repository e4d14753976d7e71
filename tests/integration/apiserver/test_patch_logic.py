"""The patch algorithms on plain dicts: the directives kubectl emits and the schema-driven list merges."""

from __future__ import annotations

from pathlib import Path

import pytest

from dra_driver.simulation.apiserver.patch import json_patch, merge_patch, strategic_merge
from dra_driver.simulation.apiserver.registry import Registry
from dra_driver.simulation.apiserver.schema import shared_schema_set
from dra_driver.simulation.apiserver.status import StatusError


@pytest.fixture(scope="module")
def pod_schema(k8s_schemas: Path) -> tuple[dict[str, object], dict[str, object]]:
    kind = Registry().lookup("", "v1", "pods")
    assert kind is not None
    schemas = shared_schema_set(str(k8s_schemas))
    return schemas.components(kind), schemas.root(kind)


POD = {
    "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["x"]},
    "spec": {"containers": [{"name": "main", "image": "busybox", "env": [{"name": "A", "value": "1"}]},
                            {"name": "side", "image": "busybox"}]},
    "status": {"conditions": [{"type": "Ready", "status": "False"}]},
}


def test_strategic_merge_recurses_into_keyed_elements(pod_schema: tuple[dict[str, object], ...]) -> None:
    components, root = pod_schema
    patch = {"spec": {"containers": [{"name": "main", "env": [{"name": "B", "value": "2"}]}]}}
    merged = strategic_merge(components, root, POD, patch)  # type: ignore[arg-type]
    main = merged["spec"]["containers"][0]
    assert main["image"] == "busybox"
    assert main["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert [c["name"] for c in merged["spec"]["containers"]] == ["main", "side"]


def test_strategic_merge_directives(pod_schema: tuple[dict[str, object], ...]) -> None:
    components, root = pod_schema
    replaced = strategic_merge(components, root, POD,  # type: ignore[arg-type]
                               {"metadata": {"labels": {"$patch": "replace", "c": "3"}}})
    assert replaced["metadata"]["labels"] == {"c": "3"}
    retained = strategic_merge(components, root, POD,  # type: ignore[arg-type]
                               {"spec": {"$retainKeys": ["containers"], "containers": []}})
    assert set(retained["spec"]) == {"containers"}
    ordered = strategic_merge(components, root, POD,  # type: ignore[arg-type]
                              {"metadata": {"$setElementOrder/finalizers": ["x"], "labels": {"a": None}}})
    assert ordered["metadata"]["labels"] == {"b": "2"}
    assert ordered["metadata"]["finalizers"] == ["x"]


def test_strategic_merge_leaves_the_original_untouched(pod_schema: tuple[dict[str, object], ...]) -> None:
    components, root = pod_schema
    before = repr(POD)
    strategic_merge(components, root, POD, {"spec": {"containers": [{"name": "new", "image": "x"}]}})  # type: ignore[arg-type]
    assert repr(POD) == before


def test_merge_patch_is_rfc_7386() -> None:
    assert merge_patch({"a": "b", "c": {"d": "e", "f": "g"}}, {"a": "z", "c": {"f": None}}) == {
        "a": "z", "c": {"d": "e"}}
    assert merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}
    assert merge_patch({"a": 1}, ["x"]) == ["x"]


def test_json_patch_rfc_6902_examples() -> None:
    doc = {"foo": ["bar", "baz"], "x": {"y": 1}}
    assert json_patch(doc, [{"op": "add", "path": "/foo/1", "value": "qux"}])["foo"] == ["bar", "qux", "baz"]
    assert json_patch(doc, [{"op": "add", "path": "/foo/-", "value": "end"}])["foo"][-1] == "end"
    assert json_patch(doc, [{"op": "move", "from": "/x/y", "path": "/z"}]) == {"foo": ["bar", "baz"], "x": {},
                                                                              "z": 1}
    assert json_patch(doc, [{"op": "copy", "from": "/x", "path": "/w"}])["w"] == {"y": 1}
    assert doc == {"foo": ["bar", "baz"], "x": {"y": 1}}
    for bad in ([{"op": "remove", "path": "/nope"}], [{"op": "jump", "path": "/x"}], {"op": "add"},
                [{"op": "add", "path": "/foo/9", "value": 1}], [{"op": "test", "path": "/x/y", "value": 2}]):
        with pytest.raises(StatusError) as info:
            json_patch(doc, bad)
        assert info.value.code == 400
