"""Third participants: invite links by role, revoking them, the visit's roster; the invitee's page data."""

from __future__ import annotations

from aiohttp import web

from telehealth.http.access import ALL_ROLES, CARE_TEAM, actor, allow
from telehealth.http.api_patients import path_uuid
from telehealth.http.api_visits import public_base
from telehealth.http.jsonio import ok, parse_body
from telehealth.http.openapi import doc
from telehealth.http.pages import page
from telehealth.http.schemas import (
    ChatLineOut,
    InviteIn,
    InviteInfoOut,
    InviteOut,
    ParticipantOut,
    RosterOut,
)
from telehealth.keys import HANDLERS
from telehealth.records.models import VisitInvite

routes = web.RouteTableDef()


def _invite(invite: VisitInvite, url: str | None = None) -> InviteOut:
    return InviteOut(
        id=invite.id,
        role=invite.role,
        display_name=invite.display_name,
        expires_at=invite.expires_at,
        revoked=invite.revoked_at is not None,
        created_at=invite.created_at,
        url=url,
    )


@routes.post("/api/visits/{visit_id}/invites")
@doc(
    "Invite a third participant (interpreter, family, colleague) by a link",
    body=InviteIn,
    response=InviteOut,
    status=201,
)
@allow(*CARE_TEAM)
async def invite(request: web.Request) -> web.Response:
    """Issue an invite link; the token is shown once and only its hash is stored."""
    body = await parse_body(request, InviteIn)
    issued = await request.app[HANDLERS].participants.invite(
        actor(request), path_uuid(request, "visit_id"), role=body.role, display_name=body.display_name
    )
    return ok(_invite(issued.invite, f"{public_base(request)}/invite/{issued.token}"), status=201)


@routes.delete("/api/visits/{visit_id}/invites/{invite_id}")
@doc("Revoke an invite link", response=InviteOut)
@allow(*CARE_TEAM)
async def revoke(request: web.Request) -> web.Response:
    """Revoke an invite link at once."""
    revoked = await request.app[HANDLERS].participants.revoke(
        actor(request), path_uuid(request, "visit_id"), path_uuid(request, "invite_id")
    )
    return ok(_invite(revoked))


@routes.get("/api/visits/{visit_id}/participants")
@doc("Who was invited to and took part in the visit's call, and its kept chat", response=RosterOut)
@allow(*CARE_TEAM)
async def roster(request: web.Request) -> web.Response:
    """The visit's invites, participants with their roles, and kept chat."""
    found = await request.app[HANDLERS].participants.roster(actor(request), path_uuid(request, "visit_id"))
    return ok(
        RosterOut(
            invites=[_invite(i) for i in found.invites],
            participants=[
                ParticipantOut(
                    participant_id=p.participant_id,
                    role=p.role,
                    display_name=p.display_name,
                    joined_at=p.joined_at,
                    admitted_at=p.admitted_at,
                    removed_at=p.removed_at,
                )
                for p in found.participants
            ],
            chat=[
                ChatLineOut(
                    participant_id=c.participant_id,
                    role=c.role,
                    display_name=c.display_name,
                    text=c.text,
                    created_at=c.created_at,
                )
                for c in found.chat
            ],
        )
    )


@routes.get("/api/invite/{token}")
@doc("What an invite link opens: clinician, time, the invitee's role and name", response=InviteInfoOut)
@allow(*ALL_ROLES)
async def invite_info(request: web.Request) -> web.Response:
    """Describe the visit behind an invite link (404 unknown, 410 expired, revoked or over); no patient data."""
    invite, visit = await request.app[HANDLERS].participants.for_link(request.match_info["token"])
    return ok(
        InviteInfoOut(
            visit_id=visit.id,
            clinician_name=visit.clinician.display_name,
            scheduled_at=visit.scheduled_at,
            role=invite.role,
            display_name=invite.display_name,
            state=visit.state,
        )
    )


@routes.get("/invite/{token}")
@allow(*ALL_ROLES)
async def invite_page(request: web.Request) -> web.Response:
    """The invitee's entry point: the patient page without identity check and consent."""
    await request.app[HANDLERS].participants.for_link(request.match_info["token"])
    return await page(request, "join")
