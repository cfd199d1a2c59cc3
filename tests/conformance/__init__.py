"""The cross-provider conformance suite: every fault, against every provider's emulator."""
