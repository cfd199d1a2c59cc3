"""Tests of the sandbox emulators and their runtime."""
