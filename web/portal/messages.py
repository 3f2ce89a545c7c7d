"""What the portal says when the domain refuses something, by error code, in the member's
language. The domain's own English messages are written for staff and may name other
members' numbers; a member sees these instead."""

from __future__ import annotations

from core.errors import RetainError
from web.i18n import Formatter


def N_(message: str) -> str:
    return message


# Shown as a unit ("1,200 more points"); the spend metric shows the currency code instead.
UNITS = (N_("points"),)

MESSAGES = {
    "auth.invalid_credentials": N_(
        "That phone or email and password do not match an active account."
    ),
    "auth.throttled": N_("Too many failed sign-in attempts. Wait a few minutes and try again."),
    "rate_limited": N_("Too many requests. Wait a few minutes, then try again."),
    "csrf.invalid": N_("This form has expired. Reload the page and try again."),
    "password.too_short": N_("Use a password of at least 10 characters."),
    "password.too_long": N_("Use a password of at most 512 characters."),
    "password.wrong": N_("That password is not right."),
    "password.mismatch": N_("The two passwords do not match."),
    "member.name": N_("Give your name."),
    "member.name.invalid": N_("Give your name."),
    "member.birthday.range": N_("Give the birthday as a date."),
    "member.phone": N_("That is not a phone number."),
    "member.email": N_("That is not an email address."),
    "member.contact": N_("Give a phone number or an email address."),
    "member.gender": N_("Choose a gender from the list, or leave it empty."),
    "member.birthday": N_("The birthday cannot be in the future."),
    "member.birthday_format": N_("Give the birthday as a date."),
    "member.birthday_set": N_("Your birthday is already set; ask us if it needs correcting."),
    "member.phone_taken": N_("This phone number belongs to another member."),
    "member.email_taken": N_("This email address belongs to another member."),
    "member.exists": N_("You are already a member. Use “Set up or reset my password” to sign in."),
    "member.closed": N_("This account is closed."),
    "member.inactive": N_("Your membership is suspended; please contact us."),
    "referral.not_found": N_("That referral code is not known. Check it, or leave it empty."),
    "referral.code": N_("That referral code is not known. Check it, or leave it empty."),
    "referral.self": N_("You cannot use your own referral code."),
    "referral.exists": N_("You were already referred by someone."),
    "referral.not_new": N_("Referral codes are for new members only."),
    "link.not_found": N_("This link is not valid. Ask for a new one."),
    "link.used": N_("This link was already used or replaced. Ask for a new one."),
    "link.expired": N_("This link has expired. Ask for a new one."),
    "points.insufficient": N_("You do not have enough points available for this reward yet."),
    "points.negative_balance": N_(
        "Your balance is negative because a refund took back points you had already spent. "
        "You can redeem again once new points have made it positive."
    ),
    "reward.not_found": N_("This reward is not in your catalog."),
    "coupon.not_found": N_("There is no such coupon in your wallet."),
}


def say(fmt: Formatter, exc: RetainError) -> str:
    """The member-facing text for a refusal; unknown codes get a neutral sentence."""
    message = MESSAGES.get(exc.code)
    if message is None:
        return fmt.gettext("That did not work. Check what you entered and try again.")
    return fmt.gettext(message)
