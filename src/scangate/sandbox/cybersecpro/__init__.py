"""The CyberSec Pro emulator (`emulator`), its accounts and JWTs (`auth`), rate and start
limits (`limits`) and scans in both wire shapes (`scans`).

Faithful to `providers/cybersecpro.md`, cited as [FS] in each module.
"""
