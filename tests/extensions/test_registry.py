"""The extension registry: built-ins, duplicates refused, building by id."""

from __future__ import annotations

import pytest

from metricgate.extensions import ExtensionFactory, ExtensionRegistry, default_extension_registry
from metricgate.extensions.bearer import BearerTokenAuthConfig, BearerTokenAuthenticator


def test_builtins_and_create_by_id() -> None:
    registry = default_extension_registry()
    assert registry.types() == ["basicauth", "bearertokenauth", "mtls", "oidc"]
    extension = registry.create("bearertokenauth/ci", BearerTokenAuthConfig(tokens=["t"]))
    assert isinstance(extension, BearerTokenAuthenticator)
    assert extension.extension_id == "bearertokenauth/ci"


def test_duplicates_are_refused() -> None:
    factory = ExtensionFactory("bearertokenauth", BearerTokenAuthConfig, BearerTokenAuthenticator)
    registry = ExtensionRegistry([factory])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(factory)
