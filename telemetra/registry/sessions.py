"""Sign-in sessions of people: signing in and out, the check at every request, a person's own password change.

- The cookie holds a random id (``tlms_`` + 256 bits); the database holds its SHA-256 only, so a copy of the
  database signs no one in. The CSRF token the page sends back is derived from the id (another hash), so it
  is tied to the session and needs no storage.
- Every request a session carries reads it with its user (one lookup by primary key): a session ended or a
  user disabled anywhere is refused by every process at the next request. Its last use is written at most
  once a minute (``TOUCH_INTERVAL``); idle expiry counts from it.
- A wrong e-mail and a wrong password get the same 401 after the same work: an unknown e-mail (or a disabled
  user) has its password checked against a dummy argon2 hash.
- Attempts are counted before the password is checked, atomically (``RateLimiter.hit``, exact): per e-mail
  address (`TELEMETRA_SIGNIN_FAILURES_PER_ACCOUNT`; a successful sign-in starts it again) and per client
  address (`TELEMETRA_SIGNIN_FAILURES_PER_ADDRESS`); past either, 429 ``too_many_attempts`` with Retry-After.
  At most ``MAX_CONCURRENT_HASHES`` argon2 checks run at once, ``MAX_WAITING_CHECKS`` more wait, and past
  that a sign-in is answered 503 at once (as device logins are).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from prometheus_client import Counter

from telemetra.domain.keys import hash_key
from telemetra.domain.models import User
from telemetra.domain.timeparse import utcnow
from telemetra.errors import Forbidden, TooManyAttempts, Unauthorized, ValidationFailed
from telemetra.ratelimit.limiter import RateLimiter, parse_rate
from telemetra.ratelimit.policy import RATE_LIMITED
from telemetra.registry.auth import TenantUserPrincipal, UserPrincipal
from telemetra.registry.device_login import BoundedPasswordChecks
from telemetra.registry.passwords import MAX_PASSWORD_LENGTH, hash_password
from telemetra.registry.users import audit, check_user_password, normalize_email
from telemetra.settings import Settings
from telemetra.store import Store
from telemetra.store.users_base import SessionRecord

__all__ = ["SessionService", "SESSION_ID_PREFIX", "SIGNIN_PASSWORD_CHECKS", "csrf_token_for", "not_signed_in"]

SESSION_ID_PREFIX = "tlms_"
MAX_SESSION_ID_LENGTH = 64
TOUCH_INTERVAL = timedelta(seconds=60)  # a session's last use is written at most this often
# Sign-ins kept per user; an older one ends when a newer one would pass the bound (storage stays bounded).
MAX_SESSIONS_PER_USER = 20
MAX_REMEMBERED_PRINCIPALS = 4096


SIGNIN_PASSWORD_CHECKS = Counter(
    "telemetra_signin_password_checks_total",
    "Passwords of people checked (argon2, a dummy hash for an unknown e-mail), by result",
    ["result"],
)


def csrf_token_for(session_id: str) -> str:
    """The CSRF token of a session: derived from its id, so it is the session's own and never stored."""
    digest = hashlib.sha256(b"telemetra csrf\x00" + session_id.encode("utf-8", "surrogatepass")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def not_signed_in() -> Unauthorized:
    return Unauthorized("You are not signed in, or your session has ended; sign in again.", code="unauthorized")


def _wrong_credentials() -> Unauthorized:
    # One answer for an unknown e-mail, a disabled user and a wrong password.
    return Unauthorized("The e-mail address or the password is wrong.", code="invalid_credentials")


def _email_ref(email: str) -> str:
    # Failed sign-ins name an unknown address by a hash: a password typed into the e-mail field stays out of logs.
    return "sha256:" + hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:12]


