"""The CyStack emulator (`emulator`), its seeded targets, scans and vulnerabilities (`data`) and
the Django REST Framework conventions its API follows (`drf`).

Faithful to `providers/cystack.md`, cited as [FS] in each module.
"""
