"""The VAddy Web API v2 emulator (`emulator`) and its projects, crawls and scans (`scans`).

Faithful to `providers/vaddy.md`, cited as [FS] in each module.
"""
