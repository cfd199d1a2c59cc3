"""The NAVER Cloud Web Security Checker emulator (`emulator`) and its jobs and reports (`jobs`).

Faithful to `providers/ncp-wsc.md`, cited as [FS] in each module.
"""
