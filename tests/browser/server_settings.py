"""The browser tests' server: the local settings (``make run``'s), with the test suite's fast
password hasher.

Django's PBKDF2 (a million iterations) was a third of this server's CPU: every journey and walk
signs in, and on a 2-core machine that time is taken from the other test worker. What a
password is hashed with is not what these tests look at; the production stage
(scripts/ci/production_stage.py) signs in under the production settings' own hashers. The demo
the server serves was loaded under the same hasher, so its users' passwords need no rewriting.
"""

from comanage.settings.local import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
