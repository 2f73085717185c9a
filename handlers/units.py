"""Member units (SPEC §10): /unit [CODE], a contact's view of their unit's record."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.context import GridhornContext
from bot.i18n import Markup, escape, t
from bot.labels import MEMBER_TYPE, RESOURCE_KIND, SKILL
from bot.services.errors import Refused
from bot.services.horn_codes import UNIT_PATTERN, UnitPress, read_unit_press
from bot.services.posts import POST_PATTERN, PostLine, post_data, read_post_press
from bot.services.resources import (
    REQUEST_FLOW,
    RESOURCE_PATTERN,
    domain_data,
    read_resource_press,
    resource_data,
)
from bot.services.ticket_views import button, domain_label
from bot.services.units import UnitRecord
from handlers.common import (
    answer_query,
    command_args,
    edit,
    handles_refusals,
    markup,
    refusal_text,
    reply,
    reply_html,
    require_private,
)
from handlers.render import unit_label
from storage.models import DOMAINS, Flow


def record_text(locale: str, record: UnitRecord) -> str:
    none = t(locale, "unit.nobody")
    contacts = [f"{escape(p.display_name)} ({p.user_id})" for p in record.contacts]
    return t(locale, "unit.record", unit=unit_label(record.unit),
             type=t(locale, MEMBER_TYPE[record.unit.member_type or "social"]),
             community=unit_label(record.community) if record.community else none,
             contacts=Markup(", ".join(contacts)) if contacts else none,
             members=len(record.members),
             chat=t(locale, "unit.chat_bound" if record.chat_bound else "unit.chat_none"),
             hours=f"{record.people_hours:g}", horns=record.horns, posts=record.posts,
             resources=record.resources)


@handles_refusals
async def unit(update: Update, context: GridhornContext) -> None:
    """/unit [CODE]: the member unit's record (its contact's own, or one in staff's scope)."""
    require_private(update, "unit.private_only")
    args = command_args(update)
    if len(args) > 1:
        raise Refused("unit.usage")
    record = await context.services.units.record(context.actor, args[0] if args else None)
    await reply_html(update, context, record_text(context.locale, record))


@handles_refusals
async def report_in(update: Update, context: GridhornContext) -> None:
    """/report_in [SKILL…] (双报到): report in to the community where one lives."""
    require_private(update, "report_in.private_only")
    skills = [s.lower() for s in command_args(update)]
    done = await context.services.units.report_in(context.actor, skills)
    locale = context.locale
    offered = ", ".join(t(locale, SKILL[s]) for s in done.report.skills)
    await reply_html(update, context, t(
        locale, "report_in.done", unit=unit_label(done.unit),
        community=unit_label(done.community), skills=offered or t(locale, "me.none")))


def register(app: Application, group: int) -> None:
    app.add_handler(CommandHandler("unit", unit), group=group)
    app.add_handler(CommandHandler("report_in", report_in), group=group)
    app.add_handler(CallbackQueryHandler(unit_horn_button, pattern=UNIT_PATTERN), group=group)
    app.add_handler(CommandHandler("posts", posts), group=group)
    app.add_handler(CommandHandler("resources", resources), group=group)
    app.add_handler(CommandHandler("talent", talent), group=group)
    app.add_handler(CommandHandler("units", units_command), group=group)
    app.add_handler(CallbackQueryHandler(resource_button, pattern=RESOURCE_PATTERN),
                    group=group)
    app.add_handler(CallbackQueryHandler(post_button, pattern=POST_PATTERN), group=group)


@handles_refusals
async def unit_horn_button(update: Update, context: GridhornContext) -> None:
    """Member units on a horn (`hu:`): "Unit check in", a number pledged, and the owner's
    number for each unit at the close. Every press is checked again by the service."""
    query = update.callback_query
    assert query is not None and query.data is not None
    action, horn_id, arg = read_unit_press(query.data)
    horns = context.services.horns
    actor = context.actor
    locale = context.user_locale
    if action == UnitPress.PLEDGE:
        await horns.pledge_prompt(actor, horn_id)
        await answer_query(update, t(locale, "unit.horn_pledge_private"))
    elif action == UnitPress.PEOPLE and arg is not None:
        message = query.message
        done = await horns.pledge(actor, horn_id, int(arg), prompt=None if message is None
                                  else (message.chat.id, message.message_id))
        await answer_query(update, t(locale, "unit.horn_pledged", people=done.pledged,
                                     unit=f"{done.unit.name} ({done.unit.code})", id=horn_id))
        await horns.refresh_counters(horn_id)
    elif action in (UnitPress.LESS, UnitPress.MORE) and arg is not None:
        view = await horns.adjust_unit(actor, locale, horn_id, arg,
                                       -1 if action == UnitPress.LESS else 1)
        await answer_query(update)
        await edit(query.message, view.text, markup(view.buttons))
    else:
        raise Refused("button.stale")