class SessionService:
    def __init__(
        self, store: Store, limiter: RateLimiter, settings: Settings, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._store = store
        self._limiter = limiter
        self.clock = clock
        self.idle = timedelta(seconds=settings.session_idle_s)
        self.absolute = timedelta(seconds=settings.session_absolute_s)
        self._per_account = parse_rate(settings.signin_failures_per_account)
        self._per_address = parse_rate(settings.signin_failures_per_address)
        self._checks = BoundedPasswordChecks()
        self._principals: dict[bytes, tuple[SessionRecord, User, UserPrincipal]] = {}

    # -- signing in and out ------------------------------------------------------------------------
    async def sign_in(self, email: object, password: object, client: str) -> tuple[str, UserPrincipal]:
        """Check the e-mail and password; return a new session id (for the cookie) and its principal.
        401 ``invalid_credentials`` for any wrong pair, 429 past the sign-in budgets."""
        if not isinstance(email, str) or not isinstance(password, str):
            raise ValidationFailed("'email' and 'password' are strings", code="invalid_credentials_body")
        address = email.strip().lower()[:320]
        await self._count_attempt(address, client)
        found = await self._store.users.user_by_email(address)
        usable = found is not None and not found[0].disabled and len(password) <= MAX_PASSWORD_LENGTH
        matched = await self._check(found[1] if found and usable else None, password[:MAX_PASSWORD_LENGTH])
        if not matched or found is None or not usable:
            who = f"user={found[0].id}" if found else f"email={_email_ref(address)}"
            audit.warning("sign-in failed %s client=%s", who, client)
            raise _wrong_credentials()
        user = found[0]
        await self._limiter.reset("signin_account", self._per_account, address, exact=True)
        now = self.clock()
        session_id = SESSION_ID_PREFIX + secrets.token_urlsafe(32)
        record = SessionRecord(hash_key(session_id), user.id, now, now, now + self.absolute)
        await self._store.users.create_session(record, MAX_SESSIONS_PER_USER)
        await self._store.users.record_sign_in(user.id, now)
        audit.info("sign-in user=%s tenant=%s client=%s", user.id, user.tenant_id, client)
        signed_in = await self._store.users.get_user(user.id) or user
        return session_id, self._principal(session_id, record, signed_in)

    async def sign_out(self, principal: UserPrincipal) -> None:
        await self._store.users.delete_session(principal.session_hash)
        audit.info("sign-out user=%s", principal.user.id)

    # -- the check at every request ----------------------------------------------------------------
    async def authenticate(self, session_id: str | None) -> UserPrincipal:
        """The person a session id belongs to; 401 ``unauthorized`` when it is unknown, ended or expired, or
        its user is disabled."""
        if not session_id or len(session_id) > MAX_SESSION_ID_LENGTH:
            raise not_signed_in()
        id_hash = hash_key(session_id)
        found = await self._store.users.session(id_hash)
        if found is None:
            self._principals.pop(id_hash, None)
            raise not_signed_in()
        record, user = found
        now = self.clock()
        if user.disabled or now >= record.expires_at or now >= record.last_seen_at + self.idle:
            await self._store.users.delete_session(id_hash)
            raise not_signed_in()
        if now - record.last_seen_at >= TOUCH_INTERVAL:
            await self._store.users.touch_session(id_hash, now)
            record = SessionRecord(record.id_hash, record.user_id, record.created_at, now, record.expires_at)
        # The store gives the same records back while the row is unchanged: so is the principal made of them.
        made = self._principals.get(id_hash)
        if made is not None and made[0] is record and made[1] is user:
            return made[2]
        principal = self._principal(session_id, record, user)
        if len(self._principals) >= MAX_REMEMBERED_PRINCIPALS:
            del self._principals[next(iter(self._principals))]
        self._principals[id_hash] = (record, user, principal)
        return principal

    def _principal(self, session_id: str, record: SessionRecord, user: User) -> UserPrincipal:
        expires = min(record.expires_at, record.last_seen_at + self.idle)
        cls = TenantUserPrincipal if user.tenant_id is not None else UserPrincipal
        return cls(user=user, session_hash=record.id_hash, csrf_token=csrf_token_for(session_id), expires_at=expires)

    @staticmethod
    def csrf_matches(principal: UserPrincipal, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), principal.csrf_token.encode())

    async def sweep(self) -> int:
        """Delete the sessions past their expiry (run by the store upkeep); they would be refused anyway."""
        now = self.clock()
        return await self._store.users.delete_expired_sessions(now, now - self.idle)

    # -- a person's own password -------------------------------------------------------------------
    async def change_password(self, principal: UserPrincipal, current: object, new: object) -> None:
        """Change the signed-in person's password; their other sessions end, this one stays."""
        if not isinstance(current, str):
            raise ValidationFailed("'current_password' must be a string", code="invalid_password")
        checked = check_user_password(new, normalize_email(principal.user.email), field="new_password")
        await self._count_attempt(principal.user.email, f"user:{principal.user.id}")
        stored = await self._store.users.password_hash(principal.user.id)
        usable = len(current) <= MAX_PASSWORD_LENGTH
        if not await self._check(stored if usable else None, current[:MAX_PASSWORD_LENGTH]):
            audit.warning("password change refused (wrong current password) user=%s", principal.user.id)
            raise Forbidden("The current password is wrong; this session stays signed in.", code="wrong_password")
        await self._store.users.set_password(
            principal.user.id, await hash_password(checked), keep_session=principal.session_hash
        )
        await self._limiter.reset("signin_account", self._per_account, principal.user.email, exact=True)
        audit.info("password changed user=%s (other sessions ended)", principal.user.id)

    # -- budgets and argon2 slots ------------------------------------------------------------------
    async def _count_attempt(self, address: str, client: str) -> None:
        budgets = (
            ("signin_address", self._per_address, client, "TELEMETRA_SIGNIN_FAILURES_PER_ADDRESS"),
            ("signin_account", self._per_account, address, "TELEMETRA_SIGNIN_FAILURES_PER_ACCOUNT"),
        )
        for name, item, who, setting in budgets:  # the address first: past its budget, it spends no account's
            verdict = await self._limiter.hit(name, item, who, exact=True)
            if not verdict.allowed:
                RATE_LIMITED.labels(name).inc()
                audit.warning("sign-in refused: too many attempts (%s) client=%s", name, client)
                retry = max(1, verdict.reset_after_s)
                raise TooManyAttempts(
                    f"Too many sign-in attempts ({setting}: {item}); retry after {retry} s.", headers=verdict.headers()
                )

    async def _check(self, stored_hash: str | None, password: str) -> bool:
        matched = await self._checks.verify(stored_hash, password)
        SIGNIN_PASSWORD_CHECKS.labels("accepted" if matched else "refused").inc()
        return matched
