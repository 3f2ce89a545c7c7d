"""The member portal (/my): members see their points, tier, coupons and referrals.

Its own templates environment (with gettext), its own session key and its own error pages in
the member's language; it shares the app, the CSRF check and the domain services.
"""