def _posts_view(locale: str, lines: list[PostLine]) -> tuple[str, InlineKeyboardMarkup | None]:
    if not lines:
        return t(locale, "post.none"), None
    text = [t(locale, "post.list_title")]
    rows = []
    for line in lines:
        mine = line.mine.state if line.mine is not None else ""
        text.append(t(locale, "post.line", id=line.post.id, title=line.post.title,
                      held=line.held, slots=line.post.slots,
                      mine=t(locale, "post.mine_holding") if mine == "holding"
                      else t(locale, "post.mine_waiting") if mine == "waiting" else ""))
        if mine:
            rows.append([button(t(locale, "post.btn_release_n", id=line.post.id),
                                post_data("r", line.post.id))])
        else:
            rows.append([button(t(locale, "post.btn_claim_n", id=line.post.id),
                                post_data("c", line.post.id))])
    return "\n".join(text), markup(rows[:20])


@handles_refusals
async def posts(update: Update, context: GridhornContext) -> None:
    """/posts: the posts to claim; /posts new UNIT_CODE SLOTS TITLE…: publish one."""
    args = command_args(update)
    services = context.services
    if args and args[0].lower() == "new":
        if len(args) < 4:
            raise Refused("post.usage")
        post = await services.posts.create(context.actor, args[1], args[2], " ".join(args[3:]))
        await reply_html(update, context, t(context.locale, "post.published", id=post.id,
                                            title=post.title, slots=post.slots))
        return
    if args:
        raise Refused("post.usage")
    text, keyboard = _posts_view(context.locale, await services.posts.listing(context.actor))
    await reply_html(update, context, text, markup=keyboard)


