"""The CyberOrigen emulator (`emulator`), its accounts and tokens (`auth`) and scans (`scans`).

Faithful to `providers/cyberorigen.md`, cited as [FS] in each module.
"""
