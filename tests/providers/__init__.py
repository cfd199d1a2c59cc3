"""Tests for the provider adapters, one module per provider."""