@handles_refusals
async def post_button(update: Update, context: GridhornContext) -> None:
    """`po:c|r|y:<post>`: Claim, Release, Still serving (checked again by the service)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    action, post_id = read_post_press(query.data)
    services = context.services
    locale = context.user_locale
    if action == "c":
        claimed = await services.posts.claim(context.actor, post_id)
        await answer_query(update, t(locale, "post.claimed", id=post_id)
                           if claimed.state == "holding" else
                           t(locale, "post.waiting", id=post_id, position=claimed.position))
    elif action == "r":
        await services.posts.release(context.actor, post_id)
        await answer_query(update, t(locale, "post.released", id=post_id))
        if query.message is not None and query.message.chat.type == "private":
            await edit(query.message, t(locale, "post.released", id=post_id))
    else:
        await services.posts.still_serving(context.actor, post_id)
        await answer_query(update, t(locale, "post.thanks", id=post_id))
        await edit(query.message, t(locale, "post.thanks", id=post_id))


@handles_refusals
async def resources(update: Update, context: GridhornContext) -> None:
    """/resources [KIND|DOMAIN]: browse; /resources add KIND QUANTITY NAME…: a contact adds one."""
    require_private(update, "resource.private_only")
    args = command_args(update)
    service = context.services.resources
    locale = context.locale
    if args and args[0].lower() == "add":
        if len(args) < 4:
            raise Refused("resource.usage")
        added = await service.add(context.actor, args[1].lower(), args[2], " ".join(args[3:]))
        domains = [button(domain_label(locale, d), domain_data(added.id, d)) for d in DOMAINS]
        await reply_html(update, context, t(locale, "resource.added", id=added.id,
                                            name=added.name, quantity=added.quantity,
                                            kind=t(locale, RESOURCE_KIND[added.kind]))
                         + "\n" + t(locale, "resource.ask_domain"),
                         markup=markup([domains[i:i + 2] for i in range(0, len(domains), 2)]))
        return
    if len(args) > 1:
        raise Refused("resource.usage")
    found = await service.browse(context.actor, args[0].lower() if args else None)
    if not found:
        await reply_html(update, context, t(locale, "resource.none"))
        return
    lines = [t(locale, "resource.list_title")]
    rows = []
    for item in found[:30]:
        resource = item.resource
        line = t(locale, "resource.line", id=resource.id, name=resource.name,
                 quantity=resource.quantity, kind=t(locale, RESOURCE_KIND[resource.kind]),
                 unit=unit_label(item.unit))
        if resource.domain:
            line += " · " + domain_label(locale, resource.domain)
        lines.append(line)
        if item.may_request:
            rows.append([button(t(locale, "resource.btn_request", id=resource.id),
                                resource_data("q", resource.id))])
    await reply_html(update, context, "\n".join(lines), markup=markup(rows[:20]))


@handles_refusals
async def resource_button(update: Update, context: GridhornContext) -> None:
    """`rs:q:<resource>` Request (then the ticket or horn is typed); `rs:a|d:<request>`;
    `rs:m:<resource>:<domain>` the domain it serves."""
    query = update.callback_query
    assert query is not None and query.data is not None
    action, item_id, domain = read_resource_press(query.data)
    service = context.services.resources
    locale = context.user_locale
    if action == "m":
        await service.set_domain(context.actor, item_id, domain)
        await answer_query(update)
        await edit(query.message, t(context.locale, "resource.domain_set", id=item_id,
                                    domain=domain_label(context.locale, domain)))
    elif action == "q":
        await service.ask_target(context.actor, item_id)
        await answer_query(update)
        await reply(update, context, "resource.ask_target", id=item_id)
    elif action == "a":
        request = await service.accept(context.actor, item_id)
        await answer_query(update)
        await edit(query.message, t(locale, "resource.accepted", id=request.id))
    else:
        await service.ask_reason(context.actor, item_id)
        await answer_query(update)
        await reply(update, context, "resource.ask_reason", id=item_id)


async def resource_flow_text(update: Update, context: GridhornContext, flow: Flow) -> None:
    """The typed ticket or horn a resource is requested for, or why a request is declined
    (a refusal is said, and the same words are asked again)."""
    message = update.effective_message
    text = message.text if message is not None and message.text else ""
    service = context.services.resources
    try:
        if flow.name == REQUEST_FLOW:
            request = await service.request(context.actor, int(flow.data["resource"]), text)
            await reply(update, context, "resource.requested", id=request.id)
        else:
            request = await service.decline(context.actor, text)
            await reply(update, context, "resource.declined", id=request.id)
    except Refused as refusal:
        await reply_html(update, context, refusal_text(context.locale, refusal))


@handles_refusals
async def talent(update: Update, context: GridhornContext) -> None:
    """/talent [SKILL] (点将台): volunteers and party members in scope, 双报到 included."""
    require_private(update, "talent.private_only")
    args = command_args(update)
    if len(args) > 1:
        raise Refused("talent.usage")
    locale = context.locale
    found = await context.services.units.talent(context.actor,
                                                args[0].lower() if args else None,
                                                context.services.now())
    lines = [t(locale, "talent.title")]
    for item in found[:50]:
        person = item.person
        lines.append(t(locale, "talent.line", name=person.display_name, user=person.user_id,
                       skills=", ".join(t(locale, SKILL[s]) for s in item.skills)
                       or t(locale, "me.none"),
                       hours=f"{item.hours:g}", posts=item.posts,
                       assignments=item.assignments,
                       party=t(locale, "talent.party") if item.party else "",
                       unit=t(locale, "talent.work_unit", unit=item.work_unit.name)
                       if item.work_unit else ""))
    if not found:
        lines.append(t(locale, "talent.none"))
    await reply_html(update, context, "\n".join(lines))


@handles_refusals
async def units_command(update: Update, context: GridhornContext) -> None:
    """/units [TYPE] (点将台): member units with contacts, resources, claims and score."""
    require_private(update, "talent.private_only")
    args = command_args(update)
    if len(args) > 1:
        raise Refused("units.usage")
    locale = context.locale
    services = context.services
    found = await services.units.unit_lines(context.actor, args[0].lower() if args else None,
                                            services.now())
    lines = [t(locale, "units.title")]
    for item in found:
        lines.append(t(locale, "units.line", unit=unit_label(item.unit),
                       type=t(locale, MEMBER_TYPE[item.unit.member_type or "social"]),
                       contacts=", ".join(p.display_name for p in item.contacts)
                       or t(locale, "unit.nobody"),
                       resources=item.resources, posts=item.posts, score=f"{item.score:g}"))
    if not found:
        lines.append(t(locale, "units.none"))
    await reply_html(update, context, "\n".join(lines))


async def pledge_flow_text(update: Update, context: GridhornContext, flow: Flow) -> None:
    """A number of people typed after "Unit check in" (a refusal asks again)."""
    message = update.effective_message
    text = message.text if message is not None and message.text else ""
    horns = context.services.horns
    try:
        done = await horns.typed_pledge(context.actor, text)
    except Refused as refusal:
        await reply_html(update, context, refusal_text(context.locale, refusal))
        return
    await reply_html(update, context, t(context.locale, "unit.horn_pledged",
                                        unit=f"{done.unit.name} ({done.unit.code})",
                                        people=done.pledged, id=done.horn.id))
    await horns.refresh_counters(done.horn.id)
