"""End-to-end tests: the real CLI as a subprocess against the sandbox emulators (helpers in
`support`)."""
