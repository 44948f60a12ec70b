"""All handlers of one application, built once by the app factory and reached through one AppKey."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from telehealth.handlers.accounts import AccountsHandler, SessionsHandler
from telehealth.handlers.common import SessionsEnded, SessionSource
from telehealth.handlers.grading import GradingHandler
from telehealth.handlers.health import HealthHandler
from telehealth.handlers.ice import IceHandler
from telehealth.handlers.join import JoinHandler
from telehealth.handlers.messages import MessagesHandler
from telehealth.handlers.monitoring import MonitoringHandler
from telehealth.handlers.notes import NotesHandler
from telehealth.handlers.participants import ParticipantsHandler
from telehealth.handlers.passwords import AdmissionGate, PasswordChecker
from telehealth.handlers.patients import PatientsHandler
from telehealth.handlers.signaling_gateway import RecordsGateway
from telehealth.handlers.throttle import Throttle
from telehealth.handlers.visits import VisitsHandler
from telehealth.records.accounts import SessionPolicy
from telehealth.settings import Settings
from telehealth.signaling.turn import IceSource


@dataclass(frozen=True, slots=True)
class Handlers:
    """One handler per aggregate; views call exactly one method of one of them."""

    sessions: SessionsHandler
    accounts: AccountsHandler
    patients: PatientsHandler
    visits: VisitsHandler
    messages: MessagesHandler
    join: JoinHandler
    grading: GradingHandler
    notes: NotesHandler
    participants: ParticipantsHandler
    ice: IceHandler
    health: HealthHandler
    monitoring: MonitoringHandler
    signaling: RecordsGateway

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        sessions: SessionSource,
        engine: Callable[[], AsyncEngine],
        throttle: Throttle,
        ice: IceSource,
        passwords: PasswordChecker,
        ended: SessionsEnded,
    ) -> Handlers:
        """Wire the handlers for these settings (the database getters resolve after start-up)."""
        policy = SessionPolicy(
            idle=timedelta(seconds=settings.session_idle_seconds),
            absolute=timedelta(seconds=settings.session_absolute_seconds),
        )
        # One cap for all anonymous work (sign-in and join): a flood of either cannot starve the other's pool.
        gate = AdmissionGate(settings.anonymous_concurrency)
        return cls(
            sessions=SessionsHandler(sessions, policy=policy),
            accounts=AccountsHandler(
                sessions,
                max_failures=settings.login_max_failures,
                throttle=throttle,
                passwords=passwords,
                gate=gate,
                ended=ended,
            ),
            patients=PatientsHandler(sessions),
            visits=VisitsHandler(
                sessions, join_link_hours=settings.join_link_hours, ended=ended, clinic_tz=settings.clinic_tz
            ),
            messages=MessagesHandler(
                sessions,
                secret_key=settings.secret_key,
                clinic_tz=settings.clinic_tz,
                join_link_hours=settings.join_link_hours,
                reminder_before=timedelta(minutes=settings.reminder_before_minutes),
            ),
            join=JoinHandler(sessions, throttle=throttle, gate=gate),
            grading=GradingHandler(sessions),
            notes=NotesHandler(sessions),
            participants=ParticipantsHandler(sessions, link_hours=settings.join_link_hours),
            ice=IceHandler(ice),
            health=HealthHandler(engine),
            monitoring=MonitoringHandler(sessions, engine),
            signaling=RecordsGateway(sessions, policy),
        )
