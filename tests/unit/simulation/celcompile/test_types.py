"""Unification as cel-go does it: the rules that decide whether an overload matches."""

from __future__ import annotations

import pytest

from dra_driver.simulation.celcompile.types import (
    ANY,
    BOOL,
    DYN,
    INT,
    NULL,
    STRING,
    Bindings,
    CelType,
    equivalent,
    list_of,
    map_of,
    most_general,
    optional_of,
    param,
    struct,
    type_of,
)

QUANTITY = struct("kubernetes.Quantity")


@pytest.mark.parametrize(
    ("cel_type", "printed"),
    [
        (map_of(STRING, map_of(STRING, ANY)), "map(string, map(string, any))"),
        (list_of(INT), "list(int)"),
        (optional_of(DYN), "optional_type(dyn)"),
        (type_of(INT), "type(int)"),
        (QUANTITY, "kubernetes.Quantity"),
        (CelType("error"), "!error!"),
        (NULL, "null"),
    ],
)
def test_types_print_as_the_real_server_names_them(cel_type: CelType, printed: str) -> None:
    assert str(cel_type) == printed


def test_a_parameter_binds_to_the_first_type_and_then_constrains() -> None:
    bindings = Bindings()
    a = param("A")
    assert bindings.assignable_all((STRING, STRING), (a, a))
    assert bindings.substitute(a) == STRING
    assert not Bindings().assignable_all((STRING, INT), (a, a))  # _==_(A, A) for (string, int)


def test_dyn_and_any_match_anything_but_concrete_types_must_agree() -> None:
    bindings = Bindings()
    assert bindings.assignable(ANY, INT)
    assert bindings.assignable(STRING, DYN)
    assert not bindings.assignable(STRING, INT)
    assert not bindings.assignable(QUANTITY, struct("kubernetes.Semver"))


def test_null_matches_only_nullable_types() -> None:
    bindings = Bindings()
    assert bindings.assignable(NULL, QUANTITY)
    assert bindings.assignable(ANY, NULL)
    assert not bindings.assignable(STRING, NULL)
    assert not bindings.assignable(NULL, list_of(INT))


def test_containers_unify_element_wise() -> None:
    bindings = Bindings()
    a = param("A")
    assert bindings.assignable(list_of(INT), list_of(a))
    assert bindings.substitute(a) == INT
    assert not Bindings().assignable(list_of(INT), list_of(STRING))
    assert not Bindings().assignable(map_of(STRING, INT), list_of(INT))


def test_a_failed_match_leaves_the_bindings_untouched_when_copied() -> None:
    bindings = Bindings()
    trial = bindings.copy()
    assert not trial.assignable_all((INT, STRING), (param("A"), param("A")))
    assert bindings.find(param("A")) is None


def test_unbound_parameters_print_as_dyn() -> None:
    assert str(Bindings().substitute(optional_of(param("V")), params_to_dyn=True)) == "optional_type(dyn)"


def test_the_more_general_type_wins_a_join() -> None:
    assert most_general(DYN, INT) == DYN
    assert most_general(list_of(INT), list_of(DYN)) == list_of(DYN)
    assert most_general(BOOL, BOOL) == BOOL


def test_equivalence_ignores_parameter_names_only() -> None:
    assert equivalent(list_of(param("_var0")), list_of(param("_var1")))
    assert not equivalent(list_of(INT), list_of(DYN))
